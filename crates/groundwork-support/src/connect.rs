//! Opening a plain tokio-postgres connection whose I/O runs on the current runtime.

use std::ffi::OsString;

use tokio_postgres::{Client, NoTls};

/// Connects to `url` without TLS and drives the connection on a spawned task.
///
/// Must be called inside a tokio runtime; the client stops working when that runtime
/// shuts down.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The error, if any, surfaces on the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// Returns `url` with its database name replaced by `database`.
///
/// Accepts `postgres://` / `postgresql://` URLs and key=value connection strings.
pub fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={database}");
    };
    let rest_start = scheme_end + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_end = base[rest_start..]
        .find('/')
        .map_or(base.len(), |i| rest_start + i);
    format!("{}/{database}{query}", &base[..authority_end])
}

/// Returns `url` connecting as `user` with `password` instead of its own credentials.
///
/// Accepts `postgres://` / `postgresql://` URLs and key=value connection strings. The
/// user and password are used as given: pass names and passwords that need no
/// escaping (letters, digits, `_`).
pub fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} user={user} password={password}");
    };
    let rest_start = scheme_end + 3;
    let authority_end = url[rest_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| rest_start + i);
    let host_start = url[rest_start..authority_end]
        .rfind('@')
        .map_or(rest_start, |i| rest_start + i + 1);
    format!(
        "{}{user}:{password}@{}",
        &url[..rest_start],
        &url[host_start..]
    )
}

/// Returns `url` without its password, and the password (percent-decoded), for
/// handing a program the password in `PGPASSWORD` instead of on its command line,
/// where every local user can read it.
///
/// Accepts `postgres://user:password@host/db` URLs (a `password=` query parameter
/// too) and `key=value` connection strings.
pub fn without_password(url: &str) -> (String, Option<OsString>) {
    use std::os::unix::ffi::OsStrExt;
    let password = url
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|config| {
            config
                .get_password()
                .map(|p| std::ffi::OsStr::from_bytes(p).to_owned())
        });
    if password.is_none() {
        return (url.to_owned(), None);
    }
    let stripped = match url.find("://") {
        Some(scheme_end) => {
            let rest = scheme_end + 3;
            let authority_end = url[rest..].find(['/', '?']).map_or(url.len(), |i| rest + i);
            match url[rest..authority_end].rfind('@') {
                Some(at) => {
                    let userinfo = &url[rest..rest + at];
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    let query = &url[authority_end..];
                    // A password given as a query parameter goes too.
                    let query = strip_query_password(query);
                    format!(
                        "{}{user}{}{query}",
                        &url[..rest],
                        &url[rest + at..authority_end]
                    )
                }
                None => format!(
                    "{}{}",
                    &url[..authority_end],
                    strip_query_password(&url[authority_end..])
                ),
            }
        }
        None => strip_keyword_password(url),
    };
    (stripped, password)
}

/// `/db?password=x&sslmode=disable` -> `/db?sslmode=disable`.
fn strip_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("password="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// `host=h password='a b' user=u` -> `host=h user=u`.
fn strip_keyword_password(conninfo: &str) -> String {
    let bytes = conninfo.as_bytes();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        let mut quoted = false;
        while i < bytes.len() && (quoted || !bytes[i].is_ascii_whitespace()) {
            match bytes[i] {
                b'\\' => i += 1,
                b'\'' => quoted = !quoted,
                _ => {}
            }
            i += 1;
        }
        let pair = &conninfo[start..i.min(bytes.len())];
        let key = pair.split('=').next().unwrap_or_default().trim();
        if !pair.is_empty() && key != "password" {
            kept.push(pair);
        }
    }
    kept.join(" ")
}

/// A driver error with the server's SQLSTATE, message and detail spelled out
/// (`tokio_postgres::Error`'s own display says only "db error").
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            text
        }
        None => {
            use std::error::Error as _;
            match error.source() {
                Some(source) => format!("{error}: {source}"),
                None => error.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{with_credentials, with_database, without_password};

    #[test]
    fn replaces_or_adds_the_credentials() {
        assert_eq!(
            with_credentials("postgres://u:p@h:5/db?sslmode=disable", "app", "pw"),
            "postgres://app:pw@h:5/db?sslmode=disable"
        );
        assert_eq!(
            with_credentials("postgresql://h/db", "app", "pw"),
            "postgresql://app:pw@h/db"
        );
        assert_eq!(
            with_credentials("postgres://a%40b:p%3Aq@h", "app", "pw"),
            "postgres://app:pw@h"
        );
        assert_eq!(
            with_credentials("host=h user=u", "app", "pw"),
            "host=h user=u user=app password=pw"
        );
    }

    #[test]
    fn replaces_or_adds_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5/old?sslmode=disable", "new"),
            "postgres://u:p@h:5/new?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "new"), "postgres://h:5/new");
        assert_eq!(
            with_database("host=h user=u", "new"),
            "host=h user=u dbname=new"
        );
    }

    #[test]
    fn takes_the_password_out_of_the_url() {
        let (url, password) = without_password("postgres://ada:s%40cret@h:5/db?sslmode=disable");
        assert_eq!(url, "postgres://ada@h:5/db?sslmode=disable");
        assert_eq!(password.as_deref(), Some("s@cret".as_ref()));

        let (url, password) = without_password("postgres://ada@h/db?password=pw&sslmode=disable");
        assert_eq!(url, "postgres://ada@h/db?sslmode=disable");
        assert_eq!(password.as_deref(), Some("pw".as_ref()));

        let (url, password) = without_password("host=h password='a b\\'c' user=u dbname=d");
        assert_eq!(url, "host=h user=u dbname=d");
        assert_eq!(password.as_deref(), Some("a b'c".as_ref()));

        let (url, password) = without_password("postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(password, None);
    }
}

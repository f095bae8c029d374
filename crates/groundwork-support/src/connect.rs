//! Opening a plain tokio-postgres connection whose I/O runs on the current runtime.

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
    use super::{with_credentials, with_database};

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
}

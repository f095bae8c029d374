//! Ephemeral servers leave nothing behind: not when dropped, not when their owner
//! panics.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use groundwork_provision::{Origin, Postgres, Settings};

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn container_exists(name: &str) -> bool {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name=^{name}$")])
        .output()
        .expect("docker runs");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// What is left of a server after its owner let go, checked for up to 15 s because
/// the clean-up happens in the supervisor after the owner is gone.
fn wait_until_gone(trace: &Trace) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = match trace {
            Trace::Local { dir, pid } => alive(*pid) || dir.exists(),
            Trace::Container(name) => container_exists(name),
            Trace::Url => false,
        };
        if !left {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still there after 15 s: {trace:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug)]
enum Trace {
    Local { dir: PathBuf, pid: i32 },
    Container(String),
    Url,
}

fn trace(pg: &Postgres) -> Trace {
    match pg.origin() {
        Origin::Local => {
            let (dir, pid) = pg.ephemeral_cluster().unwrap();
            Trace::Local {
                dir: dir.to_path_buf(),
                pid,
            }
        }
        Origin::Container => Trace::Container(pg.container_name().unwrap().to_owned()),
        Origin::Url => Trace::Url,
    }
}

#[tokio::test]
async fn an_ephemeral_server_is_gone_after_drop() {
    let pg = Postgres::ephemeral(&Settings::from_env().unwrap())
        .await
        .unwrap();
    let client = groundwork_support::connect::connect(pg.url())
        .await
        .unwrap();
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let trace = trace(&pg);
    if let Trace::Local { dir, pid } = &trace {
        assert!(dir.exists() && alive(*pid));
    }
    drop(client);
    drop(pg);
    wait_until_gone(&trace);
}

/// Run by the next test in a child process: starts a server, reports it, panics.
#[tokio::test]
#[ignore = "helper: run by an_owner_that_panics_leaves_nothing_behind"]
async fn helper_start_server_then_panic() {
    let pg = Postgres::ephemeral(&Settings::from_env().unwrap())
        .await
        .unwrap();
    match trace(&pg) {
        Trace::Local { dir, pid } => println!("TRACE local {pid} {}", dir.display()),
        Trace::Container(name) => println!("TRACE container {name}"),
        Trace::Url => println!("TRACE url"),
    }
    panic!("simulated crash while a server runs");
}

#[test]
fn an_owner_that_panics_leaves_nothing_behind() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "provision::helper_start_server_then_panic",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the helper panics");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("TRACE ").map(|(_, rest)| rest))
        .unwrap_or_else(|| {
            panic!(
                "no trace in {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let parts: Vec<&str> = line.split(' ').collect();
    let trace = match parts[..] {
        ["local", pid, dir] => Trace::Local {
            dir: PathBuf::from(dir),
            pid: pid.parse().unwrap(),
        },
        ["container", name] => Trace::Container(name.to_owned()),
        _ => Trace::Url,
    };
    wait_until_gone(&trace);
}

#[test]
fn the_strategy_is_read_from_the_environment() {
    use groundwork_provision::{ProvisionError, Strategy};
    assert_eq!("auto".parse::<Strategy>().unwrap(), Strategy::Auto);
    assert_eq!("LOCAL".parse::<Strategy>().unwrap(), Strategy::Local);
    assert_eq!(
        "container".parse::<Strategy>().unwrap(),
        Strategy::Container
    );
    let err = "docker".parse::<Strategy>().unwrap_err();
    assert!(matches!(err, ProvisionError::InvalidStrategy(_)));
    assert_eq!(
        err.to_string(),
        "GROUNDWORK_POSTGRES=\"docker\" is not one of auto, local, container"
    );
}

#[tokio::test]
async fn no_postgres_at_all_names_the_three_ways_to_provide_one() {
    // A container-only strategy with an image that cannot exist: no engine or no
    // image, either way nothing starts.
    let settings = Settings {
        database_url: None,
        url_source: groundwork_provision::UrlSource::Variable("DATABASE_URL"),
        strategy: groundwork_provision::Strategy::Container,
        image: "groundwork-test/does-not-exist:0".into(),
        data_dir: PathBuf::from(".groundwork-unused"),
    };
    let err = Postgres::ephemeral(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no PostgreSQL server is available"),
        "{err}"
    );
    for way in [
        "DATABASE_URL",
        "initdb, pg_ctl, postgres",
        "GROUNDWORK_POSTGRES=container",
    ] {
        assert!(err.contains(way), "{way} missing from: {err}");
    }
}

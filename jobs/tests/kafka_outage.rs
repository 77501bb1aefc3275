//! The broker goes away during a settle: PostgreSQL, S3 and a broker of this test's own,
//! reached through a loopback relay the test can cut (the broker advertises the relay, so
//! every connection of the client goes through it, and the broker keeps its data while it
//! is unreachable). The settle must fail after its retries with a reason ops can read in
//! `status`, publish nothing, and succeed once the broker is back.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixtures::{Fixture, FixtureConfig};
use ledger::{BusinessDate, LedgerSettings};
use support::{Env, text};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const DATE: &str = "2026-11-26";

/// A TCP relay from `listen` to `target` that can be cut (every connection closed, the
/// port refusing) and restored.
struct Relay {
    listen: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn up(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.listen).unwrap();
        let listener: TcpListener = socket.listen(64).unwrap();
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
                tasks.lock().await.push(pipe);
            }
        });
        self.tasks.lock().await.push(accept);
    }

    async fn cut(&self) {
        for task in self.tasks.lock().await.drain(..) {
            task.abort();
        }
    }
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_fails_while_the_broker_is_unreachable_and_succeeds_once_it_is_back() {
    let Ok(tansu) = std::env::var("RECAUDO_TEST_TANSU").map(|t| t.trim().to_string()) else {
        return testbed::service_missing(
            "the Kafka broker (tansu)",
            "RECAUDO_TEST_TANSU is not set",
        );
    };
    if tansu.is_empty() {
        return testbed::service_missing("the Kafka broker (tansu)", "RECAUDO_TEST_TANSU is empty");
    }
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let s3 = match testbed::store::s3_with(|s| s).await {
        Ok(s) => s,
        Err(e) => return testbed::service_missing("the S3-compatible server", &e),
    };
    let bucket = s3.s3.as_ref().unwrap().bucket().to_string();
    let endpoint = std::env::var(testbed::store::TEST_S3_ENDPOINT_VAR).unwrap();

    let (broker_addr, relay_addr) = (free_port(), free_port());
    let _broker = Broker(
        Command::new(&tansu)
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &format!("tcp://{broker_addr}"),
                "--advertised-listener-url",
                &format!("tcp://{relay_addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts"),
    );
    let started = Instant::now();
    while TcpStream::connect(broker_addr).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tansu did not listen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relay = Relay {
        listen: relay_addr,
        target: broker_addr,
        tasks: Arc::default(),
    };
    relay.up().await;

    let env = Env::new(&db.url);
    let recaudo = |args: &[&str]| {
        let mut c = env.recaudo(args);
        c.env("RECAUDO_OBJECT_STORE", format!("s3://{bucket}/tenant/"))
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RECAUDO_KAFKA_BROKERS", relay_addr.to_string())
            .env("RECAUDO_KAFKA_GROUP", "outage")
            .env("RECAUDO_JOB_RETRIES", "1");
        c
    };
    let out = recaudo(&[
        "fixtures",
        "--date",
        DATE,
        "--sales",
        "300",
        "--seed",
        "3",
        "--register",
        "--post-ledger",
        "--publish",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let truth = Fixture::new(FixtureConfig::new(
        3,
        BusinessDate::parse(DATE).unwrap(),
        300,
    ))
    .truth(&fixtures::FilesWritten::default());

    // Cut the broker off once the settle is under way.
    let settle = recaudo(&["run", "settle", "--date", DATE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let started = Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_runs WHERE job = 'settle' AND status = 'running'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if running > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "settle never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.cut().await;
    let out = tokio::task::spawn_blocking(move || settle.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("settle for 2026-11-26 failed after 2 attempt(s)")
            && stderr.contains("did not answer"),
        "{stderr}"
    );

    // Nothing was published, and status says why, attempt by attempt.
    assert!(
        s3.store
            .list(&format!("reports/{DATE}/"))
            .await
            .unwrap()
            .is_empty()
    );
    let status = recaudo(&["status", "--json", "--job", "settle"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status.stderr));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        assert_eq!(run["status"], "failed");
        let error = run["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("Kafka at {relay_addr} did not answer")),
            "{error}"
        );
        assert!(error.len() < 400, "one readable line: {error}");
    }

    // The broker is back: the same settle succeeds, with every validation.
    relay.up().await;
    let out = recaudo(&["run", "settle", "--date", DATE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let fares: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(fare), 0) AS BIGINT) FROM validations")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(fares, truth.validations_amount_minor);
    assert!(
        s3.store
            .head(&format!("reports/{DATE}/latest.json"))
            .await
            .is_ok()
    );
    let report = db.ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "{report:?}");
}

//! `index.html` in a real browser (Debian's headless Chromium), served from loopback under a
//! report-only Content-Security-Policy that makes the browser report any load the page
//! attempts (checked first on a canary page that does load something): no console messages,
//! no requests but the page itself; the totals it shows equal the sums of
//! `settlement_summary.csv`. A phone-width screenshot is kept under
//! `target/test-artifacts/index.png`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use ledger::{Currency, LedgerSettings};
use support::{csv_rows, minor, prepare_day};

/// The Chromium to drive: `RECAUDO_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RECAUDO_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("chromium").arg("--version").output();
    match found {
        Ok(o) if o.status.success() => Some(PathBuf::from("chromium")),
        _ => {
            testbed::service_missing(
                "Chromium",
                "no `chromium` on the PATH (scripts/services installs Debian's package)",
            );
            None
        }
    }
}

/// A report-only Content-Security-Policy that allows nothing but the page's inline styles
/// and `data:` images: the browser then reports (to the console and to `/csp-report`) every
/// load the page attempts, to any host, over any scheme, without changing what it does.
const WATCH: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
    report-uri /csp-report";

/// Serves `/index.html` (the report) and `/canary.html` (a page that does fetch something),
/// recording each request line.
fn serve(page: Vec<u8>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let canary = b"<!doctype html><html><head><link rel=\"icon\" href=\"data:,\"></head>\
        <body><img src=\"https://cdn.example/logo.png\"></body></html>"
        .to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 16 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            if n == 0 {
                continue;
            }
            let request = String::from_utf8_lossy(&buf[..n]);
            let first = request.lines().next().unwrap_or_default().to_string();
            let body: &[u8] = if first.starts_with("GET /index.html ") {
                &page
            } else if first.starts_with("GET /canary.html ") {
                &canary
            } else {
                b""
            };
            log.lock().unwrap().push(first);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                 content-security-policy-report-only: {WATCH}\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (port, seen)
}

fn run_chromium(chromium: &Path, url: &str, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        // The browser's own background traffic (updates, time) goes nowhere.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .args(extra)
        .arg(url)
        .output()
        .expect("Chromium starts");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The text of the element with `id`, as the browser rendered it.
fn shown(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("#{id} is on the page"));
    let rest = &dom[start + id.len() + 6..];
    rest[..rest.find('<').unwrap()].to_string()
}

fn shown_minor(dom: &str, id: &str) -> i64 {
    minor(&shown(dom, id).replace(',', ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_summary_totals_and_fetches_nothing() {
    let Some(chromium) = chromium() else { return };
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let (date, _) = prepare_day(&*db.ledger).await;
    let inputs = reports::inputs::load(&*db.ledger, date, Currency::COP, vec![])
        .await
        .unwrap();
    let statement = reports::statement::build(&inputs, support::final_meta()).unwrap();
    let files = reports::files::render(&statement).unwrap();
    let file = |path: &str| files.iter().find(|f| f.path == path).unwrap().bytes.clone();
    let summary = csv_rows(&file("settlement_summary.csv"));
    let (port, seen) = serve(file("index.html"));

    let dump = ["--dump-dom".to_string()];
    let console = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(String::from)
            .collect()
    };

    // The watch works: a page that loads an image from elsewhere is caught.
    let (_, log) = run_chromium(
        &chromium,
        &format!("http://127.0.0.1:{port}/canary.html"),
        &dump,
    );
    assert!(
        console(&log).iter().any(|l| l.contains("cdn.example")),
        "the canary's request was not seen: {log}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("POST /csp-report"))
    );
    seen.lock().unwrap().clear();

    let page_url = format!("http://127.0.0.1:{port}/index.html");
    let (dom, log) = run_chromium(&chromium, &page_url, &dump);
    let sum = |column: &str| summary.iter().map(|r| minor(&r[column])).sum::<i64>();
    assert_eq!(shown_minor(&dom, "total-net-sales"), sum("net_sales"));
    assert_eq!(shown_minor(&dom, "total-sales-amount"), sum("sales_amount"));
    assert_eq!(shown_minor(&dom, "total-commission"), sum("commission"));
    assert_eq!(
        shown_minor(&dom, "total-commission-tax"),
        sum("commission_tax")
    );
    assert_eq!(shown_minor(&dom, "total-net-due"), sum("net_due"));
    assert_eq!(
        shown_minor(&dom, "total-exception-amount"),
        sum("exception_amount")
    );
    let count = |column: &str| {
        summary
            .iter()
            .map(|r| r[column].parse::<i64>().unwrap())
            .sum::<i64>()
    };
    assert_eq!(
        shown(&dom, "total-sales-count"),
        count("sales_count").to_string()
    );
    assert_eq!(
        shown(&dom, "total-exception-count"),
        count("exception_count").to_string()
    );
    assert!(
        count("exception_count") > 0,
        "the day has exceptions to show"
    );
    assert_eq!(shown(&dom, "total-operators"), summary.len().to_string());
    for section in [
        "sales-by-operator",
        "exceptions-by-case",
        "fare-revenue",
        "exceptions",
    ] {
        assert!(dom.contains(&format!("id=\"{section}\"")), "#{section}");
    }
    assert!(
        console(&log).is_empty(),
        "console messages: {:?}",
        console(&log)
    );

    // A phone-width screenshot, kept for people to look at.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("index.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &chromium,
        &page_url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=390,1600".to_string(),
            "--hide-scrollbars".to_string(),
        ],
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "a real screenshot"
    );

    // Two page loads, and not one other request or policy report.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec!["GET /index.html HTTP/1.1".to_string(); 2],
        "the page made requests of its own"
    );
}

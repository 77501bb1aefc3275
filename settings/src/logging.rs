//! Logging set-up shared by the recaudo binaries: human-readable on a terminal, JSON lines
//! (for CloudWatch and friends) otherwise or with `RECAUDO_LOG_FORMAT=json`. Level from
//! `RUST_LOG` (default: the `default_filter` the binary passes, such as `info,sqlx=warn`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(format: Option<&str>, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = match format {
        Some(f) => f.eq_ignore_ascii_case("json"),
        None => !std::io::stderr().is_terminal(),
    };
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

//! `recaudo dead-letters list`: the validation events that could not be posted, with the
//! reason and their bytes, readable without SQL.

use clap::Subcommand;
use settings::Settings;

#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// The most recent dead letters, newest first: source, position, reason, payload.
    List {
        /// How many to show (1 to 10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Print JSON (one array; a payload that is not UTF-8 is hex) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// How much of a payload the table shows; `--json` has it whole.
const PAYLOAD_CHARS: usize = 60;

pub async fn run(cmd: DeadLettersCommand, config: &Settings) -> anyhow::Result<()> {
    let DeadLettersCommand::List { limit, json } = cmd;
    let ledger = crate::open_ledger(config).await?;
    let letters = ingest::validations::dead_letters(ledger.database(), limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
        return Ok(());
    }
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|d| {
            let text = String::from_utf8_lossy(&d.payload);
            let mut payload: String = text
                .chars()
                .take(PAYLOAD_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if text.chars().count() > PAYLOAD_CHARS {
                payload.push('…');
            }
            vec![
                d.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                d.source.clone(),
                d.position.clone(),
                d.reason.clone(),
                payload,
            ]
        })
        .collect();
    crate::table::print(
        &["received (UTC)", "source", "position", "reason", "payload"],
        &rows,
    );
    Ok(())
}

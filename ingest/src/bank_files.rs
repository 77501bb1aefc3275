//! The bank-statement ingest (DESIGN.md, Bank statements and remittances): every object
//! under `bank/incoming/{account}/{YYYY-MM-DD}/…` (`.xml` camt.053 or `.csv`) is parsed
//! (`bank_statement`), accepted whole into `bank_statements` and `bank_entries` or rejected
//! whole, and moved to `bank/processed/…` or `bank/rejected/…` (with a `.errors.json` report
//! beside it naming each entry or line, field and reason). The same bytes again change
//! nothing. Matching the entries to operators, and posting them, is the `remittances`
//! crate's part, after this one.

use chrono::{NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use ledger::{Database, Ledger, MoneyRules};
use serde::Serialize;
use settings::telemetry::InternalEvent;
use sha2::{Digest, Sha256};
use storage::ObjectStore;

use crate::IngestError;
use crate::bank_statement::{
    BankEntry, BankStatement, Direction, MAX_BYTES, StatementError, parse_camt053, parse_csv,
};
use crate::files::{FileOutcome, FilesReport, is_free, keep_as, move_to};
use crate::internal_events::BankStatementHandled;

pub const INCOMING: &str = "bank/incoming/";

#[derive(Serialize)]
struct ErrorReport<'a> {
    object_key: &'a str,
    sha256: &'a str,
    rejected_at: String,
    error_count: usize,
    errors: &'a [StatementError],
}

/// Statements taken in at the same time on PostgreSQL: each spends most of its time waiting
/// for its commit, so several at once take a fraction of the time (BENCHMARKS.md,
/// remittances).
/// SQLite takes one writer at a time.
const CONCURRENT_STATEMENTS: usize = 4;

/// Ingests every statement under `bank/incoming/`. The report's `records` are the entries
/// of the statements accepted; its lists are in key order (account, then date). Matching
/// posts the entries by booking date, whatever order they were taken in.
pub async fn ingest_statements(
    store: &dyn ObjectStore,
    ledger: &dyn Ledger,
    rules: MoneyRules,
    our_accounts: &[String],
) -> Result<FilesReport, IngestError> {
    let concurrent = match ledger.database() {
        Database::Postgres(_) => CONCURRENT_STATEMENTS,
        Database::Sqlite(_) => 1,
    };
    let keys: Vec<String> = store
        .list(INCOMING)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let outcomes: Vec<(String, FileOutcome)> = futures::stream::iter(keys)
        .map(|key| async move {
            let outcome = ingest_statement(store, ledger, rules, our_accounts, &key).await?;
            Ok::<_, IngestError>((key, outcome))
        })
        .buffered(concurrent)
        .try_collect()
        .await?;
    Ok(FilesReport::of(outcomes))
}

/// The account and date an incoming key names, and whether it is camt.053 (else CSV).
fn parse_key(key: &str) -> Result<(String, NaiveDate, bool), String> {
    let rest = key.strip_prefix(INCOMING).unwrap_or(key);
    let parts: Vec<&str> = rest.split('/').collect();
    let [account, date, name] = parts[..] else {
        return Err(format!(
            "{key:?} is not bank/incoming/{{account}}/{{YYYY-MM-DD}}/{{name}}.xml or .csv"
        ));
    };
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| format!("{date:?} in the key is not a date (YYYY-MM-DD)"))?;
    let lower = name.to_ascii_lowercase();
    let xml = if lower.ends_with(".xml") {
        true
    } else if lower.ends_with(".csv") {
        false
    } else {
        return Err(format!("{name:?}: a statement is .xml (camt.053) or .csv"));
    };
    if account.is_empty() {
        return Err("the key names no account".into());
    }
    Ok((account.to_string(), date, xml))
}

fn whole(field: &str, reason: String) -> Vec<StatementError> {
    vec![StatementError {
        at: "statement".into(),
        field: field.into(),
        reason,
    }]
}

/// Ingests one statement. A failure of the store or the database leaves the object in
/// `bank/incoming/` and the database as it was, so the run can simply be repeated.
pub async fn ingest_statement(
    store: &dyn ObjectStore,
    ledger: &dyn Ledger,
    rules: MoneyRules,
    our_accounts: &[String],
    key: &str,
) -> Result<FileOutcome, IngestError> {
    let db = ledger.database();
    // Keep at most one byte past the limit (a larger object is refused without being held
    // in memory), but hash it all: its bytes are what a repeat is known by.
    let mut body = store.get(key).await?;
    let mut hasher = Sha256::new();
    let mut bytes = Vec::new();
    let mut size = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len();
        if bytes.len() <= MAX_BYTES {
            bytes.extend_from_slice(&chunk[..chunk.len().min(MAX_BYTES + 1 - bytes.len())]);
        }
    }
    let sha = hex::encode(hasher.finalize());
    // An accepted statement's bytes again (sent twice, or a run that stopped before moving
    // it) change nothing. A rejected one's are read again: what rejected it may have been
    // ours to fix (RECAUDO_BANK_ACCOUNTS), and its entries must not be lost for that.
    let seen: Option<String> = ledger::on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT kept_as FROM bank_statements WHERE sha256 = $1 AND status = 'ACCEPTED'",
        )
        .bind(&sha)
        .fetch_optional(pool)
        .await?
    });
    if let Some(kept_as) = seen {
        move_to(store, key, &kept_as).await?;
        BankStatementHandled {
            key,
            outcome: "duplicate",
            entries: 0,
            errors: 0,
        }
        .emit();
        return Ok(FileOutcome::Duplicate);
    }
    // The key is read once: it names the account, the day and the format.
    let named = parse_key(key);
    let parsed = match &named {
        Err(reason) => Err(whole("object_key", reason.clone())),
        Ok(_) if size > MAX_BYTES => Err(whole(
            "size",
            format!("{size} bytes, more than the {MAX_BYTES} accepted"),
        )),
        Ok((account, day, true)) => parse_camt053(&bytes, &rules, our_accounts)
            .and_then(|s| {
                if &s.account == account {
                    Ok(s)
                } else {
                    Err(whole(
                        "account",
                        format!(
                            "the statement is of account {:?}, but the object is under \
                             {account:?}",
                            s.account
                        ),
                    ))
                }
            })
            .and_then(|s| of_its_day(s, *day)),
        Ok((account, day, false)) => {
            parse_csv(&bytes, account, &rules, our_accounts).and_then(|s| of_its_day(s, *day))
        }
    };
    let statement = match parsed {
        Ok(s) => s,
        Err(errors) => {
            let account = named.ok().map(|(a, _, _)| a);
            return reject(store, db, key, &sha, account, &errors).await;
        }
    };
    let target = keep_as(store, key, "processed", &sha).await?;
    if !accept(db, key, &target, &sha, &statement, rules).await? {
        // Some entry was booked before: nothing was kept, and the report names each.
        let errors = booked_before(db, &statement).await?;
        let account = Some(statement.account.clone());
        return reject(store, db, key, &sha, account, &errors).await;
    }
    move_to(store, key, &target).await?;
    let entries = statement.entries.len();
    BankStatementHandled {
        key,
        outcome: "accepted",
        entries,
        errors: 0,
    }
    .emit();
    Ok(FileOutcome::Accepted {
        records: entries as u64,
    })
}

/// A statement is of one day, the one its key names: an entry booked on another is refused.
fn of_its_day(
    statement: BankStatement,
    day: NaiveDate,
) -> Result<BankStatement, Vec<StatementError>> {
    let errors: Vec<StatementError> = statement
        .entries
        .iter()
        .filter(|e| e.booking_date != day)
        .take(crate::bank_statement::MAX_ERRORS)
        .map(|e| StatementError {
            at: format!("entry {}", e.position),
            field: "booking_date".into(),
            reason: format!(
                "{} is not {day}, the day the statement's key names",
                e.booking_date
            ),
        })
        .collect();
    if errors.is_empty() {
        Ok(statement)
    } else {
        Err(errors)
    }
}

/// Entries whose bank reference an earlier statement of the account already booked: the
/// bank sent them twice, and taking them would pay twice. Only asked once `accept` found
/// one (the entries' key is what finds them there, at any size).
async fn booked_before(
    db: Database<'_>,
    statement: &BankStatement,
) -> Result<Vec<StatementError>, IngestError> {
    let mut errors = Vec::new();
    for chunk in statement.entries.chunks(1_000) {
        let found: Vec<(String, String)> = ledger::on_pool!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT e.bank_ref, s.object_key FROM bank_entries e \
                 JOIN bank_statements s ON s.id = e.statement_id WHERE e.account = ",
            );
            q.push_bind(&statement.account).push(" AND e.bank_ref IN (");
            let mut list = q.separated(", ");
            for e in chunk {
                list.push_bind(&e.bank_ref);
            }
            q.push(")");
            q.build_query_as().fetch_all(pool).await?
        });
        let found: std::collections::HashMap<String, String> = found.into_iter().collect();
        for e in chunk {
            if let Some(earlier) = found.get(&e.bank_ref) {
                errors.push(StatementError {
                    at: format!("entry {}", e.position),
                    field: "bank_ref".into(),
                    reason: format!("{} was booked before, in {earlier}", e.bank_ref),
                });
            }
        }
    }
    Ok(errors)
}

/// Records the statement and its entries in one transaction, or nothing when an entry's
/// bank reference was booked before (false).
async fn accept(
    db: Database<'_>,
    key: &str,
    target: &str,
    sha: &str,
    statement: &BankStatement,
    rules: MoneyRules,
) -> Result<bool, IngestError> {
    // These bytes may have been rejected before (see `ingest_statement`): the row says
    // accepted now.
    const STATEMENT: &str = "INSERT INTO bank_statements (sha256, object_key, kept_as, account, \
        status, entries, error_count, received_at) VALUES ($1, $2, $3, $4, 'ACCEPTED', $5, 0, $6) \
        ON CONFLICT (sha256) DO UPDATE SET object_key = excluded.object_key, \
        kept_as = excluded.kept_as, account = excluded.account, status = 'ACCEPTED', \
        entries = excluded.entries, error_count = 0, received_at = excluded.received_at \
        WHERE bank_statements.status = 'REJECTED' RETURNING id";
    // The statement's row, in the caller's transaction; its id.
    macro_rules! statement_row {
        ($tx:expr) => {
            sqlx::query_scalar::<_, i64>(STATEMENT)
                .bind(sha)
                .bind(key)
                .bind(target)
                .bind(&statement.account)
                .bind(statement.entries.len() as i64)
                .bind(Utc::now())
                .fetch_one(&mut *$tx)
                .await?
        };
    }
    let direction = |e: &BankEntry| match e.direction {
        Direction::Credit => "CREDIT",
        Direction::Debit => "DEBIT",
    };
    // An entry booked before makes an insert skip a row: then nothing is kept.
    match db {
        Database::Postgres(pool) => {
            // One array statement (UNNEST): a multi-row VALUES of thousands of parameters
            // costs PostgreSQL more to plan than to run.
            let mut tx = pool.begin().await?;
            let id = statement_row!(tx);
            let e = &statement.entries;
            let text = |f: fn(&BankEntry) -> Option<&str>| e.iter().map(f).collect::<Vec<_>>();
            let inserted = sqlx::query(
                "INSERT INTO bank_entries (account, bank_ref, statement_id, position, \
                   booking_date, value_date, direction, amount, currency, reference, payer_name, \
                   payer_account) \
                 SELECT $1, r, $2, p, b, v, d, a, $3, re, n, pa FROM UNNEST($4::text[], \
                   $5::int4[], $6::date[], $7::date[], $8::text[], $9::int8[], $10::text[], \
                   $11::text[], $12::text[]) AS u(r, p, b, v, d, a, re, n, pa) \
                 ON CONFLICT (account, bank_ref) DO NOTHING",
            )
            .bind(&statement.account)
            .bind(id)
            .bind(rules.currency.code())
            .bind(e.iter().map(|x| x.bank_ref.as_str()).collect::<Vec<_>>())
            .bind(e.iter().map(|x| x.position as i32).collect::<Vec<_>>())
            .bind(e.iter().map(|x| x.booking_date).collect::<Vec<_>>())
            .bind(e.iter().map(|x| x.value_date).collect::<Vec<_>>())
            .bind(e.iter().map(direction).collect::<Vec<_>>())
            .bind(e.iter().map(|x| x.amount).collect::<Vec<_>>())
            .bind(text(|x| x.reference.as_deref()))
            .bind(text(|x| x.payer_name.as_deref()))
            .bind(text(|x| x.payer_account.as_deref()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != e.len() as u64 {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.commit().await?;
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let id = statement_row!(tx);
            for chunk in statement.entries.chunks(1_000) {
                let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO bank_entries (account, bank_ref, statement_id, position, \
                     booking_date, value_date, direction, amount, currency, reference, \
                     payer_name, payer_account) ",
                );
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(&statement.account)
                        .push_bind(&e.bank_ref)
                        .push_bind(id)
                        .push_bind(e.position as i64)
                        .push_bind(e.booking_date)
                        .push_bind(e.value_date)
                        .push_bind(direction(e))
                        .push_bind(e.amount)
                        .push_bind(rules.currency.code())
                        .push_bind(&e.reference)
                        .push_bind(&e.payer_name)
                        .push_bind(&e.payer_account);
                });
                q.push(" ON CONFLICT (account, bank_ref) DO NOTHING");
                if q.build().execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
        }
    }
    Ok(true)
}

/// Writes the error report, records the bytes, then moves the statement: a crash at any
/// point leaves it in `bank/incoming/` or finishes on the next run.
async fn reject(
    store: &dyn ObjectStore,
    db: Database<'_>,
    key: &str,
    sha: &str,
    account: Option<String>,
    errors: &[StatementError],
) -> Result<FileOutcome, IngestError> {
    let target = keep_as(store, key, "rejected", sha).await?;
    let report = ErrorReport {
        object_key: key,
        sha256: sha,
        rejected_at: Utc::now().to_rfc3339(),
        error_count: errors.len(),
        errors,
    };
    let body = serde_json::to_vec_pretty(&report).expect("a report serializes");
    let report_key = format!("{target}.errors.json");
    if is_free(store, &report_key).await? {
        store.put(&report_key, body.into()).await?;
    }
    ledger::on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO bank_statements (sha256, object_key, kept_as, account, status, entries, \
             error_count, received_at) VALUES ($1, $2, $3, $4, 'REJECTED', 0, $5, $6) \
             ON CONFLICT (sha256) DO UPDATE SET object_key = excluded.object_key, \
             kept_as = excluded.kept_as, error_count = excluded.error_count, \
             received_at = excluded.received_at WHERE bank_statements.status = 'REJECTED'",
        )
        .bind(sha)
        .bind(key)
        .bind(&target)
        .bind(account)
        .bind(errors.len() as i64)
        .bind(Utc::now())
        .execute(pool)
        .await?;
    });
    move_to(store, key, &target).await?;
    BankStatementHandled {
        key,
        outcome: "rejected",
        entries: 0,
        errors: errors.len(),
    }
    .emit();
    Ok(FileOutcome::Rejected {
        errors: errors.len(),
    })
}

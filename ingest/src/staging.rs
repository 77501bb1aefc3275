//! Staging an operator file in the database: the file's row and its records, written in
//! one transaction so a file is there whole or not at all. PostgreSQL takes the records
//! through COPY; SQLite through multi-row inserts.

use chrono::{DateTime, Utc};
use ledger::Database;
use ledger::correction::Conn;
use ledger::outbox::{self, NewEvent};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use crate::operator_file::{FileName, Record, Summary};

/// Records in PostgreSQL's binary COPY format (the COPY page of its manual: a signature and
/// two zero words, then per row a field count and each field as a length and its bytes,
/// then -1). The server parses none of it, which makes staging a fifth cheaper than the
/// text format (BENCHMARKS.md, settle): integers go big-endian, a timestamptz as
/// microseconds since 2000-01-01 UTC, text as its UTF-8 bytes, NULL as length -1.
fn binary_copy(file_id: i64, currency: &str, records: &[Record]) -> Vec<u8> {
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut out = Vec::with_capacity(19 + records.len() * 160 + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let text = |out: &mut Vec<u8>, value: &str| {
        out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    };
    for r in records {
        out.extend_from_slice(&10i16.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&file_id.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&(r.line as i32).to_be_bytes());
        text(&mut out, r.kind.as_str());
        text(&mut out, r.operator_ref.as_str());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(
            &(r.occurred_at.timestamp_micros() - POSTGRES_EPOCH_MICROS).to_be_bytes(),
        );
        text(&mut out, r.card_id.as_str());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&r.amount_minor.to_be_bytes());
        text(&mut out, currency);
        text(&mut out, r.point_of_sale.as_str());
        match &r.voided_ref {
            Some(v) => text(&mut out, v.as_str()),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

pub enum StageTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// How staging a file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    Accepted {
        file_id: i64,
    },
    /// The same bytes were staged before: nothing was written.
    Duplicate,
    /// Other bytes were accepted before under the same (operator, date, seq): nothing was
    /// written, and the operator must send a higher sequence.
    SeqTaken(EarlierFile),
}

/// A file received before, as a later one refers to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EarlierFile {
    pub object_key: String,
    /// Where its bytes are kept now.
    pub kept_at: String,
    pub status: String,
    pub sha256: String,
    /// The lowest sequence the operator has not used for that date.
    #[serde(skip)]
    pub next_seq: i32,
}

/// Where a file is kept: recorded since kept objects got names of their own; before that,
/// its key under `incoming/` moved to `processed/` or `rejected/`.
const KEPT_AT: &str = "COALESCE(stored_key, CASE status WHEN 'accepted' THEN 'processed/' \
    ELSE 'rejected/' END || substr(object_key, 10))";

const INSERT_FILE: &str = "INSERT INTO operator_files \
    (object_key, operator_id, business_date, seq, sha256, status, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

impl StageTx {
    /// Opens the transaction and the file's row (status `staging`).
    pub async fn begin(
        db: Database<'_>,
        key: &str,
        name: &FileName,
        now: DateTime<Utc>,
    ) -> Result<(StageTx, i64), sqlx::Error> {
        // Unique until the real hash is known at the end.
        let pending = format!("pending:{}", uuid::Uuid::new_v4());
        match db {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(INSERT_FILE)
                    .bind(key)
                    .bind(name.operator_id.as_str())
                    .bind(name.business_date.naive())
                    .bind(name.seq as i32)
                    .bind(&pending)
                    .bind("staging")
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok((StageTx::Postgres(tx), id))
            }
            Database::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let id: i64 = sqlx::query_scalar(INSERT_FILE)
                    .bind(key)
                    .bind(name.operator_id.as_str())
                    .bind(name.business_date.naive())
                    .bind(name.seq as i32)
                    .bind(&pending)
                    .bind("staging")
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok((StageTx::Sqlite(tx), id))
            }
        }
    }

    /// Stages a batch of records of the file.
    pub async fn records(
        &mut self,
        file_id: i64,
        currency: &str,
        records: &[Record],
    ) -> Result<(), sqlx::Error> {
        if records.is_empty() {
            return Ok(());
        }
        match self {
            StageTx::Postgres(tx) => {
                let mut copy = tx
                    .copy_in_raw(
                        "COPY operator_file_records (file_id, line, kind, operator_ref, \
                         occurred_at, card_id, amount, currency, point_of_sale, voided_ref) \
                         FROM STDIN WITH (FORMAT binary)",
                    )
                    .await?;
                copy.send(binary_copy(file_id, currency, records)).await?;
                copy.finish().await?;
            }
            StageTx::Sqlite(tx) => {
                for chunk in records.chunks(500) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO operator_file_records (file_id, line, kind, operator_ref, \
                         occurred_at, card_id, amount, currency, point_of_sale, voided_ref) ",
                    );
                    q.push_values(chunk, |mut row, r| {
                        row.push_bind(file_id)
                            .push_bind(i64::from(r.line))
                            .push_bind(r.kind.as_str())
                            .push_bind(r.operator_ref.as_str())
                            .push_bind(r.occurred_at)
                            .push_bind(r.card_id.as_str())
                            .push_bind(r.amount_minor)
                            .push_bind(currency)
                            .push_bind(r.point_of_sale.as_str())
                            .push_bind(r.voided_ref.as_ref().map(|v| v.as_str()));
                    });
                    q.build().execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }

    /// Commits the file as accepted and kept at `kept_at`, unless the same bytes were
    /// staged before or its sequence was already accepted with other bytes.
    pub async fn accept(
        self,
        file_id: i64,
        sha256: &str,
        kept_at: &str,
        summary: &Summary,
        event: &NewEvent,
    ) -> Result<Staged, sqlx::Error> {
        const EXISTING: &str = "SELECT id FROM operator_files WHERE sha256 = $1";
        let same_seq = format!(
            "SELECT object_key, {KEPT_AT}, status, sha256, \
               (SELECT MAX(g.seq) + 1 FROM operator_files g WHERE g.operator_id = f.operator_id \
                AND g.business_date = f.business_date) \
             FROM operator_files f WHERE status = 'accepted' AND id <> $1 AND (operator_id, \
               business_date, seq) = (SELECT operator_id, business_date, seq FROM operator_files \
               WHERE id = $1) LIMIT 1"
        );
        const ACCEPT: &str = "UPDATE operator_files SET sha256 = $2, status = 'accepted', \
            record_count = $3, sales_total = $4, voids_total = $5, stored_key = $6 \
            WHERE id = $1 RETURNING business_date";
        macro_rules! finish {
            ($tx:expr, $conn:path) => {{
                let mut tx = $tx;
                let existing: Option<i64> = sqlx::query_scalar(EXISTING)
                    .bind(sha256)
                    .fetch_optional(&mut *tx)
                    .await?;
                if existing.is_some() {
                    tx.rollback().await?;
                    return Ok(Staged::Duplicate);
                }
                let taken: Option<(String, String, String, String, i32)> =
                    sqlx::query_as(&same_seq)
                        .bind(file_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some((object_key, kept_at, status, sha256, next_seq)) = taken {
                    tx.rollback().await?;
                    return Ok(Staged::SeqTaken(EarlierFile {
                        object_key,
                        kept_at,
                        status,
                        sha256,
                        next_seq,
                    }));
                }
                let updated: Result<chrono::NaiveDate, _> = sqlx::query_scalar(ACCEPT)
                    .bind(file_id)
                    .bind(sha256)
                    .bind(summary.records as i64)
                    .bind(summary.sales_total)
                    .bind(summary.voids_total)
                    .bind(kept_at)
                    .fetch_one(&mut *tx)
                    .await;
                match updated {
                    Ok(date) => {
                        // A date's reconciliation reads its neighbours' files too.
                        for day in [date.pred_opt(), Some(date), date.succ_opt()]
                            .into_iter()
                            .flatten()
                        {
                            sqlx::query(ledger::date_status::TOUCH)
                                .bind(day)
                                .bind(Utc::now())
                                .bind("operator file")
                                .execute(&mut *tx)
                                .await?;
                        }
                        // Its event commits with the file, or neither does.
                        outbox::write($conn(&mut *tx), std::slice::from_ref(event)).await?;
                        tx.commit().await?;
                        Ok(Staged::Accepted { file_id })
                    }
                    // Staged concurrently by another process: theirs stands.
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        tx.rollback().await?;
                        Ok(Staged::Duplicate)
                    }
                    Err(e) => Err(e),
                }
            }};
        }
        match self {
            StageTx::Postgres(tx) => finish!(tx, Conn::Postgres),
            StageTx::Sqlite(tx) => finish!(tx, Conn::Sqlite),
        }
    }

    /// Drops everything staged for the file.
    pub async fn abandon(self) -> Result<(), sqlx::Error> {
        match self {
            StageTx::Postgres(tx) => tx.rollback().await,
            StageTx::Sqlite(tx) => tx.rollback().await,
        }
    }
}

/// Records a rejected file (no records), kept at `kept_at`, and bumps its date's input
/// counter and writes its event in the same transaction (the date's page lists its
/// rejected files). The same rejected bytes again change nothing.
#[allow(clippy::too_many_arguments)]
pub async fn record_rejection(
    db: Database<'_>,
    key: &str,
    kept_at: &str,
    name: &FileName,
    sha256: &str,
    errors: usize,
    now: DateTime<Utc>,
    event: &NewEvent,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO operator_files (object_key, operator_id, business_date, seq, \
        sha256, status, error_count, received_at, stored_key) \
        VALUES ($1, $2, $3, $4, $5, 'rejected', $6, $7, $8) ON CONFLICT (sha256) DO NOTHING";
    ledger::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let added = sqlx::query(SQL)
            .bind(key)
            .bind(name.operator_id.as_str())
            .bind(name.business_date.naive())
            .bind(name.seq as i32)
            .bind(sha256)
            .bind(errors as i32)
            .bind(now)
            .bind(kept_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if added > 0 {
            sqlx::query(ledger::date_status::TOUCH)
                .bind(name.business_date.naive())
                .bind(now)
                .bind("rejected operator file")
                .execute(&mut *tx)
                .await?;
            write_on(Conn::from(&mut *tx), event).await?;
        }
        tx.commit().await
    })
}

/// Writes `event` on the open transaction, whichever backend it is on.
async fn write_on(conn: Conn<'_>, event: &NewEvent) -> Result<(), sqlx::Error> {
    outbox::write(conn, std::slice::from_ref(event)).await
}

/// Writes an event that goes with no change of the database (a file refused before it was
/// recorded: its name says nothing, or its operator is unknown), in its own transaction.
pub async fn write_event(db: Database<'_>, event: &NewEvent) -> Result<(), sqlx::Error> {
    ledger::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        write_on(Conn::from(&mut *tx), event).await?;
        tx.commit().await
    })
}

/// The file these bytes were staged as (accepted or rejected) before, if any.
pub async fn known_sha(db: Database<'_>, sha256: &str) -> Result<Option<EarlierFile>, sqlx::Error> {
    let sql = format!(
        "SELECT object_key, {KEPT_AT}, status, sha256 FROM operator_files WHERE sha256 = $1"
    );
    let row: Option<(String, String, String, String)> = ledger::on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(sha256).fetch_optional(pool).await?
    });
    Ok(
        row.map(|(object_key, kept_at, status, sha256)| EarlierFile {
            object_key,
            kept_at,
            status,
            sha256,
            next_seq: 0,
        }),
    )
}

/// The file in force for an operator and date: the accepted one with the highest sequence
/// (a later sequence supersedes; earlier ones are kept).
pub async fn latest_accepted_file(
    db: Database<'_>,
    operator_id: &str,
    business_date: ledger::BusinessDate,
) -> Result<Option<(i64, i32)>, sqlx::Error> {
    const SQL: &str = "SELECT id, seq FROM operator_files WHERE operator_id = $1 \
        AND business_date = $2 AND status = 'accepted' ORDER BY seq DESC, id DESC LIMIT 1";
    ledger::on_pool!(db, pool => {
        sqlx::query_as(SQL)
            .bind(operator_id)
            .bind(business_date.naive())
            .fetch_optional(pool)
            .await
    })
}

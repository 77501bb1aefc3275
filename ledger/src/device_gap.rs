//! Lost taps: a field validator numbers its taps, so a hole in a device's sequence is a
//! tap we never received. Ingest reports them and the settlement reports list them.

use serde::Serialize;

use crate::Database;

/// Missing device sequence numbers (lost taps) revealed by the taps of a business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceGap {
    pub device_id: String,
    pub from_seq: i64,
    pub to_seq: i64,
}

/// The gaps whose later neighbour was tapped on `date`. Derived from the validations
/// themselves, so taps arriving out of order close a gap instead of leaving a stale one.
pub async fn device_gaps(
    db: Database<'_>,
    date: crate::BusinessDate,
) -> Result<Vec<DeviceGap>, sqlx::Error> {
    // Sequences start at 1: a device's first tap with a higher number reveals the taps
    // before it as lost too (LAG's default of 0).
    const SQL: &str = "SELECT device_id, prev_seq + 1, device_seq - 1 FROM ( \
          SELECT device_id, device_seq, business_date, \
                 LAG(device_seq, 1, CAST(0 AS BIGINT)) OVER (PARTITION BY device_id ORDER BY device_seq) AS prev_seq \
            FROM validations \
           WHERE device_id IN (SELECT DISTINCT device_id FROM validations WHERE business_date = $1) \
        ) w WHERE device_seq > prev_seq + 1 AND business_date = $1 ORDER BY device_id, device_seq";
    let rows: Vec<(String, i64, i64)> = crate::on_pool!(db, pool => {
        sqlx::query_as(SQL)
            .bind(date.naive())
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(device_id, from_seq, to_seq)| DeviceGap {
            device_id,
            from_seq,
            to_seq,
        })
        .collect())
}

//! What a report is made from, read from the database for one business date: the operators
//! registry, the ledger's sales per operator, the current reconciliation run, fares per
//! transport operator, lost taps, the operator files the reconciliation used, the exception
//! cases open at the end of the date, the adjustments and write-offs posted on it, and the
//! action list's state and the taps that ignored it.
//!
//! The ledger is aggregated in the database (one GROUP BY over the date's sales), so a city's
//! millions of sales never cross the wire one by one.

use std::collections::BTreeMap;

use ledger::device_gap::{DeviceGap, device_gaps};
use ledger::hotlist_violation::DeviceViolations;
use ledger::{BusinessDate, Currency, Ledger, Operator};
use reconcile::store::CurrentRun;
use serde::Serialize;

use crate::ReportError;

/// The ledger's sales of one operator on the date. A voided sale counts in both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperatorSales {
    pub sales_count: i64,
    pub sales_amount: i64,
    pub voids_count: i64,
    pub voids_amount: i64,
}

impl OperatorSales {
    pub fn net(&self) -> i64 {
        self.sales_amount - self.voids_amount
    }
}

/// Fare revenue one transport operator earned on the date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fares {
    pub validations_count: i64,
    pub validations_amount: i64,
    pub online_payments_count: i64,
    pub online_payments_amount: i64,
}

impl Fares {
    pub fn revenue(&self) -> i64 {
        self.validations_amount + self.online_payments_amount
    }
}

/// An operator file the reconciliation used, as the manifest fingerprints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputFile {
    /// Where the object is kept now (under `processed/`).
    pub object_key: String,
    /// Where it arrived (under `incoming/`).
    pub received_as: String,
    pub operator_id: String,
    pub business_date: String,
    pub seq: i32,
    pub sha256: String,
    pub records: i64,
}

/// An operator file of the date that was rejected, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFile {
    pub operator_id: String,
    pub received_as: String,
    /// Where it is kept, with its `.errors.json` report beside it.
    pub kept_at: String,
    pub error_count: i32,
}

/// A card that the date's validations left below zero (a tap is honoured at the gate even
/// when the card cannot pay), with its balance at the end of the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NegativeCard {
    pub card_id: String,
    pub balance: i64,
    pub validations: i64,
}

/// An adjustment or a write-off posted on the date, with the case it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub transaction_id: i64,
    /// `adjustment` or `writeoff`, as the journal names the kind.
    pub kind: &'static str,
    /// `exception:{case}:{decision}` (with `:reversal` when a reopening took one back).
    pub document: String,
    pub operator_id: String,
    /// What it added to what the operator owes (negative: it owes less). The receivable's
    /// posting with its sign turned: postings are credit-positive and a debt is a debit.
    pub amount: i64,
    /// Who decided it (for a maker-checker decision, the approver).
    pub actor: String,
    pub posted_at: chrono::DateTime<chrono::Utc>,
    /// The case it decided; `None` only if the document names no case we hold.
    pub case: Option<exceptions::ExceptionCase>,
}

/// Everything one report is made from.
pub struct ReportInputs {
    pub date: BusinessDate,
    pub currency: Currency,
    pub holidays: Vec<BusinessDate>,
    pub operators: Vec<Operator>,
    /// By operator id; an operator without sales on the date is absent.
    pub sales: BTreeMap<String, OperatorSales>,
    pub reconciliation: CurrentRun,
    /// By transport operator id.
    pub fares: BTreeMap<String, Fares>,
    pub gaps: Vec<DeviceGap>,
    pub files: Vec<InputFile>,
    pub rejected_files: Vec<RejectedFile>,
    /// Sorted by card id.
    pub negative_cards: Vec<NegativeCard>,
    /// Cases open at the end of the date, oldest first (`exceptions::open_at_end_of`).
    pub open_cases: Vec<exceptions::OpenCase>,
    /// By operator, then transaction.
    pub adjustments: Vec<Adjustment>,
    /// By device id.
    pub hotlist_violations: Vec<DeviceViolations>,
    /// The action list as the field could have it at the end of the date.
    pub hotlist: Option<HotlistState>,
}

/// The newest action list published by the end of the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotlistState {
    pub version: i64,
    pub published_at: chrono::DateTime<chrono::Utc>,
    /// Blocked cards on it.
    pub cards: i64,
}

const HOTLIST_SQL: &str = "SELECT version, published_at, cards FROM hotlist_versions \
     WHERE published_at < $1 ORDER BY version DESC LIMIT 1";

// CAST(SUM …): PostgreSQL sums bigints into numeric.
const SALES_SQL: &str = "SELECT operator_id, COUNT(*), CAST(SUM(amount) AS BIGINT), \
    CAST(SUM(CASE WHEN voided_at IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
    CAST(SUM(CASE WHEN voided_at IS NULL THEN 0 ELSE amount END) AS BIGINT) \
    FROM sales WHERE business_date = $1 GROUP BY operator_id";
const VALIDATIONS_SQL: &str = "SELECT transport_operator_id, COUNT(*), CAST(SUM(fare) AS BIGINT) \
    FROM validations WHERE business_date = $1 GROUP BY transport_operator_id";
const PAYMENTS_SQL: &str = "SELECT transport_operator_id, COUNT(*), CAST(SUM(amount) AS BIGINT) \
    FROM payments WHERE business_date = $1 GROUP BY transport_operator_id";
/// The file in force per operator for the date and its neighbours, as reconciliation reads them.
const FILES_SQL: &str = "SELECT COALESCE(f.stored_key, 'processed/' || substr(f.object_key, 10)), f.object_key, f.operator_id, f.business_date, f.seq, f.sha256, \
    f.record_count FROM operator_files f \
    WHERE f.status = 'accepted' AND f.business_date BETWEEN $1 AND $2 \
      AND f.seq = (SELECT MAX(g.seq) FROM operator_files g WHERE g.operator_id = f.operator_id \
                   AND g.business_date = f.business_date AND g.status = 'accepted') \
    ORDER BY f.business_date, f.operator_id";

const REJECTED_SQL: &str = "SELECT operator_id, object_key, \
    COALESCE(stored_key, 'rejected/' || substr(object_key, 10)), error_count FROM operator_files \
    WHERE status = 'rejected' AND business_date = $1 ORDER BY operator_id, object_key, id";
/// Flagged cards' balances at the end of the date, from the dated rows that move a card:
/// sales, voids, online payments and validations. Only flagged cards can be below zero.
/// Every subquery is driven by its card (an equality on `card_id`): counting the date's
/// validations with `business_date = $1` instead made SQLite walk the date's index for
/// each card, minutes for a demo day.
const NEGATIVE_CARDS_SQL: &str = "SELECT c.card_id, CAST(\
      COALESCE((SELECT SUM(amount) FROM sales s WHERE s.card_id = c.card_id \
                AND s.business_date <= $1), 0) \
    - COALESCE((SELECT SUM(amount) FROM sales s WHERE s.card_id = c.card_id \
                AND s.void_business_date <= $1), 0) \
    - COALESCE((SELECT SUM(amount) FROM payments p WHERE p.card_id = c.card_id \
                AND p.business_date <= $1), 0) \
    - COALESCE((SELECT SUM(fare) FROM validations v WHERE v.card_id = c.card_id \
                AND v.business_date <= $1), 0) AS BIGINT), \
    (SELECT CAST(COALESCE(SUM(CASE WHEN v.business_date = $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM validations v WHERE v.card_id = c.card_id AND v.business_date <= $1) \
    FROM (SELECT substr(id, 6) AS card_id FROM accounts WHERE flagged = TRUE AND id LIKE 'card:%') c \
    ORDER BY c.card_id";

type Sums = Vec<(String, i64, i64)>;
type SalesRow = (String, i64, i64, i64, i64);
type FileRow = (String, String, String, chrono::NaiveDate, i32, String, i64);

/// Reads the inputs of `date`. Fails with `NotReconciled` when the date has no current
/// reconciliation run: a report without one would show no exceptions it should.
pub async fn load(
    ledger: &dyn Ledger,
    date: BusinessDate,
    currency: Currency,
    holidays: Vec<BusinessDate>,
) -> Result<ReportInputs, ReportError> {
    let db = ledger.database();
    let reconciliation = reconcile::store::current_run(db, date)
        .await?
        .ok_or(ReportError::NotReconciled(date))?;
    let d = date.naive();
    let calendar = ledger.settings().calendar;
    let end = calendar.opens_at(date.succ());
    // The reads are independent of each other: sent six at a time, on connections of their
    // own, so the database works on them side by side.
    macro_rules! read {
        ($e:expr) => {
            async { Ok::<_, ReportError>($e.await?) }
        };
    }
    #[allow(clippy::type_complexity)]
    let (sales, validations, payments, files, rejected, negative): (
        Vec<SalesRow>,
        Sums,
        Sums,
        Vec<FileRow>,
        Vec<(String, String, String, i32)>,
        Vec<(String, i64, i64)>,
    ) = ledger::on_pool!(db, pool => futures::try_join!(
        read!(sqlx::query_as(SALES_SQL).bind(d).fetch_all(pool)),
        read!(sqlx::query_as(VALIDATIONS_SQL).bind(d).fetch_all(pool)),
        read!(sqlx::query_as(PAYMENTS_SQL).bind(d).fetch_all(pool)),
        read!(sqlx::query_as(FILES_SQL)
            .bind(date.pred().naive())
            .bind(date.succ().naive())
            .fetch_all(pool)),
        read!(sqlx::query_as(REJECTED_SQL).bind(d).fetch_all(pool)),
        read!(sqlx::query_as(NEGATIVE_CARDS_SQL).bind(d).fetch_all(pool)),
    )?);
    let hotlist = async {
        let hotlist: Option<(i64, chrono::DateTime<chrono::Utc>, i64)> = ledger::on_pool!(db, pool => {
            sqlx::query_as(HOTLIST_SQL).bind(end).fetch_optional(pool).await?
        });
        Ok::<_, ReportError>(hotlist)
    };
    let (operators, open_cases, hotlist, hotlist_violations, adjustments, gaps) = futures::try_join!(
        // A statement uses the terms in force on its own date, whatever changed since.
        read!(ledger.operators_on(date)),
        read!(exceptions::open_at_end_of(db, &calendar, date)),
        hotlist,
        read!(ledger::hotlist_violation::violations(
            db,
            date,
            ledger.settings().hotlist_grace
        )),
        adjustments(ledger, date),
        read!(device_gaps(db, date)),
    )?;
    let sales = sales
        .into_iter()
        .map(
            |(op, sales_count, sales_amount, voids_count, voids_amount)| {
                let s = OperatorSales {
                    sales_count,
                    sales_amount,
                    voids_count,
                    voids_amount,
                };
                (op, s)
            },
        )
        .collect();
    let mut fares: BTreeMap<String, Fares> = BTreeMap::new();
    for (op, count, amount) in validations {
        let f = fares.entry(op).or_default();
        f.validations_count = count;
        f.validations_amount = amount;
    }
    for (op, count, amount) in payments {
        let f = fares.entry(op).or_default();
        f.online_payments_count = count;
        f.online_payments_amount = amount;
    }
    let files = files
        .into_iter()
        .map(
            |(object_key, received_as, operator_id, day, seq, sha256, records)| InputFile {
                object_key,
                received_as,
                operator_id,
                business_date: day.format("%Y-%m-%d").to_string(),
                seq,
                sha256,
                records,
            },
        )
        .collect();
    let rejected_files = rejected
        .into_iter()
        .map(
            |(operator_id, received_as, kept_at, error_count)| RejectedFile {
                operator_id,
                received_as,
                kept_at,
                error_count,
            },
        )
        .collect();
    let negative_cards = negative
        .into_iter()
        .filter(|(_, balance, validations)| *balance < 0 && *validations > 0)
        .map(|(card_id, balance, validations)| NegativeCard {
            card_id,
            balance,
            validations,
        })
        .collect();
    Ok(ReportInputs {
        open_cases,
        adjustments,
        date,
        currency,
        holidays,
        operators,
        rejected_files,
        negative_cards,
        sales,
        reconciliation,
        fares,
        gaps,
        files,
        hotlist_violations,
        hotlist: hotlist.map(|(version, published_at, cards)| HotlistState {
            version,
            published_at,
            cards,
        }),
    })
}

/// The corrections posted on `date`, each with the case its document names.
async fn adjustments(
    ledger: &dyn Ledger,
    date: BusinessDate,
) -> Result<Vec<Adjustment>, ReportError> {
    let posted = ledger.corrections_on(date).await?;
    let case_ids: Vec<Option<exceptions::CaseId>> = posted
        .iter()
        .map(|c| exceptions::case_of_document(&c.document))
        .collect();
    let ids: Vec<exceptions::CaseId> = case_ids.iter().flatten().copied().collect();
    let cases: BTreeMap<exceptions::CaseId, exceptions::ExceptionCase> =
        exceptions::cases_by_id(ledger.database(), &ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
    Ok(posted
        .into_iter()
        .zip(case_ids)
        .map(|(c, id)| Adjustment {
            transaction_id: c.transaction_id,
            kind: c.kind.as_str(),
            case: id.and_then(|id| cases.get(&id).cloned()),
            document: c.document,
            operator_id: c.operator_id.to_string(),
            amount: -c.receivable,
            actor: c.actor,
            posted_at: c.created_at,
        })
        .collect())
}

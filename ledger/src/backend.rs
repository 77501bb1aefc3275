//! The `Ledger` trait every backend implements, and `connect`, which picks the backend from
//! the database URL: `postgres://…` for production, `sqlite://…` for the embedded default.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::business_date::{BusinessCalendar, BusinessDate};
use crate::card_status;
use crate::correction::{Conn, CorrectionReceipt, NewCorrection, PostedCorrection};
use crate::error::{InvalidInput, LedgerError};
use crate::idempotency::{self, KeyClaim};
use crate::ids::{CardId, OperatorId};
use crate::journal::{
    CardBalance, CardEntry, InvariantReport, NewPayment, NewSale, Payment, PaymentReceipt, Sale,
    SaleId, SaleReceipt, Validation, ValidationBatchOutcome, VoidReceipt,
};
use crate::money::{Currency, Money};
use crate::operator::{Operator, OperatorPatch, TermsVersion};
use crate::reads;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// Direct access to the database under a ledger, for the crates that keep their own tables
/// beside it (ingest's staging tables, reconciliation results). The ledger's own tables
/// are written only through the `Ledger` trait.
#[derive(Clone, Copy)]
pub enum Database<'a> {
    Postgres(&'a sqlx::PgPool),
    Sqlite(&'a sqlx::SqlitePool),
}

/// Runs the same code on whichever pool a [`Database`] holds. The body is compiled once per
/// backend, so a query written with `$N` placeholders serves both (sqlx binds `$N` on
/// SQLite too).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Postgres($pool) => $body,
            $crate::Database::Sqlite($pool) => $body,
        }
    };
}

/// What a ledger needs to know besides where its data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSettings {
    pub calendar: BusinessCalendar,
    pub currency: Currency,
    /// Connections in the pool (PostgreSQL); SQLite has one writer whatever this says.
    pub max_connections: u32,
    /// How far below zero (minor units) validations may take a card before the ledger
    /// blocks it NEGATIVE_BALANCE.
    pub negative_limit: i64,
    /// How long a replaced card's block has to reach the field before its balance moves.
    pub replacement_delay: chrono::Duration,
    /// How long a block has to reach the field before a tap on the card is a hotlist
    /// violation.
    pub hotlist_grace: chrono::Duration,
}

impl LedgerSettings {
    /// The ledger's part of the configuration, checked: time zone and day close, the
    /// currency, the pool size.
    pub fn from_settings(settings: &settings::Settings) -> Result<LedgerSettings, InvalidInput> {
        let currency = Currency::parse(&settings.money.currency)?;
        let negative_limit = crate::money::parse_minor(
            "negative_limit",
            &settings.hotlist.negative_limit,
            currency.exponent(),
        )?;
        Ok(LedgerSettings {
            calendar: BusinessCalendar::new(
                settings.calendar.timezone.name(),
                &settings.calendar.day_close,
            )?,
            currency,
            max_connections: settings.database.max_connections,
            negative_limit,
            replacement_delay: chrono::Duration::from_std(settings.hotlist.replacement_delay)
                .map_err(|_| InvalidInput::new("replacement_delay", "is too long"))?,
            hotlist_grace: chrono::Duration::from_std(settings.hotlist.grace)
                .map_err(|_| InvalidInput::new("hotlist_grace", "is too long"))?,
        })
    }
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            calendar: BusinessCalendar::default(),
            currency: Currency::COP,
            max_connections: 16,
            negative_limit: 0,
            replacement_delay: chrono::Duration::hours(24),
            hotlist_grace: chrono::Duration::minutes(15),
        }
    }
}

/// The double-entry ledger. Both backends implement the same rules; the conformance suite in
/// `tests/` runs against each.
#[async_trait]
pub trait Ledger: Send + Sync {
    fn backend(&self) -> Backend;
    fn settings(&self) -> &LedgerSettings;
    /// The database under the ledger, for crates with tables of their own.
    fn database(&self) -> Database<'_>;

    /// Applies this backend's pending migrations. Safe to run from several processes.
    async fn migrate(&self) -> Result<(), LedgerError>;
    /// Where idempotency keys are kept: the ledger's database unless a backend has a
    /// cheaper path to it (PostgreSQL's pool without synchronous commit).
    fn idempotency_database(&self) -> Database<'_> {
        self.database()
    }

    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), LedgerError> {
        on_pool!(self.database(), pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    async fn add_operator(&self, op: &Operator) -> Result<(), LedgerError> {
        let added = on_pool!(self.database(), pool => {
            sqlx::query(
                "INSERT INTO operators (id, name, commission_rate, tax_rate, void_window_secs, \
                 settlement_lag_days, active) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(op.id.as_str())
            .bind(op.name.as_str())
            .bind(op.commission_rate.to_string())
            .bind(op.tax_rate.to_string())
            .bind(op.void_window.duration().as_secs() as i64)
            .bind(i32::from(op.settlement_lag_days))
            .bind(op.active)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if added == 0 {
            return Err(LedgerError::DuplicateOperator(op.id.to_string()));
        }
        Ok(())
    }

    /// Changes the fields the patch names and returns the operator as it is on the date
    /// the change takes effect. A name or active flag changes the operator's row at once;
    /// changed terms are a new version in force from `patch.effective_from` (default the
    /// next business date), so a statement of an earlier date keeps the terms it had. Each
    /// is one statement, so two changes at once cannot lose either.
    async fn update_operator(
        &self,
        id: &OperatorId,
        patch: &OperatorPatch,
    ) -> Result<Operator, LedgerError> {
        let today = self.settings().calendar.business_date(Utc::now());
        let effective = patch.effective_from.unwrap_or_else(|| today.succ());
        if patch.changes_terms() && effective <= today {
            return Err(LedgerError::TermsInThePast {
                operator: id.to_string(),
                effective_from: effective,
                today,
            });
        }
        let row_sql = "UPDATE operators SET name = COALESCE($2, name), \
             active = COALESCE($3, active), updated_at = $4 WHERE id = $1";
        // A version sets only the terms the patch names; a second change for the same
        // date merges into it.
        let terms_sql = "INSERT INTO operator_terms (operator_id, effective_from, commission_rate, \
               tax_rate, void_window_secs, settlement_lag_days, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (operator_id, effective_from) DO UPDATE SET \
               commission_rate = COALESCE(excluded.commission_rate, operator_terms.commission_rate), \
               tax_rate = COALESCE(excluded.tax_rate, operator_terms.tax_rate), \
               void_window_secs = COALESCE(excluded.void_window_secs, operator_terms.void_window_secs), \
               settlement_lag_days = COALESCE(excluded.settlement_lag_days, \
                 operator_terms.settlement_lag_days), \
               recorded_at = excluded.recorded_at";
        let found = on_pool!(self.database(), pool => {
            let mut tx = pool.begin().await?;
            let mut found = sqlx::query(row_sql)
                .bind(id.as_str())
                .bind(patch.name.as_ref().map(|n| n.as_str().to_string()))
                .bind(patch.active)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if found && patch.changes_terms() {
                found = sqlx::query(terms_sql)
                    .bind(id.as_str())
                    .bind(effective.naive())
                    .bind(patch.commission_rate.map(|r| r.to_string()))
                    .bind(patch.tax_rate.map(|r| r.to_string()))
                    .bind(patch.void_window.map(|w| w.duration().as_secs() as i64))
                    .bind(patch.settlement_lag_days.map(i32::from))
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
            }
            tx.commit().await?;
            found
        });
        if !found {
            return Err(LedgerError::UnknownOperator(id.to_string()));
        }
        let on = if patch.changes_terms() {
            effective
        } else {
            today
        };
        self.operator_on(id, on)
            .await?
            .ok_or_else(|| LedgerError::UnknownOperator(id.to_string()))
    }

    /// The operator with the terms in force today.
    async fn operator(&self, id: &OperatorId) -> Result<Option<Operator>, LedgerError> {
        let today = self.settings().calendar.business_date(Utc::now());
        reads::operator(self.database(), id, today).await
    }

    /// The operator with the terms in force on `date`.
    async fn operator_on(
        &self,
        id: &OperatorId,
        date: BusinessDate,
    ) -> Result<Option<Operator>, LedgerError> {
        reads::operator(self.database(), id, date).await
    }

    /// Every operator with the terms in force today.
    async fn operators(&self) -> Result<Vec<Operator>, LedgerError> {
        let today = self.settings().calendar.business_date(Utc::now());
        reads::operators(self.database(), today).await
    }

    /// Every operator with the terms in force on `date` (what a statement of `date` uses).
    async fn operators_on(&self, date: BusinessDate) -> Result<Vec<Operator>, LedgerError> {
        reads::operators(self.database(), date).await
    }

    /// Every version of an operator's terms, oldest first.
    async fn terms_versions(&self, id: &OperatorId) -> Result<Vec<TermsVersion>, LedgerError> {
        reads::terms_versions(self.database(), id).await
    }

    /// Records a top-up: debit the operator's receivable, credit the card. Idempotent by
    /// (operator, operator_ref); the same ref with other content is a `Conflict`.
    async fn record_sale(&self, sale: &NewSale) -> Result<SaleReceipt, LedgerError>;
    /// Records many sales at once (a bulk load: fixtures, the demo, a migration), each as
    /// its own journal transaction as `record_sale` would. A key already recorded is left
    /// as it is and reported as `None` (a recorded key with other content is a `Conflict`,
    /// and the sales before it may be recorded: re-running a fixed import is safe);
    /// otherwise the new sale's id, in input order. The default runs `record_sale` a few at
    /// a time; SQLite overrides it with multi-row writes.
    async fn import_sales(&self, sales: &[NewSale]) -> Result<Vec<Option<SaleId>>, LedgerError> {
        let mut ids = Vec::with_capacity(sales.len());
        for chunk in sales.chunks(16) {
            let mut pending = Vec::with_capacity(chunk.len());
            for sale in chunk {
                pending.push(self.record_sale(sale));
            }
            for receipt in futures::future::join_all(pending).await {
                let receipt: SaleReceipt = receipt?;
                ids.push((!receipt.replayed).then_some(receipt.sale.id));
            }
        }
        Ok(ids)
    }
    /// Voids many sales at once (a bulk load, like `import_sales`), each as `void_sale`
    /// would: its own journal transaction, its window and the card's balance checked. A
    /// sale already voided, or named twice, is voided once; any other refusal fails the
    /// whole call with nothing changed. Returns how many sales it voided.
    async fn import_voids(
        &self,
        voids: &[(OperatorId, SaleId, DateTime<Utc>)],
    ) -> Result<u64, LedgerError>;

    /// Voids the operator's own sale inside its void window, once. The card must still hold
    /// the amount: a top-up that was already spent cannot be voided.
    async fn void_sale(
        &self,
        operator: &OperatorId,
        sale_id: SaleId,
        at: DateTime<Utc>,
    ) -> Result<VoidReceipt, LedgerError>;
    /// Pays a fare online: debit the card, credit the transport operator's fares. Never takes
    /// a card below zero; idempotent by (operator, payment_ref).
    async fn pay_fare(&self, payment: &NewPayment) -> Result<PaymentReceipt, LedgerError>;
    /// Posts field validations as one journal transaction: per card one debit of its fares in
    /// the batch, per transport operator one credit. Idempotent by (device_id, device_seq).
    async fn post_validations(
        &self,
        batch: &[Validation],
    ) -> Result<ValidationBatchOutcome, LedgerError>;

    /// The card's balance; zero for a card never seen.
    async fn card_balance(&self, card: &CardId) -> Result<CardBalance, LedgerError> {
        reads::card_balance(self.database(), self.settings().currency, card).await
    }
    /// The card's movements, oldest first.
    async fn card_entries(&self, card: &CardId) -> Result<Vec<CardEntry>, LedgerError> {
        reads::card_entries(self.database(), self.settings().currency, card).await
    }

    /// A card's status (ACTIVE or blocked and why), balance and replacement.
    async fn card_status(&self, card: &CardId) -> Result<card_status::CardStatus, LedgerError> {
        card_status::status(self.database(), self.settings(), card).await
    }
    /// Every change of a card's status, oldest first.
    async fn card_history(
        &self,
        card: &CardId,
    ) -> Result<Vec<card_status::StatusChange>, LedgerError> {
        card_status::history(self.database(), card).await
    }
    /// Blocked cards in card order (for one reason, or all), a page after `after`.
    async fn blocked_cards(
        &self,
        reason: Option<card_status::BlockReason>,
        after: Option<&CardId>,
        limit: i64,
    ) -> Result<Vec<card_status::BlockedCard>, LedgerError> {
        card_status::blocked(self.database(), reason, after, limit).await
    }
    /// Blocks a card for a rider's report or the back office's decision.
    async fn block_card(
        &self,
        block: &card_status::NewBlock,
    ) -> Result<card_status::StatusOutcome, LedgerError> {
        card_status::block(self.database(), self.settings(), block).await
    }
    /// Lifts a card's block (the back office).
    async fn unblock_card(
        &self,
        unblock: &card_status::NewUnblock,
    ) -> Result<card_status::StatusOutcome, LedgerError> {
        card_status::unblock(self.database(), self.settings(), unblock).await
    }
    /// Replaces a card: the old one blocked REPLACED now, its balance moved later.
    async fn replace_card(
        &self,
        replacement: &card_status::NewReplacement,
    ) -> Result<card_status::Replacement, LedgerError> {
        card_status::replace(self.database(), self.settings(), replacement).await
    }
    /// Moves the balances of the replacements due at `now`, each once.
    async fn transfer_replacements(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<card_status::Replacement>, LedgerError> {
        card_status::transfer_due(self.database(), self.settings(), now).await
    }
    /// One of the operator's sales; `None` also when the sale belongs to another operator.
    async fn sale(&self, operator: &OperatorId, id: SaleId) -> Result<Option<Sale>, LedgerError> {
        reads::sale(self.database(), operator, id).await
    }
    /// The operator's sales of a business date and the sales voided on it, by id.
    async fn operator_sales(
        &self,
        operator: &OperatorId,
        date: BusinessDate,
    ) -> Result<Vec<Sale>, LedgerError> {
        reads::operator_sales(self.database(), operator, date).await
    }
    /// A page of the operator's sales of a business date with an id above `after`.
    async fn operator_sales_page(
        &self,
        operator: &OperatorId,
        date: BusinessDate,
        after: Option<SaleId>,
        limit: u32,
    ) -> Result<Vec<Sale>, LedgerError> {
        reads::operator_sales_page(self.database(), operator, date, after, limit).await
    }

    /// Claims an idempotency key for `request_hash`. An in-flight claim older than
    /// `stale_after` (its holder crashed) is taken over.
    async fn claim_idempotency_key(
        &self,
        operator: &OperatorId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<KeyClaim, LedgerError> {
        let db = self.idempotency_database();
        idempotency::claim(db, operator, key, request_hash, now, stale_after).await
    }
    /// Stores the response of a claimed key, so later requests replay it.
    async fn complete_idempotency_key(
        &self,
        operator: &OperatorId,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), LedgerError> {
        idempotency::complete(self.idempotency_database(), operator, key, status, body).await
    }
    /// Forgets an in-flight claim whose work failed in a way worth retrying.
    async fn release_idempotency_key(
        &self,
        operator: &OperatorId,
        key: &str,
    ) -> Result<(), LedgerError> {
        idempotency::release(self.idempotency_database(), operator, key).await
    }
    /// Deletes keys first used before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, LedgerError> {
        idempotency::purge(self.idempotency_database(), before).await
    }

    /// Posts a correction finance decided (an adjustment or a write-off), once per document:
    /// a document posted before is found and returned, nothing posted again.
    async fn post_correction(
        &self,
        correction: &NewCorrection,
    ) -> Result<CorrectionReceipt, LedgerError> {
        crate::correction::post(self.database(), &self.settings().calendar, correction).await
    }

    /// Posts a correction in the caller's write transaction, so that it commits with the
    /// decision that caused it; once per document, like `post_correction`.
    async fn post_correction_in(
        &self,
        conn: Conn<'_>,
        correction: &NewCorrection,
    ) -> Result<CorrectionReceipt, LedgerError> {
        crate::correction::post_in(conn, &self.settings().calendar, correction).await
    }

    /// The corrections posted in `date`.
    async fn corrections_on(
        &self,
        date: BusinessDate,
    ) -> Result<Vec<PostedCorrection>, LedgerError> {
        crate::correction::on_date(self.database(), date).await
    }

    /// Publishes the settlement lines of `date`'s final report version `version`: keeps them
    /// for the operators' API and posts each operator's commission and tax against its
    /// receivable, in the business date of `at`, once (a later version posts only what its
    /// figures changed). See `settlement_line`.
    async fn publish_settlement_lines(
        &self,
        date: BusinessDate,
        version: i32,
        lines: &[crate::settlement_line::PublishedLine],
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let calendar = self.settings().calendar;
        crate::settlement_line::replace_date(self.database(), &calendar, date, version, lines, at)
            .await
    }

    /// Posts the bank entries whose documents were not posted before, in one database
    /// transaction; returns how many it posted. See `deposit`.
    async fn post_deposits(
        &self,
        deposits: &[crate::deposit::NewDeposit],
    ) -> Result<u64, LedgerError> {
        crate::deposit::post_batch(self.database(), self.settings(), deposits).await
    }

    /// Gives an unidentified deposit to an operator, once, in the name of a person.
    async fn assign_deposit(
        &self,
        assignment: &crate::deposit::NewAssignment,
    ) -> Result<crate::deposit::AssignmentReceipt, LedgerError> {
        crate::deposit::assign(self.database(), self.settings(), assignment).await
    }

    /// The bank entries' postings and assignments the filter selects, in posting order.
    async fn deposits(
        &self,
        filter: &crate::deposit::DepositFilter,
    ) -> Result<Vec<crate::deposit::PostedDeposit>, LedgerError> {
        crate::deposit::list(self.database(), filter).await
    }

    /// The statement of an operator's receivable over `from..=to`.
    async fn receivable_statement(
        &self,
        operator: &OperatorId,
        from: BusinessDate,
        to: BusinessDate,
    ) -> Result<crate::receivable::ReceivableStatement, LedgerError> {
        crate::receivable::statement(self.database(), operator, from, to).await
    }

    /// Gives the outbox's unsequenced events their positions (see `outbox`); only the
    /// relay holding its job's lock calls this.
    async fn sequence_outbox(&self, limit: i64) -> Result<u64, LedgerError> {
        crate::outbox::sequence(self.database(), limit).await
    }

    /// Up to `limit` sequenced events after `position`, of `types` (all when empty).
    async fn outbox_after(
        &self,
        position: i64,
        limit: i64,
        types: &[crate::outbox::EventType],
    ) -> Result<Vec<crate::outbox::OutboxEvent>, LedgerError> {
        crate::outbox::after(self.database(), position, limit, types).await
    }

    /// How far a relay has had its events acknowledged.
    async fn relay_position(&self, relay: &str) -> Result<i64, LedgerError> {
        crate::outbox::relay_position(self.database(), relay).await
    }

    /// Records a relay's acknowledged position (never moving it back).
    async fn advance_relay(&self, relay: &str, position: i64) -> Result<(), LedgerError> {
        crate::outbox::advance_relay(self.database(), relay, position).await
    }

    /// When the oldest event a relay has not had acknowledged was written.
    async fn outbox_oldest_pending(
        &self,
        relay: &str,
    ) -> Result<Option<DateTime<Utc>>, LedgerError> {
        crate::outbox::oldest_pending(self.database(), relay).await
    }

    /// Checks every invariant of the journal over the whole database.
    async fn check_invariants(&self) -> Result<InvariantReport, LedgerError> {
        reads::check_invariants(self.database()).await
    }
}

/// Opens the ledger a URL names and applies its migrations.
pub async fn connect(url: &str, settings: LedgerSettings) -> Result<Arc<dyn Ledger>, LedgerError> {
    let ledger: Arc<dyn Ledger> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(crate::postgres::PgLedger::connect(url, settings).await?)
        } else if url.starts_with("sqlite:") {
            Arc::new(crate::sqlite::SqliteLedger::connect(url, settings).await?)
        } else {
            return Err(InvalidInput::new(
                "database_url",
                "must start with postgres:// or sqlite:// (the password, if any, is not shown)",
            )
            .into());
        };
    ledger.migrate().await?;
    Ok(ledger)
}

/// Checks the rules both backends share before anything touches the database.
pub(crate) fn check_currency(settings: &LedgerSettings, amount: &Money) -> Result<(), LedgerError> {
    if amount.currency != settings.currency {
        return Err(LedgerError::WrongCurrency {
            got: amount.currency.to_string(),
            expected: settings.currency.to_string(),
        });
    }
    if amount.minor <= 0 {
        return Err(InvalidInput::new("amount", "must be greater than zero").into());
    }
    Ok(())
}

/// Checks a validation batch's currency and sizes before posting.
pub(crate) fn check_validations(
    settings: &LedgerSettings,
    batch: &[Validation],
) -> Result<(), LedgerError> {
    for v in batch {
        check_currency(settings, &v.fare)?;
        if v.event_id.is_empty() || v.event_id.len() > 64 {
            return Err(InvalidInput::new("event_id", "must be 1 to 64 characters").into());
        }
        if v.device_seq < 0 {
            return Err(InvalidInput::new("device_seq", "must not be negative").into());
        }
        if v.hotlist_version.is_some_and(|n| n < 0) {
            return Err(InvalidInput::new("hotlist_version", "must not be negative").into());
        }
    }
    Ok(())
}

/// Sums a validation batch into one debit per card and one credit per transport operator,
/// sorted by account so concurrent batches lock accounts in the same order.
pub(crate) fn validation_postings<'a>(
    posted: impl Iterator<Item = (&'a str, i64, &'a str)>,
) -> Vec<(String, i64)> {
    let mut sums: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (card, fare, transport) in posted {
        *sums.entry(format!("card:{card}")).or_default() -= fare;
        *sums.entry(format!("fares:{transport}")).or_default() += fare;
    }
    sums.into_iter().collect()
}

/// The answer to a sale that was recorded before: the same sale, or a conflict.
/// The sales of an import chunk that are new, as `record_sale` would decide: a key already
/// recorded with the same content is a replay (skipped), with other content a conflict;
/// of repeats within the import the first counts (`seen` carries them across chunks).
pub(crate) fn new_in_import<'a>(
    chunk: &[(usize, &'a NewSale)],
    recorded: &std::collections::HashMap<(String, String), Sale>,
    seen: &mut std::collections::HashMap<(String, String), &'a NewSale>,
    currency: Currency,
) -> Result<Vec<(usize, &'a NewSale)>, LedgerError> {
    let mut fresh = Vec::with_capacity(chunk.len());
    for (i, s) in chunk {
        let key = (s.operator_id.to_string(), s.operator_ref.to_string());
        if let Some(sale) = recorded.get(&key) {
            replay_sale(sale.clone(), s, Money::zero(currency))?;
        } else if let Some(first) = seen.get(&key) {
            if (&first.card_id, first.amount) != (&s.card_id, s.amount) {
                return Err(LedgerError::Conflict {
                    what: "sale",
                    reference: s.operator_ref.to_string(),
                    detail: "differs from an earlier sale with this ref in the same import".into(),
                });
            }
        } else {
            seen.insert(key, *s);
            fresh.push((*i, *s));
        }
    }
    Ok(fresh)
}

pub(crate) fn replay_sale(
    existing: Sale,
    new: &NewSale,
    card_balance: Money,
) -> Result<SaleReceipt, LedgerError> {
    if !existing.same_request(new) {
        return Err(LedgerError::Conflict {
            what: "sale",
            reference: new.operator_ref.to_string(),
            detail: existing.differences(new),
        });
    }
    Ok(SaleReceipt {
        sale: existing,
        card_balance,
        replayed: true,
    })
}

pub(crate) fn replay_payment(
    existing: Payment,
    new: &NewPayment,
    card_balance: Money,
) -> Result<PaymentReceipt, LedgerError> {
    if !existing.same_request(new) {
        return Err(LedgerError::Conflict {
            what: "payment",
            reference: new.payment_ref.to_string(),
            detail: "card, amount, route or transport operator differ".into(),
        });
    }
    Ok(PaymentReceipt {
        payment: existing,
        card_balance,
        replayed: true,
    })
}

/// The void rules both backends share: not voided yet, and inside the operator's window.
pub(crate) fn check_voidable(
    sale: &Sale,
    window_secs: i64,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    if sale.void.is_some() {
        return Err(LedgerError::AlreadyVoided(sale.id));
    }
    let closed_at = sale.occurred_at + chrono::Duration::seconds(window_secs);
    if at > closed_at {
        return Err(LedgerError::VoidWindowClosed {
            sale_id: sale.id,
            closed_at,
        });
    }
    Ok(())
}

pub(crate) fn parse_cards(cards: Vec<String>) -> Result<Vec<CardId>, LedgerError> {
    cards
        .iter()
        .map(|c| CardId::parse(c).map_err(|e| LedgerError::Corrupt(e.to_string())))
        .collect()
}

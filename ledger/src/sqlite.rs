//! The SQLite backend, the embedded default: one file, no server. SQLite has a single
//! writer, so every write transaction starts with `BEGIN IMMEDIATE`, which takes the write
//! lock up front; concurrent writers (threads or processes) queue on the busy timeout
//! instead of failing half-way.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::backend::{
    Backend, Database, Ledger, LedgerSettings, check_currency, check_validations, check_voidable,
    new_in_import, parse_cards, replay_payment, replay_sale, validation_postings,
};
use crate::card_status::{self, BlockReason};
use crate::correction::Conn;
use crate::error::LedgerError;
use crate::ids::{CardId, OperatorId};
use crate::journal::{
    NewPayment, NewSale, PaymentReceipt, SaleId, SaleReceipt, Validation, ValidationBatchOutcome,
    Void, VoidReceipt, card_account, fares_account, receivable_account,
};
use crate::money::Money;
use crate::outbox::{self, batch_totals};
use crate::rows::{PAYMENT_COLUMNS, SALE_COLUMNS, payment_from_row, sale_from_row, void_window_on};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteLedger {
    pool: SqlitePool,
    settings: LedgerSettings,
}

type Tx = Transaction<'static, Sqlite>;

/// Rows per multi-row statement: 11 parameters a validation stays under SQLite's limit of
/// 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl SqliteLedger {
    pub async fn connect(url: &str, settings: LedgerSettings) -> Result<SqliteLedger, LedgerError> {
        let options = SqliteConnectOptions::from_str(url)?;
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.clamp(1, 8))
            .connect_with(options)
            .await?;
        Ok(SqliteLedger { pool, settings })
    }

    /// A void inside the caller's write transaction (`void_sale` and `import_voids`).
    async fn void_in(
        &self,
        tx: &mut Tx,
        operator: &OperatorId,
        sale_id: SaleId,
        at: DateTime<Utc>,
    ) -> Result<VoidReceipt, LedgerError> {
        let row = sqlx::query(&format!(
            "SELECT {SALE_COLUMNS}, {} AS void_window_secs \
             FROM sales s WHERE id = $1 AND operator_id = $2",
            void_window_on("$3")
        ))
        .bind(sale_id)
        .bind(operator.as_str())
        .bind(self.settings.calendar.business_date(at).naive())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(LedgerError::SaleNotFound(sale_id))?;
        let mut sale = sale_from_row(&row)?;
        check_voidable(&sale, row.try_get("void_window_secs")?, at)?;
        let balance = self.balance_in(tx, &sale.card_id).await?;
        if balance.minor < sale.amount.minor {
            return Err(LedgerError::InsufficientBalance {
                balance,
                needed: sale.amount,
            });
        }
        let tx_id = self.new_transaction(tx, "void").await?;
        let moves = [
            (card_account(&sale.card_id), -sale.amount.minor),
            (receivable_account(&sale.operator_id), sale.amount.minor),
        ];
        let balances = self.post(tx, tx_id, &moves).await?;
        let void_date = self.settings.calendar.business_date(at);
        sqlx::query(
            "UPDATE sales SET voided_at = $2, void_business_date = $3, void_transaction_id = $4 \
             WHERE id = $1",
        )
        .bind(sale_id)
        .bind(at)
        .bind(void_date.naive())
        .bind(tx_id)
        .execute(&mut **tx)
        .await?;
        sale.void = Some(Void {
            voided_at: at,
            business_date: void_date,
            transaction_id: tx_id,
        });
        let after = Money::new(balances[0], self.settings.currency);
        outbox::write(Conn::Sqlite(tx), &[outbox::sale_voided(&sale, after)]).await?;
        Ok(VoidReceipt {
            sale,
            card_balance: Money::new(balances[0], self.settings.currency),
        })
    }

    async fn write(&self) -> Result<Tx, LedgerError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn balance_in(&self, tx: &mut Tx, card: &CardId) -> Result<Money, LedgerError> {
        let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(card_account(card))
            .fetch_optional(&mut **tx)
            .await?;
        Ok(Money::new(balance.unwrap_or(0), self.settings.currency))
    }

    /// Why the card is blocked, if it is.
    async fn blocked_reason(
        &self,
        tx: &mut Tx,
        card: &CardId,
    ) -> Result<Option<String>, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT blocked_reason FROM accounts WHERE id = $1")
                .bind(card_account(card))
                .fetch_optional(&mut **tx)
                .await?
                .flatten(),
        )
    }

    /// Refuses writes for an unknown or inactive operator.
    async fn check_operator(&self, tx: &mut Tx, operator: &OperatorId) -> Result<(), LedgerError> {
        let active: Option<bool> = sqlx::query_scalar("SELECT active FROM operators WHERE id = $1")
            .bind(operator.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        match active {
            None => Err(LedgerError::UnknownOperator(operator.to_string())),
            Some(false) => Err(LedgerError::InactiveOperator(operator.to_string())),
            Some(true) => Ok(()),
        }
    }

    async fn new_transaction(&self, tx: &mut Tx, kind: &str) -> Result<i64, LedgerError> {
        Ok(
            sqlx::query_scalar("INSERT INTO transactions (kind) VALUES ($1) RETURNING id")
                .bind(kind)
                .fetch_one(&mut **tx)
                .await?,
        )
    }

    /// Posts `moves` (account, signed amount) under `tx_id` and applies them to the cached
    /// balances; returns the new balances in the same order. Multi-row statements, because
    /// each statement is a round trip to SQLite's worker thread.
    async fn post(
        &self,
        tx: &mut Tx,
        tx_id: i64,
        moves: &[(String, i64)],
    ) -> Result<Vec<i64>, LedgerError> {
        let mut balances = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(ROWS_PER_STATEMENT) {
            let mut postings =
                QueryBuilder::new("INSERT INTO postings (transaction_id, account_id, amount) ");
            postings.push_values(chunk, |mut row, (account, amount)| {
                row.push_bind(tx_id).push_bind(account).push_bind(amount);
            });
            postings.build().execute(&mut **tx).await?;
            let mut accounts = QueryBuilder::new("INSERT INTO accounts (id, balance) ");
            accounts.push_values(chunk, |mut row, (account, amount)| {
                row.push_bind(account).push_bind(amount);
            });
            accounts.push(
                " ON CONFLICT (id) DO UPDATE SET balance = balance + excluded.balance \
                 RETURNING id, balance",
            );
            let returned: std::collections::HashMap<String, i64> = accounts
                .build_query_as::<(String, i64)>()
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .collect();
            for (account, _) in chunk {
                balances.push(*returned.get(account).ok_or_else(|| {
                    LedgerError::Corrupt(format!("no balance returned for {account}"))
                })?);
            }
        }
        Ok(balances)
    }
}

#[async_trait]
impl Ledger for SqliteLedger {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn settings(&self) -> &LedgerSettings {
        &self.settings
    }

    fn database(&self) -> Database<'_> {
        Database::Sqlite(&self.pool)
    }

    async fn migrate(&self) -> Result<(), LedgerError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn record_sale(&self, sale: &NewSale) -> Result<SaleReceipt, LedgerError> {
        check_currency(&self.settings, &sale.amount)?;
        let business_date = self.settings.calendar.business_date(sale.occurred_at);
        let mut tx = self.write().await?;
        self.check_operator(&mut tx, &sale.operator_id).await?;
        let tx_id = self.new_transaction(&mut tx, "sale").await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO sales (operator_id, operator_ref, card_id, amount, currency, \
               point_of_sale, occurred_at, business_date, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (operator_id, operator_ref) DO NOTHING RETURNING id",
        )
        .bind(sale.operator_id.as_str())
        .bind(sale.operator_ref.as_str())
        .bind(sale.card_id.as_str())
        .bind(sale.amount.minor)
        .bind(sale.amount.currency.code())
        .bind(sale.point_of_sale.as_str())
        .bind(sale.occurred_at)
        .bind(business_date.naive())
        .bind(tx_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            let row = sqlx::query(&format!(
                "SELECT {SALE_COLUMNS} FROM sales WHERE operator_id = $1 AND operator_ref = $2"
            ))
            .bind(sale.operator_id.as_str())
            .bind(sale.operator_ref.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let existing = sale_from_row(&row)?;
            let balance = self.balance_in(&mut tx, &sale.card_id).await?;
            tx.rollback().await?;
            return replay_sale(existing, sale, balance);
        };
        let reason = self.blocked_reason(&mut tx, &sale.card_id).await?;
        card_status::top_up_refusal(&sale.card_id, reason.as_deref())?;
        let moves = [
            (card_account(&sale.card_id), sale.amount.minor),
            (receivable_account(&sale.operator_id), -sale.amount.minor),
        ];
        let balances = self.post(&mut tx, tx_id, &moves).await?;
        let recorded = sale.recorded(id, business_date, tx_id);
        let after = Money::new(balances[0], self.settings.currency);
        outbox::write(
            Conn::Sqlite(&mut tx),
            &[outbox::sale_recorded(&recorded, after)],
        )
        .await?;
        if reason.is_some() {
            card_status::lift_negative_blocks(
                Conn::Sqlite(&mut tx),
                &self.settings,
                &[&sale.card_id],
                &[tx_id],
                sale.occurred_at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(SaleReceipt {
            sale: recorded,
            card_balance: Money::new(balances[0], self.settings.currency),
            replayed: false,
        })
    }

    /// One write transaction, multi-row statements: SQLite has one writer and each
    /// statement is a round trip to its worker thread, so this is what makes a 100,000-sale
    /// day load in seconds. Ids are assigned here, under the write lock.
    async fn import_sales(&self, sales: &[NewSale]) -> Result<Vec<Option<SaleId>>, LedgerError> {
        for s in sales {
            check_currency(&self.settings, &s.amount)?;
        }
        let mut tx = self.write().await?;
        let operators: std::collections::BTreeSet<&OperatorId> =
            sales.iter().map(|s| &s.operator_id).collect();
        for op in operators {
            self.check_operator(&mut tx, op).await?;
        }
        let mut next_tx: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM transactions")
                .fetch_one(&mut *tx)
                .await?;
        let mut next_sale: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM sales")
            .fetch_one(&mut *tx)
            .await?;
        let mut ids = vec![None; sales.len()];
        let mut seen: std::collections::HashMap<(String, String), &NewSale> = Default::default();
        let indexed: Vec<(usize, &NewSale)> = sales.iter().enumerate().collect();
        for chunk in indexed.chunks(ROWS_PER_STATEMENT / 2) {
            let mut existing = QueryBuilder::new(format!(
                "SELECT {SALE_COLUMNS} FROM sales WHERE (operator_id, operator_ref) IN ("
            ));
            let mut list = existing.separated(", ");
            for (_, s) in chunk {
                list.push("(")
                    .push_bind_unseparated(s.operator_id.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(s.operator_ref.as_str())
                    .push_unseparated(")");
            }
            existing.push(")");
            let mut recorded = std::collections::HashMap::new();
            for row in existing.build().fetch_all(&mut *tx).await? {
                let sale = sale_from_row(&row)?;
                recorded.insert(
                    (sale.operator_id.to_string(), sale.operator_ref.to_string()),
                    sale,
                );
            }
            let fresh_keys = new_in_import(chunk, &recorded, &mut seen, self.settings.currency)?;
            let fresh: Vec<(usize, &NewSale, i64, i64)> = fresh_keys
                .into_iter()
                .map(|(i, s)| {
                    let row = (i, s, next_sale, next_tx);
                    next_sale += 1;
                    next_tx += 1;
                    row
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let mut journal = QueryBuilder::new("INSERT INTO transactions (id, kind) ");
            journal.push_values(&fresh, |mut row, (_, _, _, tx_id)| {
                row.push_bind(tx_id).push_bind("sale");
            });
            journal.build().execute(&mut *tx).await?;
            let mut rows = QueryBuilder::new(
                "INSERT INTO sales (id, operator_id, operator_ref, card_id, amount, currency, \
                 point_of_sale, occurred_at, business_date, transaction_id) ",
            );
            rows.push_values(&fresh, |mut row, (_, s, id, tx_id)| {
                row.push_bind(id)
                    .push_bind(s.operator_id.as_str())
                    .push_bind(s.operator_ref.as_str())
                    .push_bind(s.card_id.as_str())
                    .push_bind(s.amount.minor)
                    .push_bind(s.amount.currency.code())
                    .push_bind(s.point_of_sale.as_str())
                    .push_bind(s.occurred_at)
                    .push_bind(self.settings.calendar.business_date(s.occurred_at).naive())
                    .push_bind(tx_id);
            });
            rows.build().execute(&mut *tx).await?;
            let mut postings =
                QueryBuilder::new("INSERT INTO postings (transaction_id, account_id, amount) ");
            let moves: Vec<(i64, String, i64)> = fresh
                .iter()
                .flat_map(|(_, s, _, tx_id)| {
                    [
                        (*tx_id, card_account(&s.card_id), s.amount.minor),
                        (*tx_id, receivable_account(&s.operator_id), -s.amount.minor),
                    ]
                })
                .collect();
            postings.push_values(&moves, |mut row, (tx_id, account, amount)| {
                row.push_bind(tx_id).push_bind(account).push_bind(amount);
            });
            postings.build().execute(&mut *tx).await?;
            let mut by_account: std::collections::BTreeMap<&str, i64> = Default::default();
            for (_, account, amount) in &moves {
                *by_account.entry(account).or_default() += amount;
            }
            let by_account: Vec<(&str, i64)> = by_account.into_iter().collect();
            let mut accounts = QueryBuilder::new("INSERT INTO accounts (id, balance) ");
            accounts.push_values(&by_account, |mut row, (account, amount)| {
                row.push_bind(*account).push_bind(*amount);
            });
            accounts.push(" ON CONFLICT (id) DO UPDATE SET balance = balance + excluded.balance");
            let mut before_q =
                QueryBuilder::new("SELECT id, balance, blocked_reason FROM accounts WHERE id IN (");
            let mut list = before_q.separated(", ");
            for (account, _) in &by_account {
                list.push_bind(*account);
            }
            before_q.push(")");
            let locked: Vec<(String, i64, Option<String>)> =
                before_q.build_query_as().fetch_all(&mut *tx).await?;
            // A card that takes no top-ups refuses the whole load, as `record_sale` does.
            let mut negative = Vec::new();
            for (account, _, reason) in &locked {
                if let Some(card) = account.strip_prefix("card:") {
                    card_status::top_up_refusal(&CardId::parse(card)?, reason.as_deref())?;
                    if reason.is_some() {
                        negative.push(account.clone());
                    }
                }
            }
            let before: std::collections::HashMap<String, i64> =
                locked.into_iter().map(|(a, b, _)| (a, b)).collect();
            accounts.build().execute(&mut *tx).await?;
            if !negative.is_empty() {
                let (cards, tx_ids) = card_status::last_top_ups(
                    fresh.iter().map(|(_, s, _, tx_id)| (&s.card_id, *tx_id)),
                    &negative,
                );
                card_status::lift_negative_blocks(
                    Conn::Sqlite(&mut tx),
                    &self.settings,
                    &cards,
                    &tx_ids,
                    Utc::now(),
                )
                .await?;
            }
            let card_accounts: Vec<String> = fresh
                .iter()
                .map(|(_, s, _, _)| card_account(&s.card_id))
                .collect();
            let after = outbox::running_balances(
                &before,
                card_accounts
                    .iter()
                    .map(String::as_str)
                    .zip(fresh.iter().map(|(_, s, _, _)| s.amount.minor)),
            );
            let events: Vec<outbox::NewEvent> = fresh
                .iter()
                .zip(after)
                .map(|((_, s, id, tx_id), balance)| {
                    let date = self.settings.calendar.business_date(s.occurred_at);
                    outbox::sale_recorded(
                        &s.recorded(*id, date, *tx_id),
                        Money::new(balance, self.settings.currency),
                    )
                })
                .collect();
            outbox::write(Conn::Sqlite(&mut tx), &events).await?;
            for (i, _, id, _) in fresh {
                ids[i] = Some(id);
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn void_sale(
        &self,
        operator: &OperatorId,
        sale_id: SaleId,
        at: DateTime<Utc>,
    ) -> Result<VoidReceipt, LedgerError> {
        let mut tx = self.write().await?;
        let receipt = self.void_in(&mut tx, operator, sale_id, at).await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// All the voids in one write transaction: any refusal but "already voided" rolls back
    /// every one of them.
    async fn import_voids(
        &self,
        voids: &[(OperatorId, SaleId, DateTime<Utc>)],
    ) -> Result<u64, LedgerError> {
        let mut tx = self.write().await?;
        let mut voided = 0;
        for (operator, sale_id, at) in voids {
            match self.void_in(&mut tx, operator, *sale_id, *at).await {
                Ok(_) => voided += 1,
                Err(LedgerError::AlreadyVoided(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(voided)
    }

    async fn pay_fare(&self, p: &NewPayment) -> Result<PaymentReceipt, LedgerError> {
        check_currency(&self.settings, &p.amount)?;
        let business_date = self.settings.calendar.business_date(p.occurred_at);
        let mut tx = self.write().await?;
        self.check_operator(&mut tx, &p.operator_id).await?;
        let existing = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE operator_id = $1 AND payment_ref = $2"
        ))
        .bind(p.operator_id.as_str())
        .bind(p.payment_ref.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let existing = payment_from_row(&row)?;
            let balance = self.balance_in(&mut tx, &p.card_id).await?;
            return replay_payment(existing, p, balance);
        }
        let reason = self.blocked_reason(&mut tx, &p.card_id).await?;
        if let Some(reason) = reason {
            return Err(LedgerError::CardBlocked {
                card: p.card_id.to_string(),
                reason: BlockReason::parse(&reason)
                    .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
            });
        }
        let balance = self.balance_in(&mut tx, &p.card_id).await?;
        if balance.minor < p.amount.minor {
            return Err(LedgerError::InsufficientBalance {
                balance,
                needed: p.amount,
            });
        }
        let tx_id = self.new_transaction(&mut tx, "payment").await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO payments (operator_id, payment_ref, card_id, amount, currency, route_id, \
               transport_operator_id, occurred_at, business_date, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(p.operator_id.as_str())
        .bind(p.payment_ref.as_str())
        .bind(p.card_id.as_str())
        .bind(p.amount.minor)
        .bind(p.amount.currency.code())
        .bind(p.route_id.as_str())
        .bind(p.transport_operator_id.as_str())
        .bind(p.occurred_at)
        .bind(business_date.naive())
        .bind(tx_id)
        .fetch_one(&mut *tx)
        .await?;
        let moves = [
            (card_account(&p.card_id), -p.amount.minor),
            (fares_account(&p.transport_operator_id), p.amount.minor),
        ];
        let balances = self.post(&mut tx, tx_id, &moves).await?;
        let payment = p.recorded(id, business_date, tx_id);
        let after = Money::new(balances[0], self.settings.currency);
        outbox::write(
            Conn::Sqlite(&mut tx),
            &[outbox::payment_recorded(&payment, after)],
        )
        .await?;
        tx.commit().await?;
        Ok(PaymentReceipt {
            payment,
            card_balance: Money::new(balances[0], self.settings.currency),
            replayed: false,
        })
    }

    async fn post_validations(
        &self,
        batch: &[Validation],
    ) -> Result<ValidationBatchOutcome, LedgerError> {
        check_validations(&self.settings, batch)?;
        if batch.is_empty() {
            return Ok(ValidationBatchOutcome::default());
        }
        let mut tx = self.write().await?;
        let tx_id = self.new_transaction(&mut tx, "validations").await?;
        let mut posted: Vec<&Validation> = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO validations (device_id, device_seq, event_id, card_id, fare, \
                   currency, route_id, transport_operator_id, occurred_at, business_date, \
                   transaction_id, hotlist_version) ",
            );
            insert.push_values(chunk, |mut row, v| {
                row.push_bind(v.device_id.as_str())
                    .push_bind(v.device_seq)
                    .push_bind(&v.event_id)
                    .push_bind(v.card_id.as_str())
                    .push_bind(v.fare.minor)
                    .push_bind(v.fare.currency.code())
                    .push_bind(v.route_id.as_str())
                    .push_bind(v.transport_operator_id.as_str())
                    .push_bind(v.occurred_at)
                    .push_bind(self.settings.calendar.business_date(v.occurred_at).naive())
                    .push_bind(tx_id)
                    .push_bind(v.hotlist_version);
            });
            insert.push(
                " ON CONFLICT (device_id, device_seq) DO NOTHING RETURNING device_id, device_seq",
            );
            let inserted: std::collections::HashSet<(String, i64)> = insert
                .build_query_as::<(String, i64)>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            // Keep the first of in-batch duplicates, as PostgreSQL does.
            let mut seen = std::collections::HashSet::new();
            posted.extend(chunk.iter().filter(|v| {
                let key = (v.device_id.to_string(), v.device_seq);
                inserted.contains(&key) && seen.insert(key)
            }));
        }
        if posted.is_empty() {
            tx.rollback().await?;
            return Ok(ValidationBatchOutcome {
                posted: 0,
                duplicates: batch.len(),
                transaction_id: None,
                flagged_cards: Vec::new(),
            });
        }
        let moves = validation_postings(posted.iter().map(|v| {
            (
                v.card_id.as_str(),
                v.fare.minor,
                v.transport_operator_id.as_str(),
            )
        }));
        let balances = self.post(&mut tx, tx_id, &moves).await?;
        let mut flagged = Vec::new();
        let mut negative = Vec::new();
        for ((account, _), balance) in moves.iter().zip(balances) {
            if let Some(card) = account.strip_prefix("card:")
                && balance < 0
            {
                sqlx::query("UPDATE accounts SET flagged = 1 WHERE id = $1")
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
                flagged.push(card.to_string());
                negative.push((CardId::parse(card)?, balance));
            }
        }
        card_status::block_negative_sqlite(&mut tx, &self.settings, &negative, tx_id, Utc::now())
            .await?;
        let dates: std::collections::BTreeSet<NaiveDate> = posted
            .iter()
            .map(|v| self.settings.calendar.business_date(v.occurred_at).naive())
            .collect();
        for date in &dates {
            sqlx::query(crate::date_status::TOUCH)
                .bind(date)
                .bind(Utc::now())
                .bind("validations")
                .execute(&mut *tx)
                .await?;
        }
        let totals = batch_totals(
            tx_id,
            posted
                .iter()
                .map(|v| (v.transport_operator_id.as_str(), v.fare.minor)),
            batch.len(),
            self.settings.currency,
            dates.into_iter().collect(),
            flagged.len(),
        );
        outbox::write(
            Conn::Sqlite(&mut tx),
            &[outbox::validations_posted(&totals)],
        )
        .await?;
        tx.commit().await?;
        Ok(ValidationBatchOutcome {
            posted: posted.len(),
            duplicates: batch.len() - posted.len(),
            transaction_id: Some(tx_id),
            flagged_cards: parse_cards(flagged)?,
        })
    }
}

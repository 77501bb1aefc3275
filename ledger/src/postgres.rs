//! The PostgreSQL backend, for production. Row locks on `accounts` serialize what must be
//! serialized (a card's balance); everything else runs concurrently. The hot paths are one
//! round trip (a sale) or a few set-based statements per batch (validations).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;

use crate::backend::{
    Backend, Database, Ledger, LedgerSettings, check_currency, check_validations, check_voidable,
    new_in_import, parse_cards, replay_payment, replay_sale, validation_postings,
};
use crate::business_date::BusinessDate;
use crate::card_status::{self, BlockReason};
use crate::correction::Conn;
use crate::error::LedgerError;
use crate::ids::{CardId, OperatorId};
use crate::journal::{
    NewPayment, NewSale, PaymentReceipt, Sale, SaleId, SaleReceipt, Validation,
    ValidationBatchOutcome, VoidReceipt, card_account, fares_account, receivable_account,
};
use crate::money::Money;
use crate::outbox::{self, batch_totals};
use crate::rows::{PAYMENT_COLUMNS, SALE_COLUMNS, payment_from_row, sale_from_row, void_window_on};

/// Creates an empty database named `{prefix}_{random}` on the server `admin_url` names and
/// returns its URL (tests and benchmarks get a database of their own).
pub async fn create_database(admin_url: &str, prefix: &str) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgLedger {
    pool: PgPool,
    /// Idempotency records are written without waiting for their WAL flush
    /// (`synchronous_commit = off`): losing the last few on a crash only means a retry is
    /// answered by the ledger's own idempotency (operator_ref, payment_ref) instead of the
    /// stored response, and it saves two of the three commits an API sale would wait for.
    /// A later durable commit (the sale's) flushes them anyway, since WAL is sequential.
    relaxed_pool: PgPool,
    settings: LedgerSettings,
}

impl PgLedger {
    pub async fn connect(url: &str, settings: LedgerSettings) -> Result<PgLedger, LedgerError> {
        let options = PgConnectOptions::from_str(url)?.application_name("recaudo");
        let pool = match PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            // The pool only says it timed out; one plain connection says why (refused,
            // unknown host, bad password).
            Err(sqlx::Error::PoolTimedOut) => {
                use sqlx::Connection;
                return Err(match sqlx::PgConnection::connect_with(&options).await {
                    Err(cause) => cause.into(),
                    Ok(_) => sqlx::Error::PoolTimedOut.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let relaxed_pool = PgPoolOptions::new()
            .max_connections((settings.max_connections / 2).max(2))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET synchronous_commit = off")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect_lazy_with(options);
        Ok(PgLedger {
            pool,
            relaxed_pool,
            settings,
        })
    }

    async fn card_balance_in<'e, E>(&self, exec: E, card: &CardId) -> Result<Money, LedgerError>
    where
        E: sqlx::PgExecutor<'e>,
    {
        let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(card_account(card))
            .fetch_optional(exec)
            .await?;
        Ok(Money::new(balance.unwrap_or(0), self.settings.currency))
    }

    async fn existing_sale(&self, sale: &NewSale) -> Result<Option<Sale>, LedgerError> {
        let row = sqlx::query(&format!(
            "SELECT {SALE_COLUMNS} FROM sales WHERE operator_id = $1 AND operator_ref = $2"
        ))
        .bind(sale.operator_id.as_str())
        .bind(sale.operator_ref.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sale_from_row).transpose()
    }

    /// Why a write for `operator` found nothing to do: unknown or inactive, or `None` if the
    /// operator may write.
    async fn operator_refusal(
        &self,
        operator: &OperatorId,
    ) -> Result<Option<LedgerError>, LedgerError> {
        let active: Option<bool> = sqlx::query_scalar("SELECT active FROM operators WHERE id = $1")
            .bind(operator.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match active {
            None => Some(LedgerError::UnknownOperator(operator.to_string())),
            Some(false) => Some(LedgerError::InactiveOperator(operator.to_string())),
            Some(true) => None,
        })
    }
}

/// The sale statement's refusal of a top-up (SQLSTATE RC001, raised by
/// `recaudo_refuse_top_up` with the reason as message and the card as detail), as the
/// ledger's error; any other error as it is.
fn refused_top_up(e: sqlx::Error) -> LedgerError {
    if let sqlx::Error::Database(db) = &e
        && db.code().as_deref() == Some("RC001")
        && let Ok(reason) = BlockReason::parse(db.message())
    {
        let card = db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .unwrap_or_default()
            .to_string();
        return LedgerError::CardBlocked { card, reason };
    }
    e.into()
}

/// Writes many transactions' postings and moves their accounts' balances: two array
/// statements, the accounts taken in id order as every writer takes them.
pub(crate) async fn post_in_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moves: impl Iterator<Item = (i64, String, i64)>,
) -> Result<(), sqlx::Error> {
    let (mut transactions, mut accounts, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    let mut by_account: std::collections::BTreeMap<String, i64> = Default::default();
    for (tx_id, account, amount) in moves {
        *by_account.entry(account.clone()).or_default() += amount;
        transactions.push(tx_id);
        accounts.push(account);
        amounts.push(amount);
    }
    sqlx::query(
        "INSERT INTO postings (transaction_id, account_id, amount) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[])",
    )
    .bind(&transactions)
    .bind(&accounts)
    .bind(&amounts)
    .execute(&mut **tx)
    .await?;
    let (accounts, deltas): (Vec<String>, Vec<i64>) = by_account.into_iter().unzip();
    sqlx::query(
        "INSERT INTO accounts AS acc (id, balance) \
         SELECT * FROM UNNEST($1::text[], $2::int8[]) ORDER BY 1 \
         ON CONFLICT (id) DO UPDATE SET balance = acc.balance + EXCLUDED.balance",
    )
    .bind(&accounts)
    .bind(&deltas)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One statement does the whole sale: insert the sale (or nothing, on a replay), its journal
/// transaction, two postings and both balances, locking accounts in id order.
const RECORD_SALE: &str = "
WITH sale AS (
    INSERT INTO sales (operator_id, operator_ref, card_id, amount, currency, point_of_sale,
                       occurred_at, business_date, transaction_id)
    SELECT o.id, $2, $3, $4, $5, $6, $7, $8, nextval('transactions_id_seq')
      FROM operators o WHERE o.id = $1 AND o.active
    ON CONFLICT (operator_id, operator_ref) DO NOTHING
    RETURNING id, transaction_id
), tx AS (
    INSERT INTO transactions (id, kind) SELECT transaction_id, 'sale' FROM sale
), moves (transaction_id, account_id, amount) AS (
    SELECT transaction_id, $9, $4::bigint FROM sale
    UNION ALL
    SELECT transaction_id, $10, -$4::bigint FROM sale
), postings_in AS (
    INSERT INTO postings (transaction_id, account_id, amount)
    SELECT transaction_id, account_id, amount FROM moves
), balances AS (
    -- A top-up that brings a NEGATIVE_BALANCE card back to zero lifts its block; status_tx
    -- says which row this statement lifted (the row lock makes it the current row's state).
    INSERT INTO accounts AS a (id, balance)
    SELECT account_id, amount FROM moves ORDER BY account_id
    ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance,
        blocked_reason = CASE WHEN a.blocked_reason = 'NEGATIVE_BALANCE'
            AND a.balance + EXCLUDED.balance >= 0 THEN NULL ELSE a.blocked_reason END,
        blocked_at = CASE WHEN a.blocked_reason = 'NEGATIVE_BALANCE'
            AND a.balance + EXCLUDED.balance >= 0 THEN NULL ELSE a.blocked_at END,
        status_tx = CASE WHEN a.blocked_reason = 'NEGATIVE_BALANCE'
            AND a.balance + EXCLUDED.balance >= 0 THEN (SELECT transaction_id FROM sale)
            ELSE a.status_tx END
    RETURNING id, balance, blocked_reason, status_tx
), refusal AS (
    -- A card blocked for any reason but NEGATIVE_BALANCE takes no top-up: the function
    -- aborts the whole statement (SQLSTATE RC001) with the reason.
    SELECT 1 FROM balances WHERE id = $9 AND recaudo_refuse_top_up($3, blocked_reason)
), event AS (
    -- After the balances (it reads them), so its id follows the card's lock (see outbox).
    INSERT INTO outbox (type, subject, operator_id, time, data)
    SELECT $11, $12, $1, $7,
           $13::jsonb || jsonb_build_object('sale_id', sale.id, 'transaction_id', sale.transaction_id,
               'card_balance', round((SELECT balance FROM balances WHERE id = $9)::numeric / $14, $15)::text)
      FROM sale WHERE EXISTS (SELECT 1 FROM balances)
    RETURNING id
), lifted AS (
    SELECT b.balance, sale.transaction_id FROM balances b, sale
     WHERE b.id = $9 AND b.blocked_reason IS NULL AND b.status_tx = sale.transaction_id
), history AS (
    INSERT INTO card_status_changes (card_id, action, reason, at, actor, transaction_id)
    SELECT $3, 'UNBLOCK', 'NEGATIVE_BALANCE', $7, $18, transaction_id FROM lifted
), unblocked AS (
    -- After the sale's event (it reads its id), so the card's events keep their order.
    INSERT INTO outbox (type, subject, operator_id, time, data)
    SELECT $16, $12, NULL, $7,
           $17::jsonb || jsonb_build_object('transaction_id', lifted.transaction_id,
               'card_balance', round(lifted.balance::numeric / $14, $15)::text)
      FROM lifted, event
)
SELECT sale.id, sale.transaction_id, (SELECT balance FROM balances WHERE id = $9) AS card_balance
  FROM sale WHERE NOT EXISTS (SELECT 1 FROM refusal)";

#[async_trait]
impl Ledger for PgLedger {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn settings(&self) -> &LedgerSettings {
        &self.settings
    }

    fn database(&self) -> Database<'_> {
        Database::Postgres(&self.pool)
    }

    /// Keys go through the pool without synchronous commit (see `relaxed_pool`).
    fn idempotency_database(&self) -> Database<'_> {
        Database::Postgres(&self.relaxed_pool)
    }

    async fn migrate(&self) -> Result<(), LedgerError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A bulk load in one database transaction of a few statements over arrays, with one
    /// journal transaction per new sale as `record_sale` makes it (fixtures, the demo and a
    /// migration load millions of sales; one round trip per sale would take an hour).
    async fn import_sales(&self, sales: &[NewSale]) -> Result<Vec<Option<SaleId>>, LedgerError> {
        for s in sales {
            check_currency(&self.settings, &s.amount)?;
        }
        if sales.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // As `record_sale` checks it in its own statement: inside the transaction, held.
        let operators: std::collections::BTreeSet<&str> =
            sales.iter().map(|s| s.operator_id.as_str()).collect();
        let operators: Vec<&str> = operators.into_iter().collect();
        let allowed: Vec<(String, bool)> = sqlx::query_as(
            "SELECT id, active FROM operators WHERE id = ANY($1) ORDER BY id FOR SHARE",
        )
        .bind(&operators)
        .fetch_all(&mut *tx)
        .await?;
        for op in &operators {
            match allowed.iter().find(|(id, _)| id == op) {
                None => return Err(LedgerError::UnknownOperator(op.to_string())),
                Some((_, false)) => return Err(LedgerError::InactiveOperator(op.to_string())),
                Some((_, true)) => {}
            }
        }
        let (ops, refs): (Vec<&str>, Vec<&str>) = sales
            .iter()
            .map(|s| (s.operator_id.as_str(), s.operator_ref.as_str()))
            .unzip();
        let mut recorded = std::collections::HashMap::new();
        let existing = sqlx::query(&format!(
            "SELECT {SALE_COLUMNS} FROM sales WHERE (operator_id, operator_ref) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[]))"
        ))
        .bind(&ops)
        .bind(&refs)
        .fetch_all(&mut *tx)
        .await?;
        for row in existing {
            let sale = sale_from_row(&row)?;
            recorded.insert(
                (sale.operator_id.to_string(), sale.operator_ref.to_string()),
                sale,
            );
        }
        let indexed: Vec<(usize, &NewSale)> = sales.iter().enumerate().collect();
        let fresh = new_in_import(
            &indexed,
            &recorded,
            &mut Default::default(),
            self.settings.currency,
        )?;
        let mut ids = vec![None; sales.len()];
        if fresh.is_empty() {
            tx.commit().await?;
            return Ok(ids);
        }
        let tx_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('transactions_id_seq') FROM generate_series(1, $1::int8)",
        )
        .bind(fresh.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        let column = |f: fn(&NewSale) -> &str| fresh.iter().map(|(_, s)| f(s)).collect::<Vec<_>>();
        let amounts: Vec<i64> = fresh.iter().map(|(_, s)| s.amount.minor).collect();
        let at: Vec<DateTime<Utc>> = fresh.iter().map(|(_, s)| s.occurred_at).collect();
        let dates: Vec<NaiveDate> = at
            .iter()
            .map(|t| self.settings.calendar.business_date(*t).naive())
            .collect();
        let sale_ids: Vec<(i64, i64)> = sqlx::query_as(
            "INSERT INTO sales (operator_id, operator_ref, card_id, amount, currency, \
               point_of_sale, occurred_at, business_date, transaction_id) \
             SELECT o, r, c, a, $5, p, t, d, x FROM UNNEST($1::text[], $2::text[], $3::text[], \
               $4::int8[], $6::text[], $7::timestamptz[], $8::date[], $9::int8[]) \
               AS u(o, r, c, a, p, t, d, x) \
             ON CONFLICT (operator_id, operator_ref) DO NOTHING \
             RETURNING transaction_id, id",
        )
        .bind(column(|s| s.operator_id.as_str()))
        .bind(column(|s| s.operator_ref.as_str()))
        .bind(column(|s| s.card_id.as_str()))
        .bind(&amounts)
        .bind(self.settings.currency.code())
        .bind(column(|s| s.point_of_sale.as_str()))
        .bind(&at)
        .bind(&dates)
        .bind(&tx_ids)
        .fetch_all(&mut *tx)
        .await?;
        // A key recorded by someone else since the look-up above is what `record_sale`
        // would find: the same content a replay, other content a conflict.
        let by_tx: std::collections::HashMap<i64, i64> = sale_ids.into_iter().collect();
        for ((_, new), tx_id) in fresh.iter().zip(&tx_ids) {
            if by_tx.contains_key(tx_id) {
                continue;
            }
            let row = sqlx::query(&format!(
                "SELECT {SALE_COLUMNS} FROM sales WHERE operator_id = $1 AND operator_ref = $2"
            ))
            .bind(new.operator_id.as_str())
            .bind(new.operator_ref.as_str())
            .fetch_one(&mut *tx)
            .await?;
            replay_sale(
                sale_from_row(&row)?,
                new,
                Money::zero(self.settings.currency),
            )?;
        }
        let fresh: Vec<(usize, &NewSale, i64)> = fresh
            .iter()
            .zip(&tx_ids)
            .filter(|(_, tx_id)| by_tx.contains_key(tx_id))
            .map(|((i, s), tx_id)| (*i, *s, *tx_id))
            .collect();
        let tx_ids: Vec<i64> = fresh.iter().map(|(_, _, tx_id)| *tx_id).collect();
        sqlx::query("INSERT INTO transactions (id, kind) SELECT UNNEST($1::int8[]), 'sale'")
            .bind(&tx_ids)
            .execute(&mut *tx)
            .await?;
        // Each sale debits its operator's receivable and credits its card.
        let moves = fresh
            .iter()
            .map(|(_, s, tx_id)| (s, tx_id))
            .flat_map(|(s, tx_id)| {
                [
                    (*tx_id, card_account(&s.card_id), s.amount.minor),
                    (*tx_id, receivable_account(&s.operator_id), -s.amount.minor),
                ]
            });
        // The cards' balances before, under lock in id order as every writer takes them, so
        // each event can say the balance after its own sale.
        let cards: std::collections::BTreeSet<String> = fresh
            .iter()
            .map(|(_, s, _)| card_account(&s.card_id))
            .collect();
        let locked: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, balance, blocked_reason FROM accounts WHERE id = ANY($1) ORDER BY id \
             FOR UPDATE",
        )
        .bind(cards.into_iter().collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        // A card that takes no top-ups refuses the whole load, as `record_sale` refuses it.
        for (account, _, reason) in &locked {
            card_status::top_up_refusal(
                &CardId::parse(account.trim_start_matches("card:"))?,
                reason.as_deref(),
            )?;
        }
        let negative: Vec<String> = locked
            .iter()
            .filter(|(_, _, r)| r.is_some())
            .map(|(a, _, _)| a.clone())
            .collect();
        let before: std::collections::HashMap<String, i64> =
            locked.iter().map(|(a, b, _)| (a.clone(), *b)).collect();
        let card_accounts: Vec<String> = fresh
            .iter()
            .map(|(_, s, _)| card_account(&s.card_id))
            .collect();
        let after = outbox::running_balances(
            &before,
            card_accounts
                .iter()
                .map(String::as_str)
                .zip(fresh.iter().map(|(_, s, _)| s.amount.minor)),
        );
        post_in_batch(&mut tx, moves).await?;
        let events: Vec<outbox::NewEvent> = fresh
            .iter()
            .zip(after)
            .map(|((_, s, tx_id), balance)| {
                let date = self.settings.calendar.business_date(s.occurred_at);
                outbox::sale_recorded(
                    &s.recorded(by_tx[tx_id], date, *tx_id),
                    Money::new(balance, self.settings.currency),
                )
            })
            .collect();
        outbox::write(Conn::Postgres(&mut tx), &events).await?;
        if !negative.is_empty() {
            let (cards, tx_ids) = card_status::last_top_ups(
                fresh.iter().map(|(_, s, tx_id)| (&s.card_id, *tx_id)),
                &negative,
            );
            card_status::lift_negative_blocks(
                Conn::Postgres(&mut tx),
                &self.settings,
                &cards,
                &tx_ids,
                Utc::now(),
            )
            .await?;
        }
        tx.commit().await?;
        for (i, _, tx_id) in &fresh {
            ids[*i] = by_tx.get(tx_id).copied();
        }
        Ok(ids)
    }

    async fn record_sale(&self, sale: &NewSale) -> Result<SaleReceipt, LedgerError> {
        check_currency(&self.settings, &sale.amount)?;
        let business_date = self.settings.calendar.business_date(sale.occurred_at);
        // The statement fills in the ids it gives.
        let event = outbox::sale_recorded(
            &sale.recorded(0, business_date, 0),
            Money::zero(self.settings.currency),
        );
        let unblocked = card_status::unblocked_event(
            &sale.card_id,
            BlockReason::NegativeBalance,
            sale.occurred_at,
            card_status::SYSTEM_ACTOR,
            Money::zero(self.settings.currency),
            None,
        );
        let exponent = self.settings.currency.exponent();
        let row = sqlx::query(RECORD_SALE)
            .bind(sale.operator_id.as_str())
            .bind(sale.operator_ref.as_str())
            .bind(sale.card_id.as_str())
            .bind(sale.amount.minor)
            .bind(sale.amount.currency.code())
            .bind(sale.point_of_sale.as_str())
            .bind(sale.occurred_at)
            .bind(business_date.naive())
            .bind(card_account(&sale.card_id))
            .bind(receivable_account(&sale.operator_id))
            .bind(event.event_type.name())
            .bind(&event.subject)
            .bind(event.data.to_string())
            .bind(10i64.pow(u32::from(exponent)))
            .bind(i32::from(exponent))
            .bind(unblocked.event_type.name())
            .bind(unblocked.data.to_string())
            .bind(card_status::SYSTEM_ACTOR)
            .fetch_optional(&self.pool)
            .await
            .map_err(refused_top_up)?;
        if let Some(row) = row {
            let balance: i64 = row.try_get("card_balance")?;
            return Ok(SaleReceipt {
                sale: sale.recorded(
                    row.try_get("id")?,
                    business_date,
                    row.try_get("transaction_id")?,
                ),
                card_balance: Money::new(balance, self.settings.currency),
                replayed: false,
            });
        }
        // Nothing inserted: the operator may not sell, or the ref was recorded before.
        if let Some(refusal) = self.operator_refusal(&sale.operator_id).await? {
            return Err(refusal);
        }
        let existing = self
            .existing_sale(sale)
            .await?
            .ok_or_else(|| LedgerError::Corrupt("sale neither inserted nor found".into()))?;
        replay_sale(
            existing,
            sale,
            self.card_balance_in(&self.pool, &sale.card_id).await?,
        )
    }

    async fn import_voids(
        &self,
        voids: &[(OperatorId, SaleId, DateTime<Utc>)],
    ) -> Result<u64, LedgerError> {
        if voids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = voids.iter().map(|v| v.1).collect();
        let ops: Vec<&str> = voids.iter().map(|v| v.0.as_str()).collect();
        let ats: Vec<DateTime<Utc>> = voids.iter().map(|v| v.2).collect();
        let dates: Vec<NaiveDate> = ats
            .iter()
            .map(|t| self.settings.calendar.business_date(*t).naive())
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {SALE_COLUMNS}, {} AS void_window_secs \
             , u.n AS input \
             FROM UNNEST($1::int8[], $2::text[], $3::date[]) WITH ORDINALITY AS u(vid, vop, vd, n) \
             JOIN sales s ON s.id = u.vid AND s.operator_id = u.vop ORDER BY s.id FOR UPDATE OF s",
            void_window_on("u.vd")
        ))
        .bind(&ids)
        .bind(&ops)
        .bind(&dates)
        .fetch_all(&mut *tx)
        .await?;
        // By input position (1-based): each void has its own operator and its own date's
        // window, even when a sale is named twice.
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let input: i64 = row.try_get("input")?;
            let window: i64 = row.try_get("void_window_secs")?;
            found.insert(input as usize - 1, (sale_from_row(row)?, window));
        }
        // The same checks as `void_sale`, in input order: a sale named again is already
        // voided by then, and skipped.
        let mut todo: Vec<(&Sale, DateTime<Utc>, NaiveDate)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut by_card: std::collections::BTreeMap<String, i64> = Default::default();
        for (k, ((_, id, at), date)) in voids.iter().zip(&dates).enumerate() {
            let (sale, window) = found.get(&k).ok_or(LedgerError::SaleNotFound(*id))?;
            if seen.contains(id) {
                continue;
            }
            match check_voidable(sale, *window, *at) {
                Ok(()) => {
                    seen.insert(*id);
                    *by_card.entry(card_account(&sale.card_id)).or_default() += sale.amount.minor;
                    todo.push((sale, *at, *date));
                }
                Err(LedgerError::AlreadyVoided(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if todo.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        // Every card must still hold what its voids take back, as with `void_sale`.
        let (cards, takes): (Vec<String>, Vec<i64>) = by_card.into_iter().unzip();
        let balances: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, balance FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&cards)
        .fetch_all(&mut *tx)
        .await?;
        let balances: std::collections::HashMap<String, i64> = balances.into_iter().collect();
        for (card, take) in cards.iter().zip(&takes) {
            let balance = balances.get(card).copied().unwrap_or(0);
            if balance < *take {
                return Err(LedgerError::InsufficientBalance {
                    balance: Money::new(balance, self.settings.currency),
                    needed: Money::new(*take, self.settings.currency),
                });
            }
        }
        let tx_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('transactions_id_seq') FROM generate_series(1, $1::int8)",
        )
        .bind(todo.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO transactions (id, kind) SELECT UNNEST($1::int8[]), 'void'")
            .bind(&tx_ids)
            .execute(&mut *tx)
            .await?;
        let moves = todo.iter().zip(&tx_ids).flat_map(|((sale, _, _), tx_id)| {
            [
                (*tx_id, card_account(&sale.card_id), -sale.amount.minor),
                (
                    *tx_id,
                    receivable_account(&sale.operator_id),
                    sale.amount.minor,
                ),
            ]
        });
        post_in_batch(&mut tx, moves).await?;
        let sale_ids: Vec<i64> = todo.iter().map(|(s, _, _)| s.id).collect();
        let void_at: Vec<DateTime<Utc>> = todo.iter().map(|(_, at, _)| *at).collect();
        let void_dates: Vec<NaiveDate> = todo.iter().map(|(_, _, d)| *d).collect();
        sqlx::query(
            "UPDATE sales SET voided_at = u.at, void_business_date = u.d, void_transaction_id = u.x \
             FROM UNNEST($1::int8[], $2::timestamptz[], $3::date[], $4::int8[]) AS u(id, at, d, x) \
             WHERE sales.id = u.id",
        )
        .bind(&sale_ids)
        .bind(&void_at)
        .bind(&void_dates)
        .bind(&tx_ids)
        .execute(&mut *tx)
        .await?;
        let after = outbox::running_balances(
            &balances,
            todo.iter()
                .map(|(sale, _, _)| (card_account(&sale.card_id), -sale.amount.minor))
                .collect::<Vec<_>>()
                .iter()
                .map(|(c, a)| (c.as_str(), *a)),
        );
        let events: Vec<outbox::NewEvent> = todo
            .iter()
            .zip(&tx_ids)
            .zip(after)
            .map(|(((sale, at, date), tx_id), balance)| {
                let mut voided = (*sale).clone();
                voided.void = Some(crate::journal::Void {
                    voided_at: *at,
                    business_date: BusinessDate::from_naive(*date),
                    transaction_id: *tx_id,
                });
                outbox::sale_voided(&voided, Money::new(balance, self.settings.currency))
            })
            .collect();
        outbox::write(Conn::Postgres(&mut tx), &events).await?;
        tx.commit().await?;
        Ok(todo.len() as u64)
    }

    async fn void_sale(
        &self,
        operator: &OperatorId,
        sale_id: SaleId,
        at: DateTime<Utc>,
    ) -> Result<VoidReceipt, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {SALE_COLUMNS}, {} AS void_window_secs \
             FROM sales s WHERE id = $1 AND operator_id = $2 FOR UPDATE",
            void_window_on("$3")
        ))
        .bind(sale_id)
        .bind(operator.as_str())
        .bind(self.settings.calendar.business_date(at).naive())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(LedgerError::SaleNotFound(sale_id))?;
        let mut sale = sale_from_row(&row)?;
        let window: i64 = row.try_get("void_window_secs")?;
        check_voidable(&sale, window, at)?;
        let amount = sale.amount.minor;
        let card = card_account(&sale.card_id);
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2 \
             RETURNING balance",
        )
        .bind(&card)
        .bind(amount)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(balance) = balance else {
            let now = self.card_balance_in(&mut *tx, &sale.card_id).await?;
            return Err(LedgerError::InsufficientBalance {
                balance: now,
                needed: sale.amount,
            });
        };
        let receivable = receivable_account(&sale.operator_id);
        let tx_id: i64 = sqlx::query_scalar(
            "INSERT INTO transactions (id, kind) VALUES (nextval('transactions_id_seq'), 'void') \
             RETURNING id",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "WITH p AS (INSERT INTO postings (transaction_id, account_id, amount) \
                        VALUES ($1, $2, -$4::bigint), ($1, $3, $4::bigint)) \
             UPDATE accounts SET balance = balance + $4 WHERE id = $3",
        )
        .bind(tx_id)
        .bind(&card)
        .bind(&receivable)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
        let void_date = self.settings.calendar.business_date(at);
        sqlx::query(
            "UPDATE sales SET voided_at = $2, void_business_date = $3, void_transaction_id = $4 \
             WHERE id = $1",
        )
        .bind(sale_id)
        .bind(at)
        .bind(void_date.naive())
        .bind(tx_id)
        .execute(&mut *tx)
        .await?;
        sale.void = Some(crate::journal::Void {
            voided_at: at,
            business_date: void_date,
            transaction_id: tx_id,
        });
        outbox::write(
            Conn::Postgres(&mut tx),
            &[outbox::sale_voided(
                &sale,
                Money::new(balance, self.settings.currency),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(VoidReceipt {
            sale,
            card_balance: Money::new(balance, self.settings.currency),
        })
    }

    async fn pay_fare(&self, p: &NewPayment) -> Result<PaymentReceipt, LedgerError> {
        check_currency(&self.settings, &p.amount)?;
        if let Some(refusal) = self.operator_refusal(&p.operator_id).await? {
            return Err(refusal);
        }
        let business_date = self.settings.calendar.business_date(p.occurred_at);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO payments (operator_id, payment_ref, card_id, amount, currency, route_id, \
               transport_operator_id, occurred_at, business_date, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nextval('transactions_id_seq')) \
             ON CONFLICT (operator_id, payment_ref) DO NOTHING \
             RETURNING id, transaction_id",
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
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inserted) = inserted else {
            tx.rollback().await?;
            let row = sqlx::query(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE operator_id = $1 AND payment_ref = $2"
            ))
            .bind(p.operator_id.as_str())
            .bind(p.payment_ref.as_str())
            .fetch_one(&self.pool)
            .await?;
            let existing = payment_from_row(&row)?;
            let balance = self.card_balance_in(&self.pool, &p.card_id).await?;
            return replay_payment(existing, p, balance);
        };
        let card = card_account(&p.card_id);
        // A blocked card pays nothing. The row lock orders this against a block: a block
        // that committed first is seen here (the row is read again after the wait).
        let balance: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET balance = balance - $2 \
             WHERE id = $1 AND balance >= $2 AND blocked_reason IS NULL RETURNING balance",
        )
        .bind(&card)
        .bind(p.amount.minor)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(balance) = balance else {
            tx.rollback().await?;
            let (balance, reason): (i64, Option<String>) =
                sqlx::query_as("SELECT balance, blocked_reason FROM accounts WHERE id = $1")
                    .bind(&card)
                    .fetch_optional(&self.pool)
                    .await?
                    .unwrap_or((0, None));
            if let Some(reason) = reason {
                return Err(LedgerError::CardBlocked {
                    card: p.card_id.to_string(),
                    reason: BlockReason::parse(&reason)
                        .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                });
            }
            return Err(LedgerError::InsufficientBalance {
                balance: Money::new(balance, self.settings.currency),
                needed: p.amount,
            });
        };
        let tx_id: i64 = inserted.try_get("transaction_id")?;
        sqlx::query(
            "WITH t AS (INSERT INTO transactions (id, kind) VALUES ($1, 'payment')), \
                  p AS (INSERT INTO postings (transaction_id, account_id, amount) \
                        VALUES ($1, $2, -$4::bigint), ($1, $3, $4::bigint)) \
             INSERT INTO accounts AS a (id, balance) VALUES ($3, $4) \
             ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance",
        )
        .bind(tx_id)
        .bind(&card)
        .bind(fares_account(&p.transport_operator_id))
        .bind(p.amount.minor)
        .execute(&mut *tx)
        .await?;
        let payment = p.recorded(inserted.try_get("id")?, business_date, tx_id);
        outbox::write(
            Conn::Postgres(&mut tx),
            &[outbox::payment_recorded(
                &payment,
                Money::new(balance, self.settings.currency),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(PaymentReceipt {
            payment,
            card_balance: Money::new(balance, self.settings.currency),
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
        let n = batch.len();
        let mut device = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut event = Vec::with_capacity(n);
        let mut card = Vec::with_capacity(n);
        let mut fare = Vec::with_capacity(n);
        let mut route = Vec::with_capacity(n);
        let mut transport = Vec::with_capacity(n);
        let mut occurred = Vec::with_capacity(n);
        let mut date: Vec<NaiveDate> = Vec::with_capacity(n);
        let mut version: Vec<Option<i64>> = Vec::with_capacity(n);
        for v in batch {
            device.push(v.device_id.as_str());
            seq.push(v.device_seq);
            event.push(v.event_id.as_str());
            card.push(v.card_id.as_str());
            fare.push(v.fare.minor);
            route.push(v.route_id.as_str());
            transport.push(v.transport_operator_id.as_str());
            occurred.push(v.occurred_at);
            date.push(self.settings.calendar.business_date(v.occurred_at).naive());
            version.push(v.hotlist_version);
        }
        let mut tx = self.pool.begin().await?;
        let tx_id: i64 = sqlx::query_scalar("SELECT nextval('transactions_id_seq')")
            .fetch_one(&mut *tx)
            .await?;
        let posted = sqlx::query(
            "INSERT INTO validations (device_id, device_seq, event_id, card_id, fare, currency, \
               route_id, transport_operator_id, occurred_at, business_date, transaction_id, \
               hotlist_version) \
             SELECT d, s, e, c, f, $6, r, t, o, b, $11, h \
               FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], \
                           $7::text[], $8::text[], $9::timestamptz[], $10::date[], $12::int8[]) \
                    AS u(d, s, e, c, f, r, t, o, b, h) \
             ON CONFLICT (device_id, device_seq) DO NOTHING \
             RETURNING card_id, fare, transport_operator_id, business_date",
        )
        .bind(&device)
        .bind(&seq)
        .bind(&event)
        .bind(&card)
        .bind(&fare)
        .bind(self.settings.currency.code())
        .bind(&route)
        .bind(&transport)
        .bind(&occurred)
        .bind(&date)
        .bind(tx_id)
        .bind(&version)
        .fetch_all(&mut *tx)
        .await?;
        if posted.is_empty() {
            tx.rollback().await?;
            return Ok(ValidationBatchOutcome {
                posted: 0,
                duplicates: n,
                transaction_id: None,
                flagged_cards: Vec::new(),
            });
        }
        let triples: Vec<(String, i64, String)> = posted
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let moves =
            validation_postings(triples.iter().map(|(c, f, t)| (c.as_str(), *f, t.as_str())));
        let (accounts, amounts): (Vec<String>, Vec<i64>) = moves.into_iter().unzip();
        // A card taken below −limit is blocked NEGATIVE_BALANCE in the same statement;
        // status_tx = this transaction says which rows it blocked.
        let now = Utc::now();
        let returned: Vec<(Option<String>, i64, bool)> = sqlx::query_as(
            "WITH t AS (INSERT INTO transactions (id, kind) VALUES ($1, 'validations')), \
                  p AS (INSERT INTO postings (transaction_id, account_id, amount) \
                        SELECT $1, a, m FROM UNNEST($2::text[], $3::int8[]) AS u(a, m)) \
             INSERT INTO accounts AS acc (id, balance, flagged, blocked_reason, blocked_at, status_tx) \
             SELECT a, m, m < 0 AND a LIKE 'card:%', \
                    CASE WHEN m < -$4 AND a LIKE 'card:%' THEN 'NEGATIVE_BALANCE' END, \
                    CASE WHEN m < -$4 AND a LIKE 'card:%' THEN $5::timestamptz END, \
                    CASE WHEN m < -$4 AND a LIKE 'card:%' THEN $1::int8 END \
               FROM UNNEST($2::text[], $3::int8[]) AS u(a, m) \
             ORDER BY a \
             ON CONFLICT (id) DO UPDATE SET balance = acc.balance + EXCLUDED.balance, \
               flagged = acc.flagged OR (acc.balance + EXCLUDED.balance < 0 AND acc.id LIKE 'card:%'), \
               blocked_reason = CASE WHEN acc.blocked_reason IS NULL AND acc.id LIKE 'card:%' \
                 AND acc.balance + EXCLUDED.balance < -$4 THEN 'NEGATIVE_BALANCE' ELSE acc.blocked_reason END, \
               blocked_at = CASE WHEN acc.blocked_reason IS NULL AND acc.id LIKE 'card:%' \
                 AND acc.balance + EXCLUDED.balance < -$4 THEN $5::timestamptz ELSE acc.blocked_at END, \
               status_tx = CASE WHEN acc.blocked_reason IS NULL AND acc.id LIKE 'card:%' \
                 AND acc.balance + EXCLUDED.balance < -$4 THEN $1::int8 ELSE acc.status_tx END \
             RETURNING CASE WHEN balance < 0 AND id LIKE 'card:%' THEN substr(id, 6) END, balance, \
               COALESCE(status_tx = $1 AND blocked_reason = 'NEGATIVE_BALANCE', false)",
        )
        .bind(tx_id)
        .bind(&accounts)
        .bind(&amounts)
        .bind(self.settings.negative_limit)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut flagged = Vec::new();
        let mut blocks = Vec::new();
        for (card, balance, blocked) in returned {
            let Some(card) = card else { continue };
            if blocked {
                blocks.push(card_status::negative_block_event(
                    &CardId::parse(&card)?,
                    now,
                    Money::new(balance, self.settings.currency),
                    tx_id,
                ));
            }
            flagged.push(card);
        }
        card_status::record_automatic_blocks(Conn::Postgres(&mut tx), &blocks, tx_id, now).await?;
        let dates: std::collections::BTreeSet<NaiveDate> = posted
            .iter()
            .map(|r| r.try_get(3))
            .collect::<Result<_, sqlx::Error>>()?;
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
            triples.iter().map(|(_, f, t)| (t.as_str(), *f)),
            n,
            self.settings.currency,
            dates.into_iter().collect(),
            flagged.len(),
        );
        outbox::write(
            Conn::Postgres(&mut tx),
            &[outbox::validations_posted(&totals)],
        )
        .await?;
        tx.commit().await?;
        Ok(ValidationBatchOutcome {
            posted: posted.len(),
            duplicates: n - posted.len(),
            transaction_id: Some(tx_id),
            flagged_cards: parse_cards(flagged)?,
        })
    }
}

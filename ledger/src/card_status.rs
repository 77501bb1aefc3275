//! Card status (DESIGN.md, Hotlists): a card is ACTIVE or BLOCKED with a reason, and a
//! replaced card's balance moves to its new card once, after a delay.
//!
//! The status lives on the card's account row beside its balance, so the paths that move
//! money read it under the same row lock: a payment that races a block either committed
//! before the block or sees it and is refused. Every change is also a row of the card's
//! append-only history (who, when, why) and an event in the outbox, in the same database
//! transaction.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;

use crate::backend::{Database, LedgerSettings};
use crate::correction::{Conn, post_entry};
use crate::error::{InvalidInput, LedgerError};
use crate::ids::{CardId, OperatorId};
use crate::journal::card_account;
use crate::money::Money;
use crate::outbox::{self, EventType, NewEvent, card_subject};

/// Why a card is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockReason {
    Lost,
    Stolen,
    Damaged,
    /// Validations took the card below −`RECAUDO_NEGATIVE_LIMIT`; lifted by a top-up.
    NegativeBalance,
    /// The back office's decision.
    Fraud,
    /// A new card takes its place; its balance moves there.
    Replaced,
}

impl BlockReason {
    pub const ALL: [BlockReason; 6] = [
        BlockReason::Lost,
        BlockReason::Stolen,
        BlockReason::Damaged,
        BlockReason::NegativeBalance,
        BlockReason::Fraud,
        BlockReason::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Lost => "LOST",
            BlockReason::Stolen => "STOLEN",
            BlockReason::Damaged => "DAMAGED",
            BlockReason::NegativeBalance => "NEGATIVE_BALANCE",
            BlockReason::Fraud => "FRAUD",
            BlockReason::Replaced => "REPLACED",
        }
    }

    pub fn parse(s: &str) -> Result<BlockReason, InvalidInput> {
        BlockReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(
                    "reason",
                    format!(
                        "{s:?} is not a block reason (one of {})",
                        BlockReason::ALL.map(BlockReason::as_str).join(", ")
                    ),
                )
            })
    }

    /// A card blocked for this reason takes no top-ups; a NEGATIVE_BALANCE card does, since
    /// that is how its rider clears the debt.
    pub fn refuses_top_ups(self) -> bool {
        self != BlockReason::NegativeBalance
    }

    /// What a rider reports at an operator (the API's reasons).
    pub fn reported_by_rider(self) -> bool {
        matches!(
            self,
            BlockReason::Lost | BlockReason::Stolen | BlockReason::Damaged
        )
    }

    /// What a person of the back office may block for (`recaudo cards block`): the rider's
    /// reasons and FRAUD. NEGATIVE_BALANCE and REPLACED are the ledger's own.
    pub fn set_by_people(self) -> bool {
        self.reported_by_rider() || self == BlockReason::Fraud
    }
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor of the changes the ledger makes itself.
pub const SYSTEM_ACTOR: &str = "recaudo";

/// A block asked for by an operator (for a rider) or by the back office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlock {
    pub card: CardId,
    pub reason: BlockReason,
    pub at: DateTime<Utc>,
    /// The operator whose token asked for it (API); `None` for the back office.
    pub operator: Option<OperatorId>,
    /// The token's subject, or the person.
    pub actor: String,
    pub note: Option<String>,
}

/// The back office lifting a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUnblock {
    pub card: CardId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub note: String,
}

/// A replacement asked for by an operator: the old card is blocked REPLACED at once and its
/// balance moves to `new` after the ledger's `replacement_delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReplacement {
    pub old: CardId,
    pub new: CardId,
    pub operator: OperatorId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A card's block: why and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub reason: BlockReason,
    pub since: DateTime<Utc>,
}

/// A replacement as recorded, and what moved once it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub old_card: CardId,
    pub new_card: CardId,
    pub operator_id: OperatorId,
    pub actor: String,
    pub requested_at: DateTime<Utc>,
    pub transfer_after: DateTime<Utc>,
    pub transferred_at: Option<DateTime<Utc>>,
    pub amount: Option<Money>,
    /// `None` until it moved, and when nothing was there to move.
    pub transaction_id: Option<i64>,
}

/// What `GET /v1/cards/{id}` and `recaudo cards show` say of a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardStatus {
    pub card_id: CardId,
    pub balance: Money,
    /// Set when field validations took the card below zero.
    pub flagged: bool,
    pub block: Option<Block>,
    /// The replacement this card was replaced by.
    pub replaced_by: Option<Replacement>,
    /// The replacement this card is the new card of.
    pub replaces: Option<Replacement>,
}

/// One row of a card's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub id: i64,
    pub card_id: CardId,
    /// `BLOCK` or `UNBLOCK`.
    pub action: String,
    /// For an UNBLOCK, the reason that was lifted.
    pub reason: BlockReason,
    pub at: DateTime<Utc>,
    pub operator_id: Option<String>,
    pub actor: String,
    pub note: Option<String>,
    pub transaction_id: Option<i64>,
}

/// What a block or unblock did: the status after it, and whether it changed anything (the
/// same report twice changes nothing the second time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    pub status: CardStatus,
    pub changed: bool,
}

/// A blocked card as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedCard {
    pub card_id: CardId,
    pub reason: BlockReason,
    pub since: DateTime<Utc>,
}

fn actor_checked(actor: &str) -> Result<(), LedgerError> {
    if actor.trim().is_empty() {
        return Err(
            InvalidInput::new("actor", "a change of a card's status names who made it").into(),
        );
    }
    Ok(())
}

fn parse_reason(s: &str) -> Result<BlockReason, LedgerError> {
    BlockReason::parse(s).map_err(|e| LedgerError::Corrupt(e.to_string()))
}

/// `card.blocked`: a card's block, in the outbox. An operator's own webhook hears the blocks
/// it made (without the card number).
pub(crate) struct Blocked<'a> {
    pub card: &'a CardId,
    pub reason: BlockReason,
    pub at: DateTime<Utc>,
    pub operator: Option<&'a OperatorId>,
    pub actor: &'a str,
    pub balance: Money,
    pub transaction_id: Option<i64>,
    pub new_card: Option<&'a CardId>,
}

pub(crate) fn blocked_event(b: Blocked<'_>) -> NewEvent {
    let Blocked {
        card,
        reason,
        at,
        operator,
        actor,
        balance,
        transaction_id,
        new_card,
    } = b;
    let mut data = json!({
        "card_id": card.as_str(),
        "reason": reason.as_str(),
        "blocked_at": at,
        "operator_id": operator.map(OperatorId::as_str),
        "actor": actor,
        "card_balance": balance.to_decimal_string(),
        "currency": balance.currency.code(),
        "transaction_id": transaction_id,
    });
    if let Some(new) = new_card {
        data["new_card_id"] = json!(new.as_str());
    }
    NewEvent {
        event_type: EventType::CardBlocked,
        subject: card_subject(card),
        operator: operator.cloned(),
        time: at,
        data,
    }
}

/// `card.blocked` of a NEGATIVE_BALANCE block the validation batch `transaction_id` made.
pub(crate) fn negative_block_event(
    card: &CardId,
    at: DateTime<Utc>,
    balance: Money,
    transaction_id: i64,
) -> NewEvent {
    blocked_event(Blocked {
        card,
        reason: BlockReason::NegativeBalance,
        at,
        operator: None,
        actor: SYSTEM_ACTOR,
        balance,
        transaction_id: Some(transaction_id),
        new_card: None,
    })
}

/// `card.unblocked`: a block lifted, by the back office or by a top-up.
pub(crate) fn unblocked_event(
    card: &CardId,
    reason: BlockReason,
    at: DateTime<Utc>,
    actor: &str,
    balance: Money,
    transaction_id: Option<i64>,
) -> NewEvent {
    NewEvent {
        event_type: EventType::CardUnblocked,
        subject: card_subject(card),
        operator: None,
        time: at,
        data: json!({
            "card_id": card.as_str(),
            "reason": reason.as_str(),
            "unblocked_at": at,
            "actor": actor,
            "card_balance": balance.to_decimal_string(),
            "currency": balance.currency.code(),
            "transaction_id": transaction_id,
        }),
    }
}

fn replaced_event(r: &Replacement, business_date: chrono::NaiveDate) -> NewEvent {
    let amount = r.amount.expect("a transferred replacement has its amount");
    let at = r
        .transferred_at
        .expect("a transferred replacement has its time");
    NewEvent {
        event_type: EventType::CardReplaced,
        subject: card_subject(&r.old_card),
        operator: Some(r.operator_id.clone()),
        time: at,
        data: json!({
            "old_card_id": r.old_card.as_str(),
            "new_card_id": r.new_card.as_str(),
            "operator_id": r.operator_id.as_str(),
            "requested_at": r.requested_at,
            "transferred_at": at,
            "amount": amount.to_decimal_string(),
            "currency": amount.currency.code(),
            "business_date": business_date,
            "transaction_id": r.transaction_id,
        }),
    }
}

const STATUS_OF: &str =
    "SELECT balance, flagged, blocked_reason, blocked_at FROM accounts WHERE id = $1";
const REPLACEMENT_COLUMNS: &str = "old_card_id, new_card_id, operator_id, actor, requested_at, \
    transfer_after, transferred_at, amount, transaction_id";
const RECORD_CHANGE: &str = "INSERT INTO card_status_changes \
    (card_id, action, reason, at, operator_id, actor, note, transaction_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

type StatusRow = (i64, bool, Option<String>, Option<DateTime<Utc>>);
type ReplacementRow = (
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<i64>,
);

fn replacement_from(
    row: ReplacementRow,
    settings: &LedgerSettings,
) -> Result<Replacement, LedgerError> {
    let (old, new, op, actor, requested_at, transfer_after, transferred_at, amount, tx) = row;
    Ok(Replacement {
        old_card: CardId::parse(&old)?,
        new_card: CardId::parse(&new)?,
        operator_id: OperatorId::parse(&op)?,
        actor,
        requested_at,
        transfer_after,
        transferred_at,
        amount: amount.map(|a| Money::new(a, settings.currency)),
        transaction_id: tx,
    })
}

fn block_from(
    reason: Option<String>,
    since: Option<DateTime<Utc>>,
) -> Result<Option<Block>, LedgerError> {
    match (reason, since) {
        (Some(r), Some(since)) => Ok(Some(Block {
            reason: parse_reason(&r)?,
            since,
        })),
        (None, _) => Ok(None),
        (Some(r), None) => Err(LedgerError::Corrupt(format!(
            "a {r} block without its time"
        ))),
    }
}

/// Reads a card's status on `$conn` (a pool or a transaction's connection).
macro_rules! read_status {
    ($conn:expr, $settings:expr, $card:expr) => {{
        let card: &CardId = $card;
        let row: Option<StatusRow> = sqlx::query_as(STATUS_OF)
            .bind(card_account(card))
            .fetch_optional(&mut *$conn)
            .await?;
        let (balance, flagged, reason, since) = row.unwrap_or((0, false, None, None));
        let sql =
            format!("SELECT {REPLACEMENT_COLUMNS} FROM card_replacements WHERE old_card_id = $1");
        let replaced_by: Option<ReplacementRow> = sqlx::query_as(&sql)
            .bind(card.as_str())
            .fetch_optional(&mut *$conn)
            .await?;
        let sql =
            format!("SELECT {REPLACEMENT_COLUMNS} FROM card_replacements WHERE new_card_id = $1");
        let replaces: Option<ReplacementRow> = sqlx::query_as(&sql)
            .bind(card.as_str())
            .fetch_optional(&mut *$conn)
            .await?;
        Result::<CardStatus, LedgerError>::Ok(CardStatus {
            card_id: card.clone(),
            balance: Money::new(balance, $settings.currency),
            flagged,
            block: block_from(reason, since)?,
            replaced_by: replaced_by
                .map(|r| replacement_from(r, $settings))
                .transpose()?,
            replaces: replaces
                .map(|r| replacement_from(r, $settings))
                .transpose()?,
        })
    }};
}

/// Opens a write transaction and locks the card's account row (made, with a zero balance,
/// for a card never seen): whatever moves the card's balance waits for it.
macro_rules! with_card_locked {
    ($db:expr, |$tx:ident| $body:expr) => {
        match $db {
            Database::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                $body
            }
            Database::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
        }
    };
}

/// Locks a card's account row, making it (with a zero balance) for a card never seen: on
/// PostgreSQL the upsert takes the row lock either way; SQLite's write transaction already
/// excludes every other writer.
const LOCK_OR_CREATE_ACCOUNT: &str = "INSERT INTO accounts AS a (id, balance) VALUES ($1, 0) \
    ON CONFLICT (id) DO UPDATE SET blocked_reason = a.blocked_reason";
/// Locks an account row that may not exist (and then makes nothing).
const LOCK_ACCOUNT: &str = "UPDATE accounts SET blocked_reason = blocked_reason WHERE id = $1";

pub(crate) async fn status(
    db: Database<'_>,
    settings: &LedgerSettings,
    card: &CardId,
) -> Result<CardStatus, LedgerError> {
    crate::on_pool!(db, pool => {
        let mut conn = pool.acquire().await?;
        read_status!(conn, settings, card)
    })
}

pub(crate) async fn history(
    db: Database<'_>,
    card: &CardId,
) -> Result<Vec<StatusChange>, LedgerError> {
    type Row = (
        i64,
        String,
        String,
        String,
        DateTime<Utc>,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = crate::on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, card_id, action, reason, at, operator_id, actor, note, transaction_id \
             FROM card_status_changes WHERE card_id = $1 ORDER BY id",
        )
        .bind(card.as_str())
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(
            |(id, card, action, reason, at, operator_id, actor, note, transaction_id)| {
                Ok(StatusChange {
                    id,
                    card_id: CardId::parse(&card)?,
                    action,
                    reason: parse_reason(&reason)?,
                    at,
                    operator_id,
                    actor,
                    note,
                    transaction_id,
                })
            },
        )
        .collect()
}

/// Every blocked card, in card order, `limit` at most after `after`.
pub(crate) async fn blocked(
    db: Database<'_>,
    reason: Option<BlockReason>,
    after: Option<&CardId>,
    limit: i64,
) -> Result<Vec<BlockedCard>, LedgerError> {
    let rows: Vec<(String, String, DateTime<Utc>)> = crate::on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT substr(id, 6), blocked_reason, blocked_at FROM accounts \
             WHERE blocked_reason IS NOT NULL AND id LIKE 'card:%' AND id > $1 \
               AND ($2 IS NULL OR blocked_reason = $2) \
             ORDER BY id LIMIT $3",
        )
        .bind(after.map_or_else(|| "card:".to_string(), card_account))
        .bind(reason.map(BlockReason::as_str))
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(card, reason, since)| {
            Ok(BlockedCard {
                card_id: CardId::parse(&card)?,
                reason: parse_reason(&reason)?,
                since,
            })
        })
        .collect()
}

/// Blocks a card. A card already blocked stays as it is (the same report twice is one
/// block), except that a rider's or the back office's reason takes the place of a
/// NEGATIVE_BALANCE block, which a top-up alone would lift.
pub(crate) async fn block(
    db: Database<'_>,
    settings: &LedgerSettings,
    b: &NewBlock,
) -> Result<StatusOutcome, LedgerError> {
    actor_checked(&b.actor)?;
    if matches!(
        b.reason,
        BlockReason::NegativeBalance | BlockReason::Replaced
    ) {
        return Err(InvalidInput::new(
            "reason",
            format!("{} blocks are the ledger's own", b.reason),
        )
        .into());
    }
    let account = card_account(&b.card);
    with_card_locked!(db, |tx| {
        sqlx::query(LOCK_OR_CREATE_ACCOUNT)
            .bind(&account)
            .execute(&mut *tx)
            .await?;
        let mut status = read_status!(tx, settings, &b.card)?;
        if let Some(block) = &status.block
            && block.reason != BlockReason::NegativeBalance
        {
            tx.rollback().await?;
            return Ok(StatusOutcome {
                status,
                changed: false,
            });
        }
        // As the database keeps it (microseconds), so the answer is what a read gives later.
        let at = b.at.trunc_subsecs(6);
        sqlx::query("UPDATE accounts SET blocked_reason = $2, blocked_at = $3 WHERE id = $1")
            .bind(&account)
            .bind(b.reason.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(RECORD_CHANGE)
            .bind(b.card.as_str())
            .bind("BLOCK")
            .bind(b.reason.as_str())
            .bind(at)
            .bind(b.operator.as_ref().map(OperatorId::as_str))
            .bind(&b.actor)
            .bind(&b.note)
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await?;
        let event = blocked_event(Blocked {
            card: &b.card,
            reason: b.reason,
            at,
            operator: b.operator.as_ref(),
            actor: &b.actor,
            balance: status.balance,
            transaction_id: None,
            new_card: None,
        });
        outbox::write(Conn::from(&mut *tx), &[event]).await?;
        tx.commit().await?;
        status.block = Some(Block {
            reason: b.reason,
            since: at,
        });
        Ok(StatusOutcome {
            status,
            changed: true,
        })
    })
}

/// Lifts a card's block (the back office only). A REPLACED card stays blocked: its balance
/// is another card's now, or about to be.
pub(crate) async fn unblock(
    db: Database<'_>,
    settings: &LedgerSettings,
    u: &NewUnblock,
) -> Result<StatusOutcome, LedgerError> {
    actor_checked(&u.actor)?;
    if u.note.trim().is_empty() {
        return Err(InvalidInput::new("note", "an unblock says why").into());
    }
    let account = card_account(&u.card);
    with_card_locked!(db, |tx| {
        sqlx::query(LOCK_ACCOUNT)
            .bind(&account)
            .execute(&mut *tx)
            .await?;
        let mut status = read_status!(tx, settings, &u.card)?;
        let Some(block) = status.block.clone() else {
            tx.rollback().await?;
            return Ok(StatusOutcome {
                status,
                changed: false,
            });
        };
        if block.reason == BlockReason::Replaced {
            return Err(LedgerError::CardBlocked {
                card: u.card.to_string(),
                reason: BlockReason::Replaced,
            });
        }
        sqlx::query("UPDATE accounts SET blocked_reason = NULL, blocked_at = NULL WHERE id = $1")
            .bind(&account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(RECORD_CHANGE)
            .bind(u.card.as_str())
            .bind("UNBLOCK")
            .bind(block.reason.as_str())
            .bind(u.at)
            .bind(None::<&str>)
            .bind(&u.actor)
            .bind(&u.note)
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await?;
        let event = unblocked_event(&u.card, block.reason, u.at, &u.actor, status.balance, None);
        outbox::write(Conn::from(&mut *tx), &[event]).await?;
        tx.commit().await?;
        status.block = None;
        Ok(StatusOutcome {
            status,
            changed: true,
        })
    })
}

/// Records a replacement: the old card blocked REPLACED at once, its balance to move to
/// `new` after the delay. The new card must be empty and not blocked, and a card is
/// replaced once (the same request again answers with what was recorded).
pub(crate) async fn replace(
    db: Database<'_>,
    settings: &LedgerSettings,
    r: &NewReplacement,
) -> Result<Replacement, LedgerError> {
    actor_checked(&r.actor)?;
    if r.old == r.new {
        return Err(InvalidInput::new("new_card_id", "a card cannot replace itself").into());
    }
    let (old_account, new_account) = (card_account(&r.old), card_account(&r.new));
    with_card_locked!(db, |tx| {
        // Both rows, in id order as every writer takes them.
        let mut accounts = [old_account.as_str(), new_account.as_str()];
        accounts.sort();
        for a in accounts {
            sqlx::query(LOCK_OR_CREATE_ACCOUNT)
                .bind(a)
                .execute(&mut *tx)
                .await?;
        }
        let old = read_status!(tx, settings, &r.old)?;
        if let Some(existing) = old.replaced_by {
            if existing.new_card == r.new && existing.operator_id == r.operator {
                tx.rollback().await?;
                return Ok(existing);
            }
            return Err(LedgerError::Conflict {
                what: "replacement",
                reference: r.old.to_string(),
                detail: format!("card {} was replaced by another card before", r.old),
            });
        }
        if let Some(Block {
            reason: BlockReason::Fraud,
            ..
        }) = old.block
        {
            return Err(LedgerError::CardBlocked {
                card: r.old.to_string(),
                reason: BlockReason::Fraud,
            });
        }
        let new = read_status!(tx, settings, &r.new)?;
        if let Some(block) = new.block {
            return Err(LedgerError::CardBlocked {
                card: r.new.to_string(),
                reason: block.reason,
            });
        }
        if new.balance.minor != 0 || new.replaces.is_some() {
            return Err(InvalidInput::new(
                "new_card_id",
                format!(
                    "card {} is in use (it holds {}{}): a replacement goes to an empty card",
                    r.new,
                    new.balance,
                    if new.replaces.is_some() {
                        " and already replaces a card"
                    } else {
                        ""
                    }
                ),
            )
            .into());
        }
        // As the database keeps it (microseconds), so the answer is what a replay reads back.
        let at = r.at.trunc_subsecs(6);
        let transfer_after = at + settings.replacement_delay;
        sqlx::query(&format!(
            "INSERT INTO card_replacements ({REPLACEMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL)"
        ))
        .bind(r.old.as_str())
        .bind(r.new.as_str())
        .bind(r.operator.as_str())
        .bind(&r.actor)
        .bind(at)
        .bind(transfer_after)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE accounts SET blocked_reason = 'REPLACED', blocked_at = $2 WHERE id = $1",
        )
        .bind(&old_account)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(RECORD_CHANGE)
            .bind(r.old.as_str())
            .bind("BLOCK")
            .bind(BlockReason::Replaced.as_str())
            .bind(at)
            .bind(r.operator.as_str())
            .bind(&r.actor)
            .bind(format!("replaced by {}", r.new))
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await?;
        let event = blocked_event(Blocked {
            card: &r.old,
            reason: BlockReason::Replaced,
            at,
            operator: Some(&r.operator),
            actor: &r.actor,
            balance: old.balance,
            transaction_id: None,
            new_card: Some(&r.new),
        });
        outbox::write(Conn::from(&mut *tx), &[event]).await?;
        tx.commit().await?;
        Ok(Replacement {
            old_card: r.old.clone(),
            new_card: r.new.clone(),
            operator_id: r.operator.clone(),
            actor: r.actor.clone(),
            requested_at: at,
            transfer_after,
            transferred_at: None,
            amount: None,
            transaction_id: None,
        })
    })
}

/// Moves the balance of every replacement due at `now`, each in its own transaction and
/// once: a second run at the same moment finds it done (the replacement's row is locked and
/// read again before anything moves). What the old card holds then moves, all of it; a card
/// at zero or below moves nothing. Returns the replacements it moved.
pub(crate) async fn transfer_due(
    db: Database<'_>,
    settings: &LedgerSettings,
    now: DateTime<Utc>,
) -> Result<Vec<Replacement>, LedgerError> {
    let due: Vec<String> = crate::on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT old_card_id FROM card_replacements \
             WHERE transferred_at IS NULL AND transfer_after <= $1 ORDER BY transfer_after, old_card_id",
        )
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    let mut moved = Vec::with_capacity(due.len());
    for old in due {
        if let Some(r) = transfer_one(db, settings, &old, now).await? {
            moved.push(r);
        }
    }
    Ok(moved)
}

async fn transfer_one(
    db: Database<'_>,
    settings: &LedgerSettings,
    old: &str,
    now: DateTime<Utc>,
) -> Result<Option<Replacement>, LedgerError> {
    let lock_clause = match db {
        Database::Postgres(_) => " FOR UPDATE",
        Database::Sqlite(_) => "",
    };
    with_card_locked!(db, |tx| {
        let row: Option<ReplacementRow> = sqlx::query_as(&format!(
            "SELECT {REPLACEMENT_COLUMNS} FROM card_replacements \
             WHERE old_card_id = $1 AND transferred_at IS NULL{lock_clause}"
        ))
        .bind(old)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut r = replacement_from(row, settings)?;
        let (old_account, new_account) = (card_account(&r.old_card), card_account(&r.new_card));
        let mut accounts = [old_account.as_str(), new_account.as_str()];
        accounts.sort();
        for a in accounts {
            sqlx::query(LOCK_ACCOUNT).bind(a).execute(&mut *tx).await?;
        }
        let held: Option<i64> = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(&old_account)
            .fetch_optional(&mut *tx)
            .await?;
        let amount = held.unwrap_or(0).max(0);
        let transaction_id = if amount > 0 {
            Some(
                post_entry(
                    Conn::from(&mut *tx),
                    "replacement",
                    &[
                        (old_account.clone(), -amount),
                        (new_account.clone(), amount),
                    ],
                )
                .await?,
            )
        } else {
            None
        };
        let business_date = settings.calendar.business_date(now).naive();
        sqlx::query(
            "UPDATE card_replacements SET transferred_at = $2, amount = $3, business_date = $4, \
             transaction_id = $5 WHERE old_card_id = $1",
        )
        .bind(old)
        .bind(now)
        .bind(amount)
        .bind(business_date)
        .bind(transaction_id)
        .execute(&mut *tx)
        .await?;
        r.transferred_at = Some(now);
        r.amount = Some(Money::new(amount, settings.currency));
        r.transaction_id = transaction_id;
        outbox::write(Conn::from(&mut *tx), &[replaced_event(&r, business_date)]).await?;
        tx.commit().await?;
        Ok(Some(r))
    })
}

/// Of a bulk load's new sales `(card, transaction)`, the last top-up of each card whose
/// account (`card:{id}`) is in `negative`: the one that may lift its NEGATIVE_BALANCE block.
pub(crate) fn last_top_ups<'a>(
    sales: impl Iterator<Item = (&'a CardId, i64)>,
    negative: &[String],
) -> (Vec<&'a CardId>, Vec<i64>) {
    let mut last: std::collections::BTreeMap<String, (&CardId, i64)> = Default::default();
    for (card, tx_id) in sales {
        last.insert(card_account(card), (card, tx_id));
    }
    last.into_iter()
        .filter(|(account, _)| negative.contains(account))
        .map(|(_, v)| v)
        .unzip()
}

/// After top-ups in a write transaction of the caller's: lifts the NEGATIVE_BALANCE block of
/// each of `cards` that is back at zero or more, with its history row and event. Returns
/// the cards it unblocked. (The PostgreSQL sale statement does the same in its own SQL.)
pub(crate) async fn lift_negative_blocks(
    conn: Conn<'_>,
    settings: &LedgerSettings,
    cards: &[&CardId],
    transaction_ids: &[i64],
    at: DateTime<Utc>,
) -> Result<Vec<CardId>, LedgerError> {
    macro_rules! body {
        ($conn:expr, $c:path) => {{
            let conn = $conn;
            let mut lifted = Vec::new();
            let mut events = Vec::new();
            for (card, tx_id) in cards.iter().zip(transaction_ids) {
                let balance: Option<i64> = sqlx::query_scalar(
                    "UPDATE accounts SET blocked_reason = NULL, blocked_at = NULL, status_tx = $2 \
                     WHERE id = $1 AND blocked_reason = 'NEGATIVE_BALANCE' AND balance >= 0 \
                     RETURNING balance",
                )
                .bind(card_account(card))
                .bind(tx_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(balance) = balance else { continue };
                sqlx::query(RECORD_CHANGE)
                    .bind(card.as_str())
                    .bind("UNBLOCK")
                    .bind(BlockReason::NegativeBalance.as_str())
                    .bind(at)
                    .bind(None::<&str>)
                    .bind(SYSTEM_ACTOR)
                    .bind(None::<&str>)
                    .bind(tx_id)
                    .execute(&mut *conn)
                    .await?;
                events.push(unblocked_event(
                    card,
                    BlockReason::NegativeBalance,
                    at,
                    SYSTEM_ACTOR,
                    Money::new(balance, settings.currency),
                    Some(*tx_id),
                ));
                lifted.push((*card).clone());
            }
            outbox::write($c(&mut *conn), &events).await?;
            Ok(lifted)
        }};
    }
    match conn {
        Conn::Postgres(c) => body!(c, Conn::Postgres),
        Conn::Sqlite(c) => body!(c, Conn::Sqlite),
    }
}

/// After a validation batch on SQLite, in its write transaction: blocks NEGATIVE_BALANCE
/// each of `cards` (with its balance after the batch) that is below −limit and not blocked.
pub(crate) async fn block_negative_sqlite(
    conn: &mut sqlx::SqliteConnection,
    settings: &LedgerSettings,
    cards: &[(CardId, i64)],
    transaction_id: i64,
    at: DateTime<Utc>,
) -> Result<usize, LedgerError> {
    let mut events = Vec::new();
    for (card, balance) in cards {
        if *balance >= -settings.negative_limit {
            continue;
        }
        let changed = sqlx::query(
            "UPDATE accounts SET blocked_reason = 'NEGATIVE_BALANCE', blocked_at = $2, status_tx = $3 \
             WHERE id = $1 AND blocked_reason IS NULL",
        )
        .bind(card_account(card))
        .bind(at)
        .bind(transaction_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        events.push(negative_block_event(
            card,
            at,
            Money::new(*balance, settings.currency),
            transaction_id,
        ));
    }
    record_automatic_blocks(Conn::Sqlite(conn), &events, transaction_id, at).await?;
    Ok(events.len())
}

/// The history rows of the NEGATIVE_BALANCE blocks whose events are `events`, and the events.
pub(crate) async fn record_automatic_blocks(
    conn: Conn<'_>,
    events: &[NewEvent],
    transaction_id: i64,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    if events.is_empty() {
        return Ok(());
    }
    macro_rules! body {
        ($conn:expr, $c:path) => {{
            let conn = $conn;
            for e in events {
                let card = e.data["card_id"].as_str().unwrap_or_default();
                sqlx::query(RECORD_CHANGE)
                    .bind(card)
                    .bind("BLOCK")
                    .bind(BlockReason::NegativeBalance.as_str())
                    .bind(at)
                    .bind(None::<&str>)
                    .bind(SYSTEM_ACTOR)
                    .bind(None::<&str>)
                    .bind(transaction_id)
                    .execute(&mut *conn)
                    .await?;
            }
            outbox::write($c(&mut *conn), events).await?;
            Ok(())
        }};
    }
    match conn {
        Conn::Postgres(c) => body!(c, Conn::Postgres),
        Conn::Sqlite(c) => body!(c, Conn::Sqlite),
    }
}

/// Why a top-up of the card in `reason`'s state is refused, if it is.
pub(crate) fn top_up_refusal(card: &CardId, reason: Option<&str>) -> Result<(), LedgerError> {
    match reason.map(parse_reason).transpose()? {
        Some(r) if r.refuses_top_ups() => Err(LedgerError::CardBlocked {
            card: card.to_string(),
            reason: r,
        }),
        _ => Ok(()),
    }
}

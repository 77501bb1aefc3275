//! The records the ledger takes and gives back: sales, voids, fare payments, field
//! validations, card balances and the invariant report.
//!
//! Journal convention: a posting's amount is signed, credit positive and debit negative, so
//! every transaction's postings sum to zero and a card account's balance is the stored value
//! the rider holds. Accounts are named `card:{card_id}`, `operator:{id}:receivable` and
//! `fares:{transport_operator_id}`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::business_date::BusinessDate;
use crate::ids::{
    CardId, DeviceId, OperatorId, OperatorRef, PaymentRef, PointOfSale, RouteId,
    TransportOperatorId,
};
use crate::money::Money;

pub type SaleId = i64;
pub type PaymentId = i64;
pub type TransactionId = i64;

/// The time now, to the microsecond: what PostgreSQL keeps, so an instant reads back as it
/// was written on either backend.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

pub fn card_account(card: &CardId) -> String {
    format!("card:{card}")
}

pub fn receivable_account(operator: &OperatorId) -> String {
    format!("operator:{operator}:receivable")
}

pub fn fares_account(transport_operator: &TransportOperatorId) -> String {
    format!("fares:{transport_operator}")
}

/// A top-up as an operator asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSale {
    pub operator_id: OperatorId,
    pub operator_ref: OperatorRef,
    pub card_id: CardId,
    pub amount: Money,
    pub point_of_sale: PointOfSale,
    pub occurred_at: DateTime<Utc>,
}

impl NewSale {
    /// The sale as recorded now: what the operator sent plus what the ledger gave it.
    pub(crate) fn recorded(
        &self,
        id: SaleId,
        business_date: BusinessDate,
        transaction_id: TransactionId,
    ) -> Sale {
        Sale {
            id,
            operator_id: self.operator_id.clone(),
            operator_ref: self.operator_ref.clone(),
            card_id: self.card_id.clone(),
            amount: self.amount,
            point_of_sale: self.point_of_sale.clone(),
            occurred_at: self.occurred_at,
            business_date,
            transaction_id,
            void: None,
        }
    }
}

/// A recorded top-up, with its void if it was voided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sale {
    pub id: SaleId,
    pub operator_id: OperatorId,
    pub operator_ref: OperatorRef,
    pub card_id: CardId,
    pub amount: Money,
    pub point_of_sale: PointOfSale,
    pub occurred_at: DateTime<Utc>,
    pub business_date: BusinessDate,
    pub transaction_id: TransactionId,
    pub void: Option<Void>,
}

impl Sale {
    /// Whether `new` asks for the same sale as this one (a replay), judged on what the
    /// operator sends: card, amount and point of sale. `occurred_at` is the time we received
    /// it and differs on every retry.
    pub fn same_request(&self, new: &NewSale) -> bool {
        self.card_id == new.card_id
            && self.amount == new.amount
            && self.point_of_sale == new.point_of_sale
    }

    pub fn differences(&self, new: &NewSale) -> String {
        let mut d = Vec::new();
        if self.card_id != new.card_id {
            d.push(format!("card_id {} vs {}", self.card_id, new.card_id));
        }
        if self.amount != new.amount {
            d.push(format!("amount {} vs {}", self.amount, new.amount));
        }
        if self.point_of_sale != new.point_of_sale {
            d.push(format!(
                "point_of_sale {} vs {}",
                self.point_of_sale, new.point_of_sale
            ));
        }
        d.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Void {
    pub voided_at: DateTime<Utc>,
    pub business_date: BusinessDate,
    pub transaction_id: TransactionId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleReceipt {
    pub sale: Sale,
    /// The card's balance after the sale (on a replay: the balance now).
    pub card_balance: Money,
    /// True when the sale had been recorded before and nothing was posted this time.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidReceipt {
    pub sale: Sale,
    pub card_balance: Money,
}

/// An online fare payment as an operator asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub operator_id: OperatorId,
    pub payment_ref: PaymentRef,
    pub card_id: CardId,
    pub amount: Money,
    pub route_id: RouteId,
    pub transport_operator_id: TransportOperatorId,
    pub occurred_at: DateTime<Utc>,
}

impl NewPayment {
    /// The payment as recorded now.
    pub(crate) fn recorded(
        &self,
        id: PaymentId,
        business_date: BusinessDate,
        transaction_id: TransactionId,
    ) -> Payment {
        Payment {
            id,
            operator_id: self.operator_id.clone(),
            payment_ref: self.payment_ref.clone(),
            card_id: self.card_id.clone(),
            amount: self.amount,
            route_id: self.route_id.clone(),
            transport_operator_id: self.transport_operator_id.clone(),
            occurred_at: self.occurred_at,
            business_date,
            transaction_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: PaymentId,
    pub operator_id: OperatorId,
    pub payment_ref: PaymentRef,
    pub card_id: CardId,
    pub amount: Money,
    pub route_id: RouteId,
    pub transport_operator_id: TransportOperatorId,
    pub occurred_at: DateTime<Utc>,
    pub business_date: BusinessDate,
    pub transaction_id: TransactionId,
}

impl Payment {
    pub fn same_request(&self, new: &NewPayment) -> bool {
        self.card_id == new.card_id
            && self.amount == new.amount
            && self.route_id == new.route_id
            && self.transport_operator_id == new.transport_operator_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    pub payment: Payment,
    pub card_balance: Money,
    pub replayed: bool,
}

/// A tap at a field validator. It was honoured at the gate already, so the ledger posts it
/// whatever the card's shadow balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub event_id: String,
    pub device_id: DeviceId,
    pub device_seq: i64,
    pub card_id: CardId,
    pub fare: Money,
    pub route_id: RouteId,
    pub transport_operator_id: TransportOperatorId,
    pub occurred_at: DateTime<Utc>,
    /// The action-list version the device had applied, when it says (older devices don't).
    pub hotlist_version: Option<i64>,
}

/// What posting a batch of validations did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationBatchOutcome {
    /// Validations posted now.
    pub posted: usize,
    /// Validations already posted before (or twice in the batch): not posted again.
    pub duplicates: usize,
    /// The journal transaction of the batch, when anything was posted.
    pub transaction_id: Option<TransactionId>,
    /// Cards whose balance went below zero with this batch, now flagged.
    pub flagged_cards: Vec<CardId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardBalance {
    pub card_id: CardId,
    pub balance: Money,
    /// Set when field validations took the card below zero.
    pub flagged: bool,
}

/// One movement on a card as a rider would read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardEntry {
    pub transaction_id: TransactionId,
    pub kind: EntryKind,
    /// Signed: positive adds stored value, negative takes it.
    pub amount: Money,
    pub occurred_at: DateTime<Utc>,
    /// The sale's operator ref, the payment ref, or `device_id#seq` for a tap.
    pub reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Sale,
    Void,
    Payment,
    Validation,
    /// The balance moved from a replaced card to its new card.
    Replacement,
}

impl EntryKind {
    pub fn parse(s: &str) -> Option<EntryKind> {
        Some(match s {
            "sale" => EntryKind::Sale,
            "void" => EntryKind::Void,
            "payment" => EntryKind::Payment,
            "validation" => EntryKind::Validation,
            "replacement" => EntryKind::Replacement,
            _ => return None,
        })
    }
}

/// The result of checking the ledger's invariants. Sound when every list is empty and the
/// total is zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvariantReport {
    pub transactions: i64,
    pub postings: i64,
    /// Transactions whose postings do not sum to zero, with the sum.
    pub unbalanced_transactions: Vec<(TransactionId, i64)>,
    /// Transactions with no postings, or postings of no transaction.
    pub orphans: Vec<TransactionId>,
    /// Sum of all cached balances; zero in a sound ledger.
    pub total_balance: i64,
    /// Accounts whose cached balance is not the sum of their postings: (account, cached, sum).
    pub mismatched_accounts: Vec<(String, i64, i64)>,
}

impl InvariantReport {
    pub fn is_sound(&self) -> bool {
        self.unbalanced_transactions.is_empty()
            && self.orphans.is_empty()
            && self.total_balance == 0
            && self.mismatched_accounts.is_empty()
    }
}

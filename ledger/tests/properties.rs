//! Random sequences of sales, voids, payments and validations, replayed against a simple
//! model of card balances: after every step the ledger's invariants hold and every card's
//! balance is what the model says. Runs on SQLite for many cases and on PostgreSQL for a few.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use ledger::{Ledger, LedgerError};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Step {
    Sale { card: u8, minor: i64, reference: u8 },
    Void { sale: u8 },
    Pay { card: u8, minor: i64, reference: u8 },
    Validate { taps: Vec<(u8, i64, u8, u8)> },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4, 1i64..500_000, 0u8..12).prop_map(|(card, minor, reference)| Step::Sale {
            card,
            minor,
            reference
        }),
        (0u8..12).prop_map(|sale| Step::Void { sale }),
        (0u8..4, 1i64..400_000, 0u8..12).prop_map(|(card, minor, reference)| Step::Pay {
            card,
            minor,
            reference
        }),
        prop::collection::vec((0u8..4, 1i64..300_000, 0u8..3, 0u8..6), 1..8)
            .prop_map(|taps| Step::Validate { taps }),
    ]
}

/// What the balances must be, kept by hand.
#[derive(Default)]
struct Model {
    balances: BTreeMap<String, i64>,
    sales: BTreeMap<u8, (i64, String, i64, bool)>, // ref -> (sale id, card, amount, voided)
    payments: BTreeSet<u8>,
    taps: BTreeSet<(u8, u8)>,
    /// Cards validations took below zero and no top-up has brought back (NEGATIVE_BALANCE).
    blocked: BTreeSet<String>,
}

fn card_name(i: u8) -> String {
    format!("CARD{i:04}")
}

async fn run(ledger: Arc<dyn Ledger>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    with_operators(&ledger, &["OP001"]).await;
    let mut model = Model::default();
    for step in steps {
        match step {
            Step::Sale {
                card,
                minor,
                reference,
            } => {
                let r = ledger
                    .record_sale(&sale(
                        "OP001",
                        &format!("S{reference}"),
                        &card_name(card),
                        minor,
                    ))
                    .await;
                match (model.sales.get(&reference), r) {
                    (None, Ok(receipt)) => {
                        let balance = model.balances.entry(card_name(card)).or_default();
                        *balance += minor;
                        if *balance >= 0 {
                            model.blocked.remove(&card_name(card));
                        }
                        model
                            .sales
                            .insert(reference, (receipt.sale.id, card_name(card), minor, false));
                    }
                    (Some((_, c, m, _)), Ok(receipt)) => {
                        prop_assert!(receipt.replayed && *c == card_name(card) && *m == minor)
                    }
                    (Some(_), Err(LedgerError::Conflict { .. })) => {}
                    (known, other) => prop_assert!(false, "sale {known:?}: {other:?}"),
                }
            }
            Step::Void { sale } => {
                let Some((id, card, amount, voided)) = model.sales.get(&sale).cloned() else {
                    continue;
                };
                let r = ledger
                    .void_sale(&op_id("OP001"), id, t0() + Duration::minutes(1))
                    .await;
                let balance = model.balances[&card];
                match r {
                    Ok(_) => {
                        prop_assert!(!voided && balance >= amount);
                        *model.balances.get_mut(&card).unwrap() -= amount;
                        model.sales.get_mut(&sale).unwrap().3 = true;
                    }
                    Err(LedgerError::AlreadyVoided(_)) => prop_assert!(voided),
                    Err(LedgerError::InsufficientBalance { .. }) => prop_assert!(balance < amount),
                    Err(other) => prop_assert!(false, "void: {other:?}"),
                }
            }
            Step::Pay {
                card,
                minor,
                reference,
            } => {
                let r = ledger
                    .pay_fare(&payment(
                        "OP001",
                        &format!("P{reference}"),
                        &card_name(card),
                        minor,
                    ))
                    .await;
                let balance = model.balances.get(&card_name(card)).copied().unwrap_or(0);
                let blocked = model.blocked.contains(&card_name(card));
                match r {
                    Ok(receipt) if receipt.replayed => {
                        prop_assert!(model.payments.contains(&reference))
                    }
                    Ok(_) => {
                        prop_assert!(
                            !model.payments.contains(&reference) && balance >= minor && !blocked
                        );
                        *model.balances.entry(card_name(card)).or_default() -= minor;
                        model.payments.insert(reference);
                    }
                    Err(LedgerError::InsufficientBalance { .. }) => {
                        prop_assert!(balance < minor && !blocked)
                    }
                    Err(LedgerError::CardBlocked { .. }) => prop_assert!(blocked),
                    Err(LedgerError::Conflict { .. }) => {
                        prop_assert!(model.payments.contains(&reference))
                    }
                    Err(other) => prop_assert!(false, "payment: {other:?}"),
                }
            }
            Step::Validate { taps } => {
                let batch: Vec<_> = taps
                    .iter()
                    .map(|(card, minor, device, seq)| {
                        validation(
                            &format!("DEV{device}"),
                            i64::from(*seq),
                            &card_name(*card),
                            *minor,
                        )
                    })
                    .collect();
                let out = ledger.post_validations(&batch).await.unwrap();
                let mut posted = 0;
                for (card, minor, device, seq) in taps {
                    if model.taps.insert((device, seq)) {
                        *model.balances.entry(card_name(card)).or_default() -= minor;
                        posted += 1;
                    }
                }
                prop_assert_eq!(out.posted, posted);
                for (name, balance) in &model.balances {
                    if *balance < 0 {
                        model.blocked.insert(name.clone());
                    }
                }
            }
        }
        let report = ledger.check_invariants().await.unwrap();
        prop_assert!(report.is_sound(), "{:?}", report);
        for (name, expected) in &model.balances {
            let got = ledger
                .card_balance(&card(name))
                .await
                .unwrap()
                .balance
                .minor;
            prop_assert_eq!(got, *expected, "card {}", name);
            let status = ledger.card_status(&card(name)).await.unwrap();
            prop_assert_eq!(
                status.block.is_some(),
                model.blocked.contains(name),
                "card {} blocked",
                name
            );
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn sqlite_invariants_hold_after_every_step(steps in prop::collection::vec(step(), 1..40)) {
        runtime().block_on(async {
            let db = testbed::sqlite_ledger(settings()).await;
            run(db.ledger.clone(), steps).await
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn postgres_invariants_hold_after_every_step(steps in prop::collection::vec(step(), 1..40)) {
        runtime().block_on(async {
            let Some(db) = testbed::postgres_ledger(settings()).await else {
                return Ok(());
            };
            run(db.ledger.clone(), steps).await
        })?;
    }
}

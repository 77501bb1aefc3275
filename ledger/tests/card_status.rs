//! Card status on both backends (DESIGN.md, Hotlists): blocks refuse what they must and
//! nothing else, NEGATIVE_BALANCE blocks come and go with the balance, a replacement moves
//! the old card's balance once, and a payment racing a block never passes after it.

mod support;

use std::sync::Arc;

use chrono::{Duration, Utc};
use ledger::card_status::{BlockReason, NewBlock, NewReplacement, NewUnblock};
use ledger::journal::EntryKind;
use ledger::outbox::EventType;
use ledger::{Ledger, LedgerError};
use support::*;

on_both_backends!(
    a_lost_card_takes_no_top_up_and_pays_nothing_until_unblocked,
    validations_below_the_limit_block_the_card_and_a_top_up_lifts_it,
    a_riders_report_takes_the_place_of_a_negative_balance_block,
    a_replacement_moves_the_old_balance_once_even_at_once,
    a_negative_old_card_moves_nothing,
    a_payment_racing_a_block_never_passes_after_it,
);

fn report(card_id: &str, reason: BlockReason) -> NewBlock {
    NewBlock {
        card: card(card_id),
        reason,
        at: Utc::now(),
        operator: Some(op_id("OP001")),
        actor: "clerk-7".into(),
        note: Some("left on the bus".into()),
    }
}

fn unblock(card_id: &str) -> NewUnblock {
    NewUnblock {
        card: card(card_id),
        at: Utc::now(),
        actor: "ana".into(),
        note: "the rider found it".into(),
    }
}

fn blocked_as(err: LedgerError) -> BlockReason {
    match err {
        LedgerError::CardBlocked { reason, .. } => reason,
        other => panic!("expected card-blocked, got {other:?}"),
    }
}

async fn a_lost_card_takes_no_top_up_and_pays_nothing_until_unblocked(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 300_000)).await;
    let blocked = ledger
        .block_card(&report("CARD0001", BlockReason::Lost))
        .await
        .unwrap();
    assert!(blocked.changed);
    assert_eq!(
        blocked.status.block.as_ref().map(|b| b.reason),
        Some(BlockReason::Lost)
    );
    assert_sound(&ledger).await;

    let paid = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert_eq!(blocked_as(paid), BlockReason::Lost);
    let topped = ledger
        .record_sale(&sale("OP001", "R-2", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert_eq!(blocked_as(topped), BlockReason::Lost);
    // The bulk path refuses it too, and loads nothing of its batch.
    let bulk = ledger
        .import_sales(&[
            sale("OP001", "R-3", "CARD0009", 1_000),
            sale("OP001", "R-4", "CARD0001", 1_000),
        ])
        .await
        .unwrap_err();
    assert_eq!(blocked_as(bulk), BlockReason::Lost);
    assert_eq!(balance(&ledger, "CARD0009").await, cop(0));
    assert_eq!(balance(&ledger, "CARD0001").await, cop(300_000));
    assert_sound(&ledger).await;

    // The same report again is the same block.
    let again = ledger
        .block_card(&report("CARD0001", BlockReason::Stolen))
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(
        again.status.block.map(|b| b.reason),
        Some(BlockReason::Lost)
    );
    // Only the back office's reasons are the back office's.
    let own = ledger
        .block_card(&report("CARD0001", BlockReason::NegativeBalance))
        .await
        .unwrap_err();
    assert!(matches!(own, LedgerError::Invalid(_)), "{own:?}");

    let lifted = ledger.unblock_card(&unblock("CARD0001")).await.unwrap();
    assert!(lifted.changed && lifted.status.block.is_none());
    ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 1_000))
        .await
        .unwrap();
    // The refused references were never recorded: they are free for the real thing.
    sell(&ledger, sale("OP001", "R-2", "CARD0001", 1_000)).await;
    assert_eq!(balance(&ledger, "CARD0001").await, cop(300_000));

    let history = ledger.card_history(&card("CARD0001")).await.unwrap();
    let seen: Vec<(&str, BlockReason, Option<&str>, &str)> = history
        .iter()
        .map(|c| {
            (
                c.action.as_str(),
                c.reason,
                c.operator_id.as_deref(),
                c.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("BLOCK", BlockReason::Lost, Some("OP001"), "clerk-7"),
            ("UNBLOCK", BlockReason::Lost, None, "ana"),
        ]
    );
    let heard = testbed::events::written(
        &*ledger,
        &[EventType::CardBlocked, EventType::CardUnblocked],
    )
    .await;
    assert_eq!(
        heard
            .iter()
            .map(|(t, d)| (t.as_str(), d["reason"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("card.blocked", "LOST"), ("card.unblocked", "LOST")]
    );
    assert_eq!(heard[0].1["operator_id"], "OP001");
    assert_sound(&ledger).await;
}

async fn validations_below_the_limit_block_the_card_and_a_top_up_lifts_it(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 2_000)).await;
    // To zero is not below zero: the card stays active.
    ledger
        .post_validations(&[validation("GATE-1", 1, "CARD0001", 2_000)])
        .await
        .unwrap();
    let status = ledger.card_status(&card("CARD0001")).await.unwrap();
    assert!(status.block.is_none());
    // Below zero, with a card never topped up in the same batch.
    ledger
        .post_validations(&[
            validation("GATE-1", 2, "CARD0001", 500),
            validation("GATE-2", 1, "CARD0002", 700),
        ])
        .await
        .unwrap();
    for c in ["CARD0001", "CARD0002"] {
        let status = ledger.card_status(&card(c)).await.unwrap();
        assert_eq!(
            status.block.map(|b| b.reason),
            Some(BlockReason::NegativeBalance),
            "{c}"
        );
    }
    // A blocked card pays nothing online, whatever its balance.
    let refused = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 100))
        .await
        .unwrap_err();
    assert_eq!(blocked_as(refused), BlockReason::NegativeBalance);
    // Further taps are posted (they were honoured at the gate) and block nothing twice.
    ledger
        .post_validations(&[validation("GATE-1", 3, "CARD0001", 500)])
        .await
        .unwrap();
    assert_eq!(balance(&ledger, "CARD0001").await, cop(-1_000));
    // A top-up that leaves it below zero leaves it blocked; the one that reaches zero lifts it.
    sell(&ledger, sale("OP001", "R-2", "CARD0001", 400)).await;
    assert!(
        ledger
            .card_status(&card("CARD0001"))
            .await
            .unwrap()
            .block
            .is_some()
    );
    sell(&ledger, sale("OP001", "R-3", "CARD0001", 600)).await;
    let lifted = ledger.card_status(&card("CARD0001")).await.unwrap();
    assert!(lifted.block.is_none(), "{lifted:?}");
    assert_eq!(lifted.balance, cop(0));
    // The bulk path lifts too.
    ledger
        .import_sales(&[sale("OP001", "R-4", "CARD0002", 5_000)])
        .await
        .unwrap();
    assert!(
        ledger
            .card_status(&card("CARD0002"))
            .await
            .unwrap()
            .block
            .is_none()
    );

    let history = ledger.card_history(&card("CARD0001")).await.unwrap();
    let seen: Vec<(&str, &str)> = history
        .iter()
        .map(|c| (c.action.as_str(), c.actor.as_str()))
        .collect();
    assert_eq!(seen, [("BLOCK", "recaudo"), ("UNBLOCK", "recaudo")]);
    assert!(history.iter().all(|c| c.transaction_id.is_some()));
    let heard = testbed::events::written(
        &*ledger,
        &[EventType::CardBlocked, EventType::CardUnblocked],
    )
    .await;
    let cards: Vec<(&str, &str)> = heard
        .iter()
        .map(|(t, d)| (t.as_str(), d["card_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cards,
        [
            ("card.blocked", "CARD0001"),
            ("card.blocked", "CARD0002"),
            ("card.unblocked", "CARD0001"),
            ("card.unblocked", "CARD0002"),
        ]
    );
    assert_eq!(heard[2].1["card_balance"], "0.00");
    assert_sound(&ledger).await;
}

async fn a_riders_report_takes_the_place_of_a_negative_balance_block(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    ledger
        .post_validations(&[validation("GATE-1", 1, "CARD0001", 500)])
        .await
        .unwrap();
    let lost = ledger
        .block_card(&report("CARD0001", BlockReason::Lost))
        .await
        .unwrap();
    assert!(lost.changed);
    // Now a top-up would put money on a lost card: refused, and nothing lifts the block.
    let refused = ledger
        .record_sale(&sale("OP001", "R-1", "CARD0001", 500))
        .await
        .unwrap_err();
    assert_eq!(blocked_as(refused), BlockReason::Lost);
    assert_eq!(
        ledger
            .card_status(&card("CARD0001"))
            .await
            .unwrap()
            .block
            .map(|b| b.reason),
        Some(BlockReason::Lost)
    );
    assert_sound(&ledger).await;
}

fn replacement(old: &str, new: &str) -> NewReplacement {
    NewReplacement {
        old: card(old),
        new: card(new),
        operator: op_id("OP001"),
        actor: "clerk-7".into(),
        at: Utc::now(),
    }
}

async fn a_replacement_moves_the_old_balance_once_even_at_once(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 300_000)).await;
    sell(&ledger, sale("OP001", "R-2", "CARD0003", 1_000)).await;
    ledger
        .block_card(&report("CARD0001", BlockReason::Lost))
        .await
        .unwrap();
    // The new card must be empty and not blocked.
    let in_use = ledger
        .replace_card(&replacement("CARD0001", "CARD0003"))
        .await
        .unwrap_err();
    assert!(matches!(in_use, LedgerError::Invalid(_)), "{in_use:?}");
    let r = ledger
        .replace_card(&replacement("CARD0001", "CARD0002"))
        .await
        .unwrap();
    assert_eq!(r.transfer_after - r.requested_at, Duration::hours(24));
    let old = ledger.card_status(&card("CARD0001")).await.unwrap();
    assert_eq!(old.block.map(|b| b.reason), Some(BlockReason::Replaced));
    // The same request again is the same replacement; another new card is a conflict.
    let again = ledger
        .replace_card(&replacement("CARD0001", "CARD0002"))
        .await
        .unwrap();
    assert_eq!(again.requested_at, r.requested_at);
    let other = ledger
        .replace_card(&replacement("CARD0001", "CARD0004"))
        .await
        .unwrap_err();
    assert!(matches!(other, LedgerError::Conflict { .. }), "{other:?}");
    // A replaced card stays blocked: its balance is promised to the new card.
    let stay = ledger.unblock_card(&unblock("CARD0001")).await.unwrap_err();
    assert_eq!(blocked_as(stay), BlockReason::Replaced);

    // Not due yet: nothing moves.
    assert!(
        ledger
            .transfer_replacements(Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    // A tap on the old card before the move is posted and moves with the rest.
    ledger
        .post_validations(&[validation("GATE-1", 1, "CARD0001", 2_950)])
        .await
        .unwrap();
    let due = Utc::now() + Duration::hours(25);
    let (a, b) = tokio::join!(
        ledger.transfer_replacements(due),
        ledger.transfer_replacements(due)
    );
    let moved: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(moved.len(), 1, "moved once: {moved:?}");
    assert_eq!(moved[0].amount, Some(cop(297_050)));
    assert!(ledger.transfer_replacements(due).await.unwrap().is_empty());
    assert_eq!(balance(&ledger, "CARD0001").await, cop(0));
    assert_eq!(balance(&ledger, "CARD0002").await, cop(297_050));
    let entries = ledger.card_entries(&card("CARD0002")).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Replacement);
    assert_eq!(entries[0].reference, "from CARD0001");
    let new = ledger.card_status(&card("CARD0002")).await.unwrap();
    assert_eq!(new.replaces.map(|r| r.old_card), Some(card("CARD0001")));
    // A late tap on the old card is still posted: it was honoured at the gate.
    ledger
        .post_validations(&[validation("GATE-1", 2, "CARD0001", 2_950)])
        .await
        .unwrap();
    assert_eq!(balance(&ledger, "CARD0001").await, cop(-2_950));
    let heard = testbed::events::written(&*ledger, &[EventType::CardReplaced]).await;
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].1["amount"], "2970.50");
    assert_sound(&ledger).await;
}

async fn a_negative_old_card_moves_nothing(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    ledger
        .post_validations(&[validation("GATE-1", 1, "CARD0001", 500)])
        .await
        .unwrap();
    ledger
        .replace_card(&replacement("CARD0001", "CARD0002"))
        .await
        .unwrap();
    let moved = ledger
        .transfer_replacements(Utc::now() + Duration::hours(25))
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        (moved[0].amount, moved[0].transaction_id),
        (Some(cop(0)), None)
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(-500));
    assert_eq!(balance(&ledger, "CARD0002").await, cop(0));
    assert_sound(&ledger).await;
}

async fn a_payment_racing_a_block_never_passes_after_it(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 50 * 1_000)).await;
    let blocked_at = Arc::new(std::sync::Mutex::new(None));
    let payments: Vec<_> = (0..50)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(i % 10)).await;
                let started = std::time::Instant::now();
                let paid = ledger
                    .pay_fare(&payment("OP001", &format!("P-{i}"), "CARD0001", 1_000))
                    .await;
                (started, paid)
            })
        })
        .collect();
    let block = {
        let (ledger, blocked_at) = (ledger.clone(), blocked_at.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(4)).await;
            ledger
                .block_card(&report("CARD0001", BlockReason::Stolen))
                .await
                .unwrap();
            *blocked_at.lock().unwrap() = Some(std::time::Instant::now());
        })
    };
    let mut outcomes = Vec::new();
    for p in payments {
        outcomes.push(p.await.unwrap());
    }
    block.await.unwrap();
    let committed = blocked_at.lock().unwrap().expect("the block committed");
    let mut passed = 0;
    for (started, paid) in outcomes {
        match paid {
            Ok(_) => {
                passed += 1;
                assert!(
                    started < committed,
                    "a payment that started after the block committed went through"
                );
            }
            Err(e) => assert_eq!(blocked_as(e), BlockReason::Stolen),
        }
    }
    // And whatever raced, the next payment meets the block.
    let after = ledger
        .pay_fare(&payment("OP001", "P-after", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert_eq!(blocked_as(after), BlockReason::Stolen);
    assert_eq!(
        balance(&ledger, "CARD0001").await,
        cop(50 * 1_000 - passed * 1_000)
    );
    assert_sound(&ledger).await;
}

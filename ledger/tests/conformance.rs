//! The ledger's rules, checked the same way on PostgreSQL and on SQLite.

mod support;

use std::sync::Arc;

use chrono::Duration;
use ledger::correction::{CorrectionAccount, CorrectionKind, NewCorrection};
use ledger::idempotency::KeyClaim;
use ledger::journal::{EntryKind, SaleId};
use ledger::{BusinessDate, Ledger, LedgerError, OperatorPatch, VoidWindow};
use support::*;

on_both_backends!(
    a_replayed_sale_is_one_transaction,
    the_same_ref_with_other_content_is_a_conflict,
    a_void_reverses_the_sale_once,
    another_operator_cannot_void_the_sale,
    a_void_after_the_window_is_rejected,
    a_spent_top_up_cannot_be_voided,
    a_payment_never_overdraws_and_replays,
    validations_post_even_below_zero_and_flag_the_card,
    unknown_and_inactive_operators_cannot_sell,
    operators_are_registered_listed_and_changed,
    terms_are_versioned_by_the_date_they_take_effect,
    sales_are_listed_by_business_date,
    concurrent_payments_never_overdraw,
    concurrent_identical_sales_make_one_transaction,
    idempotency_keys_claim_replay_and_expire,
    a_bulk_import_is_one_transaction_per_new_sale,
    bulk_voids_are_checked_like_one_void_each,
    two_imports_of_the_same_sales_at_once_record_each_once,
    a_correction_posts_once_per_document_even_at_once,
    a_correction_that_does_not_balance_is_refused,
    a_settlement_posts_commission_and_tax_once_per_change,
    a_bank_entry_posts_once_even_at_once,
    an_unidentified_deposit_is_assigned_once,
    the_statement_runs_to_the_receivable,
    what_was_owed_is_known_as_of_each_day,
);

async fn two_imports_of_the_same_sales_at_once_record_each_once(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let batch: Vec<_> = (0..500)
        .map(|i| {
            sale(
                "OP001",
                &format!("C-{i}"),
                &format!("CARD{:04}", i % 9),
                1_000 + i,
            )
        })
        .collect();
    let (a, b) = (ledger.clone(), ledger.clone());
    let (b1, b2) = (batch.clone(), batch.clone());
    let (first, second) = tokio::join!(
        tokio::spawn(async move { a.import_sales(&b1).await }),
        tokio::spawn(async move { b.import_sales(&b2).await })
    );
    let (first, second) = (first.unwrap().unwrap(), second.unwrap().unwrap());
    for (i, (x, y)) in first.iter().zip(&second).enumerate() {
        assert!(
            x.is_some() != y.is_some(),
            "sale {i} recorded by exactly one import"
        );
    }
    let total: i64 = (0..500).map(|i| 1_000 + i).sum();
    let mut held = 0;
    for c in 0..9 {
        held += ledger
            .card_balance(&card(&format!("CARD{c:04}")))
            .await
            .unwrap()
            .balance
            .minor;
    }
    assert_eq!(held, total);
    assert_sound(&ledger).await;
}

async fn bulk_voids_are_checked_like_one_void_each(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let batch: Vec<_> = (0..40)
        .map(|i| {
            sale(
                "OP001",
                &format!("V-{i}"),
                &format!("CARD{:04}", i % 3),
                10_000 + i,
            )
        })
        .collect();
    let ids: Vec<SaleId> = ledger
        .import_sales(&batch)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let at = t0() + Duration::minutes(5);
    let void = |id: SaleId| (op_id("OP001"), id, at);
    // One voided before; one named twice, the second time after its window (as one void
    // at a time, it is already voided by then); the rest once.
    ledger.void_sale(&op_id("OP001"), ids[0], at).await.unwrap();
    let mut voids: Vec<_> = ids[..20].iter().map(|id| void(*id)).collect();
    voids.push((op_id("OP001"), ids[5], t0() + Duration::hours(3)));
    assert_eq!(ledger.import_voids(&voids).await.unwrap(), 19);
    for (i, id) in ids.iter().enumerate() {
        let sale = ledger.sale(&op_id("OP001"), *id).await.unwrap().unwrap();
        assert_eq!(sale.void.is_some(), i < 20, "sale {i}");
    }
    for c in 0..3i64 {
        let expected: i64 = (20..40).filter(|i| i % 3 == c).map(|i| 10_000 + i).sum();
        let balance = ledger
            .card_balance(&card(&format!("CARD{c:04}")))
            .await
            .unwrap();
        assert_eq!(balance.balance, cop(expected), "CARD{c:04}");
    }
    // Any other refusal fails the whole call and changes nothing: another operator's
    // sale, a closed window.
    let err = ledger
        .import_voids(&[void(ids[20]), (op_id("OP002"), ids[21], at)])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::SaleNotFound(_)), "{err:?}");
    let late = t0() + Duration::hours(2);
    let err = ledger
        .import_voids(&[void(ids[22]), (op_id("OP001"), ids[23], late)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::VoidWindowClosed { .. }),
        "{err:?}"
    );
    for id in &ids[20..24] {
        let sale = ledger.sale(&op_id("OP001"), *id).await.unwrap().unwrap();
        assert!(sale.void.is_none(), "nothing changed");
    }
    assert_sound(&ledger).await;
}

async fn a_replayed_sale_is_one_transaction(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let first = sell(&ledger, sale("OP001", "OP001-1", "CARD0001", 2_000_000)).await;
    assert!(!first.replayed);
    assert_eq!(first.card_balance, cop(2_000_000));
    let mut retry = sale("OP001", "OP001-1", "CARD0001", 2_000_000);
    retry.occurred_at += Duration::seconds(3);
    let again = ledger.record_sale(&retry).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.sale.id, first.sale.id);
    assert_eq!(again.sale.transaction_id, first.sale.transaction_id);
    assert_eq!(again.card_balance, cop(2_000_000));
    let entries = ledger.card_entries(&card("CARD0001")).await.unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let report = ledger.check_invariants().await.unwrap();
    assert_eq!((report.transactions, report.postings), (1, 2));
    assert_sound(&ledger).await;
}

async fn the_same_ref_with_other_content_is_a_conflict(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 1_000_000)).await;
    let other_amount = ledger
        .record_sale(&sale("OP001", "R-1", "CARD0001", 1_000_100))
        .await;
    assert!(
        matches!(&other_amount, Err(LedgerError::Conflict { detail, .. }) if detail.contains("amount")),
        "{other_amount:?}"
    );
    let other_card = ledger
        .record_sale(&sale("OP001", "R-1", "CARD0002", 1_000_000))
        .await;
    assert!(
        matches!(&other_card, Err(LedgerError::Conflict { detail, .. }) if detail.contains("card_id")),
        "{other_card:?}"
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(1_000_000));
    assert_eq!(balance(&ledger, "CARD0002").await, cop(0));
    assert_sound(&ledger).await;
}

async fn a_void_reverses_the_sale_once(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let s = sell(&ledger, sale("OP001", "R-1", "CARD0001", 500_000)).await;
    let op = op_id("OP001");
    let at = t0() + Duration::minutes(5);
    let v = ledger.void_sale(&op, s.sale.id, at).await.unwrap();
    assert_eq!(v.card_balance, cop(0));
    assert_eq!(v.sale.void.as_ref().unwrap().voided_at, at);
    let twice = ledger.void_sale(&op, s.sale.id, at).await;
    assert!(
        matches!(twice, Err(LedgerError::AlreadyVoided(id)) if id == s.sale.id),
        "{twice:?}"
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(0));
    let kinds: Vec<EntryKind> = ledger
        .card_entries(&card("CARD0001"))
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EntryKind::Sale, EntryKind::Void]);
    let stored = ledger.sale(&op, s.sale.id).await.unwrap().unwrap();
    assert!(stored.void.is_some());
    assert_sound(&ledger).await;
}

async fn another_operator_cannot_void_the_sale(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OPA", "OPB"]).await;
    let s = sell(&ledger, sale("OPA", "R-1", "CARD0001", 500_000)).await;
    let err = ledger
        .void_sale(&op_id("OPB"), s.sale.id, t0())
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::SaleNotFound(_)), "{err:?}");
    assert!(
        ledger
            .sale(&op_id("OPB"), s.sale.id)
            .await
            .unwrap()
            .is_none()
    );
    let still = ledger
        .sale(&op_id("OPA"), s.sale.id)
        .await
        .unwrap()
        .unwrap();
    assert!(still.void.is_none());
    assert_eq!(balance(&ledger, "CARD0001").await, cop(500_000));
    assert_sound(&ledger).await;
}

async fn a_void_after_the_window_is_rejected(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let s = sell(&ledger, sale("OP001", "R-1", "CARD0001", 500_000)).await;
    let op = op_id("OP001");
    let late = t0() + Duration::minutes(30) + Duration::seconds(1);
    let err = ledger.void_sale(&op, s.sale.id, late).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::VoidWindowClosed { .. }),
        "{err:?}"
    );
    // Exactly at the close is still inside.
    ledger
        .void_sale(&op, s.sale.id, t0() + Duration::minutes(30))
        .await
        .unwrap();
    assert_sound(&ledger).await;
}

async fn a_spent_top_up_cannot_be_voided(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let s = sell(&ledger, sale("OP001", "R-1", "CARD0001", 500_000)).await;
    ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 295_000))
        .await
        .unwrap();
    let err = ledger
        .void_sale(&op_id("OP001"), s.sale.id, t0() + Duration::minutes(6))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientBalance { .. }),
        "{err:?}"
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(205_000));
    assert_sound(&ledger).await;
}

async fn a_payment_never_overdraws_and_replays(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 300_000)).await;
    let paid = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 295_000))
        .await
        .unwrap();
    assert_eq!(paid.card_balance, cop(5_000));
    let replay = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 295_000))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.payment.transaction_id, paid.payment.transaction_id);
    let short = ledger
        .pay_fare(&payment("OP001", "P-2", "CARD0001", 295_000))
        .await
        .unwrap_err();
    match short {
        LedgerError::InsufficientBalance { balance, needed } => {
            assert_eq!((balance, needed), (cop(5_000), cop(295_000)))
        }
        other => panic!("expected insufficient balance, got {other:?}"),
    }
    let conflict = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 1_000))
        .await;
    assert!(
        matches!(conflict, Err(LedgerError::Conflict { .. })),
        "{conflict:?}"
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(5_000));
    assert_sound(&ledger).await;
}

async fn validations_post_even_below_zero_and_flag_the_card(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 300_000)).await;
    let batch = vec![
        validation("GATE-1", 1, "CARD0001", 295_000),
        validation("GATE-1", 2, "CARD0001", 295_000),
        validation("GATE-1", 2, "CARD0001", 295_000), // duplicate inside the batch
        validation("GATE-2", 1, "CARD0002", 295_000), // a card never topped up
    ];
    let out = ledger.post_validations(&batch).await.unwrap();
    assert_eq!((out.posted, out.duplicates), (3, 1));
    let mut flagged: Vec<String> = out.flagged_cards.iter().map(|c| c.to_string()).collect();
    flagged.sort();
    assert_eq!(flagged, ["CARD0001", "CARD0002"]);
    let b = ledger.card_balance(&card("CARD0001")).await.unwrap();
    assert_eq!((b.balance, b.flagged), (cop(-290_000), true));
    // The whole batch again is a no-op.
    let again = ledger.post_validations(&batch).await.unwrap();
    assert_eq!(
        (again.posted, again.duplicates, again.transaction_id),
        (0, 4, None)
    );
    assert_eq!(balance(&ledger, "CARD0001").await, cop(-290_000));
    let entries = ledger.card_entries(&card("CARD0001")).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2].reference, "GATE-1#2");
    assert_sound(&ledger).await;
}

async fn unknown_and_inactive_operators_cannot_sell(ledger: Arc<dyn Ledger>) {
    let err = ledger
        .record_sale(&sale("NOPE", "R-1", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::UnknownOperator(_)), "{err:?}");
    with_operators(&ledger, &["OP001"]).await;
    let patch = OperatorPatch {
        active: Some(false),
        ..OperatorPatch::default()
    };
    ledger
        .update_operator(&op_id("OP001"), &patch)
        .await
        .unwrap();
    let err = ledger
        .record_sale(&sale("OP001", "R-1", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InactiveOperator(_)), "{err:?}");
    let err = ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InactiveOperator(_)), "{err:?}");
    assert_sound(&ledger).await;
}

async fn operators_are_registered_listed_and_changed(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP002", "OP001"]).await;
    let dup = ledger.add_operator(&operator("OP001")).await.unwrap_err();
    assert!(matches!(dup, LedgerError::DuplicateOperator(_)), "{dup:?}");
    let ids: Vec<String> = ledger
        .operators()
        .await
        .unwrap()
        .iter()
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(ids, ["OP001", "OP002"]);
    let patch = OperatorPatch {
        void_window: Some(VoidWindow::parse("2h").unwrap()),
        settlement_lag_days: Some(3),
        ..OperatorPatch::default()
    };
    // By default, changed terms take effect on the next business date: today keeps its own.
    let changed = ledger
        .update_operator(&op_id("OP001"), &patch)
        .await
        .unwrap();
    assert_eq!(changed.void_window.to_string(), "2h");
    let today = ledger.settings().calendar.business_date(chrono::Utc::now());
    let now = ledger.operator(&op_id("OP001")).await.unwrap().unwrap();
    assert_eq!(now.void_window.to_string(), "30m");
    let tomorrow = ledger
        .operator_on(&op_id("OP001"), today.succ())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tomorrow, changed);
    assert_eq!(tomorrow.commission_rate.to_string(), "0.035");
    let name = OperatorPatch {
        name: Some(ledger::OperatorName::parse("Renamed").unwrap()),
        ..OperatorPatch::default()
    };
    let renamed = ledger
        .update_operator(&op_id("OP001"), &name)
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "Renamed", "a name changes at once");
    let missing = ledger
        .update_operator(&op_id("OP404"), &patch)
        .await
        .unwrap_err();
    assert!(matches!(missing, LedgerError::UnknownOperator(_)));
}

async fn terms_are_versioned_by_the_date_they_take_effect(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let today = ledger.settings().calendar.business_date(chrono::Utc::now());
    let (d1, d2) = (today.succ(), today.succ().succ());
    let rate = |r: &str| Some(ledger::Rate::parse("commission_rate", r).unwrap());
    let at = |d, rate: Option<ledger::Rate>, tax: Option<&str>| OperatorPatch {
        commission_rate: rate,
        tax_rate: tax.map(|t| ledger::Rate::parse("tax_rate", t).unwrap()),
        effective_from: Some(d),
        ..OperatorPatch::default()
    };
    ledger
        .update_operator(&op_id("OP001"), &at(d2, rate("0.05"), None))
        .await
        .unwrap();
    // A second change for the same date merges with the first; one for an earlier date
    // does not reach past the later version.
    ledger
        .update_operator(&op_id("OP001"), &at(d2, None, Some("0.16")))
        .await
        .unwrap();
    ledger
        .update_operator(&op_id("OP001"), &at(d1, rate("0.02"), None))
        .await
        .unwrap();
    let on = |d| {
        let ledger = ledger.clone();
        async move {
            let o = ledger
                .operator_on(&op_id("OP001"), d)
                .await
                .unwrap()
                .unwrap();
            (o.commission_rate.to_string(), o.tax_rate.to_string())
        }
    };
    assert_eq!(on(today).await, ("0.035".to_string(), "0.19".to_string()));
    assert_eq!(on(d1).await, ("0.02".to_string(), "0.19".to_string()));
    assert_eq!(on(d2).await, ("0.05".to_string(), "0.16".to_string()));
    assert_eq!(
        on(d2.succ()).await,
        ("0.05".to_string(), "0.16".to_string())
    );
    let versions = ledger.terms_versions(&op_id("OP001")).await.unwrap();
    let dates: Vec<Option<BusinessDate>> = versions.iter().map(|v| v.effective_from).collect();
    assert_eq!(dates, [None, Some(d1), Some(d2)]);
    // A date that has begun (today's included) keeps its terms.
    for day in [today.pred(), today] {
        let err = ledger
            .update_operator(&op_id("OP001"), &at(day, rate("0.5"), None))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::TermsInThePast { .. }), "{err:?}");
    }
    // A change never undoes another made for a later date: a version sets only its terms.
    with_operators(&ledger, &["OP002"]).await;
    ledger
        .update_operator(&op_id("OP002"), &at(d2, rate("0.05"), None))
        .await
        .unwrap();
    ledger
        .update_operator(&op_id("OP002"), &at(d1, None, Some("0.16")))
        .await
        .unwrap();
    let later = ledger
        .operator_on(&op_id("OP002"), d2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            later.commission_rate.to_string(),
            later.tax_rate.to_string()
        ),
        ("0.05".to_string(), "0.16".to_string())
    );
}

async fn sales_are_listed_by_business_date(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let d = BusinessDate::parse("2026-11-26").unwrap();
    // 23:50 in Bogotá on the 26th; voided 20 minutes later, on the 27th.
    let mut late = sale("OP001", "R-LATE", "CARD0001", 100_000);
    late.occurred_at = chrono::DateTime::parse_from_rfc3339("2026-11-26T23:50:00-05:00")
        .unwrap()
        .into();
    let late = ledger.record_sale(&late).await.unwrap();
    assert_eq!(late.sale.business_date, d);
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 100_000)).await;
    sell(&ledger, sale("OP002", "R-1", "CARD0001", 100_000)).await;
    let void_at = late.sale.occurred_at + Duration::minutes(20);
    ledger
        .void_sale(&op_id("OP001"), late.sale.id, void_at)
        .await
        .unwrap();
    let on_d = ledger.operator_sales(&op_id("OP001"), d).await.unwrap();
    assert_eq!(on_d.len(), 2);
    let next = ledger
        .operator_sales(&op_id("OP001"), d.succ())
        .await
        .unwrap();
    assert_eq!(next.len(), 1, "the void's date lists the voided sale");
    assert_eq!(next[0].void.as_ref().unwrap().business_date, d.succ());
    let page = ledger
        .operator_sales_page(&op_id("OP001"), d, Some(on_d[0].id), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_sound(&ledger).await;
}

async fn concurrent_payments_never_overdraw(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    sell(&ledger, sale("OP001", "R-1", "CARD0001", 10 * 295_000)).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .pay_fare(&payment("OP001", &format!("P-{i}"), "CARD0001", 295_000))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert!(r.card_balance.minor >= 0);
                ok += 1
            }
            Err(LedgerError::InsufficientBalance { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(balance(&ledger, "CARD0001").await, cop(0));
    assert_sound(&ledger).await;
}

async fn concurrent_identical_sales_make_one_transaction(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .record_sale(&sale("OP001", "R-SAME", "CARD0001", 1_000_000))
                    .await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut fresh = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        ids.insert(r.sale.transaction_id);
        fresh += usize::from(!r.replayed);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1);
    let report = ledger.check_invariants().await.unwrap();
    assert_eq!(report.transactions, 1);
    assert_eq!(balance(&ledger, "CARD0001").await, cop(1_000_000));
    assert_sound(&ledger).await;
}

async fn idempotency_keys_claim_replay_and_expire(ledger: Arc<dyn Ledger>) {
    let (a, b) = (op_id("OPA"), op_id("OPB"));
    let stale = Duration::seconds(60);
    let claim = |op: ledger::OperatorId, hash: &'static str, at| {
        let ledger = ledger.clone();
        async move {
            ledger
                .claim_idempotency_key(&op, "key-1", hash, at, stale)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim(a.clone(), "h1", t0()).await, KeyClaim::Claimed);
    assert_eq!(claim(a.clone(), "h1", t0()).await, KeyClaim::InFlight);
    assert_eq!(claim(a.clone(), "h2", t0()).await, KeyClaim::Mismatch);
    // Keys are per operator: B's key-1 is another key.
    assert_eq!(claim(b.clone(), "h9", t0()).await, KeyClaim::Claimed);
    ledger
        .complete_idempotency_key(&a, "key-1", 201, b"{\"sale_id\":1}")
        .await
        .unwrap();
    assert_eq!(
        claim(a.clone(), "h1", t0()).await,
        KeyClaim::Replay {
            status: 201,
            body: b"{\"sale_id\":1}".to_vec()
        }
    );
    // B's claim was abandoned by a crashed process: taken over once it is stale.
    assert_eq!(
        claim(b.clone(), "h9", t0() + Duration::seconds(30)).await,
        KeyClaim::InFlight
    );
    assert_eq!(
        claim(b.clone(), "h9", t0() + Duration::seconds(61)).await,
        KeyClaim::Claimed
    );
    ledger.release_idempotency_key(&b, "key-1").await.unwrap();
    assert_eq!(claim(b.clone(), "h8", t0()).await, KeyClaim::Claimed);
    let purged = ledger
        .purge_idempotency_keys(t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert_eq!(claim(a.clone(), "h2", t0()).await, KeyClaim::Claimed);
}

async fn a_bulk_import_is_one_transaction_per_new_sale(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let already = sell(&ledger, sale("OP001", "R-0", "CARD0001", 500_000)).await;
    let mut batch: Vec<_> = (0..1_200)
        .map(|i| {
            sale(
                if i % 2 == 0 { "OP001" } else { "OP002" },
                &format!("R-{i}"),
                &format!("CARD{:04}", i % 7),
                100_000 + i,
            )
        })
        .collect();
    // A repeat within the call: only the first counts.
    batch.push(sale("OP002", "R-1", "CARD0001", 100_001));
    // R-0 of OP001 was recorded before the import: a replay.
    batch[0] = sale("OP001", "R-0", "CARD0001", 500_000);
    let ids = ledger.import_sales(&batch).await.unwrap();
    assert_eq!(ids.len(), batch.len());
    assert_eq!(ids[0], None, "an existing key is left as it is");
    assert_eq!(ids[1_200], None, "the repeat is not recorded twice");
    let new: Vec<_> = ids.iter().flatten().collect();
    assert_eq!(new.len(), 1_199);
    let distinct: std::collections::HashSet<_> = new.iter().collect();
    assert_eq!(distinct.len(), 1_199, "ids are unique");
    assert!(!new.contains(&&already.sale.id));
    // Balances: each card holds exactly what was sold to it.
    for c in 0..7i64 {
        let mut expected: i64 = (1..1_200).filter(|i| i % 7 == c).map(|i| 100_000 + i).sum();
        if c == 1 {
            expected += 500_000;
        }
        let balance = ledger
            .card_balance(&card(&format!("CARD{c:04}")))
            .await
            .unwrap();
        assert_eq!(balance.balance, cop(expected), "CARD{c:04}");
    }
    // Other content under a recorded ref is a conflict.
    let conflicting = [sale("OP001", "R-2", "CARD0001", 1)];
    let err = ledger.import_sales(&conflicting).await;
    assert!(matches!(err, Err(LedgerError::Conflict { .. })), "{err:?}");
    // An imported sale is a sale like any other: it can be voided.
    let id = ids[2].unwrap();
    let void = ledger
        .void_sale(&op_id("OP001"), id, t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(void.sale.id, id);
    let report = ledger.check_invariants().await.unwrap();
    assert_eq!(report.transactions, 1 + 1_199 + 1);
    assert_sound(&ledger).await;
}

fn correction(
    document: &str,
    kind: CorrectionKind,
    moves: Vec<(CorrectionAccount, i64)>,
) -> NewCorrection {
    NewCorrection {
        kind,
        document: document.to_string(),
        operator_id: ledger::OperatorId::parse("OP001").unwrap(),
        actor: "ana@finance".to_string(),
        moves,
        at: t0(),
    }
}

async fn a_correction_posts_once_per_document_even_at_once(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let card = ledger::CardId::parse("CARD0001").unwrap();
    // The file's sale of 5,000 that the ledger missed, posted to the card.
    let adjust = correction(
        "exception:1:1",
        CorrectionKind::Adjustment,
        vec![
            (CorrectionAccount::Receivable, -500_000),
            (CorrectionAccount::Card(card), 500_000),
        ],
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (ledger, adjust) = (ledger.clone(), adjust.clone());
            tokio::spawn(async move { ledger.post_correction(&adjust).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut fresh = 0;
    for t in tasks {
        let receipt = t.await.unwrap().unwrap();
        ids.insert(receipt.transaction_id);
        fresh += usize::from(!receipt.replayed);
        assert_eq!(receipt.receivable, -500_000);
        assert_eq!(
            receipt.business_date,
            ledger.settings().calendar.business_date(t0())
        );
    }
    assert_eq!((ids.len(), fresh), (1, 1), "one posting for one document");
    assert_eq!(balance(&ledger, "CARD0001").await, cop(500_000));
    let writeoff = correction(
        "exception:2:1",
        CorrectionKind::WriteOff,
        vec![
            (CorrectionAccount::Receivable, 120_000),
            (CorrectionAccount::WriteOff, -120_000),
        ],
    );
    ledger.post_correction(&writeoff).await.unwrap();
    let posted = ledger
        .corrections_on(ledger.settings().calendar.business_date(t0()))
        .await
        .unwrap();
    let kinds: Vec<_> = posted
        .iter()
        .map(|c| (c.document.as_str(), c.kind, c.receivable))
        .collect();
    assert_eq!(
        kinds,
        [
            ("exception:1:1", CorrectionKind::Adjustment, -500_000),
            ("exception:2:1", CorrectionKind::WriteOff, 120_000)
        ]
    );
    let report = ledger.check_invariants().await.unwrap();
    assert_eq!(report.transactions, 2);
    assert_sound(&ledger).await;
}

async fn a_correction_that_does_not_balance_is_refused(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let card = ledger::CardId::parse("CARD0001").unwrap();
    for moves in [
        vec![
            (CorrectionAccount::Receivable, -1),
            (CorrectionAccount::Card(card.clone()), 2),
        ],
        vec![
            (CorrectionAccount::Receivable, 0),
            (CorrectionAccount::Card(card.clone()), 0),
        ],
        vec![
            (CorrectionAccount::Receivable, -1),
            (CorrectionAccount::Receivable, 1),
        ],
    ] {
        let refused = ledger
            .post_correction(&correction(
                "exception:9:1",
                CorrectionKind::Adjustment,
                moves,
            ))
            .await;
        assert!(
            matches!(refused, Err(LedgerError::Invalid(_))),
            "{refused:?}"
        );
    }
    // An adjustment never touches write-offs, a write-off never a card.
    let wrong = correction(
        "exception:9:2",
        CorrectionKind::WriteOff,
        vec![
            (CorrectionAccount::Receivable, -1),
            (CorrectionAccount::Card(card), 1),
        ],
    );
    assert!(matches!(
        ledger.post_correction(&wrong).await,
        Err(LedgerError::Invalid(_))
    ));
    assert_eq!(ledger.check_invariants().await.unwrap().transactions, 0);
}

async fn account(ledger: &Arc<dyn Ledger>, id: &str) -> i64 {
    testbed::account_balance(&**ledger, id).await
}

fn line(
    operator: &str,
    version: i32,
    commission: i64,
    tax: i64,
) -> ledger::settlement_line::PublishedLine {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    ledger::settlement_line::PublishedLine {
        operator_id: operator.into(),
        business_date: date,
        report_version: version,
        currency: "COP".into(),
        sales_count: 1,
        sales_amount: 1_000_000,
        voids_count: 0,
        voids_amount: 0,
        net_sales: 1_000_000,
        commission_rate: "0.035".into(),
        commission,
        commission_tax: tax,
        net_due: 1_000_000 - commission - tax,
        due_date: date.succ_opt().unwrap(),
        matched_count: 1,
        exception_count: 0,
        exception_amount: 0,
        adjustments: 0,
        status: "BALANCED".into(),
        payment_reference: format!("RC-{operator}-20261126"),
        published_at: t0(),
    }
}

async fn a_settlement_posts_commission_and_tax_once_per_change(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let publish = |version: i32, lines: Vec<ledger::settlement_line::PublishedLine>| {
        let ledger = ledger.clone();
        async move {
            ledger
                .publish_settlement_lines(date, version, &lines, t0())
                .await
                .unwrap()
        }
    };
    let books = |op: &'static str| {
        let ledger = ledger.clone();
        async move {
            [
                account(&ledger, &format!("commission:{op}")).await,
                account(&ledger, &format!("commission_tax:{op}")).await,
                account(&ledger, &format!("operator:{op}:receivable")).await,
            ]
        }
    };
    let transactions = || {
        let ledger = ledger.clone();
        async move { ledger.check_invariants().await.unwrap().transactions }
    };
    // Commission and tax debited, the receivable credited by both: it owes that much less.
    publish(
        1,
        vec![
            line("OP001", 1, 35_000, 6_650),
            line("OP002", 1, 10_000, 1_900),
        ],
    )
    .await;
    assert_eq!(books("OP001").await, [-35_000, -6_650, 41_650]);
    assert_eq!(books("OP002").await, [-10_000, -1_900, 11_900]);
    assert_eq!(transactions().await, 2);
    assert_sound(&ledger).await;
    // The same version again (a crashed report re-run), or a new one with the same figures,
    // posts nothing; ten reports of one new version at once post once.
    publish(
        1,
        vec![
            line("OP001", 1, 35_000, 6_650),
            line("OP002", 1, 10_000, 1_900),
        ],
    )
    .await;
    publish(
        2,
        vec![
            line("OP001", 2, 35_000, 6_650),
            line("OP002", 2, 10_000, 1_900),
        ],
    )
    .await;
    assert_eq!(transactions().await, 2);
    let racing: Vec<_> = (0..10)
        .map(|_| tokio::spawn(publish(3, vec![line("OP001", 3, 36_000, 6_840)])))
        .collect();
    for r in racing {
        r.await.unwrap();
    }
    // Version 3 moved OP001's commission: only the change is posted. OP002 is not in it, so
    // its settlement is taken back. Both land in the day of the report.
    assert_eq!(books("OP001").await, [-36_000, -6_840, 42_840]);
    assert_eq!(books("OP002").await, [0, 0, 0]);
    assert_eq!(transactions().await, 4);
    // An older version finishing last neither replaces the lines nor posts.
    publish(2, vec![line("OP001", 2, 1, 1)]).await;
    assert_eq!(books("OP001").await, [-36_000, -6_840, 42_840]);
    let kept =
        ledger::settlement_line::of_operator(ledger.database(), "OP001", Some(date), None, 1)
            .await
            .unwrap();
    assert_eq!(kept[0].report_version, 3);
    assert_sound(&ledger).await;
}

fn deposit(
    bank_ref: &str,
    amount: i64,
    to: ledger::deposit::Destination,
) -> ledger::deposit::NewDeposit {
    ledger::deposit::NewDeposit {
        bank_account: "CO12BANK0001".into(),
        bank_ref: bank_ref.into(),
        amount,
        to,
        at: t0(),
    }
}

fn to_operator(op: &str) -> ledger::deposit::Destination {
    ledger::deposit::Destination::Operator {
        operator: op_id(op),
        matched_by: ledger::deposit::MatchedBy::Reference,
        settles: Some(BusinessDate::parse("2026-11-26").unwrap()),
    }
}

async fn a_bank_entry_posts_once_even_at_once(ledger: Arc<dyn Ledger>) {
    use ledger::deposit::Destination;
    with_operators(&ledger, &["OP001"]).await;
    let batch = vec![
        deposit("B1", 700_000, to_operator("OP001")),
        deposit("B2", 50_000, Destination::Unidentified),
        deposit("B3", 1_250, Destination::Debit),
        // The same entry twice in one batch is one entry.
        deposit("B1", 700_000, to_operator("OP001")),
    ];
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (ledger, batch) = (ledger.clone(), batch.clone());
            tokio::spawn(async move { ledger.post_deposits(&batch).await })
        })
        .collect();
    let mut posted = 0;
    for t in tasks {
        posted += t.await.unwrap().unwrap();
    }
    assert_eq!(posted, 3, "three entries, each posted once");
    assert_eq!(ledger.post_deposits(&batch).await.unwrap(), 0);
    assert_eq!(account(&ledger, "operator:OP001:receivable").await, 700_000);
    assert_eq!(account(&ledger, "suspense:unidentified").await, 50_000);
    assert_eq!(account(&ledger, "suspense:bank_debits").await, -1_250);
    assert_eq!(
        account(&ledger, "bank:CO12BANK0001").await,
        -700_000 - 50_000 + 1_250
    );
    let listed = ledger
        .deposits(&ledger::deposit::DepositFilter::default())
        .await
        .unwrap();
    let kinds: Vec<_> = listed
        .iter()
        .map(|d| {
            (
                d.bank_ref.as_str(),
                d.kind.as_str(),
                d.operator_id.as_deref(),
                d.paid(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("B1", "deposit", Some("OP001"), 700_000),
            ("B2", "deposit", None, 0),
            ("B3", "bank_debit", None, 0)
        ]
    );
    assert_eq!(
        listed[0].business_date,
        ledger.settings().calendar.business_date(t0())
    );
    let bad = deposit("B4", 0, Destination::Unidentified);
    assert!(matches!(
        ledger.post_deposits(&[bad]).await,
        Err(LedgerError::Invalid(_))
    ));
    assert_eq!(ledger.check_invariants().await.unwrap().transactions, 3);
    assert_sound(&ledger).await;
}

async fn an_unidentified_deposit_is_assigned_once(ledger: Arc<dyn Ledger>) {
    use ledger::deposit::{Destination, NewAssignment};
    with_operators(&ledger, &["OP001", "OP002"]).await;
    ledger
        .post_deposits(&[
            deposit("B2", 50_000, Destination::Unidentified),
            deposit("B1", 10_000, to_operator("OP001")),
        ])
        .await
        .unwrap();
    let assign = |bank_ref: &str, op: &str| NewAssignment {
        bank_account: "CO12BANK0001".into(),
        bank_ref: bank_ref.into(),
        operator: op_id(op),
        actor: "ana@finance".into(),
        at: t0(),
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (ledger, a) = (ledger.clone(), assign("B2", "OP002"));
            tokio::spawn(async move { ledger.assign_deposit(&a).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        let receipt = t.await.unwrap().unwrap();
        assert_eq!(receipt.amount, 50_000);
        fresh += usize::from(!receipt.replayed);
    }
    assert_eq!(fresh, 1, "one assignment, the others replays");
    assert_eq!(account(&ledger, "suspense:unidentified").await, 0);
    assert_eq!(account(&ledger, "operator:OP002:receivable").await, 50_000);
    // To another operator: a conflict; an identified entry, or none, cannot be assigned.
    assert!(matches!(
        ledger.assign_deposit(&assign("B2", "OP001")).await,
        Err(LedgerError::Conflict { .. })
    ));
    for bank_ref in ["B1", "NOPE"] {
        assert!(matches!(
            ledger.assign_deposit(&assign(bank_ref, "OP002")).await,
            Err(LedgerError::Invalid(_))
        ));
    }
    let mut nobody = assign("B2", "OP002");
    nobody.actor = " ".into();
    assert!(ledger.assign_deposit(&nobody).await.is_err());
    assert_sound(&ledger).await;
}

async fn the_statement_runs_to_the_receivable(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001"]).await;
    let today = ledger.settings().calendar.business_date(t0());
    sell(&ledger, sale("OP001", "S1", "CARD0001", 300_000)).await;
    sell(&ledger, sale("OP001", "S2", "CARD0002", 200_000)).await;
    ledger
        .post_deposits(&[deposit("B1", 120_000, to_operator("OP001"))])
        .await
        .unwrap();
    let statement = ledger
        .receivable_statement(&op_id("OP001"), today, today)
        .await
        .unwrap();
    assert_eq!(statement.opening, 0);
    let moves: Vec<_> = statement
        .movements
        .iter()
        .map(|m| (m.kind.as_str(), m.count, m.amount))
        .collect();
    assert_eq!(moves, [("sales", 2, -500_000), ("deposit", 1, 120_000)]);
    assert_eq!(
        statement.closing,
        account(&ledger, "operator:OP001:receivable").await
    );
    // A range after the movements opens where they left the receivable.
    let later = ledger
        .receivable_statement(&op_id("OP001"), today.succ(), today.succ())
        .await
        .unwrap();
    assert_eq!((later.opening, later.closing), (-380_000, -380_000));
    assert!(later.movements.is_empty());
    assert_sound(&ledger).await;
}

async fn what_was_owed_is_known_as_of_each_day(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let calendar = ledger.settings().calendar;
    // Reports run the day after the date, and again three days later.
    let (first, later) = (t0() + Duration::days(1), t0() + Duration::days(4));
    let (day1, day3) = (calendar.business_date(first), calendar.business_date(later));
    let owed = |as_of: BusinessDate| {
        let ledger = ledger.clone();
        async move {
            ledger::settlement_line::dues_as_of(ledger.database(), as_of)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.operator_id, d.settles_date.to_string(), d.amount))
                .collect::<Vec<_>>()
        }
    };
    ledger
        .publish_settlement_lines(
            date,
            1,
            &[line("OP001", 1, 35_000, 6_650), line("OP002", 1, 10_000, 0)],
            first,
        )
        .await
        .unwrap();
    // Three days later a new version: OP001's commission moved, OP002 is gone.
    ledger
        .publish_settlement_lines(date, 2, &[line("OP001", 2, 36_000, 6_840)], later)
        .await
        .unwrap();
    let v1 = 1_000_000 - 35_000 - 6_650;
    let v2 = 1_000_000 - 36_000 - 6_840;
    let d = date.to_string();
    assert_eq!(
        owed(day1).await,
        [
            ("OP001".to_string(), d.clone(), v1),
            ("OP002".to_string(), d.clone(), 1_000_000 - 10_000)
        ]
    );
    assert_eq!(
        owed(day3).await,
        [
            ("OP001".to_string(), d.clone(), v2),
            ("OP002".to_string(), d.clone(), 0)
        ]
    );
    // Before anything was published nothing was owed; the date itself sees its latest lines.
    assert!(owed(date.pred()).await.is_empty());
    assert_eq!(owed(date).await[0].2, v2);
    assert_sound(&ledger).await;
}

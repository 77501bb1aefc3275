//! Bank statements as the bank sends them: a camt.053 written by hand here (versions .02 and
//! .08) and the CSV layout parse to the expected entries; a corpus of bad statements, each
//! with one defect (XML attacks included), is refused whole, naming where and why.

use ingest::bank_statement::{BankStatement, Direction, StatementError, parse_camt053, parse_csv};
use ledger::{Currency, MoneyRules};

const OURS: &str = "CO12BANK0000000001";

fn rules() -> MoneyRules {
    MoneyRules::new(Currency::COP)
}

fn ours() -> Vec<String> {
    vec![OURS.to_string()]
}

/// A statement of `OURS`: opening 1,000.00, two credits (an operator's transfer with its
/// payment reference, a deposit nobody named) and a bank fee, closing as they add up.
fn camt(version: &str, entries: &str, closing: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-20261127</MsgId><CreDtTm>2026-11-28T06:00:00-05:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-20261127-1</Id>
      <Acct><Id><Othr><Id>{OURS}</Id></Othr></Id><Ccy>COP</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="COP">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-27</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="COP">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-27</Dt></Dt></Bal>
      {entries}
    </Stmt>
  </BkToCstmrStmt>
</Document>"#
    )
}

const ENTRIES: &str = r#"
      <Ntry>
        <Amt Ccy="COP">1437946.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2026-11-27</Dt></BookgDt><ValDt><Dt>2026-11-27</Dt></ValDt>
        <AcctSvcrRef>BNK-0001</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <RltdPties><Dbtr><Pty><Nm>Tienda La 14 &amp; Cía</Nm></Pty></Dbtr>
            <DbtrAcct><Id><Othr><Id>CO99OP0010001</Id></Othr></Id></DbtrAcct></RltdPties>
          <RmtInf><Ustrd>RC-OP001-20261126</Ustrd><Ustrd>pago d&#237;a</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="COP">50000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <BookgDt><DtTm>2026-11-27T10:15:00-05:00</DtTm></BookgDt><ValDt><Dt>2026-11-28</Dt></ValDt>
        <AcctSvcrRef>BNK-0002</AcctSvcrRef>
      </Ntry>
      <Ntry>
        <Amt Ccy="COP">12.50</Amt><CdtDbtInd>DBIT</CdtDbtInd>
        <BookgDt><Dt>2026-11-27</Dt></BookgDt><ValDt><Dt>2026-11-27</Dt></ValDt>
        <AcctSvcrRef>BNK-FEE-1</AcctSvcrRef>
        <NtryDtls><TxDtls><RmtInf><Ustrd>COMISION</Ustrd></RmtInf></TxDtls></NtryDtls>
      </Ntry>"#;

/// 1,000.00 + 1,437,946.00 + 50,000.00 − 12.50.
const CLOSING: &str = "1488933.50";

fn assert_entries(s: &BankStatement) {
    assert_eq!(s.account, OURS);
    assert_eq!((s.opening, s.closing), (Some(100_000), Some(148_893_350)));
    assert_eq!(s.entries.len(), 3);
    let paid = &s.entries[0];
    assert_eq!(paid.direction, Direction::Credit);
    assert_eq!(paid.amount, 143_794_600);
    assert_eq!(paid.bank_ref, "BNK-0001");
    assert_eq!(
        paid.reference.as_deref(),
        Some("RC-OP001-20261126 pago día")
    );
    assert_eq!(paid.payer_name.as_deref(), Some("Tienda La 14 & Cía"));
    assert_eq!(paid.payer_account.as_deref(), Some("CO99OP0010001"));
    let unnamed = &s.entries[1];
    assert_eq!(unnamed.booking_date.to_string(), "2026-11-27");
    assert_eq!(unnamed.value_date.to_string(), "2026-11-28");
    assert_eq!(
        (unnamed.reference.as_ref(), unnamed.payer_account.as_ref()),
        (None, None)
    );
    let fee = &s.entries[2];
    assert_eq!(
        (fee.direction, fee.amount, fee.signed()),
        (Direction::Debit, 1_250, -1_250)
    );
}

#[test]
fn a_hand_written_camt053_parses_to_its_entries() {
    for version in ["02", "08"] {
        let doc = camt(version, ENTRIES, CLOSING);
        let s =
            parse_camt053(doc.as_bytes(), &rules(), &ours()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_entries(&s);
    }
}

#[test]
fn the_csv_layout_parses_to_the_same_entries() {
    let csv = "booking_date,value_date,direction,amount,currency,bank_ref,reference,payer_name,payer_account\n\
        2026-11-27,2026-11-27,CREDIT,1437946.00,COP,BNK-0001,RC-OP001-20261126 pago día,\"Tienda La 14 & Cía\",CO99OP0010001\n\
        2026-11-27,2026-11-28,CREDIT,50000.00,COP,BNK-0002,,,\n\
        2026-11-27,2026-11-27,DEBIT,12.50,COP,BNK-FEE-1,COMISION,,\n";
    let s = parse_csv(csv.as_bytes(), OURS, &rules(), &ours()).unwrap_or_else(|e| panic!("{e:?}"));
    let camt = parse_camt053(camt("08", ENTRIES, CLOSING).as_bytes(), &rules(), &ours()).unwrap();
    assert_eq!(
        (s.opening, s.closing),
        (None, None),
        "a CSV carries no balances"
    );
    assert_eq!(s.entries.len(), 3);
    for (a, b) in s.entries.iter().zip(&camt.entries) {
        assert_eq!(
            (
                a.booking_date,
                a.value_date,
                a.direction,
                a.amount,
                &a.bank_ref
            ),
            (
                b.booking_date,
                b.value_date,
                b.direction,
                b.amount,
                &b.bank_ref
            )
        );
        assert_eq!(
            (&a.payer_name, &a.payer_account),
            (&b.payer_name, &b.payer_account)
        );
    }
    assert_eq!(s.entries[0].reference, camt.entries[0].reference);
}

/// The first error a bad statement is refused with: (where, field), and its reason.
fn refused(result: Result<BankStatement, Vec<StatementError>>) -> (String, String, String) {
    let errors = result.expect_err("a bad statement is refused");
    let e = &errors[0];
    (e.at.clone(), e.field.clone(), e.reason.clone())
}

#[test]
fn bad_statements_are_refused_whole_naming_where_and_why() {
    let one_entry = |amount: &str, indicator: &str, booked: &str, bank_ref: &str| {
        format!(
            r#"<Ntry><Amt Ccy="COP">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>
            <BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>2026-11-27</Dt></ValDt>
            <AcctSvcrRef>{bank_ref}</AcctSvcrRef></Ntry>"#
        )
    };
    let fine = one_entry("10.00", "CRDT", "2026-11-27", "R1");
    let deep = format!("{}x{}", "<Ustrd>".repeat(40), "</Ustrd>".repeat(40));
    let cases: Vec<(&str, String, (&str, &str))> = vec![
        (
            "balances that do not add up",
            camt("08", &fine, "1010.01"),
            ("statement", "Bal"),
        ),
        (
            "a statement of another account",
            camt("08", &fine, "1010.00").replace(OURS, "CO12OTHER000001"),
            ("statement", "account"),
        ),
        (
            "a malformed amount",
            camt(
                "08",
                &one_entry("10,00", "CRDT", "2026-11-27", "R1"),
                "1010.00",
            ),
            ("entry 1", "amount"),
        ),
        (
            "more decimals than the peso has",
            camt(
                "08",
                &one_entry("10.001", "CRDT", "2026-11-27", "R1"),
                "1010.00",
            ),
            ("entry 1", "amount"),
        ),
        (
            "a malformed date",
            camt(
                "08",
                &one_entry("10.00", "CRDT", "2026-13-01", "R1"),
                "1010.00",
            ),
            ("entry 1", "booking_date"),
        ),
        (
            "neither credit nor debit",
            camt(
                "08",
                &one_entry("10.00", "CRED", "2026-11-27", "R1"),
                "1010.00",
            ),
            ("entry 1", "direction"),
        ),
        (
            "a duplicate entry reference",
            camt("08", &format!("{fine}{fine}"), "1020.00"),
            ("entry 2", "bank_ref"),
        ),
        (
            "another currency",
            camt("08", &fine.replace("COP", "USD"), "1010.00"),
            ("entry 1", "amount"),
        ),
        (
            "a billion laughs",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
                 <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>{}",
                camt("08", &fine, "1010.00")
                    .replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
                    .replace("STMT-20261127-1", "&lol2;")
            ),
            ("statement", "xml"),
        ),
        (
            "an external entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                camt("08", &fine, "1010.00")
                    .replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
                    .replace("STMT-20261127-1", "&xxe;")
            ),
            ("statement", "xml"),
        ),
        (
            "an entity no DTD declared",
            camt("08", &fine, "1010.00").replace("STMT-20261127-1", "&xxe;"),
            ("statement", "xml"),
        ),
        (
            "absurd depth",
            camt("08", &fine, "1010.00").replace("<Id>STMT-20261127-1</Id>", &deep),
            ("statement", "xml"),
        ),
        (
            "absurd size",
            camt("08", &fine, "1010.00").replace(
                "<Id>STMT-20261127-1</Id>",
                &format!("<!--{}-->", "x".repeat(33 * 1024 * 1024)),
            ),
            ("statement", "size"),
        ),
        (
            "not camt.053 (a camt.052 report)",
            camt("08", &fine, "1010.00").replace("camt.053", "camt.052"),
            ("statement", "Document"),
        ),
        (
            "two statements in one document",
            camt("08", &fine, "1010.00").replace(
                "</Stmt>",
                "</Stmt><Stmt><Acct><Id><Othr><Id>X</Id></Othr></Id></Acct></Stmt>",
            ),
            ("statement", "Stmt"),
        ),
        (
            "broken XML",
            camt("08", &fine, "1010.00").replace("</BkToCstmrStmt>", ""),
            ("statement", "xml"),
        ),
        (
            "no closing balance",
            camt("08", &fine, "1010.00").replace("CLBD", "ITBD"),
            ("statement", "Bal"),
        ),
    ];
    for (what, doc, (at, field)) in &cases {
        let (got_at, got_field, reason) = refused(parse_camt053(doc.as_bytes(), &rules(), &ours()));
        assert_eq!(
            (got_at.as_str(), got_field.as_str()),
            (*at, *field),
            "{what}: {reason}"
        );
        assert!(!reason.is_empty(), "{what}");
    }
    assert!(cases.len() >= 12);

    let header = "booking_date,value_date,direction,amount,currency,bank_ref,reference,payer_name,payer_account\n";
    let csv_cases = [
        (
            "another header",
            "date,amount\n2026-11-27,10.00\n".to_string(),
            ("line 1", "header"),
        ),
        (
            "a direction that is neither",
            format!("{header}2026-11-27,2026-11-27,IN,10.00,COP,R1,,,\n"),
            ("line 2", "direction"),
        ),
        (
            "a duplicate bank reference",
            format!(
                "{header}2026-11-27,2026-11-27,CREDIT,10.00,COP,R1,,,\n\
                 2026-11-27,2026-11-27,CREDIT,11.00,COP,R1,,,\n"
            ),
            ("line 3", "bank_ref"),
        ),
        (
            "a line of the wrong width",
            format!("{header}2026-11-27,2026-11-27,CREDIT,10.00,COP\n"),
            ("line 2", "line"),
        ),
        (
            "a negative amount",
            format!("{header}2026-11-27,2026-11-27,CREDIT,-10.00,COP,R1,,,\n"),
            ("line 2", "amount"),
        ),
    ];
    for (what, doc, (at, field)) in &csv_cases {
        let (got_at, got_field, reason) =
            refused(parse_csv(doc.as_bytes(), OURS, &rules(), &ours()));
        assert_eq!(
            (got_at.as_str(), got_field.as_str()),
            (*at, *field),
            "{what}: {reason}"
        );
    }
    let (at, field, _) = refused(parse_csv(
        format!("{header}2026-11-27,2026-11-27,CREDIT,10.00,COP,R1,,,\n").as_bytes(),
        "CO12OTHER000001",
        &rules(),
        &ours(),
    ));
    assert_eq!((at.as_str(), field.as_str()), ("statement", "account"));
}

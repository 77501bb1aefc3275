-- Bank statements and remittances (DESIGN.md): the statements of our collection accounts as
-- accepted (or rejected) whole, their entries, the payer accounts registered for operators,
-- and the journal documents of the money that arrives: a deposit matched to an operator or
-- left unidentified in suspense, a debit on the account, an unidentified deposit assigned.
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff',
                    'settlement', 'deposit', 'bank_debit', 'assignment'));

-- One row per statement object seen, by its bytes: the same bytes again are a no-op.
CREATE TABLE bank_statements (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256      text NOT NULL UNIQUE,
    object_key  text NOT NULL,
    kept_as     text NOT NULL,
    account     text,
    status      text NOT NULL CHECK (status IN ('ACCEPTED', 'REJECTED')),
    entries     integer NOT NULL,
    error_count integer NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE TABLE bank_entries (
    account       text NOT NULL,
    bank_ref      text NOT NULL,
    statement_id  bigint NOT NULL REFERENCES bank_statements (id),
    position      integer NOT NULL,
    booking_date  date NOT NULL,
    value_date    date NOT NULL,
    direction     text NOT NULL CHECK (direction IN ('CREDIT', 'DEBIT')),
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      text NOT NULL,
    reference     text,
    payer_name    text,
    payer_account text,
    PRIMARY KEY (account, bank_ref)
);
CREATE INDEX bank_entries_by_statement ON bank_entries (statement_id, position);

-- The account an operator pays from: a credit from it is that operator's, whatever it says.
CREATE TABLE payer_accounts (
    account     text PRIMARY KEY,
    operator_id text NOT NULL REFERENCES operators (id),
    actor       text NOT NULL,
    recorded_at timestamptz NOT NULL
);

-- Journal documents of bank entries: `bank:{account}:{bank_ref}` once per entry (kind
-- deposit or bank_debit), `assign:{account}:{bank_ref}` once per unidentified deposit.
CREATE TABLE deposits (
    document       text PRIMARY KEY,
    -- Not indexed: nothing looks a deposit up by it, and each index is write time per entry.
    transaction_id bigint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('deposit', 'bank_debit', 'assignment')),
    bank_account   text NOT NULL,
    bank_ref       text NOT NULL,
    -- NULL: the deposit went to suspense:unidentified (or it is a debit).
    operator_id    text REFERENCES operators (id),
    amount         bigint NOT NULL CHECK (amount > 0),
    -- payer_account, reference or assigned; NULL when not matched.
    matched_by     text,
    -- The settlement date the payment reference named, if it named one.
    settles_date   date,
    business_date  date NOT NULL,
    actor          text,
    created_at     timestamptz NOT NULL
);
CREATE INDEX deposits_by_date ON deposits (business_date);
CREATE INDEX deposits_by_operator ON deposits (operator_id, business_date);
CREATE TRIGGER deposits_append_only BEFORE UPDATE OR DELETE ON deposits
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();

-- What each settlement line makes its operator owe (its net due plus the date's
-- adjustments), as each final report version changed it: one row per change, in the
-- business date of the report, so that what was owed at the end of any date is known
-- after later versions replaced the lines (the aging of a date's report re-run is the same).
CREATE TABLE settlement_dues (
    operator_id    text NOT NULL REFERENCES operators (id),
    settles_date   date NOT NULL,
    report_version integer NOT NULL,
    due_date       date NOT NULL,
    -- The change in what is owed for the date, minor units.
    amount         bigint NOT NULL,
    business_date  date NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (operator_id, settles_date, report_version)
);
CREATE INDEX settlement_dues_by_date ON settlement_dues (business_date);
CREATE TRIGGER settlement_dues_append_only BEFORE UPDATE OR DELETE ON settlement_dues
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();

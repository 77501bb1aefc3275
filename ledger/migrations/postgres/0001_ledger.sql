-- The ledger: operators, accounts with cached balances, the append-only journal
-- (transactions and postings), and the source documents that caused each transaction.

CREATE TABLE operators (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    commission_rate     text NOT NULL,
    tax_rate            text NOT NULL,
    void_window_secs    bigint NOT NULL CHECK (void_window_secs >= 0),
    settlement_lag_days integer NOT NULL CHECK (settlement_lag_days >= 0),
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Cached balances. Credit positive: a card's balance is the value its rider holds.
CREATE TABLE accounts (
    id      text PRIMARY KEY,
    balance bigint NOT NULL DEFAULT 0,
    flagged boolean NOT NULL DEFAULT false
);

CREATE TABLE transactions (
    id         bigint PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('sale', 'void', 'payment', 'validations')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE transactions_id_seq OWNED BY transactions.id;

-- No foreign key to transactions: both rows are written in one database transaction, and a
-- per-row trigger would halve the validation batch path. The invariant checker finds orphans.
CREATE TABLE postings (
    transaction_id bigint NOT NULL,
    account_id     text NOT NULL,
    amount         bigint NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transaction_id, account_id)
);

-- The journal is append-only: a correction is a new transaction.
CREATE FUNCTION journal_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();

CREATE TABLE sales (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id         text NOT NULL REFERENCES operators (id),
    operator_ref        text NOT NULL,
    card_id             text NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,
    point_of_sale       text NOT NULL,
    occurred_at         timestamptz NOT NULL,
    business_date       date NOT NULL,
    transaction_id      bigint NOT NULL,
    voided_at           timestamptz,
    void_business_date  date,
    void_transaction_id bigint,
    UNIQUE (operator_id, operator_ref),
    CHECK ((voided_at IS NULL) = (void_transaction_id IS NULL))
);
CREATE INDEX sales_by_operator_date ON sales (operator_id, business_date, id);
CREATE INDEX sales_by_void_date ON sales (operator_id, void_business_date) WHERE voided_at IS NOT NULL;
CREATE INDEX sales_by_card ON sales (card_id);

CREATE TABLE payments (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id           text NOT NULL REFERENCES operators (id),
    payment_ref           text NOT NULL,
    card_id               text NOT NULL,
    amount                bigint NOT NULL CHECK (amount > 0),
    currency              text NOT NULL,
    route_id              text NOT NULL,
    transport_operator_id text NOT NULL,
    occurred_at           timestamptz NOT NULL,
    business_date         date NOT NULL,
    transaction_id        bigint NOT NULL,
    UNIQUE (operator_id, payment_ref)
);
CREATE INDEX payments_by_card ON payments (card_id);
CREATE INDEX payments_by_date ON payments (business_date);

CREATE TABLE validations (
    device_id             text NOT NULL,
    device_seq            bigint NOT NULL,
    event_id              text NOT NULL,
    card_id               text NOT NULL,
    fare                  bigint NOT NULL CHECK (fare > 0),
    currency              text NOT NULL,
    route_id              text NOT NULL,
    transport_operator_id text NOT NULL,
    occurred_at           timestamptz NOT NULL,
    business_date         date NOT NULL,
    transaction_id        bigint NOT NULL,
    PRIMARY KEY (device_id, device_seq)
);
CREATE INDEX validations_by_card ON validations (card_id);
CREATE INDEX validations_by_date ON validations (business_date);

-- Card status (DESIGN.md, Hotlists). A card's status is kept on its account row, beside its
-- balance: a payment's balance check and a top-up read it under the same row lock that
-- moves the balance, so a block and a payment that race are ordered by that lock (the
-- payment happened before the block committed, or it sees the block and is refused).
ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check
    CHECK (kind IN ('sale', 'void', 'payment', 'validations', 'adjustment', 'writeoff',
                    'settlement', 'deposit', 'bank_debit', 'assignment', 'replacement'));

ALTER TABLE accounts ADD COLUMN blocked_reason text
    CHECK (blocked_reason IN ('LOST', 'STOLEN', 'DAMAGED', 'NEGATIVE_BALANCE', 'FRAUD', 'REPLACED'));
ALTER TABLE accounts ADD COLUMN blocked_at timestamptz;
-- The journal transaction that last changed the status on its own (a validation batch that
-- blocked the card NEGATIVE_BALANCE, a top-up that lifted that block): the one statement of
-- the hot path that does it tells by this which rows it changed.
ALTER TABLE accounts ADD COLUMN status_tx bigint;
ALTER TABLE accounts ADD CONSTRAINT accounts_blocked_since
    CHECK ((blocked_reason IS NULL) = (blocked_at IS NULL));
CREATE INDEX accounts_blocked ON accounts (id) WHERE blocked_reason IS NOT NULL;

-- Every change of a card's status, append-only: who (the operator and its token's subject,
-- a person of the back office, or recaudo itself), when, why.
CREATE TABLE card_status_changes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id        text NOT NULL,
    action         text NOT NULL CHECK (action IN ('BLOCK', 'UNBLOCK')),
    -- For an UNBLOCK, the reason that was lifted.
    reason         text NOT NULL,
    at             timestamptz NOT NULL,
    operator_id    text REFERENCES operators (id),
    actor          text NOT NULL,
    note           text,
    -- For a change the ledger made itself: the journal transaction that caused it.
    transaction_id bigint
);
CREATE INDEX card_status_changes_by_card ON card_status_changes (card_id, id);
CREATE TRIGGER card_status_changes_append_only BEFORE UPDATE OR DELETE ON card_status_changes
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();

-- A card replaced by another: asked for once per old card; the balance moves once, by the
-- transfer-replacements job, after the delay (the replacement is the document of that
-- journal transaction).
CREATE TABLE card_replacements (
    old_card_id    text PRIMARY KEY,
    new_card_id    text NOT NULL UNIQUE,
    operator_id    text NOT NULL REFERENCES operators (id),
    actor          text NOT NULL,
    requested_at   timestamptz NOT NULL,
    transfer_after timestamptz NOT NULL,
    transferred_at timestamptz,
    -- What moved (zero when the old card held nothing, or less than nothing).
    amount         bigint CHECK (amount >= 0),
    business_date  date,
    transaction_id bigint,
    CHECK ((transferred_at IS NULL) = (amount IS NULL))
);
CREATE INDEX card_replacements_due ON card_replacements (transfer_after) WHERE transferred_at IS NULL;

-- Refuses a top-up in the one statement that records a sale: false for an active card or a
-- NEGATIVE_BALANCE one (a top-up is how its rider clears the debt); for any other block it
-- aborts the statement with the reason (SQLSTATE RC001). VOLATILE, so the planner calls it
-- for each row rather than folding it away.
CREATE FUNCTION recaudo_refuse_top_up(card text, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF reason IS NULL OR reason = 'NEGATIVE_BALANCE' THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'RC001', MESSAGE = reason, DETAIL = card;
END $$;

-- The action list for the field (DESIGN.md, Hotlists): each published version, the list as
-- of the latest one, and each version's changes (which the compacted topic is fed from, and
-- caught up from after a crash).
CREATE TABLE hotlist_versions (
    version        bigint PRIMARY KEY CHECK (version >= 1),
    published_at   timestamptz NOT NULL,
    cards          bigint NOT NULL,
    added          bigint NOT NULL,
    removed        bigint NOT NULL,
    full_sha256    text NOT NULL,
    delta_sha256   text NOT NULL,
    -- When the broker acknowledged every change of this version (NULL: not yet, or no
    -- broker is configured).
    topic_done_at  timestamptz
);

CREATE TABLE hotlist_entries (
    card_id    text PRIMARY KEY,
    reason     text NOT NULL,
    blocked_at timestamptz NOT NULL,
    version    bigint NOT NULL
);

CREATE TABLE hotlist_changes (
    version    bigint NOT NULL REFERENCES hotlist_versions (version),
    card_id    text NOT NULL,
    action     text NOT NULL CHECK (action IN ('ADD', 'REMOVE')),
    reason     text,
    at         timestamptz NOT NULL,
    PRIMARY KEY (version, card_id)
);

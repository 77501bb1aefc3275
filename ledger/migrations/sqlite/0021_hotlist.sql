-- The action list for the field (DESIGN.md, Hotlists): each published version, the list as
-- of the latest one, and each version's changes (which the compacted topic is fed from, and
-- caught up from after a crash).
CREATE TABLE hotlist_versions (
    version        INTEGER PRIMARY KEY CHECK (version >= 1),
    published_at   TEXT NOT NULL,
    cards          INTEGER NOT NULL,
    added          INTEGER NOT NULL,
    removed        INTEGER NOT NULL,
    full_sha256    TEXT NOT NULL,
    delta_sha256   TEXT NOT NULL,
    -- When the broker acknowledged every change of this version (NULL: not yet, or no
    -- broker is configured).
    topic_done_at  TEXT
);

CREATE TABLE hotlist_entries (
    card_id    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    blocked_at TEXT NOT NULL,
    version    INTEGER NOT NULL
);

CREATE TABLE hotlist_changes (
    version    INTEGER NOT NULL REFERENCES hotlist_versions (version),
    card_id    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('ADD', 'REMOVE')),
    reason     TEXT,
    at         TEXT NOT NULL,
    PRIMARY KEY (version, card_id)
);

-- Data in: operators' sales files staged as received, dead-lettered events, and the
-- positions of the local event source.

CREATE TABLE operator_files (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_key    text NOT NULL,
    operator_id   text NOT NULL,
    business_date date NOT NULL,
    seq           integer NOT NULL,
    sha256        text NOT NULL UNIQUE,
    status        text NOT NULL CHECK (status IN ('staging', 'accepted', 'rejected')),
    record_count  bigint NOT NULL DEFAULT 0,
    sales_total   bigint NOT NULL DEFAULT 0,
    voids_total   bigint NOT NULL DEFAULT 0,
    error_count   integer NOT NULL DEFAULT 0,
    received_at   timestamptz NOT NULL
);
CREATE INDEX operator_files_by_day ON operator_files (operator_id, business_date, seq);

-- No index but the primary key: records are loaded with COPY and read per file.
CREATE TABLE operator_file_records (
    file_id       bigint NOT NULL,
    line          integer NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('SALE', 'VOID')),
    operator_ref  text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    card_id       text NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      text NOT NULL,
    point_of_sale text NOT NULL,
    voided_ref    text,
    PRIMARY KEY (file_id, line)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    position    text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL,
    UNIQUE (source, position)
);

CREATE TABLE event_positions (
    source   text PRIMARY KEY,
    position bigint NOT NULL
);

-- The archive of record (docs/ARCHIVE.md): every send that reached a final state, with its
-- history. Times are UTC milliseconds since 1970 (BIGINT), as everywhere in Outreach.

-- One row per finished send.
CREATE TABLE sends (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    journey TEXT NOT NULL,
    step TEXT NOT NULL,
    category TEXT NOT NULL,
    template TEXT NOT NULL,
    survey TEXT NOT NULL DEFAULT '',
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- final state: delivered, failed, suppressed, cancelled
    state TEXT NOT NULL,
    -- why it ended so ('ok' for a delivered send)
    reason TEXT NOT NULL,
    -- the channel and provider that took it ('' when none did)
    channel TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- the furthest receipt its provider reported (delivered, read, bounced, complained…)
    receipt TEXT NOT NULL DEFAULT '',
    receipt_rank INTEGER NOT NULL DEFAULT -1,
    -- the customer's zone when planned; their locale and country when archived
    zone TEXT NOT NULL DEFAULT '',
    locale TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    start_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    handed_ms BIGINT,
    finished_ms BIGINT NOT NULL,
    archived_ms BIGINT NOT NULL,
    -- the send's record as Redis held it (JSON): what explain, the API and an export show
    stored TEXT NOT NULL
);
CREATE INDEX sends_finished ON sends (finished_ms);
CREATE INDEX sends_customer ON sends (customer_id);
CREATE INDEX sends_journey ON sends (journey, finished_ms);

-- Everything that happened to a send, in order: what explain shows.
CREATE TABLE events (
    send_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms BIGINT NOT NULL,
    what TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    -- the whole entry (JSON)
    entry TEXT NOT NULL,
    PRIMARY KEY (send_id, seq)
);

-- Each hand-over's answer: delivered, a retry, a fall-through to the next channel, a failure.
CREATE TABLE attempts (
    send_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms BIGINT NOT NULL,
    attempt INTEGER,
    channel TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',
    handed_ms BIGINT,
    PRIMARY KEY (send_id, seq)
);
CREATE INDEX attempts_provider ON attempts (provider, at_ms);

-- Provider receipts, one per status (a repeated callback is not a second row).
CREATE TABLE receipts (
    send_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (send_id, status)
);

-- The answer to a survey send (one per send; a later answer updates it).
CREATE TABLE answers (
    send_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    score INTEGER NOT NULL,
    band TEXT NOT NULL,
    version INTEGER NOT NULL,
    -- every change (an answer, a comment) counts: a later write never loses to an earlier one
    changes INTEGER NOT NULL DEFAULT 1,
    -- the first answer, the latest score (the report's periods), the latest change of any kind
    answered_ms BIGINT NOT NULL,
    scored_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    journey TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT '',
    locale TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT ''
);
CREATE INDEX answers_scored ON answers (scored_ms);
CREATE INDEX answers_customer ON answers (customer_id);

-- A provider's message id -> the send (its late webhooks name only that id).
CREATE TABLE refs (
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    send_id TEXT NOT NULL,
    PRIMARY KEY (channel, provider, reference)
);
CREATE INDEX refs_send ON refs (send_id);

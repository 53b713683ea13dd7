-- Clicks on tracked links (/c/) and opens (/o/, only for categories that opt in), one row each,
-- kept with their send (docs/ARCHIVE.md). A repeat of the same row (a move written twice) is not
-- a second row; a send keeps at most its first 20 clicks and 20 opens here.
CREATE TABLE clicks (
    send_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    -- 'click' (a tracked link was followed) or 'open' (the open image was fetched)
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- the link's target ('' for an open)
    url TEXT NOT NULL
);
CREATE INDEX clicks_send ON clicks (send_id);
CREATE INDEX clicks_customer ON clicks (customer_id);

-- What became of the request whose tokens a row bills: served (the caller got its completion), client_gone (the
-- caller left after dispatch), deadline (its deadline passed after dispatch, the caller got 504), stream_failed (the
-- worker's stream broke after text was delivered). Every outcome is billed: the worker generated the tokens.
ALTER TABLE token_usage
    ADD COLUMN outcome text NOT NULL DEFAULT 'served'
        CHECK (outcome IN ('served', 'client_gone', 'deadline', 'stream_failed'));

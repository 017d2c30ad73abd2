-- Users' own limits (null: unlimited); users without a row have the defaults (GATEWAY_DEFAULT_*). Instances read the
-- rows changed since their last read, by updated_at, every second.
CREATE TABLE user_limits (
    user_id             bigint      PRIMARY KEY CHECK (user_id > 0),
    tokens_per_day      bigint      CHECK (tokens_per_day >= 0),
    tokens_per_month    bigint      CHECK (tokens_per_month >= 0),
    requests_per_minute bigint      CHECK (requests_per_minute >= 0),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX user_limits_updated_at ON user_limits (updated_at);

-- One row per user and calendar window (UTC) that someone leased from. granted: what instances took out of the budget
-- and did not give back (billed, reserved by requests in flight, or held unused); a lease never lets it pass the limit.
-- consumed: what the instances reported billed. last_grant: what the latest lease got (read back by that lease).
CREATE TABLE budget_window (
    user_id      bigint      NOT NULL CHECK (user_id > 0),
    kind         text        NOT NULL CHECK (kind IN ('minute', 'day', 'month')),
    window_start timestamptz NOT NULL,
    granted      bigint      NOT NULL,
    consumed     bigint      NOT NULL DEFAULT 0 CHECK (consumed >= 0),
    last_grant   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, kind, window_start)
);

CREATE INDEX budget_window_kind_start ON budget_window (kind, window_start);

-- One row per served completion, only ever inserted: totals are computed by queries, never kept in counters.
CREATE TABLE token_usage (
    request_id        uuid        PRIMARY KEY,
    user_id           bigint      NOT NULL CHECK (user_id > 0),
    prompt_tokens     int         NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens int         NOT NULL CHECK (completion_tokens >= 0),
    total_tokens      int         NOT NULL CHECK (total_tokens = prompt_tokens + completion_tokens),
    model             text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX token_usage_user_id_created_at ON token_usage (user_id, created_at);

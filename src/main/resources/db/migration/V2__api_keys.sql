-- API keys: only the SHA-256 digest of a key's secret is kept, unique, with a short prefix to show in listings.
CREATE TABLE api_key (
    id           uuid        PRIMARY KEY,
    digest       bytea       NOT NULL CHECK (length(digest) = 32),
    prefix       text        NOT NULL,
    user_id      bigint      NOT NULL CHECK (user_id > 0),
    name         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE UNIQUE INDEX api_key_digest ON api_key (digest);
CREATE INDEX api_key_user_id ON api_key (user_id, created_at);

-- The audit log of the operator's actions (GET /admin/audit): who (the admin token's id, never the token), what, to
-- what, and the change. Written in the same transaction as the change it records; read newest first by id.
CREATE TABLE admin_audit (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    admin_token_id text        NOT NULL,
    action         text        NOT NULL,
    target         text        NOT NULL,
    change         jsonb       NOT NULL
);

CREATE INDEX admin_audit_at ON admin_audit (at);

-- DELETE /admin/users/{id}/limits puts a user back on the defaults. The row stays, marked cleared, so that the other
-- instances, which read the rows changed since their last read, learn of it too.
ALTER TABLE user_limits ADD COLUMN cleared boolean NOT NULL DEFAULT false;

-- What a key is issued for, beside its user: until when it works (null: no expiry), which models it may use (null: every
-- model served), and its own limits in the user limits' shape (null: none; kept, not enforced yet).
ALTER TABLE api_key
    ADD COLUMN expires_at          timestamptz,
    ADD COLUMN models              text[] CHECK (cardinality(models) > 0),
    ADD COLUMN tokens_per_day      bigint CHECK (tokens_per_day >= 0),
    ADD COLUMN tokens_per_month    bigint CHECK (tokens_per_month >= 0),
    ADD COLUMN requests_per_minute bigint CHECK (requests_per_minute >= 0);

-- The service tier a key's requests run in when they ask for "auto" or name none (issue 29): 'default', or 'flex' for a
-- pipeline that should only ever use idle capacity. Keys issued before keep running in the default tier.
ALTER TABLE api_key
    ADD COLUMN service_tier text NOT NULL DEFAULT 'default' CHECK (service_tier IN ('default', 'flex'));

-- The service tier each completion ran in (issue 29): 'default', or 'flex' (idle capacity only). Rows written before are
-- 'default': there was no other tier. A constant default adds the column without rewriting a partition; the check is
-- verified by one scan of the rows, as V3's outcome was.
ALTER TABLE token_usage
    ADD COLUMN service_tier text NOT NULL DEFAULT 'default' CHECK (service_tier IN ('default', 'flex'));

-- The daily rollups keep the tier too, so that /usage and /admin/usage split whole days by it as they split the rows.
-- Days rolled up before were all of the default tier.
ALTER TABLE usage_daily ADD COLUMN service_tier text NOT NULL DEFAULT 'default';
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
ALTER TABLE usage_daily ADD PRIMARY KEY (user_id, day, model, outcome, service_tier);

-- V6's late path and day roll-up, with the tier among the keys they sum by; nothing else changes.
CREATE OR REPLACE FUNCTION usage_daily_add_late_row() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('usage_rollup'));
    -- read after the lock: a day rolled up meanwhile is seen as rolled up
    IF NEW.created_at < (SELECT rolled_up_before::timestamp AT TIME ZONE 'UTC' FROM usage_rollup) THEN
        INSERT INTO usage_daily AS daily (user_id, day, model, outcome, service_tier, requests, prompt_tokens,
                                          completion_tokens)
        VALUES (NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, coalesce(NEW.model, ''), NEW.outcome,
                NEW.service_tier, 1, NEW.prompt_tokens, NEW.completion_tokens)
        ON CONFLICT (user_id, day, model, outcome, service_tier) DO UPDATE
            SET requests = daily.requests + 1,
                prompt_tokens = daily.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = daily.completion_tokens + excluded.completion_tokens;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION usage_rollup_day() RETURNS date
LANGUAGE plpgsql SET search_path FROM CURRENT SET lock_timeout = '10s' AS $$
DECLARE
    rollup usage_rollup;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('usage_rollup'));
    SELECT * INTO rollup FROM usage_rollup;
    IF rollup.rolled_up_before >= rollup.closing_before THEN
        RETURN NULL;
    END IF;
    -- a plain INSERT: usage_daily has no row of a day not rolled up yet, and were it otherwise, failing beats doubling
    INSERT INTO usage_daily (user_id, day, model, outcome, service_tier, requests, prompt_tokens, completion_tokens)
    SELECT user_id, rollup.rolled_up_before, coalesce(model, ''), outcome, service_tier,
           count(*), sum(prompt_tokens), sum(completion_tokens)
    FROM token_usage
    WHERE created_at >= rollup.rolled_up_before::timestamp AT TIME ZONE 'UTC'
      AND created_at < (rollup.rolled_up_before + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 3, 4, 5;
    UPDATE usage_rollup SET rolled_up_before = rollup.rolled_up_before + 1;
    RETURN rollup.rolled_up_before;
END $$;

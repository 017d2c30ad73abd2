-- The daily rollups leave the write path. V5's trigger added every inserted row to usage_daily in the same statement,
-- which cost up to 40 % of the rows written per second (an upsert per user and day of every write). Now a day is
-- rolled up once, in the background, after it has ended; the totals read the rollups for the days before the horizon
-- (usage_rollup.rolled_up_before) and the rows for the days from it on, which are at most the last day or two.
--
-- A row of a day already rolled up (a write retried after a database outage, an operator re-inserting logged rows) is
-- still added to usage_daily by a trigger, in the transaction that inserts it. The trigger fires only for rows older
-- than usage_rollup.closing_before, which the gateway's rows of today never are: they cost it one comparison each.
--
-- How a day is rolled up without losing or doubling a row written while it happens (usage_rollup_close and
-- usage_rollup_day below):
--   1. close: the trigger is replaced by one that takes rows of the day as late, under a lock on token_usage that
--      waits for every write in flight (one that may have taken its rows as new) and keeps new ones back until it
--      commits. From then on every row of the day takes the late path: the advisory lock 'usage_rollup', then a look
--      at rolled_up_before.
--   2. roll up: under the same lock (it waits for late writes in flight and holds new ones back), the day's rows are
--      summed into usage_daily and rolled_up_before moves past the day, in one transaction. A late write that
--      committed before it is in the sum; one that waited for it then sees the day rolled up and adds its row itself.

DROP TRIGGER token_usage_adds_to_usage_daily ON token_usage;
DROP FUNCTION usage_daily_add();

-- One row. usage_daily holds exactly the sums of the rows of every day before rolled_up_before (and of the rows dropped
-- with their months); rows of days before closing_before take the late path when inserted (the trigger's condition).
CREATE TABLE usage_rollup (
    single           boolean PRIMARY KEY DEFAULT true CHECK (single),
    rolled_up_before date    NOT NULL,
    closing_before   date    NOT NULL CHECK (closing_before >= rolled_up_before)
);

-- Until now the trigger kept usage_daily exact for every day: the days before today stay rolled up, today is read
-- from its rows again.
INSERT INTO usage_rollup (rolled_up_before, closing_before)
VALUES ((now() AT TIME ZONE 'UTC')::date, (now() AT TIME ZONE 'UTC')::date);
DELETE FROM usage_daily WHERE day >= (now() AT TIME ZONE 'UTC')::date;

-- Rolling up a day reads its rows by time, without the user; rows arrive in time order, so a block range index is
-- small and cheap to keep.
CREATE INDEX token_usage_created_at ON token_usage USING brin (created_at);

-- The late path: adds a row of a day already rolled up to usage_daily. Late writers take the roll-up's lock, exclusive:
-- they are rare, and one at a time they never wait for each other's rollup rows in a cycle.
CREATE FUNCTION usage_daily_add_late_row() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('usage_rollup'));
    -- read after the lock: a day rolled up meanwhile is seen as rolled up
    IF NEW.created_at < (SELECT rolled_up_before::timestamp AT TIME ZONE 'UTC' FROM usage_rollup) THEN
        INSERT INTO usage_daily AS daily (user_id, day, model, outcome, requests, prompt_tokens, completion_tokens)
        VALUES (NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, coalesce(NEW.model, ''), NEW.outcome,
                1, NEW.prompt_tokens, NEW.completion_tokens)
        ON CONFLICT (user_id, day, model, outcome) DO UPDATE
            SET requests = daily.requests + 1,
                prompt_tokens = daily.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = daily.completion_tokens + excluded.completion_tokens;
    END IF;
    RETURN NULL;
END $$;

-- (Re)creates the trigger that sends rows of days before `closing` down the late path. Its condition is a constant, so
-- that a row of today costs one comparison and nothing is kept of it for the trigger (a statement-level trigger, whose
-- transition table keeps every inserted row, cost a few per cent of the rows written per second). Replacing it takes a
-- lock on token_usage that waits for every write in flight and keeps new ones back until the transaction commits.
-- Row-level, it is on every partition, and fires for rows inserted into a partition directly too.
CREATE FUNCTION usage_rollup_late_trigger(closing date) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER token_usage_adds_late_rows_to_usage_daily AFTER INSERT ON token_usage '
                   'FOR EACH ROW WHEN (NEW.created_at < %L::timestamptz) EXECUTE FUNCTION usage_daily_add_late_row()',
                   closing::timestamp AT TIME ZONE 'UTC');
END $$;

SELECT usage_rollup_late_trigger((SELECT closing_before FROM usage_rollup));

-- Step 1: rows of days before `day` take the late path from now on. Returns whether closing_before moved. Waits at most
-- a second for the writes in flight (meanwhile new writes wait too); past that it fails and is tried again later.
CREATE FUNCTION usage_rollup_close(day date) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT SET lock_timeout = '1s' AS $$
BEGIN
    IF (SELECT closing_before FROM usage_rollup) >= day THEN
        RETURN false;
    END IF;
    PERFORM usage_rollup_late_trigger(day);
    UPDATE usage_rollup SET closing_before = day WHERE closing_before < day;
    RETURN FOUND;
END $$;

-- Step 2: rolls up the first day not rolled up, if it is closed; returns it, or null when there is none. Run it in a
-- transaction of its own, after usage_rollup_close has committed; one instance at a time gets the lock, the others
-- wait and then find the day done. A late write holding the lock for over ten seconds makes it fail, to be tried later.
CREATE FUNCTION usage_rollup_day() RETURNS date
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
    INSERT INTO usage_daily (user_id, day, model, outcome, requests, prompt_tokens, completion_tokens)
    SELECT user_id, rollup.rolled_up_before, coalesce(model, ''), outcome,
           count(*), sum(prompt_tokens), sum(completion_tokens)
    FROM token_usage
    WHERE created_at >= rollup.rolled_up_before::timestamp AT TIME ZONE 'UTC'
      AND created_at < (rollup.rolled_up_before + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1, 3, 4;
    UPDATE usage_rollup SET rolled_up_before = rollup.rolled_up_before + 1;
    RETURN rollup.rolled_up_before;
END $$;

-- Retention drops only months whose days are all rolled up, so that their totals are kept.
CREATE OR REPLACE FUNCTION token_usage_maintain(ahead interval, retention interval, OUT created int, OUT dropped int)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    created := 0;
    dropped := 0;
    IF pg_try_advisory_xact_lock(hashtext('token_usage_maintain')) THEN
        created := token_usage_create_partitions(now(), now() + ahead);
        IF retention IS NOT NULL THEN
            dropped := token_usage_drop_partitions(least(now() - retention,
                (SELECT rolled_up_before::timestamp AT TIME ZONE 'UTC' FROM usage_rollup)));
        END IF;
    END IF;
END $$;

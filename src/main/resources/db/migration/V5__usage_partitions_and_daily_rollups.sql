-- token_usage becomes a table partitioned by month of created_at (UTC), so that old months can be dropped whole, and
-- usage_daily keeps per-user daily totals, added by a trigger in the same statement as the rows (whoever inserts them:
-- the gateway, or an operator re-inserting logged rows), so that totals survive dropped months and /usage sums days,
-- not rows. The existing rows move over in this transaction.

ALTER TABLE token_usage RENAME TO token_usage_before_partitions;
ALTER TABLE token_usage_before_partitions RENAME CONSTRAINT token_usage_pkey TO token_usage_before_partitions_pkey;
ALTER INDEX token_usage_user_id_created_at RENAME TO token_usage_before_partitions_user_id_created_at;

-- The same columns and checks. The primary key must hold the partition key: a request's row is written with the time it
-- was served, which a retried write repeats, so (request_id, created_at) still turns a retry into nothing.
CREATE TABLE token_usage (
    request_id        uuid        NOT NULL,
    user_id           bigint      NOT NULL CHECK (user_id > 0),
    prompt_tokens     int         NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens int         NOT NULL CHECK (completion_tokens >= 0),
    total_tokens      int         NOT NULL CHECK (total_tokens = prompt_tokens + completion_tokens),
    model             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    outcome           text        NOT NULL DEFAULT 'served'
        CHECK (outcome IN ('served', 'client_gone', 'deadline', 'stream_failed')),
    PRIMARY KEY (request_id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX token_usage_user_id_created_at ON token_usage (user_id, created_at);

-- Rows of a month without its partition land here rather than being refused (a row refused is a completion unbilled).
-- The gateway creates months ahead, so this stays empty; retention never drops it.
CREATE TABLE token_usage_default PARTITION OF token_usage DEFAULT;

-- The partition of each month from the one holding `since` through the one holding `through`, where missing; named
-- token_usage_yYYYYmMM, bounded by the month's first instant in UTC. Returns how many it created.
CREATE FUNCTION token_usage_create_partitions(since timestamptz, through timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    parent  regclass := 'token_usage'::regclass;
    schema  text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'token_usage'::regclass);
    month   timestamp := date_trunc('month', since AT TIME ZONE 'UTC');
    created int := 0;
    name    text;
BEGIN
    WHILE month <= through AT TIME ZONE 'UTC' LOOP
        name := format('token_usage_y%sm%s', to_char(month, 'YYYY'), to_char(month, 'MM'));
        IF to_regclass(format('%I.%I', schema, name)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                schema, name, parent, (month AT TIME ZONE 'UTC'), ((month + interval '1 month') AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END $$;

-- Drops every monthly partition all of whose rows are older than `cutoff` (its month ended at or before it); never
-- the default partition. Their totals are in usage_daily already (the trigger below added them with the rows).
CREATE FUNCTION token_usage_drop_partitions(cutoff timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    monthly   record;
    dropped   int := 0;
BEGIN
    FOR monthly IN
        SELECT c.oid::regclass AS name,
               (to_date(substring(c.relname FROM 'y(\d{4})m\d{2}$') || substring(c.relname FROM 'm(\d{2})$'), 'YYYYMM')::timestamp
                   AT TIME ZONE 'UTC') AS month
        FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
        WHERE inhparent = 'token_usage'::regclass AND c.relname ~ '^token_usage_y\d{4}m\d{2}$'
    LOOP
        IF monthly.month + interval '1 month' <= cutoff THEN
            EXECUTE format('DROP TABLE %s', monthly.name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

-- What each gateway runs at start and every hour: months ahead created, months past retention dropped. One instance at a
-- time does it (a transaction-scoped advisory lock); the others return at once with nothing done.
CREATE FUNCTION token_usage_maintain(ahead interval, retention interval, OUT created int, OUT dropped int)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    created := 0;
    dropped := 0;
    IF pg_try_advisory_xact_lock(hashtext('token_usage_maintain')) THEN
        created := token_usage_create_partitions(now(), now() + ahead);
        IF retention IS NOT NULL THEN
            dropped := token_usage_drop_partitions(now() - retention);
        END IF;
    END IF;
END $$;

SELECT token_usage_create_partitions(
    least(coalesce((SELECT min(created_at) FROM token_usage_before_partitions), now()), now()),
    greatest(coalesce((SELECT max(created_at) FROM token_usage_before_partitions), now()), now() + interval '2 months'));

-- A user's completions and tokens per UTC day, model and outcome: exactly the sums of token_usage's rows while they
-- exist, and the record of them once their month is dropped. model '' stands for a row without a model.
CREATE TABLE usage_daily (
    user_id           bigint NOT NULL,
    day               date   NOT NULL,
    model             text   NOT NULL,
    outcome           text   NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    PRIMARY KEY (user_id, day, model, outcome)
);

-- Adds the rows a statement inserted (only those: ON CONFLICT DO NOTHING skips are not in new_rows) to usage_daily,
-- rollup rows in key order, so that two writers updating the same users' days never wait for each other in a cycle.
CREATE FUNCTION usage_daily_add() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO usage_daily AS daily (user_id, day, model, outcome, requests, prompt_tokens, completion_tokens)
    SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, coalesce(model, ''), outcome,
           count(*), sum(prompt_tokens), sum(completion_tokens)
    FROM new_rows
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_id, day, model, outcome) DO UPDATE
        SET requests = daily.requests + excluded.requests,
            prompt_tokens = daily.prompt_tokens + excluded.prompt_tokens,
            completion_tokens = daily.completion_tokens + excluded.completion_tokens;
    RETURN NULL;
END $$;

CREATE TRIGGER token_usage_adds_to_usage_daily
    AFTER INSERT ON token_usage
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_add();

-- the rows as they were, each once; the trigger sums them into usage_daily
INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome)
SELECT request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome
FROM token_usage_before_partitions;

DROP TABLE token_usage_before_partitions;

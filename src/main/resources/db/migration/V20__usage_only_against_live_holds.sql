-- A limited user's usage row is written only while every budget hold it charges is live (issue 25's last bound). Before,
-- budget_charge added a row's tokens to consumed whenever the row was inserted: a row written after its instance's hold
-- had expired in the store (a slow write, a journal replayed after a cut-off longer than the expiry) was billed while
-- other instances could already lease what that hold had counted, so billed + reserved could pass a limit.
--
-- usage_record_on_live_holds locks each hold a row charges (the window's row, then the hold's, in the order leases lock
-- them), and inserts only the rows whose every hold is still the one the request reserved from (same since_op) and has
-- not expired; it charges those it inserted (a row already in the table is not charged again), and answers the rows it
-- refused, which are neither written nor billed. Each charge moves its amount from a live hold to consumed under the
-- locks a lease waits for, so consumed + the unexpired holds never grow past the limit, whenever the statement commits.
-- Rows without charges (unlimited users) are inserted as before. budget_charge stays for replaying older journals.
CREATE FUNCTION usage_record_on_live_holds(p_requests uuid[], p_users bigint[], p_prompt int[], p_completion int[],
                                           p_total int[], p_models text[], p_served_micros bigint[], p_outcomes text[],
                                           p_tiers text[], c_requests uuid[], c_instances uuid[], c_since bigint[],
                                           c_accounts bigint[], c_kinds text[], c_start_micros bigint[], c_amounts bigint[])
    RETURNS SETOF uuid
    LANGUAGE plpgsql AS $$
DECLARE
    h       record;
    refused uuid[] := '{}';
    written uuid[];
BEGIN
    FOR h IN
        SELECT DISTINCT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s, x.i, x.since
        FROM unnest(c_accounts, c_kinds, c_start_micros, c_instances, c_since) AS x (u, k, m, i, since)
        ORDER BY 1, 2, 3, 4, 5
    LOOP
        PERFORM 1 FROM budget_window bw
        WHERE bw.user_id = h.u AND bw.kind = h.k AND bw.window_start = h.s
        FOR UPDATE;
        PERFORM 1 FROM budget_hold bh
        WHERE bh.user_id = h.u AND bh.kind = h.k AND bh.window_start = h.s AND bh.instance_id = h.i
              AND bh.since_op = h.since AND bh.expires_at > clock_timestamp()
        FOR UPDATE;
        IF NOT FOUND THEN
            refused := refused || ARRAY(
                SELECT x.r FROM unnest(c_requests, c_accounts, c_kinds, c_start_micros, c_instances, c_since)
                                AS x (r, u, k, m, i, since)
                WHERE x.u = h.u AND x.k = h.k AND timestamptz 'epoch' + x.m * interval '1 microsecond' = h.s
                      AND x.i = h.i AND x.since = h.since);
        END IF;
    END LOOP;

    WITH inserted AS (
        INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at,
                                 outcome, service_tier)
        SELECT r.request_id, r.user_id, r.prompt_tokens, r.completion_tokens, r.total_tokens, r.model,
               timestamptz 'epoch' + r.served_at_micros * interval '1 microsecond', r.outcome, r.service_tier
        FROM unnest(p_requests, p_users, p_prompt, p_completion, p_total, p_models, p_served_micros, p_outcomes, p_tiers)
             AS r (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, served_at_micros, outcome,
                   service_tier)
        WHERE r.request_id <> ALL (refused)
        ON CONFLICT (request_id, created_at) DO NOTHING
        RETURNING token_usage.request_id)
    SELECT coalesce(array_agg(inserted.request_id), '{}') INTO written FROM inserted;

    -- the holds are live and locked: each charge leaves its hold for consumed
    FOR h IN
        SELECT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s, x.i, x.since, sum(x.amount) AS amount
        FROM unnest(c_requests, c_instances, c_since, c_accounts, c_kinds, c_start_micros, c_amounts)
             AS x (r, i, since, u, k, m, amount)
        WHERE x.r = ANY (written)
        GROUP BY x.u, x.k, x.m, x.i, x.since
        ORDER BY 1, 2, 3, 4, 5
    LOOP
        UPDATE budget_window bw SET consumed = bw.consumed + h.amount
        WHERE bw.user_id = h.u AND bw.kind = h.k AND bw.window_start = h.s;
        UPDATE budget_hold bh SET held = greatest(0, bh.held - h.amount)
        WHERE bh.user_id = h.u AND bh.kind = h.k AND bh.window_start = h.s AND bh.instance_id = h.i
              AND bh.since_op = h.since;
    END LOOP;

    RETURN QUERY SELECT DISTINCT unnest(refused);
END $$;

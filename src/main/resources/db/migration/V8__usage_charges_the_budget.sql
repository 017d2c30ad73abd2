-- Billed tokens reach the budget in the same commit as their usage rows. Before, an instance reported what it billed with
-- its next give-back (every few seconds): a kill -9 left those tokens in its hold, and when the hold expired they were
-- free for everyone again, so billed + reserved could pass a limit by what the dead instance had billed unreported.
-- Now the usage write moves each row's tokens out of the instance's hold into the window's consumed (budget_charge):
-- what a hold keeps is only ever free or reserved, so an expired one returns only what nobody was billed.
--
-- A hold found expired starts again empty (lost); since_op is the operation that restarted it. A charge names the
-- since_op of the hold its request reserved from: one for a hold that was lost and restarted since only counts as
-- consumed, never lowers the new hold's slice (which the instance holds for other requests).

ALTER TABLE budget_hold ADD COLUMN since_op bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION budget_lease(p_instance uuid, p_op bigint, p_expiry_millis bigint, p_users bigint[], p_kinds text[],
                             p_start_micros bigint[], p_limits bigint[], p_needs bigint[], p_wants bigint[])
    RETURNS TABLE (user_id bigint, kind text, window_start timestamptz, granted bigint, taken bigint, consumed bigint,
                   lost boolean)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    a      record;
    w      budget_window%ROWTYPE;
    h      budget_hold%ROWTYPE;
    others bigint;
    own    bigint;
    free   bigint;
    g      bigint;
    gone   boolean;
BEGIN
    FOR a IN
        SELECT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s, x.lim, x.need, x.want
        FROM unnest(p_users, p_kinds, p_start_micros, p_limits, p_needs, p_wants) AS x (u, k, m, lim, need, want)
        ORDER BY 1, 2, 3
    LOOP
        INSERT INTO budget_window AS bw (user_id, kind, window_start) VALUES (a.u, a.k, a.s)
        ON CONFLICT ON CONSTRAINT budget_window_pkey DO UPDATE SET granted = bw.granted
        RETURNING bw.* INTO w;
        INSERT INTO budget_hold AS bh (user_id, kind, window_start, instance_id) VALUES (a.u, a.k, a.s, p_instance)
        ON CONFLICT ON CONSTRAINT budget_hold_pkey DO NOTHING;
        SELECT bh.* INTO h FROM budget_hold bh
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance
        FOR UPDATE;
        CONTINUE WHEN h.last_op >= p_op; -- applied or fenced already: never twice
        gone := h.held > 0 AND h.expires_at <= clock_timestamp();
        own := CASE WHEN gone THEN 0 ELSE h.held END;
        SELECT coalesce(sum(o.held), 0) INTO others FROM budget_hold o
        WHERE o.user_id = a.u AND o.kind = a.k AND o.window_start = a.s AND o.instance_id <> p_instance
              AND o.expires_at > clock_timestamp();
        free := a.lim - w.consumed - others - own;
        g := CASE WHEN free >= a.need THEN least(a.want, greatest(a.need, free / 2)) ELSE 0 END;
        UPDATE budget_hold bh
        SET held = own + g, expires_at = statement_timestamp() + p_expiry_millis * interval '1 millisecond',
            last_op = p_op, applied_op = p_op, last_grant = g, lost = gone,
            since_op = CASE WHEN gone THEN p_op ELSE bh.since_op END
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance;
        user_id := a.u; kind := a.k; window_start := a.s; granted := g;
        taken := w.consumed + others + own + g; consumed := w.consumed; lost := gone;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION budget_give_back(p_instance uuid, p_op bigint, p_expiry_millis bigint, p_users bigint[], p_kinds text[],
                                 p_start_micros bigint[], p_released bigint[], p_consumed bigint[])
    RETURNS TABLE (user_id bigint, kind text, window_start timestamptz, held bigint, lost boolean)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    a    record;
    h    budget_hold%ROWTYPE;
    gone boolean;
    kept bigint;
BEGIN
    FOR a IN
        SELECT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s, x.released, x.consumed
        FROM unnest(p_users, p_kinds, p_start_micros, p_released, p_consumed) AS x (u, k, m, released, consumed)
        ORDER BY 1, 2, 3
    LOOP
        INSERT INTO budget_window AS bw (user_id, kind, window_start) VALUES (a.u, a.k, a.s)
        ON CONFLICT ON CONSTRAINT budget_window_pkey DO UPDATE SET granted = bw.granted;
        INSERT INTO budget_hold AS bh (user_id, kind, window_start, instance_id) VALUES (a.u, a.k, a.s, p_instance)
        ON CONFLICT ON CONSTRAINT budget_hold_pkey DO NOTHING;
        SELECT bh.* INTO h FROM budget_hold bh
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance
        FOR UPDATE;
        CONTINUE WHEN h.last_op >= p_op;
        gone := h.held > 0 AND h.expires_at <= clock_timestamp();
        -- never below nothing: a hold lost and leased again is not lowered by what the lost one gives back
        kept := CASE WHEN gone THEN 0 ELSE greatest(0, h.held - a.released) END;
        UPDATE budget_window bw SET consumed = bw.consumed + a.consumed
        WHERE bw.user_id = a.u AND bw.kind = a.k AND bw.window_start = a.s;
        UPDATE budget_hold bh
        SET held = kept, expires_at = statement_timestamp() + p_expiry_millis * interval '1 millisecond',
            last_op = p_op, applied_op = p_op, last_grant = 0, lost = gone,
            since_op = CASE WHEN gone THEN p_op ELSE bh.since_op END
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance;
        user_id := a.u; kind := a.k; window_start := a.s; held := kept; lost := gone;
        RETURN NEXT;
    END LOOP;
END $$;

-- Charges usage rows to the budget: per charge, consumed grows in the window, and the instance's hold that the request
-- reserved from (the same since_op, not expired) gives up as much (never below nothing). Only the charges of rows in
-- p_written count: the rows this statement inserted, so a row written again (a journal's replay) is never charged twice.
-- Windows and holds are locked in the order leases lock them (user, kind, start; the window's row, then the hold's).
CREATE FUNCTION budget_charge(p_requests uuid[], p_instances uuid[], p_since bigint[], p_users bigint[], p_kinds text[],
                              p_start_micros bigint[], p_amounts bigint[], p_written uuid[])
    RETURNS bigint
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    a       record;
    charged bigint := 0;
BEGIN
    FOR a IN
        SELECT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s, x.i, x.since, sum(x.amount) AS amount
        FROM unnest(p_requests, p_instances, p_since, p_users, p_kinds, p_start_micros, p_amounts)
             AS x (r, i, since, u, k, m, amount)
        WHERE x.r = ANY (p_written)
        GROUP BY x.u, x.k, x.m, x.i, x.since
        ORDER BY 1, 2, 3, 4, 5
    LOOP
        INSERT INTO budget_window AS bw (user_id, kind, window_start, consumed) VALUES (a.u, a.k, a.s, a.amount)
        ON CONFLICT ON CONSTRAINT budget_window_pkey DO UPDATE SET consumed = bw.consumed + excluded.consumed;
        UPDATE budget_hold bh SET held = greatest(0, bh.held - a.amount)
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = a.i
              AND bh.since_op = a.since AND bh.expires_at > clock_timestamp();
        charged := charged + a.amount;
    END LOOP;
    RETURN charged;
END $$;

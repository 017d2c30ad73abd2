-- Budget leases become holds: each instance holds its slices of a window under its own id (a random UUID per start),
-- with an expiry it renews while alive, and every lease and give-back carries the instance's operation number, applied
-- at most once. Before, budget_window.granted was changed by blind deltas: a give-back that timed out on the gateway but
-- committed was sent again (granted went below zero: a user overspent by 49 %), a lease that committed after the gateway
-- gave up was held by nobody, and a killed instance's slices stayed granted until their window ended.
--
-- What is free in a window is now limit - consumed - the held of every unexpired hold. budget_window.granted and
-- last_grant are no longer written (kept so that this migration is additive).
--
-- Exactly once: an instance sends one operation at a time, numbered upwards. Each statement applies an operation to a
-- hold only while the hold's last_op is below it, and records it in applied_op (with what a lease granted). When the
-- gateway does not learn an operation's outcome (a timeout, a dropped connection) it calls budget_resolve with the same
-- number: that raises last_op to it (so the operation, still queued behind a lock or in flight, can never apply later)
-- and answers whether it had applied, and what it granted. Nothing is ever sent twice.

ALTER TABLE budget_window ALTER COLUMN granted SET DEFAULT 0;

CREATE TABLE budget_hold (
    user_id      bigint      NOT NULL,
    kind         text        NOT NULL,
    window_start timestamptz NOT NULL,
    instance_id  uuid        NOT NULL,
    -- what the instance holds here and has not given back: free, reserved by requests in flight, billed unreported
    held         bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
    -- past it, held counts as free for everyone: the instance is dead or cut off, and stopped reserving before it
    expires_at   timestamptz NOT NULL DEFAULT '-infinity',
    -- the highest operation of the instance seen here, applied or fenced by budget_resolve
    last_op      bigint      NOT NULL DEFAULT 0,
    -- the latest operation applied, what it granted (a lease) and whether it found the hold expired (its held lost)
    applied_op   bigint      NOT NULL DEFAULT 0,
    last_grant   bigint      NOT NULL DEFAULT 0,
    lost         boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, kind, window_start, instance_id),
    FOREIGN KEY (user_id, kind, window_start) REFERENCES budget_window ON DELETE CASCADE
);

-- Leases for one instance's operation, windows locked in one order (user, kind, start; the window's row, then the
-- hold's), so concurrent leases and give-backs never deadlock. A window gets at least need when what is free leaves it,
-- beyond it up to want and at most half of what is free, else nothing. taken: consumed + every unexpired hold after it.
CREATE FUNCTION budget_lease(p_instance uuid, p_op bigint, p_expiry_millis bigint, p_users bigint[], p_kinds text[],
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
            last_op = p_op, applied_op = p_op, last_grant = g, lost = gone
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance;
        user_id := a.u; kind := a.k; window_start := a.s; granted := g;
        taken := w.consumed + others + own + g; consumed := w.consumed; lost := gone;
        RETURN NEXT;
    END LOOP;
END $$;

-- Gives back (released leaves the hold), reports billed amounts (consumed moves from the hold to the window) and
-- renews the holds, for one instance's operation. A hold found expired has lost its held: it is set to nothing (others
-- may have leased it), and the billed amounts still count. held: what the hold keeps after it.
CREATE FUNCTION budget_give_back(p_instance uuid, p_op bigint, p_expiry_millis bigint, p_users bigint[], p_kinds text[],
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
            last_op = p_op, applied_op = p_op, last_grant = 0, lost = gone
        WHERE bh.user_id = a.u AND bh.kind = a.k AND bh.window_start = a.s AND bh.instance_id = p_instance;
        user_id := a.u; kind := a.k; window_start := a.s; held := kept; lost := gone;
        RETURN NEXT;
    END LOOP;
END $$;

-- Resolves an operation whose outcome the instance did not learn: fences it (last_op rises to it, so that it cannot
-- apply later: it waits for it if it holds the hold's row) and answers, per window, whether it had applied.
CREATE FUNCTION budget_resolve(p_instance uuid, p_op bigint, p_users bigint[], p_kinds text[], p_start_micros bigint[])
    RETURNS TABLE (user_id bigint, kind text, window_start timestamptz, applied boolean, granted bigint, held bigint,
                   lost boolean)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    a record;
    h budget_hold%ROWTYPE;
BEGIN
    FOR a IN
        SELECT x.u, x.k, timestamptz 'epoch' + x.m * interval '1 microsecond' AS s
        FROM unnest(p_users, p_kinds, p_start_micros) AS x (u, k, m)
        ORDER BY 1, 2, 3
    LOOP
        -- no lock on the window's row: an operation waiting there must find the fence when it gets the hold's
        INSERT INTO budget_window (user_id, kind, window_start) VALUES (a.u, a.k, a.s)
        ON CONFLICT ON CONSTRAINT budget_window_pkey DO NOTHING;
        INSERT INTO budget_hold AS bh (user_id, kind, window_start, instance_id, last_op)
        VALUES (a.u, a.k, a.s, p_instance, p_op)
        ON CONFLICT ON CONSTRAINT budget_hold_pkey DO UPDATE SET last_op = greatest(bh.last_op, p_op)
        RETURNING bh.* INTO h;
        user_id := a.u; kind := a.k; window_start := a.s; applied := h.applied_op = p_op;
        granted := CASE WHEN h.applied_op = p_op THEN h.last_grant ELSE 0 END; held := h.held;
        lost := h.applied_op = p_op AND h.lost;
        RETURN NEXT;
    END LOOP;
END $$;

"""The PostgreSQL ledger's schema: versioned migrations, tables and functions.

Each migration is a list of statements run in one transaction, in the ledger's schema
(the connection's ``search_path``). The hot operations are PL/pgSQL functions so each
one is a single statement: one round trip, one transaction (autocommit), all or none.

Lock order (no deadlocks): a transaction locks at most one hold row, or the holds it
reaps with ``SKIP LOCKED`` (never waiting), *before* any counter row; counter rows are
always locked in ascending key order.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_TABLES: Final = (
    """CREATE TABLE counters (
        key text PRIMARY KEY,
        settled bigint NOT NULL DEFAULT 0,
        held bigint NOT NULL DEFAULT 0,
        lim bigint,
        expires double precision
    )""",
    """CREATE TABLE holds (
        id text PRIMARY KEY,
        status text NOT NULL,
        created double precision NOT NULL,
        lease_until double precision NOT NULL,
        contract text NOT NULL,
        run text NOT NULL,
        call_id text NOT NULL,
        attempt integer NOT NULL,
        estimate bigint NOT NULL,
        lines jsonb NOT NULL
    )""",
    "CREATE INDEX holds_by_lease ON holds (status, lease_until)",
    """CREATE TABLE spend (
        id bigserial PRIMARY KEY,
        ts double precision NOT NULL,
        hold_id text NOT NULL,
        call_id text NOT NULL,
        contract text NOT NULL,
        run text NOT NULL,
        attempt integer NOT NULL,
        estimate bigint NOT NULL,
        actual bigint NOT NULL,
        tokens bigint NOT NULL,
        outcome text NOT NULL,
        error text NOT NULL
    )""",
    "CREATE INDEX spend_by_ts ON spend (ts)",
    "CREATE INDEX spend_by_contract ON spend (contract, ts)",
    "CREATE INDEX spend_by_hold ON spend (hold_id)",
    """CREATE TABLE states (
        key text PRIMARY KEY, version bigint NOT NULL, value text NOT NULL,
        expires double precision
    )""",
    "CREATE TABLE marks (key text PRIMARY KEY, expires double precision)",
    """CREATE TABLE slots (
        name text NOT NULL, holder text NOT NULL, lease_until double precision NOT NULL,
        PRIMARY KEY (name, holder)
    )""",
    """CREATE TABLE claims (
        key text PRIMARY KEY, owner text NOT NULL, status text NOT NULL, result bytea,
        until double precision NOT NULL
    )""",
    # Replies kept for a retry of the same operation; losing them in a crash is harmless.
    """CREATE UNLOGGED TABLE ops (
        id text PRIMARY KEY, reply text NOT NULL, created timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX ops_by_age ON ops (created)",
)

_HELPERS: Final = (
    """CREATE FUNCTION rg_first(p_lines jsonb, p_unit text) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS $$
        SELECT (e->>1)::bigint FROM jsonb_array_elements(p_lines) WITH ORDINALITY AS t(e, n)
        WHERE e->>3 = p_unit ORDER BY n LIMIT 1
    $$""",
    """CREATE FUNCTION rg_remember(p_op text, p_reply text) RETURNS text
    LANGUAGE plpgsql AS $$
    BEGIN
        IF p_op IS NOT NULL THEN
            INSERT INTO ops (id, reply) VALUES (p_op, p_reply) ON CONFLICT (id) DO NOTHING;
        END IF;
        RETURN p_reply;
    END $$""",
)

_RESERVE: Final = """
CREATE FUNCTION rg_reserve(
    p_id text, p_now double precision, p_lease double precision, p_contract text,
    p_run text, p_call text, p_attempt integer, p_estimate bigint, p_lines jsonb,
    p_blockers text[]
) RETURNS TABLE (r_kind text, r_key text, r_settled bigint, r_held bigint, r_value text)
LANGUAGE plpgsql AS $$
DECLARE
    v_state record;
    ln record;
    v_failed text;
BEGIN
    SELECT s.key, s.value INTO v_state
      FROM unnest(p_blockers) WITH ORDINALITY AS b(k, n) JOIN states s ON s.key = b.k
     WHERE s.expires IS NULL OR s.expires > p_now
     ORDER BY b.n LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'blocked'::text, v_state.key, 0::bigint, 0::bigint,
            v_state.value;
        RETURN;
    END IF;
    -- A block with an exception handler is a subtransaction: a refusal rolls back
    -- every line already placed, and the hold, without failing the statement.
    BEGIN
        INSERT INTO holds (id, status, created, lease_until, contract, run, call_id,
                           attempt, estimate, lines)
        VALUES (p_id, 'held', p_now, p_lease, p_contract, p_run, p_call, p_attempt,
                p_estimate, p_lines)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            RETURN;  -- placed before: a retry of a reply that was lost
        END IF;
        FOR ln IN
            SELECT e->>0 AS k, (e->>1)::bigint AS a, (e->>2)::bigint AS l,
                   (e->>4)::double precision AS x
              FROM jsonb_array_elements(p_lines) AS e ORDER BY 1
        LOOP
            v_failed := ln.k;
            IF ln.l IS NOT NULL AND ln.a > ln.l THEN
                RAISE EXCEPTION USING ERRCODE = 'RG001';
            END IF;
            -- The conditional update: the row lock makes a concurrent reserve wait,
            -- then re-check the condition against what this one wrote. The sum is
            -- numeric: settled + held + asked may pass the bigint range near a limit.
            INSERT INTO counters AS c (key, settled, held, lim, expires)
            VALUES (ln.k, 0, ln.a, ln.l, ln.x)
            ON CONFLICT (key) DO UPDATE
               SET held = c.held + excluded.held, lim = excluded.lim
             WHERE excluded.lim IS NULL
                OR c.settled::numeric + c.held + excluded.held <= excluded.lim;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'RG001';
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'RG001' THEN
        RETURN QUERY
            SELECT CASE WHEN c.key = v_failed THEN 'refused' ELSE 'state' END, c.key,
                   c.settled, c.held, NULL::text
              FROM counters c
             WHERE c.key IN (SELECT e->>0 FROM jsonb_array_elements(p_lines) AS e);
        IF NOT EXISTS (SELECT 1 FROM counters c WHERE c.key = v_failed) THEN
            RETURN QUERY SELECT 'refused'::text, v_failed, 0::bigint, 0::bigint, NULL::text;
        END IF;
    END;
END $$"""

_END: Final = """
CREATE FUNCTION rg_end(
    p_op text, p_id text, p_now double precision, p_outcome text, p_error text,
    p_report boolean, p_actual jsonb, p_clear text[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_kept text;
    h holds%ROWTYPE;
    ln record;
    v_real bigint;
    v_money bigint;
    v_tokens bigint;
    v_outcome text := p_outcome;
    v_status text := 'unknown';
    v_counters jsonb := '[]';
    v_cleared jsonb := '[]';
BEGIN
    SELECT reply INTO v_kept FROM ops WHERE id = p_op;
    IF FOUND THEN
        RETURN v_kept;
    END IF;
    DELETE FROM holds WHERE id = p_id RETURNING * INTO h;
    IF FOUND THEN
        FOR ln IN
            SELECT e->>0 AS k, (e->>1)::bigint AS a, e->>3 AS u
              FROM jsonb_array_elements(h.lines) AS e ORDER BY 1
        LOOP
            v_real := COALESCE((p_actual->>ln.u)::bigint, 0);
            IF h.status = 'reaped' THEN
                -- Charged its estimate when reaped: apply only the difference.
                UPDATE counters SET settled = settled + v_real - ln.a WHERE key = ln.k;
            ELSE
                UPDATE counters SET settled = settled + v_real, held = held - ln.a
                 WHERE key = ln.k;
            END IF;
        END LOOP;
        v_money := COALESCE((p_actual->>'money')::bigint, 0);
        v_tokens := COALESCE((p_actual->>'tokens')::bigint, 0);
        v_status := 'settled';
        IF h.status = 'reaped' THEN
            v_money := v_money - h.estimate;
            v_tokens := v_tokens - COALESCE(rg_first(h.lines, 'tokens'), 0);
            v_outcome := 'corrected';
            v_status := 'corrected';
        END IF;
        INSERT INTO spend (ts, hold_id, call_id, contract, run, attempt, estimate, actual,
                           tokens, outcome, error)
        VALUES (p_now, h.id, h.call_id, h.contract, h.run, h.attempt, h.estimate, v_money,
                v_tokens, v_outcome, p_error);
        IF p_report THEN
            SELECT COALESCE(jsonb_agg(jsonb_build_array(
                       e->>0, COALESCE(c.settled, 0), COALESCE(c.held, 0), c.lim)
                       ORDER BY n), '[]')
              INTO v_counters
              FROM jsonb_array_elements(h.lines) WITH ORDINALITY AS t(e, n)
              LEFT JOIN counters c ON c.key = e->>0;
        END IF;
    END IF;
    IF cardinality(p_clear) > 0 THEN
        WITH gone AS (DELETE FROM states WHERE key = ANY(p_clear) RETURNING key)
        SELECT COALESCE(jsonb_agg(key), '[]') INTO v_cleared FROM gone;
    END IF;
    RETURN rg_remember(p_op, jsonb_build_object(
        'status', v_status, 'counters', v_counters, 'cleared', v_cleared,
        'lines', CASE WHEN h.id IS NULL THEN '[]'::jsonb ELSE h.lines END)::text);
END $$"""

_REAP: Final = """
CREATE FUNCTION rg_reap(
    p_op text, p_now double precision, p_limit integer, p_retention double precision,
    p_grace double precision
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_kept text;
    v_due text[];
    d record;
    v_reaped jsonb;
BEGIN
    SELECT reply INTO v_kept FROM ops WHERE id = p_op;
    IF FOUND THEN
        RETURN v_kept;
    END IF;
    DELETE FROM holds WHERE status = 'reaped' AND lease_until < p_now - p_retention;
    DELETE FROM ops WHERE created < now() - interval '10 minutes';
    -- Counters of windows that ended long ago (no hold can still need them).
    DELETE FROM counters WHERE key IN (
        SELECT c.key FROM counters c
         WHERE c.expires < p_now - p_grace AND c.held = 0
         LIMIT 1000 FOR UPDATE SKIP LOCKED);
    v_due := ARRAY(
        SELECT id FROM holds WHERE status = 'held' AND lease_until < p_now
         ORDER BY lease_until LIMIT p_limit FOR UPDATE SKIP LOCKED);
    IF cardinality(v_due) = 0 THEN
        RETURN rg_remember(p_op, '[]');
    END IF;
    -- Charged the full estimate: the call may have been billed before the holder died.
    FOR d IN
        SELECT e->>0 AS k,
               sum(CASE e->>3 WHEN 'money' THEN h.estimate
                              WHEN 'calls' THEN rg_first(h.lines, 'calls')
                              WHEN 'tokens' THEN rg_first(h.lines, 'tokens')
                              ELSE 0 END) AS charge,
               sum((e->>1)::bigint) AS amount
          FROM holds h, jsonb_array_elements(h.lines) AS e
         WHERE h.id = ANY(v_due)
         GROUP BY 1 ORDER BY 1
    LOOP
        UPDATE counters SET settled = settled + d.charge, held = held - d.amount
         WHERE key = d.k;
    END LOOP;
    INSERT INTO spend (ts, hold_id, call_id, contract, run, attempt, estimate, actual, tokens,
                       outcome, error)
    SELECT p_now, h.id, h.call_id, h.contract, h.run, h.attempt, h.estimate, h.estimate,
           COALESCE(rg_first(h.lines, 'tokens'), 0), 'reaped', ''
      FROM holds h WHERE h.id = ANY(v_due) ORDER BY h.lease_until, h.id;
    SELECT jsonb_agg(jsonb_build_array(h.id, h.created, h.lease_until, h.contract, h.run,
                                       h.call_id, h.attempt, h.estimate, h.lines)
                     ORDER BY h.lease_until, h.id)
      INTO v_reaped FROM holds h WHERE h.id = ANY(v_due);
    UPDATE holds SET status = 'reaped' WHERE id = ANY(v_due);
    RETURN rg_remember(p_op, v_reaped::text);
END $$"""

_STATES: Final = (
    """CREATE FUNCTION rg_cas_state(
        p_op text, p_key text, p_expected bigint, p_value text, p_now double precision,
        p_expires double precision
    ) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        v_kept text;
        cur record;
        v_version bigint := 0;
    BEGIN
        SELECT reply INTO v_kept FROM ops WHERE id = p_op;
        IF FOUND THEN
            RETURN v_kept;
        END IF;
        SELECT s.version, s.expires INTO cur FROM states s WHERE s.key = p_key FOR UPDATE;
        IF NOT FOUND THEN
            IF p_expected <> 0 THEN
                RETURN rg_remember(p_op, 'f');
            ELSIF p_value IS NULL THEN
                RETURN rg_remember(p_op, 't');
            END IF;
            -- Two writers of a new key: the second waits here, then inserts nothing.
            INSERT INTO states (key, version, value, expires)
            VALUES (p_key, 1, p_value, p_expires) ON CONFLICT (key) DO NOTHING;
            RETURN rg_remember(p_op, CASE WHEN FOUND THEN 't' ELSE 'f' END);
        END IF;
        IF cur.expires IS NULL OR cur.expires > p_now THEN
            v_version := cur.version;
        END IF;
        IF v_version <> p_expected THEN
            RETURN rg_remember(p_op, 'f');
        END IF;
        IF p_value IS NULL THEN
            DELETE FROM states WHERE key = p_key;
        ELSE
            UPDATE states SET version = p_expected + 1, value = p_value, expires = p_expires
             WHERE key = p_key;
        END IF;
        RETURN rg_remember(p_op, 't');
    END $$""",
    """CREATE FUNCTION rg_mark_once(
        p_op text, p_key text, p_now double precision, p_expires double precision
    ) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        v_kept text;
    BEGIN
        SELECT reply INTO v_kept FROM ops WHERE id = p_op;
        IF FOUND THEN
            RETURN v_kept;
        END IF;
        INSERT INTO marks AS m (key, expires) VALUES (p_key, p_expires)
        ON CONFLICT (key) DO UPDATE SET expires = excluded.expires
         WHERE m.expires IS NOT NULL AND m.expires <= p_now;
        RETURN rg_remember(p_op, CASE WHEN FOUND THEN 't' ELSE 'f' END);
    END $$""",
    """CREATE FUNCTION rg_acquire_slot(
        p_name text, p_limit integer, p_holder text, p_now double precision,
        p_lease double precision
    ) RETURNS boolean
    LANGUAGE plpgsql AS $$
    BEGIN
        -- One slot set at a time; an advisory lock covers rows that do not exist yet.
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || p_name, 0));
        DELETE FROM slots WHERE name = p_name AND lease_until <= p_now;
        IF NOT EXISTS (SELECT 1 FROM slots WHERE name = p_name AND holder = p_holder)
           AND (SELECT count(*) FROM slots WHERE name = p_name) >= p_limit THEN
            RETURN false;
        END IF;
        INSERT INTO slots (name, holder, lease_until) VALUES (p_name, p_holder, p_lease)
        ON CONFLICT (name, holder) DO UPDATE SET lease_until = excluded.lease_until;
        RETURN true;
    END $$""",
    """CREATE FUNCTION rg_claim(
        p_key text, p_owner text, p_now double precision, p_lease double precision
    ) RETURNS TABLE (r_status text, r_result bytea, r_owner text)
    LANGUAGE plpgsql AS $$
    DECLARE
        cur record;
    BEGIN
        INSERT INTO claims (key, owner, status, result, until)
        VALUES (p_key, p_owner, 'pending', NULL, p_lease) ON CONFLICT (key) DO NOTHING;
        IF FOUND THEN
            RETURN QUERY SELECT 'claimed'::text, NULL::bytea, p_owner;
            RETURN;
        END IF;
        SELECT c.owner, c.status, c.result, c.until INTO cur
          FROM claims c WHERE c.key = p_key FOR UPDATE;
        IF cur.until > p_now AND cur.status = 'done' THEN
            RETURN QUERY SELECT 'done'::text, cur.result, cur.owner;
            RETURN;
        END IF;
        IF cur.until > p_now AND cur.owner <> p_owner THEN
            RETURN QUERY SELECT 'in_flight'::text, NULL::bytea, cur.owner;
            RETURN;
        END IF;
        UPDATE claims SET owner = p_owner, status = 'pending', result = NULL, until = p_lease
         WHERE key = p_key;
        RETURN QUERY SELECT 'claimed'::text, NULL::bytea, p_owner;
    END $$""",
    """CREATE FUNCTION rg_complete(
        p_op text, p_key text, p_owner text, p_result bytea, p_expires double precision
    ) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        v_kept text;
    BEGIN
        SELECT reply INTO v_kept FROM ops WHERE id = p_op;
        IF FOUND THEN
            RETURN v_kept;
        END IF;
        UPDATE claims SET status = 'done', result = p_result, until = p_expires
         WHERE key = p_key AND owner = p_owner AND status = 'pending';
        RETURN rg_remember(p_op, CASE WHEN FOUND THEN 't' ELSE 'f' END);
    END $$""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (*_TABLES, *_HELPERS, _RESERVE, _END, _REAP, *_STATES),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

-- Handler heartbeats: a running handler reports progress (StepContext.heartbeat) and keeps
-- its claim. `progress` holds the latest report of the step's current or last run:
-- {"progress": <any JSON>, "message": <text or null>, "attempt": n, "worker_id": "...",
--  "reported_at": <timestamp>}, what an operator reads to see how far a long step got.
--
-- A nullable column without a default: adding it rewrites nothing; a heartbeat updates
-- no indexed column (HOT-eligible), and the worker writes one at most once a second per
-- running step (reports in between are coalesced), so a chatty handler adds little WAL.
ALTER TABLE tasker.workflow_steps ADD COLUMN progress jsonb;

-- One heartbeat of a running handler: when step p_step is still in_progress under attempt
-- p_attempt, store p_report (with `reported_at`) as its progress, extend its lease and hide
-- its claim message p_msg_id for p_vt_seconds more (as extend_step_claims_v1 does), and
-- answer held = true. Otherwise the run has lost its claim (task cancelled, step resolved,
-- or re-claimed under a later attempt after its lease expired): nothing is written and the
-- answer names the step's state and attempt ('missing' for a deleted step).
--
-- Lock order: the step row first (waiting is fine: nothing else is held yet), then the
-- message with SKIP LOCKED (never waits, so no deadlock with a claim or a record holding
-- it; a skipped message stays hidden by the lease: a claim starts nothing for an
-- in_progress step whose lease is live).
CREATE FUNCTION tasker.heartbeat_step_v1(
    p_queue text, p_msg_id bigint, p_step uuid, p_attempt integer, p_vt_seconds numeric,
    p_report jsonb)
RETURNS TABLE (held boolean, state text, attempts integer)
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := v_now + make_interval(secs => p_vt_seconds::double precision);
    v_done boolean;
BEGIN
    UPDATE tasker.workflow_steps ws
       SET progress = p_report || jsonb_build_object('reported_at', v_now),
           claimed_until = v_until, claim_msg_id = p_msg_id
     WHERE ws.workflow_step_uuid = p_step AND ws.attempts = p_attempt
       AND EXISTS (SELECT 1 FROM tasker.workflow_step_transitions t
                    WHERE t.workflow_step_uuid = p_step AND t.most_recent
                      AND t.to_state = 'in_progress')
    RETURNING true INTO v_done;
    IF v_done THEN
        EXECUTE format(
            'UPDATE pgmq.%1$I q SET vt = $2
              WHERE q.msg_id = (SELECT msg_id FROM pgmq.%1$I WHERE msg_id = $1
                                   FOR UPDATE SKIP LOCKED)',
            pgmq.format_table_name(p_queue, 'q'))
        USING p_msg_id, v_until;
        RETURN QUERY SELECT true, 'in_progress'::text, p_attempt;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT false, COALESCE(t.to_state::text, 'missing'), ws.attempts
          FROM (SELECT p_step AS step) s
          LEFT JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = s.step
          LEFT JOIN tasker.workflow_step_transitions t
                 ON t.workflow_step_uuid = s.step AND t.most_recent;
END
$$;

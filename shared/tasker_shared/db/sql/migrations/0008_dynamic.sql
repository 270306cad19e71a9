-- Dynamic workflows (SPEC 5): locked result loading, batch failure strategies,
-- checkpoints that report whether they were saved, checkpoint stall detection.

-- load_step_results_v1 after locking the steps' rows (in uuid order, so concurrent result
-- processors never deadlock on them): a result delivered twice, to two processors at
-- once, is applied by the first and seen as already applied by the second.
CREATE FUNCTION tasker.lock_step_results_v1(p_steps uuid[])
RETURNS TABLE (
    step_uuid uuid, task_uuid uuid, current_state text, step_name text, attempts integer,
    max_attempts integer, retryable boolean, inputs jsonb, results jsonb,
    named_task_uuid uuid, template_updated_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tasker.workflow_steps ws
     WHERE ws.workflow_step_uuid = ANY (p_steps)
     ORDER BY ws.workflow_step_uuid
       FOR NO KEY UPDATE;
    RETURN QUERY SELECT * FROM tasker.load_step_results_v1(p_steps);
END
$$;

-- fail_fast: cancel every sibling of a failed batch worker (same batchable parent, through
-- `batch_dependency` edges) that has not finished: not started, queued, running (its
-- result will be refused) or waiting for a retry. Returns how many were cancelled.
CREATE FUNCTION tasker.cancel_batch_siblings_v1(p_step uuid, p_metadata jsonb DEFAULT '{}')
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_sibling uuid;
    v_count integer := 0;
BEGIN
    FOR v_sibling IN
        SELECT e2.to_step_uuid
          FROM tasker.workflow_step_edges e1
          JOIN tasker.workflow_step_edges e2
            ON e2.from_step_uuid = e1.from_step_uuid AND e2.name = 'batch_dependency'
         WHERE e1.to_step_uuid = p_step AND e1.name = 'batch_dependency'
           AND e2.to_step_uuid <> p_step
         ORDER BY e2.to_step_uuid
    LOOP
        IF tasker.transition_step_v1(
               v_sibling,
               ARRAY['pending', 'enqueued', 'in_progress', 'waiting_for_retry',
                     'enqueued_as_error_for_orchestration'],
               'cancel',
               COALESCE(p_metadata, '{}') || jsonb_build_object('failed_step', p_step))
           IS NOT NULL THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
$$;

-- Persist a checkpoint of a running step (history appended atomically) and return it;
-- NULL when refused because the step is no longer in progress under attempt p_attempt
-- (cancelled, or re-claimed after this worker was presumed lost).
CREATE FUNCTION tasker.save_checkpoint_v2(
    p_step uuid, p_attempt integer, p_cursor jsonb, p_items bigint, p_accumulated jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_checkpoint jsonb;
BEGIN
    UPDATE tasker.workflow_steps
       SET checkpoint = jsonb_build_object(
               'cursor', p_cursor, 'items_processed', p_items, 'timestamp', clock_timestamp(),
               'accumulated_results', p_accumulated,
               'history', COALESCE(checkpoint -> 'history', '[]'::jsonb)
                          || jsonb_build_array(jsonb_build_object(
                                 'cursor', p_cursor, 'items_processed', p_items,
                                 'timestamp', clock_timestamp()))),
           updated_at = now()
     WHERE workflow_step_uuid = p_step AND attempts = p_attempt
       AND tasker.get_current_step_state_v1(p_step) = 'in_progress'
    RETURNING checkpoint INTO v_checkpoint;
    RETURN v_checkpoint;
END
$$;

-- Batch worker steps in progress that made no progress for p_stall_seconds: their last
-- checkpoint (or, without one since the current attempt began, the attempt's start) is
-- older than that. Oldest first.
CREATE FUNCTION tasker.find_stalled_checkpoints_v1(
    p_stall_seconds numeric, p_limit integer DEFAULT 100, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (
    step_uuid uuid, task_uuid uuid, step_name text, attempts integer, cursor jsonb,
    items_processed bigint, last_progress_at timestamptz, stalled_seconds double precision)
LANGUAGE sql STABLE AS $$
    WITH running AS (
        SELECT ws.workflow_step_uuid, ws.task_uuid, ws.named_step_uuid, ws.attempts,
               ws.checkpoint,
               GREATEST(ws.last_attempted_at,
                        (ws.checkpoint ->> 'timestamp')::timestamptz) AS progress_at
          FROM tasker.workflow_steps ws
          JOIN tasker.workflow_step_transitions st
            ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
         WHERE ws.in_process AND ws.inputs ? 'batch_metadata'
           AND st.to_state = 'in_progress'
    )
    SELECT r.workflow_step_uuid, r.task_uuid, ns.name::text, COALESCE(r.attempts, 0),
           r.checkpoint -> 'cursor', (r.checkpoint ->> 'items_processed')::bigint,
           r.progress_at,
           extract(epoch FROM COALESCE(p_now, clock_timestamp()) - r.progress_at)::float8
      FROM running r
      JOIN tasker.named_steps ns ON ns.named_step_uuid = r.named_step_uuid
     WHERE r.progress_at < COALESCE(p_now, clock_timestamp())
                           - make_interval(secs => p_stall_seconds::double precision)
     ORDER BY r.progress_at
     LIMIT p_limit
$$;

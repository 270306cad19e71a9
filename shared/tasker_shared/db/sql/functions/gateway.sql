-- Gateway reads and operator actions: task listing, row reads of tasks, steps and edges,
-- DLQ status, step audit, manual step resolution, state snapshots.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- One page of the tasks matching the filters (NULL = no filter), newest first unless
-- p_ascending, with the number of matching tasks.
CREATE OR REPLACE FUNCTION tasker.list_tasks_v1(
    p_namespace text, p_status text, p_initiator text, p_source_system text, p_name text,
    p_created_from timestamp with time zone, p_created_to timestamp with time zone,
    p_ascending boolean, p_limit integer, p_offset integer
)
 RETURNS TABLE(total_count bigint, task_uuids uuid[])
 LANGUAGE sql
 STABLE
AS $function$
    WITH m AS (
        SELECT t.task_uuid, t.created_at
          FROM tasker.tasks t
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
          LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
         WHERE (p_namespace IS NULL OR tn.name = p_namespace)
           AND (p_status IS NULL OR COALESCE(tt.to_state, 'pending') = p_status)
           AND (p_initiator IS NULL OR t.initiator = p_initiator)
           AND (p_source_system IS NULL OR t.source_system = p_source_system)
           AND (p_name IS NULL OR nt.name = p_name)
           AND (p_created_from IS NULL OR t.created_at >= p_created_from)
           AND (p_created_to IS NULL OR t.created_at < p_created_to)
    )
    SELECT (SELECT count(*) FROM m),
           ARRAY(SELECT m.task_uuid FROM m
                  ORDER BY CASE WHEN p_ascending THEN m.created_at END ASC,
                           CASE WHEN NOT p_ascending THEN m.created_at END DESC,
                           CASE WHEN p_ascending THEN m.task_uuid END ASC,
                           CASE WHEN NOT p_ascending THEN m.task_uuid END DESC
                  LIMIT p_limit OFFSET p_offset)
$function$;

-- The gateway's task and step views read through these functions. As inlinable SQL
-- functions their queries were planned on every call (1-2.5 ms of planning against 0.1 ms
-- of execution), and with stale statistics a fresh deployment's plans hashed the whole edge
-- table for one task. As PL/pgSQL with generic plans and sequential scans disabled (like the
-- orchestration functions, 0009/0010) each connection plans them once, as index probes.
CREATE OR REPLACE FUNCTION tasker.get_task_rows_v1(p_tasks uuid[])
 RETURNS TABLE(
    task_uuid uuid, named_task_uuid uuid, name text, namespace text, version text, status text,
    created_at timestamp with time zone, updated_at timestamp with time zone,
    completed_at timestamp with time zone, context jsonb, initiator text, source_system text,
    reason text, priority integer, tags jsonb, correlation_id uuid, parent_correlation_id uuid,
    template_updated_at timestamp with time zone
)
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.task_uuid, t.named_task_uuid, nt.name::text, tn.name::text, nt.version::text,
           COALESCE(tt.to_state, 'pending')::text, t.created_at,
           GREATEST(t.updated_at, tt.created_at), t.completed_at, t.context,
           t.initiator::text, t.source_system::text, t.reason::text, t.priority, t.tags,
           t.correlation_id, t.parent_correlation_id, nt.updated_at
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
     WHERE t.task_uuid = ANY (p_tasks);
END
$function$;

-- The workflow_steps columns of the steps of several tasks (or of the listed steps).
CREATE OR REPLACE FUNCTION tasker.get_step_rows_v1(
    p_tasks uuid[], p_steps uuid[] DEFAULT NULL::uuid[]
)
 RETURNS TABLE(
    workflow_step_uuid uuid, task_uuid uuid, retryable boolean, in_process boolean,
    processed boolean, processed_at timestamp with time zone, inputs jsonb, results jsonb,
    created_at timestamp with time zone, updated_at timestamp with time zone
)
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.workflow_step_uuid, ws.task_uuid, ws.retryable, ws.in_process, ws.processed,
           ws.processed_at, ws.inputs, ws.results, ws.created_at, ws.updated_at
      FROM tasker.workflow_steps ws
     WHERE ws.task_uuid = ANY (p_tasks)
       AND (p_steps IS NULL OR ws.workflow_step_uuid = ANY (p_steps));
END
$function$;

-- The dependency edges between the steps of several tasks (parent -> child).
CREATE OR REPLACE FUNCTION tasker.get_step_edges_v1(p_tasks uuid[])
 RETURNS TABLE(task_uuid uuid, from_step_uuid uuid, to_step_uuid uuid)
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.task_uuid, e.from_step_uuid, e.to_step_uuid
      FROM tasker.workflow_steps ws
      -- one index probe per step, whatever the statistics say about the edge table
      CROSS JOIN LATERAL (SELECT x.from_step_uuid, x.to_step_uuid
                            FROM tasker.workflow_step_edges x
                           WHERE x.to_step_uuid = ws.workflow_step_uuid OFFSET 0) e
     WHERE ws.task_uuid = ANY (p_tasks);
END
$function$;

-- The latest DLQ entry of a task, if any.
CREATE OR REPLACE FUNCTION tasker.get_task_dlq_status_v1(p_task uuid)
 RETURNS TABLE(dlq_entry_uuid uuid, dlq_reason text, resolution_status text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT d.dlq_entry_uuid, d.dlq_reason::text, d.resolution_status::text
      FROM tasker.tasks_dlq d
     WHERE d.task_uuid = p_task
     ORDER BY d.dlq_timestamp DESC, d.dlq_entry_uuid DESC
     LIMIT 1
$function$;

-- Recorded results of a step joined with the transitions that recorded them, newest
-- first. Raises TK404 when the step is not a step of the task.
CREATE OR REPLACE FUNCTION tasker.get_step_audit_v1(p_task uuid, p_step uuid)
 RETURNS TABLE(
    audit_uuid uuid, workflow_step_uuid uuid, workflow_step_transition_uuid uuid,
    task_uuid uuid, step_name text, recorded_at timestamp with time zone, worker_uuid text,
    correlation_id uuid, success boolean, execution_time_ms bigint, from_state text,
    to_state text, transition_metadata jsonb
)
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM tasker.workflow_steps ws
     WHERE ws.workflow_step_uuid = p_step AND ws.task_uuid = p_task;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'step % not found in task %', p_step, p_task USING ERRCODE = 'TK404';
    END IF;
    RETURN QUERY
    SELECT a.workflow_step_result_audit_uuid, a.workflow_step_uuid,
           a.workflow_step_transition_uuid, a.task_uuid, ns.name::text, a.recorded_at,
           a.worker_uuid, a.correlation_id, a.success, a.execution_time_ms,
           tr.from_state::text, tr.to_state::text, tr.metadata
      FROM tasker.workflow_step_result_audit a
      JOIN tasker.workflow_step_transitions tr
        ON tr.workflow_step_uuid = a.workflow_step_uuid  -- the log's key: (step, sort_key)
       AND tr.workflow_step_transition_uuid = a.workflow_step_transition_uuid
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = a.workflow_step_uuid
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
     WHERE a.workflow_step_uuid = p_step
     ORDER BY a.recorded_at DESC, tr.sort_key DESC;
END
$function$;

-- An operator action on a step (SPEC 6.3): reset_for_retry (error -> pending, attempts
-- reset, ready at once), resolve_manually, or complete_manually with p_results stored as the step's
-- result. The transition carries p_metadata (actor, reason) as its audit record; the task
-- is then re-evaluated. A task in error (its retries ran out, or it went stale) resumes:
-- error -> evaluating_results, then wherever its steps lead (tasker-core's operator flow).
-- Raises TK404 for an unknown step, TK001 when the action is not allowed from the step's
-- state, or reset_for_retry on a task that is complete, cancelled or resolved manually.
-- Returns the states before and after.
CREATE OR REPLACE FUNCTION tasker.resolve_step_v1(
    p_task uuid, p_step uuid, p_action text, p_processor uuid, p_metadata jsonb,
    p_results jsonb DEFAULT NULL::jsonb
)
 RETURNS TABLE(previous_state text, new_state text, task_state text)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_prev text;
    v_new text;
    v_task_state text;
    v_from text[];
BEGIN
    IF p_action = 'reset_for_retry' THEN
        v_from := ARRAY['error'];
    ELSIF p_action IN ('resolve_manually', 'complete_manually') THEN
        v_from := ARRAY['pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'error'];
    ELSE
        RAISE EXCEPTION 'unknown step action %', p_action USING ERRCODE = 'TK400';
    END IF;
    PERFORM 1 FROM tasker.workflow_steps ws
     WHERE ws.workflow_step_uuid = p_step AND ws.task_uuid = p_task
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'step % not found in task %', p_step, p_task USING ERRCODE = 'TK404';
    END IF;
    v_prev := tasker.get_current_step_state_v1(p_step);
    v_task_state := tasker.get_current_task_state_v1(p_task);
    IF p_action = 'reset_for_retry'
       AND v_task_state IN ('complete', 'cancelled', 'resolved_manually') THEN
        RAISE EXCEPTION 'cannot reset_for_retry a step of task % in terminal state %',
            p_task, v_task_state USING ERRCODE = 'TK001';
    END IF;
    IF NOT (v_prev = ANY (v_from)) THEN
        RAISE EXCEPTION 'cannot % step % in state % (allowed from: %)', p_action, p_step,
            v_prev, array_to_string(v_from, ', ') USING ERRCODE = 'TK001';
    END IF;
    IF p_action = 'complete_manually' THEN
        UPDATE tasker.workflow_steps SET results = p_results, updated_at = now()
         WHERE workflow_step_uuid = p_step;
    END IF;
    v_new := tasker.transition_step_v1(p_step, v_from, p_action, p_metadata);
    IF p_action = 'reset_for_retry' THEN
        -- Retry now: a zero backoff from the last attempt overrides the failure backoff.
        UPDATE tasker.workflow_steps
           SET attempts = 0, backoff_request_seconds = 0,
               last_attempted_at = COALESCE(last_attempted_at, now()), updated_at = now()
         WHERE workflow_step_uuid = p_step;
    END IF;
    IF v_task_state = 'error' THEN
        PERFORM 1 FROM tasker.tasks WHERE task_uuid = p_task FOR NO KEY UPDATE;
        IF tasker.get_current_task_state_v1(p_task) = 'error' THEN
            PERFORM tasker._append_task_transition_v1(
                p_task, 'error', 'evaluating_results', 'resume', p_processor,
                COALESCE(p_metadata, '{}') || jsonb_build_object('step_uuid', p_step,
                                                                 'step_action', p_action));
        END IF;
    END IF;
    v_task_state := tasker.evaluate_task_v1(p_task, p_processor, true) ->> 'state';
    RETURN QUERY SELECT v_prev, v_new, v_task_state;
END
$function$;

-- Current state of a task and of each of its steps (StreamTaskStatus snapshots).
CREATE OR REPLACE FUNCTION tasker.get_task_state_snapshot_v1(p_task uuid)
 RETURNS TABLE(task_state text, step_uuid uuid, step_name text, step_state text)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT tasker.get_current_task_state_v1(t.task_uuid), ws.workflow_step_uuid,
           ns.name::text, tasker.get_current_step_state_v1(ws.workflow_step_uuid)
      FROM tasker.tasks t
      LEFT JOIN tasker.workflow_steps ws ON ws.task_uuid = t.task_uuid
      LEFT JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
     WHERE t.task_uuid = p_task
$function$;

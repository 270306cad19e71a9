-- A task's life after a permanent step failure (issue 16 item 6), as tasker-core's
-- finalization has it (task_finalization/completion_handler.rs: error_task): once nothing
-- of the task is running or waiting for a retry, a failed step moves the task to
-- blocked_by_failures (PermanentFailure); a failure whose retries ran out then gives up to
-- error (GiveUp). Either way the task is handed to operators: a DLQ investigation entry
-- (max_retries_exceeded, naming each failed step and why) is opened with the snapshot, the
-- staleness monitor reports the blocked task as stale instead of healthy, and an operator's
-- fix of a step (reset_for_retry, complete_manually, resolve_manually) resumes a blocked OR
-- errored task to completion.

-- An errored task resumes when an operator fixes one of its steps.
INSERT INTO tasker.task_state_transitions (from_state, event, to_state)
VALUES ('error', 'resume', 'evaluating_results');

-- Append a transition row; the caller has checked the transition and holds the task lock.
-- Changed from 0002: a task leaving a final state (error -> resume) is no longer finished.
CREATE OR REPLACE FUNCTION tasker._append_task_transition_v1(
    p_task uuid, p_from text, p_to text, p_event text, p_processor uuid, p_metadata jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_sort integer;
BEGIN
    UPDATE tasker.task_transitions SET most_recent = false, updated_at = now()
     WHERE task_uuid = p_task AND most_recent
    RETURNING sort_key INTO v_sort;
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, sort_key,
                                         most_recent, processor_uuid)
    VALUES (p_task, p_from, p_to,
            COALESCE(p_metadata, '{}') || jsonb_build_object('event', p_event,
                                                             'timestamp', clock_timestamp()),
            COALESCE(v_sort, 0) + 1, true, p_processor);
    IF p_to IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        UPDATE tasker.tasks SET complete = (p_to IN ('complete', 'resolved_manually')),
               completed_at = now(), updated_at = now()
         WHERE task_uuid = p_task;
    ELSIF p_from IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        UPDATE tasker.tasks SET complete = false, completed_at = NULL, updated_at = now()
         WHERE task_uuid = p_task;
    END IF;
    PERFORM pg_notify('tasker_task_events', json_build_object(
        'task_uuid', p_task, 'from_state', p_from, 'to_state', p_to, 'event', p_event)::text);
END
$$;

-- Evaluate a task: enqueue its ready steps and move it to the state its steps call for.
-- With p_finalize, also decide a finished task's outcome (complete / blocked / error);
-- without it, a finished task gets a finalization request instead. Returns a summary
-- (`dlq_entry` names the investigation a blocked task opened, if it opened one).
-- Changed from 0004: a step still waiting for its retry keeps the task waiting for it (the
-- task was blocked with the retry never woken); a blocked task opens a DLQ entry for every
-- failure, not only for exhausted retries.
CREATE OR REPLACE FUNCTION tasker.evaluate_task_v1(
    p_task uuid, p_processor uuid DEFAULT NULL, p_finalize boolean DEFAULT false,
    p_headers jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_queue text;
    v_corr uuid;
    v_step record;
    v_ready uuid[] := '{}';
    v_ready_states text[] := '{}';
    v_failed_ids uuid[] := '{}';
    v_total integer := 0;
    v_done integer := 0;
    v_failed integer := 0;
    v_busy integer := 0;
    v_waiting integer := 0;
    v_exhausted integer := 0;
    v_failures jsonb;
    v_dlq uuid;
    v_wake timestamptz;
    v_status text;
    v_enqueued integer := 0;
    v_new text;
    v_action text := 'none';
    i integer;
BEGIN
    SELECT 'worker_' || tn.name || '_queue', t.correlation_id INTO v_queue, v_corr
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
     WHERE t.task_uuid = p_task
       FOR NO KEY UPDATE OF t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'TK404';
    END IF;
    v_state := tasker.get_current_task_state_v1(p_task);
    IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        RETURN jsonb_build_object('task_uuid', p_task, 'state', v_state, 'action', 'terminal',
                                  'enqueued', 0);
    END IF;

    -- one readiness scan gives both the counts and the steps to enqueue
    FOR v_step IN
        SELECT r.workflow_step_uuid, r.current_state, r.ready_for_execution, r.next_retry_at
          FROM tasker.get_step_readiness_status_v1(p_task) r
         ORDER BY r.workflow_step_uuid
    LOOP
        v_total := v_total + 1;
        IF v_step.ready_for_execution THEN
            v_ready := v_ready || v_step.workflow_step_uuid;
            v_ready_states := v_ready_states || v_step.current_state;
        END IF;
        CASE
            WHEN v_step.current_state IN ('complete', 'resolved_manually') THEN
                v_done := v_done + 1;
            WHEN v_step.current_state = 'error' THEN
                v_failed := v_failed + 1;
                v_failed_ids := v_failed_ids || v_step.workflow_step_uuid;
            WHEN v_step.current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                          'enqueued_as_error_for_orchestration') THEN
                v_busy := v_busy + 1;
            WHEN v_step.current_state = 'waiting_for_retry' THEN
                v_waiting := v_waiting + 1;
                v_wake := LEAST(v_wake, v_step.next_retry_at);
            ELSE
                NULL;
        END CASE;
    END LOOP;
    v_status := CASE
        WHEN v_failed > 0 THEN 'blocked_by_failures'
        WHEN cardinality(v_ready) > 0 THEN 'has_ready_steps'
        WHEN v_busy > 0 THEN 'processing'
        WHEN v_total > 0 AND v_done = v_total THEN 'all_complete'
        ELSE 'waiting_for_dependencies' END;

    IF cardinality(v_ready) > 0 THEN
        FOR i IN 1 .. cardinality(v_ready) LOOP
            IF v_ready_states[i] = 'waiting_for_retry' THEN
                PERFORM tasker._append_step_transition_v1(
                    v_ready[i], 'waiting_for_retry', 'pending', 'retry', '{}');
            END IF;
            PERFORM tasker._append_step_transition_v1(v_ready[i], 'pending', 'enqueued',
                                                      'enqueue', '{}');
            PERFORM tasker.send_v1(v_queue,
                jsonb_build_object('task_uuid', p_task, 'step_uuid', v_ready[i],
                                   'correlation_id', v_corr), p_headers);
        END LOOP;
        v_enqueued := cardinality(v_ready);
        v_new := tasker._walk_task_v1(p_task, v_state, 'steps_in_process', p_processor,
                                      jsonb_build_object('enqueued', v_enqueued));
        v_action := 'enqueued';
    ELSIF v_busy > 0 THEN
        v_new := v_state;
        v_action := 'processing';
    ELSIF v_done = v_total THEN
        IF p_finalize THEN
            v_new := tasker._walk_task_v1(p_task, v_state, 'complete', p_processor, '{}');
            v_action := 'completed';
        ELSE
            PERFORM tasker.send_v1('orchestration_task_finalizations',
                jsonb_build_object('task_uuid', p_task, 'reason', 'all_complete'), p_headers);
            v_new := v_state;
            v_action := 'finalization_requested';
        END IF;
    ELSIF v_waiting > 0 THEN
        -- a retry still to come (even beside a failed step): its timer wakes the task
        v_new := tasker._walk_task_v1(p_task, v_state, 'waiting_for_retry', p_processor, '{}');
        PERFORM tasker.send_v1('orchestration_task_finalizations',
            jsonb_build_object('task_uuid', p_task, 'reason', 'retry_timer'), p_headers,
            GREATEST(COALESCE(v_wake, clock_timestamp()), clock_timestamp()));
        v_action := 'waiting_for_retry';
    ELSIF v_failed > 0 THEN
        IF p_finalize THEN
            v_new := tasker._walk_task_v1(p_task, v_state, 'blocked_by_failures', p_processor,
                                          jsonb_build_object('failed_steps', v_failed));
            v_action := 'blocked';
            -- what failed and why, for the investigation (at most 50 steps named)
            SELECT count(*) FILTER (WHERE f.exhausted),
                   jsonb_agg(jsonb_build_object(
                       'step_uuid', f.workflow_step_uuid, 'name', f.name,
                       'why', CASE WHEN f.exhausted THEN 'attempts_exhausted'
                                   ELSE 'not_retryable' END,
                       'attempts', f.attempts, 'max_attempts', f.max_attempts,
                       'error_type', f.error ->> 'error_type',
                       'message', left(f.error ->> 'message', 500))
                       ORDER BY f.name) FILTER (WHERE f.n <= 50)
              INTO v_exhausted, v_failures
              FROM (SELECT ws.workflow_step_uuid, ns.name::text AS name,
                           COALESCE(ws.attempts, 0) AS attempts, ws.max_attempts,
                           CASE WHEN jsonb_typeof(ws.results -> 'error') = 'object'
                                THEN ws.results -> 'error' END AS error,
                           COALESCE((ws.results -> 'metadata' ->> 'retryable')::boolean, false)
                               AND COALESCE(ws.attempts, 0) >= ws.max_attempts AS exhausted,
                           row_number() OVER (ORDER BY ns.name) AS n
                      FROM unnest(v_failed_ids) AS q(step_uuid)
                      CROSS JOIN LATERAL (SELECT w.* FROM tasker.workflow_steps w
                                           WHERE w.workflow_step_uuid = q.step_uuid
                                          OFFSET 0) ws
                      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid) f;
            INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason,
                                          task_snapshot, metadata)
            VALUES (p_task, 'blocked_by_failures', 'max_retries_exceeded',
                    tasker.task_snapshot_v1(p_task),
                    jsonb_build_object('detection_method', 'finalization',
                                       'failed_steps', v_failed,
                                       'exhausted_steps', v_exhausted,
                                       'failures', COALESCE(v_failures, '[]')))
            ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING
            RETURNING dlq_entry_uuid INTO v_dlq;
            -- steps whose retryable failures used up every attempt end the task in error
            IF v_exhausted > 0 THEN
                PERFORM tasker._append_task_transition_v1(
                    p_task, 'blocked_by_failures', 'error', 'give_up', p_processor,
                    jsonb_build_object('reason', 'max_retries_exceeded'));
                v_new := 'error';
                v_action := 'error';
            END IF;
        ELSE
            PERFORM tasker.send_v1('orchestration_task_finalizations',
                jsonb_build_object('task_uuid', p_task, 'reason', 'blocked'), p_headers);
            v_new := v_state;
            v_action := 'finalization_requested';
        END IF;
    ELSE
        v_new := tasker._walk_task_v1(p_task, v_state, 'waiting_for_dependencies',
                                      p_processor, '{}');
        v_action := 'waiting_for_dependencies';
    END IF;
    RETURN jsonb_build_object('task_uuid', p_task, 'state', v_new, 'action', v_action,
                              'enqueued', v_enqueued, 'execution_status', v_status,
                              'dlq_entry', v_dlq);
END
$$;

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
    p_results jsonb DEFAULT NULL)
RETURNS TABLE (previous_state text, new_state text, task_state text)
LANGUAGE plpgsql AS $$
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
$$;

-- Every non-terminal task with its staleness threshold and health: stale (at or past the
-- threshold), warning (at 80% of it) or healthy. A task blocked by failures waits for an
-- operator whatever the time: stale at once (threshold 0), listed first.
CREATE OR REPLACE FUNCTION tasker.get_task_staleness_monitoring_v1(
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_now timestamptz DEFAULT now())
RETURNS TABLE (task_uuid uuid, namespace_name text, task_name text, current_state text,
               time_in_state_minutes numeric, task_age_minutes numeric,
               staleness_threshold_minutes numeric, health_status text, priority integer)
LANGUAGE sql STABLE AS $$
    WITH m AS (
        SELECT tt.task_uuid, tn.name::text AS ns, nt.name::text AS tname,
               tt.to_state::text AS state, t.priority,
               extract(epoch FROM p_now - tt.created_at) / 60.0 AS in_state,
               extract(epoch FROM p_now - t.created_at) / 60.0 AS age,
               CASE WHEN tt.to_state = 'blocked_by_failures' THEN 0
                    ELSE tasker.calculate_staleness_threshold_v1(tt.to_state, nt.configuration,
                             p_deps_minutes, p_retry_minutes, p_in_process_minutes)
               END AS threshold
          FROM tasker.task_transitions tt
          JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE tt.most_recent
           AND tt.to_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    )
    SELECT m.task_uuid, m.ns, m.tname, m.state, round(m.in_state, 2), round(m.age, 2),
           m.threshold,
           CASE WHEN m.in_state >= m.threshold THEN 'stale'
                WHEN m.in_state >= m.threshold * 0.8 THEN 'warning'
                ELSE 'healthy' END,
           m.priority
      FROM m
     ORDER BY COALESCE(m.in_state / NULLIF(m.threshold, 0), 'Infinity'::numeric) DESC,
              m.task_uuid
$$;

-- CREATE OR REPLACE dropped the settings 0009/0010/0018 gave the plpgsql functions above:
-- their plans stay index probes whatever the statistics.
DO $$
DECLARE
    f regprocedure;
    s text[];
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'tasker._append_task_transition_v1(uuid, text, text, text, uuid, jsonb)'::regprocedure,
        'tasker.evaluate_task_v1(uuid, uuid, boolean, jsonb)'::regprocedure,
        'tasker.resolve_step_v1(uuid, uuid, text, uuid, jsonb, jsonb)'::regprocedure]
    LOOP
        FOREACH s SLICE 1 IN ARRAY ARRAY[
            ARRAY['enable_seqscan', 'off'], ARRAY['enable_hashjoin', 'off'],
            ARRAY['enable_mergejoin', 'off'], ARRAY['enable_material', 'off'],
            ARRAY['plan_cache_mode', 'force_generic_plan']]
        LOOP
            EXECUTE format('ALTER FUNCTION %s SET %I = %L', f, s[1], s[2]);
        END LOOP;
    END LOOP;
END
$$;

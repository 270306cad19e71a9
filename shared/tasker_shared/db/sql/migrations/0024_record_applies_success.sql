-- One task is fast (issue 18 item 3), continued from 0023: no result-processing hop for a
-- step that simply succeeded.

-- A worker's plain success is applied in the statement that records it. Result processing
-- would only turn it into `complete` (its decisions matter for failures, retries, decision
-- points and batches), yet it cost every step one more message, wake-up, transaction and
-- WAL flush. A result is applied here when the worker reports success and its payload says
-- so (`success` true, as result processing reads it), unless its `result` carries a
-- decision-point or batch outcome: those, and every failure, still go to result processing.
-- The step moves in_progress -> enqueued_for_orchestration -> complete (the same history as
-- before), and each task such a result moved is evaluated with p_finalize: its ready steps
-- are enqueued (headers: the recorded step's, so a trace goes on), and a task with nothing
-- left to run gets its outcome. All of it commits with the record, in one flush.
-- Returns {step_uuid: 'recorded' | 'stale'} as before, plus "applied": [step_uuid] (the
-- results applied here) and "tasks": {task_uuid: evaluation}.
-- Changed from 0021: the direct application; events are still sent for every recorded result.
CREATE OR REPLACE FUNCTION tasker.record_step_results_v1(p_queue text, p_results jsonb, p_worker text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_state text;
    v_out jsonb := '{}';
    v_delete bigint[] := '{}';
    v_applied jsonb := '[]';
    v_tasks jsonb := '{}';
    v_headers jsonb := '{}';
    v_touched uuid[] := '{}';
    v_task uuid;
BEGIN
    FOR r IN
        SELECT (x ->> 'msg_id')::bigint AS msg_id, ws.workflow_step_uuid AS step,
               (x ->> 'attempt')::integer AS attempt, (x ->> 'success')::boolean AS success,
               x -> 'results' AS results, NULLIF(x -> 'headers', 'null'::jsonb) AS headers,
               NULLIF(x -> 'events', 'null'::jsonb) AS events, x ->> 'events_queue' AS events_queue,
               ws.task_uuid, ws.attempts, t.correlation_id
          FROM jsonb_array_elements(p_results) AS x
          JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = (x ->> 'step_uuid')::uuid
          JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
         ORDER BY ws.workflow_step_uuid  -- one lock order: concurrent recorders cannot deadlock
           FOR NO KEY UPDATE OF ws
    LOOP
        v_state := tasker.get_current_step_state_v1(r.step);
        IF v_state <> 'in_progress' OR COALESCE(r.attempts, 0) <> r.attempt THEN
            IF v_state IN ('complete', 'cancelled', 'resolved_manually', 'error') THEN
                v_delete := v_delete || r.msg_id;
            END IF;
            v_out := v_out || jsonb_build_object(r.step::text, 'stale');
            CONTINUE;
        END IF;
        UPDATE tasker.workflow_steps SET results = r.results, in_process = false,
               updated_at = now()
         WHERE workflow_step_uuid = r.step;
        PERFORM tasker._append_step_transition_v1(
            r.step, 'in_progress',
            CASE WHEN r.success THEN 'enqueued_for_orchestration'
                 ELSE 'enqueued_as_error_for_orchestration' END,
            CASE WHEN r.success THEN 'enqueue_for_orchestration'
                 ELSE 'enqueue_as_error_for_orchestration' END,
            jsonb_build_object('worker_id', p_worker, 'correlation_id', r.correlation_id,
                               'attempt', r.attempt));
        v_delete := v_delete || r.msg_id;
        IF r.success AND jsonb_typeof(r.results) = 'object'
           AND r.results -> 'success' = 'true'::jsonb
           AND NOT (jsonb_typeof(r.results -> 'result') = 'object'
                    AND r.results -> 'result' ?| ARRAY['decision_point_outcome',
                                                       'batch_processing_outcome']) THEN
            PERFORM tasker.apply_step_result_v1(
                r.step, 'complete', NULL, '{"reason": null, "backoff_kind": null}');
            v_applied := v_applied || to_jsonb(r.step::text);
            IF NOT r.task_uuid = ANY (v_touched) THEN
                v_touched := v_touched || r.task_uuid;
                v_headers := v_headers || jsonb_build_object(r.task_uuid::text, r.headers);
            END IF;
        ELSE
            PERFORM tasker.send_v1('orchestration_step_results',
                jsonb_build_object('task_uuid', r.task_uuid, 'step_uuid', r.step,
                                   'correlation_id', r.correlation_id), r.headers);
        END IF;
        IF r.events IS NOT NULL THEN
            PERFORM tasker.ensure_queue_v1(r.events_queue);
            PERFORM tasker.send_v1(r.events_queue, e)
               FROM jsonb_array_elements(r.events) AS e;
        END IF;
        v_out := v_out || jsonb_build_object(r.step::text, 'recorded');
    END LOOP;
    IF cardinality(v_delete) > 0 THEN
        PERFORM tasker.delete_messages_v1(p_queue, v_delete);
    END IF;
    FOR v_task IN SELECT t FROM unnest(v_touched) AS t ORDER BY t LOOP
        v_tasks := v_tasks || jsonb_build_object(v_task::text, tasker.evaluate_task_v1(
            v_task, NULL, true, NULLIF(v_headers -> v_task::text, 'null'::jsonb)));
    END LOOP;
    RETURN v_out || jsonb_build_object('applied', v_applied, 'tasks', v_tasks);
END
$$;

-- CREATE OR REPLACE dropped the settings 0021 gave the function.
DO $$
DECLARE
    s text[];
BEGIN
    FOREACH s SLICE 1 IN ARRAY ARRAY[
        ARRAY['enable_seqscan', 'off'], ARRAY['enable_hashjoin', 'off'],
        ARRAY['enable_mergejoin', 'off'], ARRAY['enable_material', 'off'],
        ARRAY['plan_cache_mode', 'force_generic_plan']]
    LOOP
        EXECUTE format('ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text)'
                       ' SET %I = %L', s[1], s[2]);
    END LOOP;
END
$$;

-- Domain events (a step's `publishes_events`, durable and broadcast delivery): an element of
-- a worker's result batch may carry `events` (an array of event messages, tasker-core's
-- DomainEvent JSON) and `events_queue` (the namespace's '{namespace}_domain_events' queue).
-- They are sent to that queue by the statement that records the result, so they commit
-- with it, and only when the result is recorded: a result refused as stale publishes nothing.
-- An element without events costs one NULL test more than before.
CREATE OR REPLACE FUNCTION tasker.record_step_results_v1(p_queue text, p_results jsonb, p_worker text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_state text;
    v_out jsonb := '{}';
    v_delete bigint[] := '{}';
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
        PERFORM tasker.send_v1('orchestration_step_results',
            jsonb_build_object('task_uuid', r.task_uuid, 'step_uuid', r.step,
                               'correlation_id', r.correlation_id), r.headers);
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
    RETURN v_out;
END
$$;

-- CREATE OR REPLACE dropped the settings 0009, 0010 and 0018 gave the function.
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text) SET enable_seqscan = off;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text) SET enable_hashjoin = off;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text) SET enable_mergejoin = off;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text) SET enable_material = off;

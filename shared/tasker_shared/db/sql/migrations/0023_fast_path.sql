-- One task is fast (issue 18 item 3): result processing decides a task's outcome in the
-- transaction that applies the result which finished it, instead of asking the finalizer
-- (one more message, wake-up, transaction and WAL flush on every task's critical path).
-- The finalizer keeps retry timers, the readiness safety net and staleness.

-- Apply orchestration's decisions on a batch of step results, then evaluate every task one
-- of them moved (enqueue what became ready; a task with nothing left to run gets its
-- outcome: complete, blocked by failures with a DLQ entry, or error). p_items: [{step_uuid,
-- event, backoff_seconds, metadata, cancel_siblings}] where cancel_siblings (fail_fast) is
-- the metadata for cancelling the step's unfinished batch siblings, or null. p_headers:
-- {task_uuid: headers} for the messages each task's evaluation sends.
-- Returns {"steps": {step_uuid: new state or null}, "cancelled": {step_uuid: count},
--          "tasks": {task_uuid: evaluation}}.
-- Changed from 0011: evaluates with p_finalize (no finalization request for a finished task).
CREATE OR REPLACE FUNCTION tasker.apply_step_results_v1(
    p_items jsonb, p_processor uuid, p_headers jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_new text;
    v_task uuid;
    v_steps jsonb := '{}';
    v_cancelled jsonb := '{}';
    v_tasks jsonb := '{}';
    v_touched uuid[] := '{}';
BEGIN
    FOR r IN
        SELECT (x ->> 'step_uuid')::uuid AS step, x ->> 'event' AS event,
               (x ->> 'backoff_seconds')::numeric AS backoff,
               COALESCE(x -> 'metadata', '{}') AS metadata,
               NULLIF(x -> 'cancel_siblings', 'null'::jsonb) AS cancel
          FROM jsonb_array_elements(p_items) AS x
    LOOP
        v_new := tasker.apply_step_result_v1(r.step, r.event, r.backoff, r.metadata);
        v_steps := v_steps || jsonb_build_object(r.step::text, v_new);
        CONTINUE WHEN v_new IS NULL;
        SELECT ws.task_uuid INTO v_task FROM tasker.workflow_steps ws
         WHERE ws.workflow_step_uuid = r.step;
        v_touched := v_touched || v_task;
        IF r.cancel IS NOT NULL THEN
            v_cancelled := v_cancelled || jsonb_build_object(
                r.step::text, tasker.cancel_batch_siblings_v1(r.step, r.cancel));
        END IF;
    END LOOP;
    FOR v_task IN SELECT DISTINCT t FROM unnest(v_touched) AS t ORDER BY t LOOP
        v_tasks := v_tasks || jsonb_build_object(v_task::text, tasker.evaluate_task_v1(
            v_task, p_processor, true, NULLIF(p_headers -> v_task::text, 'null'::jsonb)));
    END LOOP;
    RETURN jsonb_build_object('steps', v_steps, 'cancelled', v_cancelled, 'tasks', v_tasks);
END
$$;

-- CREATE OR REPLACE dropped the settings 0011 and 0018 gave the function: its plans stay
-- index probes whatever the statistics.
DO $$
DECLARE
    s text[];
BEGIN
    FOREACH s SLICE 1 IN ARRAY ARRAY[
        ARRAY['enable_seqscan', 'off'], ARRAY['enable_hashjoin', 'off'],
        ARRAY['enable_mergejoin', 'off'], ARRAY['enable_material', 'off'],
        ARRAY['plan_cache_mode', 'force_generic_plan']]
    LOOP
        EXECUTE format('ALTER FUNCTION tasker.apply_step_results_v1(jsonb, uuid, jsonb) SET %I = %L',
                       s[1], s[2]);
    END LOOP;
END
$$;

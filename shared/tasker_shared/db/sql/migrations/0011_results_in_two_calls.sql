-- Result processing in two calls per batch instead of five statements per result.

-- Replaced by lock_step_result_messages_v1 (the messages and their steps in one call).
DROP FUNCTION tasker.lock_step_results_v1(uuid[]);

-- Lock a batch of result messages and, for each, its step (FOR NO KEY UPDATE, in step order:
-- a result delivered twice at once is applied once, the other copy waits and then finds the
-- step no longer awaiting orchestration) and return the message with the step's row. The
-- step columns are NULL when the message names no step or an unknown one.
CREATE FUNCTION tasker.lock_step_result_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer)
RETURNS TABLE (
    msg_id bigint, read_ct integer, enqueued_at timestamptz, message jsonb, headers jsonb,
    step_uuid uuid, task_uuid uuid, current_state text, step_name text, attempts integer,
    max_attempts integer, retryable boolean, inputs jsonb, results jsonb,
    named_task_uuid uuid, template_updated_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids bigint[];
    v_reads integer[];
    v_enqueued timestamptz[];
    v_messages jsonb[];
    v_headers jsonb[];
    v_steps uuid[];
BEGIN
    SELECT array_agg(l.msg_id ORDER BY l.msg_id), array_agg(l.read_ct ORDER BY l.msg_id),
           array_agg(l.enqueued_at ORDER BY l.msg_id), array_agg(l.message ORDER BY l.msg_id),
           array_agg(l.headers ORDER BY l.msg_id)
      INTO v_ids, v_reads, v_enqueued, v_messages, v_headers
      FROM tasker.lock_messages_v1(p_queue, p_ids, p_limit) l;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    v_steps := ARRAY(
        SELECT CASE WHEN jsonb_typeof(m) = 'object' AND (m ->> 'step_uuid') ~*
                    '^\{?[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}\}?$'
               THEN (m ->> 'step_uuid')::uuid END
          FROM unnest(v_messages) WITH ORDINALITY AS x(m, i) ORDER BY i);
    -- A statement of its own: the rows below are read after the locks are held.
    PERFORM 1 FROM tasker.workflow_steps ws
     WHERE ws.workflow_step_uuid = ANY (v_steps)
     ORDER BY ws.workflow_step_uuid
       FOR NO KEY UPDATE;
    RETURN QUERY
    SELECT m.id, m.reads, m.enq, m.msg, m.hdrs, r.step_uuid, r.task_uuid, r.current_state,
           r.step_name, r.attempts, r.max_attempts, r.retryable, r.inputs, r.results,
           r.named_task_uuid, r.template_updated_at
      FROM unnest(v_ids, v_reads, v_enqueued, v_messages, v_headers, v_steps)
           AS m(id, reads, enq, msg, hdrs, step)
      LEFT JOIN tasker.load_step_results_v1(array_remove(v_steps, NULL)) r
        ON r.step_uuid = m.step
     ORDER BY m.id;
END
$$;

-- Apply orchestration's decisions on a batch of step results, then evaluate every task one
-- of them moved (enqueue what became ready, ask for finalization). p_items: [{step_uuid,
-- event, backoff_seconds, metadata, cancel_siblings}] where cancel_siblings (fail_fast) is
-- the metadata for cancelling the step's unfinished batch siblings, or null. p_headers:
-- {task_uuid: headers} for the messages each task's evaluation sends.
-- Returns {"steps": {step_uuid: new state or null}, "cancelled": {step_uuid: count},
--          "tasks": {task_uuid: evaluation}}.
CREATE FUNCTION tasker.apply_step_results_v1(
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
            v_task, p_processor, false, NULLIF(p_headers -> v_task::text, 'null'::jsonb)));
    END LOOP;
    RETURN jsonb_build_object('steps', v_steps, 'cancelled', v_cancelled, 'tasks', v_tasks);
END
$$;

ALTER FUNCTION tasker.lock_step_result_messages_v1(text, bigint[], integer)
    SET enable_seqscan = off;
ALTER FUNCTION tasker.lock_step_result_messages_v1(text, bigint[], integer)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.apply_step_results_v1(jsonb, uuid, jsonb) SET enable_seqscan = off;
ALTER FUNCTION tasker.apply_step_results_v1(jsonb, uuid, jsonb)
    SET plan_cache_mode = force_generic_plan;

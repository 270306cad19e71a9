-- Poison messages on every queue are set aside with their reason and the queue goes on.

-- The finalizer's lock: the finalization messages with the task each names (NULL when the
-- message names no task or one that does not exist), so a request for an unknown task is
-- set aside like any message that cannot be handled, before the batch is handled.
CREATE FUNCTION tasker.lock_finalization_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer)
RETURNS TABLE (msg_id bigint, read_ct integer, enqueued_at timestamptz, message jsonb,
               headers jsonb, task_uuid uuid)
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT l.msg_id, l.read_ct, l.enqueued_at, l.message, l.headers, t.task_uuid
      FROM tasker.lock_messages_v1(p_queue, p_ids, p_limit) l
      LEFT JOIN tasker.tasks t
             ON t.task_uuid = CASE
                    WHEN jsonb_typeof(l.message) = 'object' AND (l.message ->> 'task_uuid') ~*
                         '^\{?[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}\}?$'
                    THEN (l.message ->> 'task_uuid')::uuid END
     ORDER BY l.msg_id;
END
$$;

-- A worker claimed a step whose message it cannot use (its headers could not be decoded or
-- nest too deep): set the message aside with the reason and put a clean one (the step
-- message without headers, the same read count) in its place, invisible for p_vt_seconds
-- like a claimed message. The claimed step runs; if the worker dies, the clean message
-- brings it back. Returns the new message's id, or NULL when the message is gone.
CREATE FUNCTION tasker.replace_poison_step_message_v1(
    p_queue text, p_msg_id bigint, p_reason text, p_task uuid, p_step uuid, p_corr uuid,
    p_vt_seconds numeric)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_read integer;
    v_id bigint;
BEGIN
    EXECUTE format('SELECT read_ct FROM pgmq.%I WHERE msg_id = $1 FOR UPDATE',
                   pgmq.format_table_name(p_queue, 'q'))
    INTO v_read USING p_msg_id;
    IF v_read IS NULL OR NOT tasker.set_aside_message_v1(p_queue, p_msg_id, p_reason) THEN
        RETURN NULL;
    END IF;
    SELECT pgmq.send(p_queue,
                     jsonb_build_object('task_uuid', p_task, 'step_uuid', p_step,
                                        'correlation_id', p_corr),
                     NULL::jsonb,
                     clock_timestamp() + make_interval(secs => p_vt_seconds::double precision))
      INTO v_id;
    EXECUTE format('UPDATE pgmq.%I SET read_ct = $2 WHERE msg_id = $1',
                   pgmq.format_table_name(p_queue, 'q'))
    USING v_id, v_read;
    RETURN v_id;
END
$$;

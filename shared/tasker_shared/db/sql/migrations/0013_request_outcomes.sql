-- A task request's outcome, stored (first answer wins) and announced on
-- tasker_task_request_outcomes, so whoever waits on the request learns it. One function for
-- every outcome: task creation calls it in the creating statement, ingestion for invalid
-- requests.
CREATE FUNCTION tasker.announce_request_outcome_v1(
    p_request text, p_outcome text, p_task uuid, p_reason text, p_error_code text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.task_request_outcomes (request_id, outcome, task_uuid, reason)
    VALUES (p_request, p_outcome, p_task, p_reason)
    ON CONFLICT (request_id) DO NOTHING;
    PERFORM pg_notify('tasker_task_request_outcomes', json_build_object(
        'request_id', p_request, 'outcome', p_outcome, 'task_uuid', p_task,
        'reason', NULLIF(left(COALESCE(p_reason, ''), 3000), ''),
        'error_code', p_error_code)::text);
END
$$;

-- Ingestion's lock: the request messages with the version stamp of the template each names
-- (NULL when the message does not name a registered one), so checking that the cached
-- template is current costs no statement of its own.
CREATE FUNCTION tasker.lock_task_request_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer)
RETURNS TABLE (msg_id bigint, read_ct integer, enqueued_at timestamptz, message jsonb,
               headers jsonb, named_task_uuid uuid, template_updated_at timestamptz)
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT l.msg_id, l.read_ct, l.enqueued_at, l.message, l.headers, nt.named_task_uuid,
           nt.updated_at
      FROM tasker.lock_messages_v1(p_queue, p_ids, p_limit) l
      LEFT JOIN tasker.task_namespaces tn
             ON tn.name = (l.message #>> '{task_request,namespace}')
      LEFT JOIN tasker.named_tasks nt
             ON nt.task_namespace_uuid = tn.task_namespace_uuid
            AND nt.name = (l.message #>> '{task_request,name}')
            AND nt.version = (l.message #>> '{task_request,version}')
     ORDER BY l.msg_id;
END
$$;

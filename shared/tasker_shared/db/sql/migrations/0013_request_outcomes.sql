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

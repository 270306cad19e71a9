-- Queues (PGMQ): creation, send with NOTIFY, locking a batch of messages for one transaction,
-- deletion, visibility, setting aside poison messages, depths; the per-queue lockers of
-- orchestration's queues.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

CREATE OR REPLACE FUNCTION tasker.queue_channel_v1(p_queue text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$ SELECT 'tasker_queue.' || p_queue $function$;

CREATE OR REPLACE FUNCTION tasker.ensure_queue_v1(p_queue text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF p_queue !~ '^[A-Za-z0-9_]{1,47}$' THEN
        RAISE EXCEPTION 'invalid queue name %', p_queue USING ERRCODE = 'TK400';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = p_queue) THEN
        PERFORM pg_advisory_xact_lock(hashtext('tasker_queue:' || p_queue));
        IF NOT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = p_queue) THEN
            PERFORM pgmq.create(p_queue);
        END IF;
    END IF;
END
$function$;

-- Send a message and NOTIFY listeners of that queue, in the caller's transaction.
CREATE OR REPLACE FUNCTION tasker.send_v1(
    p_queue text, p_message jsonb, p_headers jsonb DEFAULT NULL::jsonb,
    p_deliver_at timestamp with time zone DEFAULT NULL::timestamp with time zone
)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_at timestamptz := COALESCE(p_deliver_at, clock_timestamp());
    v_id bigint;
BEGIN
    SELECT pgmq.send(p_queue, p_message, p_headers, v_at) INTO v_id;
    PERFORM pg_notify(tasker.queue_channel_v1(p_queue),
                      json_build_object('msg_id', v_id,
                                        'ready_at', extract(epoch FROM v_at))::text);
    RETURN v_id;
END
$function$;

-- A message sent already claimed: hidden until p_until, read once (as a claim leaves it),
-- announced to no one (the claimer is the caller's own transaction). For a step that the
-- worker recording its parent's result claims as it is enqueued (see tasker._hand_off_v1).
CREATE OR REPLACE FUNCTION tasker._send_claimed_v1(
    p_queue text, p_message jsonb, p_headers jsonb, p_until timestamp with time zone
)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_id bigint;
BEGIN
    EXECUTE format('INSERT INTO pgmq.%I (vt, message, headers, read_ct)
                    VALUES ($1, $2, $3, 1) RETURNING msg_id',
                   pgmq.format_table_name(p_queue, 'q'))
       INTO v_id USING p_until, p_message, p_headers;
    RETURN v_id;
END
$function$;

-- Lock visible messages (the listed ids, or any) for the caller's transaction.
-- A crash rolls back and unlocks them; SKIP LOCKED keeps replicas apart.
CREATE OR REPLACE FUNCTION tasker.lock_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer
)
 RETURNS TABLE(
    msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, message jsonb,
    headers jsonb
)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
    IF p_ids IS NULL THEN
        RETURN QUERY EXECUTE format(
            'SELECT msg_id, read_ct, enqueued_at, message, headers FROM pgmq.%I
              WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT $1
              FOR UPDATE SKIP LOCKED', pgmq.format_table_name(p_queue, 'q'))
        USING p_limit;
    ELSE
        RETURN QUERY EXECUTE format(
            'SELECT msg_id, read_ct, enqueued_at, message, headers FROM pgmq.%I
              WHERE msg_id = ANY ($1) AND vt <= clock_timestamp() ORDER BY msg_id LIMIT $2
              FOR UPDATE SKIP LOCKED', pgmq.format_table_name(p_queue, 'q'))
        USING p_ids, p_limit;
    END IF;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.delete_messages_v1(p_queue text, p_ids bigint[])
 RETURNS integer
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    n integer;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY ($1)',
                   pgmq.format_table_name(p_queue, 'q')) USING p_ids;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.extend_visibility_v1(
    p_queue text, p_ids bigint[], p_vt_seconds numeric
)
 RETURNS integer
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    n integer;
BEGIN
    EXECUTE format('UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2)
                     WHERE msg_id = ANY ($1)', pgmq.format_table_name(p_queue, 'q'))
    USING p_ids, p_vt_seconds::double precision;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$function$;

-- Archive a message and record why (undecodable, read too often, unknown step...).
CREATE OR REPLACE FUNCTION tasker.set_aside_message_v1(
    p_queue text, p_msg_id bigint, p_reason text
)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_read integer;
    v_msg jsonb;
    v_headers jsonb;
BEGIN
    EXECUTE format('SELECT read_ct, message, headers FROM pgmq.%I WHERE msg_id = $1',
                   pgmq.format_table_name(p_queue, 'q'))
    INTO v_read, v_msg, v_headers USING p_msg_id;
    IF v_read IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO tasker.poison_messages (queue_name, msg_id, read_ct, reason, message, headers)
    VALUES (p_queue, p_msg_id, v_read, p_reason, v_msg, v_headers)
    ON CONFLICT (queue_name, msg_id) DO NOTHING;
    PERFORM pgmq.archive(p_queue, p_msg_id);
    RETURN true;
END
$function$;

-- A handler failed on a message: count the read, hide the message for a while, and set it
-- aside once it has been read `p_max_reads` times. Returns 'retry' or 'set_aside'.
CREATE OR REPLACE FUNCTION tasker.message_failed_v1(
    p_queue text, p_msg_id bigint, p_reason text, p_max_reads integer,
    p_retry_delay_seconds numeric
)
 RETURNS text
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_read integer;
BEGIN
    EXECUTE format('UPDATE pgmq.%I SET read_ct = read_ct + 1,
                           vt = clock_timestamp() + make_interval(secs => $2)
                     WHERE msg_id = $1 RETURNING read_ct', pgmq.format_table_name(p_queue, 'q'))
    INTO v_read USING p_msg_id, p_retry_delay_seconds::double precision;
    IF v_read IS NULL THEN
        RETURN 'gone';
    END IF;
    IF v_read >= p_max_reads THEN
        PERFORM tasker.set_aside_message_v1(
            p_queue, p_msg_id, format('failed %s times; last error: %s', v_read, p_reason));
        RETURN 'set_aside';
    END IF;
    RETURN 'retry';
END
$function$;

CREATE OR REPLACE FUNCTION tasker.queue_depths_v1()
 RETURNS TABLE(
    queue_name text, depth bigint, visible bigint, oldest_age_seconds double precision
)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, count(*), count(*) FILTER (WHERE vt <= clock_timestamp()),
                    COALESCE(extract(epoch FROM clock_timestamp() - min(enqueued_at)), 0)::float8
               FROM pgmq.%I', q.queue_name, pgmq.format_table_name(q.queue_name, 'q'));
    END LOOP;
END
$function$;

-- Ingestion's lock: the request messages with the version stamp of the template each names
-- (NULL when the message does not name a registered one), so checking that the cached
-- template is current costs no statement of its own.
CREATE OR REPLACE FUNCTION tasker.lock_task_request_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer
)
 RETURNS TABLE(
    msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, message jsonb,
    headers jsonb, named_task_uuid uuid, template_updated_at timestamp with time zone
)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
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
$function$;

-- Lock a batch of result messages and, for each, its step (FOR NO KEY UPDATE, in step order:
-- a result delivered twice at once is applied once, the other copy waits and then finds the
-- step no longer awaiting orchestration) and return the message with the step's row. The
-- step columns are NULL when the message names no step or an unknown one.
CREATE OR REPLACE FUNCTION tasker.lock_step_result_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer
)
 RETURNS TABLE(
    msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, message jsonb,
    headers jsonb, step_uuid uuid, task_uuid uuid, current_state text, step_name text,
    attempts integer, max_attempts integer, retryable boolean, inputs jsonb, results jsonb,
    named_task_uuid uuid, template_updated_at timestamp with time zone
)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
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
$function$;

-- The finalizer's lock: the finalization messages with the task each names (NULL when the
-- message names no task or one that does not exist), so a request for an unknown task is
-- set aside like any message that cannot be handled, before the batch is handled.
CREATE OR REPLACE FUNCTION tasker.lock_finalization_messages_v1(
    p_queue text, p_ids bigint[], p_limit integer
)
 RETURNS TABLE(
    msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, message jsonb,
    headers jsonb, task_uuid uuid
)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
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
$function$;

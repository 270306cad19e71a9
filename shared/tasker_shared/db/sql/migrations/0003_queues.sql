-- Queue helpers over PGMQ: transactional send + NOTIFY, locked reads, poison handling.

CREATE FUNCTION tasker.queue_channel_v1(p_queue text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'tasker_queue.' || p_queue $$;

CREATE FUNCTION tasker.ensure_queue_v1(p_queue text) RETURNS void
LANGUAGE plpgsql AS $$
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
$$;

-- Send a message and NOTIFY listeners of that queue, in the caller's transaction.
CREATE FUNCTION tasker.send_v1(
    p_queue text, p_message jsonb, p_headers jsonb DEFAULT NULL,
    p_deliver_at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
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
$$;

-- Lock visible messages (the listed ids, or any) for the caller's transaction.
-- A crash rolls back and unlocks them; SKIP LOCKED keeps replicas apart.
CREATE FUNCTION tasker.lock_messages_v1(p_queue text, p_ids bigint[], p_limit integer)
RETURNS TABLE (msg_id bigint, read_ct integer, enqueued_at timestamptz, message jsonb,
               headers jsonb)
LANGUAGE plpgsql AS $$
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
$$;

CREATE FUNCTION tasker.delete_messages_v1(p_queue text, p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY ($1)',
                   pgmq.format_table_name(p_queue, 'q')) USING p_ids;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE FUNCTION tasker.extend_visibility_v1(p_queue text, p_ids bigint[], p_vt_seconds numeric)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    EXECUTE format('UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2)
                     WHERE msg_id = ANY ($1)', pgmq.format_table_name(p_queue, 'q'))
    USING p_ids, p_vt_seconds::double precision;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Archive a message and record why (undecodable, read too often, unknown step...).
CREATE FUNCTION tasker.set_aside_message_v1(p_queue text, p_msg_id bigint, p_reason text)
RETURNS boolean LANGUAGE plpgsql AS $$
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
$$;

-- A handler failed on a message: count the read, hide the message for a while, and set it
-- aside once it has been read `p_max_reads` times. Returns 'retry' or 'set_aside'.
CREATE FUNCTION tasker.message_failed_v1(
    p_queue text, p_msg_id bigint, p_reason text, p_max_reads integer,
    p_retry_delay_seconds numeric)
RETURNS text LANGUAGE plpgsql AS $$
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
$$;

CREATE FUNCTION tasker.queue_depths_v1()
RETURNS TABLE (queue_name text, depth bigint, visible bigint, oldest_age_seconds double precision)
LANGUAGE plpgsql STABLE AS $$
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
$$;

SELECT tasker.ensure_queue_v1('orchestration_task_requests');
SELECT tasker.ensure_queue_v1('orchestration_step_results');
SELECT tasker.ensure_queue_v1('orchestration_task_finalizations');

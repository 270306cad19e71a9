-- A step claim is a lease the database knows. A claim records on the step until when it
-- holds it (`claimed_until`, the claim's visibility timeout) and through which message
-- (`claim_msg_id`); the worker's visibility extension extends both. A message for an
-- in_progress step whose lease is live starts nothing: a duplicate is deleted, and the
-- claim's own message (or the only one left) stays, hidden until the lease ends. Only a
-- step whose lease has expired (its worker died or stalled past the timeout) is re-claimed.
--
-- Two nullable columns without defaults: adding them rewrites nothing, and both are
-- written by UPDATEs that touch no indexed column (HOT-eligible). A step claimed before
-- this migration has no lease and is treated as expired, as before.
ALTER TABLE tasker.workflow_steps
    ADD COLUMN claimed_until timestamptz,
    ADD COLUMN claim_msg_id bigint;

-- Claim steps from a worker queue: lock messages, start the steps (enqueued -> in_progress,
-- or re-claim an in_progress step whose lease expired), hide the messages and lease the
-- steps for p_vt_seconds and return everything the handler needs. Stale messages (step no
-- longer runnable) and duplicates (step leased by a live claim) are deleted; undecodable or
-- over-read messages are set aside. One call, one commit.
CREATE OR REPLACE FUNCTION tasker.claim_steps_v1(
    p_queue text, p_ids bigint[], p_limit integer, p_vt_seconds numeric, p_worker text,
    p_max_reads integer DEFAULT 5)
RETURNS TABLE (
    msg_id bigint, read_ct integer, task_uuid uuid, step_uuid uuid, correlation_id uuid,
    step_name text, attempts integer, max_attempts integer, retryable boolean, inputs jsonb,
    checkpoint jsonb, task_context jsonb, namespace text, task_name text, task_version text,
    named_task_uuid uuid, dependency_results jsonb, headers jsonb)
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    m record;
    v_step uuid;
    v_state text;
    v_ws record;
    v_table text := pgmq.format_table_name(p_queue, 'q');
    -- One instant for every lease and message of this claim: a message becomes visible
    -- exactly when its step's lease ends, never while it is live.
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_vt_seconds::double precision);
    v_other boolean;
    v_claimed bigint[] := '{}';
    v_steps uuid[] := '{}';
    v_reads integer[] := '{}';
    v_headers jsonb[] := '{}';
BEGIN
    FOR m IN SELECT * FROM tasker.lock_messages_v1(p_queue, p_ids, p_limit) LOOP
        IF jsonb_typeof(m.message) IS DISTINCT FROM 'object'
           OR COALESCE(m.message ->> 'step_uuid', '') !~*
              '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            PERFORM tasker.set_aside_message_v1(p_queue, m.msg_id,
                'undecodable step message: step_uuid missing or not a UUID');
            CONTINUE;
        END IF;
        v_step := (m.message ->> 'step_uuid')::uuid;
        SELECT ws.*, t.correlation_id AS corr INTO v_ws
          FROM tasker.workflow_steps ws JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
         WHERE ws.workflow_step_uuid = v_step FOR NO KEY UPDATE OF ws;
        IF NOT FOUND THEN
            PERFORM tasker.set_aside_message_v1(p_queue, m.msg_id,
                format('unknown step %s', v_step));
            CONTINUE;
        END IF;
        v_state := tasker.get_current_step_state_v1(v_step);
        IF v_state NOT IN ('enqueued', 'in_progress') THEN
            PERFORM tasker.delete_messages_v1(p_queue, ARRAY[m.msg_id]);
            CONTINUE;
        END IF;
        IF v_state = 'in_progress' AND v_ws.claimed_until > clock_timestamp() THEN
            -- A live claim runs this step: this message starts nothing. It is deleted only
            -- while the claim's own message is still queued (that one brings the step back
            -- if the worker dies); otherwise it takes that message's place.
            v_other := false;
            IF v_ws.claim_msg_id IS DISTINCT FROM m.msg_id AND v_ws.claim_msg_id IS NOT NULL THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM pgmq.%I WHERE msg_id = $1)',
                               v_table)
                   INTO v_other USING v_ws.claim_msg_id;
            END IF;
            IF v_other THEN
                PERFORM tasker.delete_messages_v1(p_queue, ARRAY[m.msg_id]);
            ELSE
                EXECUTE format('UPDATE pgmq.%I SET vt = $2 WHERE msg_id = $1', v_table)
                USING m.msg_id, v_ws.claimed_until;
                IF v_ws.claim_msg_id IS DISTINCT FROM m.msg_id THEN
                    UPDATE tasker.workflow_steps SET claim_msg_id = m.msg_id
                     WHERE workflow_step_uuid = v_step;
                END IF;
            END IF;
            CONTINUE;
        END IF;
        IF m.read_ct + 1 > p_max_reads THEN
            PERFORM tasker.set_aside_message_v1(p_queue, m.msg_id,
                format('read %s times without a recorded result', m.read_ct));
            PERFORM tasker._fail_claimed_step_v1(v_step, v_ws.task_uuid, v_ws.corr, v_state,
                'worker_unavailable',
                format('step message read %s times without a result; set aside', m.read_ct));
            CONTINUE;
        END IF;
        IF v_state = 'in_progress' AND COALESCE(v_ws.attempts, 0) >= v_ws.max_attempts THEN
            PERFORM tasker.delete_messages_v1(p_queue, ARRAY[m.msg_id]);
            PERFORM tasker._fail_claimed_step_v1(v_step, v_ws.task_uuid, v_ws.corr, v_state,
                'worker_unavailable',
                format('worker lost the step after %s of %s attempts', v_ws.attempts,
                       v_ws.max_attempts));
            CONTINUE;
        END IF;
        -- Marked in process first: the transition's own in_process update then finds
        -- nothing to change (one row version per claim instead of two).
        UPDATE tasker.workflow_steps
           SET attempts = COALESCE(attempts, 0) + 1, last_attempted_at = now(),
               in_process = true, updated_at = now(),
               claimed_until = v_until, claim_msg_id = m.msg_id
         WHERE workflow_step_uuid = v_step;
        PERFORM tasker._append_step_transition_v1(
            v_step, v_state, 'in_progress',
            CASE WHEN v_state = 'enqueued' THEN 'start' ELSE 'reclaim' END,
            jsonb_build_object('worker_id', p_worker, 'msg_id', m.msg_id));
        v_claimed := v_claimed || m.msg_id;
        v_steps := v_steps || v_step;
        v_reads := v_reads || m.read_ct;
        v_headers := v_headers || m.headers;
    END LOOP;

    IF cardinality(v_claimed) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('UPDATE pgmq.%I SET vt = $2, read_ct = read_ct + 1 WHERE msg_id = ANY ($1)',
                   v_table)
    USING v_claimed, v_until;

    -- Ancestors of every claimed step in one recursive pass (one query for the batch).
    -- Each hop and each ancestor row is an index probe (LATERAL ... OFFSET 0 keeps the
    -- planner from hashing whole tables), so the cost follows the claimed steps' ancestry,
    -- never the size of the step and edge tables.
    RETURN QUERY
    WITH RECURSIVE up(root, step_uuid) AS (
        SELECT e.to_step_uuid, e.from_step_uuid
          FROM unnest(v_steps) AS s(step)
          CROSS JOIN LATERAL (SELECT x.to_step_uuid, x.from_step_uuid
                                FROM tasker.workflow_step_edges x
                               WHERE x.to_step_uuid = s.step OFFSET 0) e
        UNION
        SELECT u.root, e.from_step_uuid
          FROM up u
          CROSS JOIN LATERAL (SELECT x.from_step_uuid FROM tasker.workflow_step_edges x
                               WHERE x.to_step_uuid = u.step_uuid OFFSET 0) e
    ), deps AS (
        SELECT u.root, jsonb_object_agg(a.name, a.results) AS results
          FROM up u
          CROSS JOIN LATERAL (SELECT ns.name, ws.results
                                FROM tasker.workflow_steps ws
                                JOIN tasker.named_steps ns
                                  ON ns.named_step_uuid = ws.named_step_uuid
                               WHERE ws.workflow_step_uuid = u.step_uuid
                                 AND ws.results IS NOT NULL OFFSET 0) a
         GROUP BY u.root
    )
    SELECT c.id, c.reads + 1, ws.task_uuid, ws.workflow_step_uuid, t.correlation_id,
           ns.name::text, ws.attempts, ws.max_attempts, ws.retryable, ws.inputs,
           ws.checkpoint, t.context, tn.name::text, nt.name::text, nt.version::text,
           nt.named_task_uuid, COALESCE(d.results, '{}'::jsonb), c.hdrs
      FROM unnest(v_claimed, v_steps, v_reads, v_headers) AS c(id, step, reads, hdrs)
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = c.step
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN deps d ON d.root = c.step
     ORDER BY c.id;
END
$$;

-- The worker's heartbeat for the messages of the steps it runs: hide each message and
-- extend its step's lease for p_vt_seconds more (the step's claim message becomes this
-- one: a worker that was handed a replacement message keeps its lease). Never waits on a
-- lock (SKIP LOCKED), so it cannot deadlock with a claim or a result being recorded: a row
-- locked by one of those is skipped this round (a recorder is finishing that step; a claim
-- decides on the lease as it stands). Returns the number of messages extended.
CREATE FUNCTION tasker.extend_step_claims_v1(p_queue text, p_ids bigint[], p_vt_seconds numeric)
RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_vt_seconds::double precision);
    v_ids bigint[];
    v_steps text[];
BEGIN
    EXECUTE format(
        'WITH l AS (SELECT msg_id FROM pgmq.%1$I WHERE msg_id = ANY ($1)
                     ORDER BY msg_id FOR UPDATE SKIP LOCKED),
              u AS (UPDATE pgmq.%1$I q SET vt = $2 FROM l WHERE q.msg_id = l.msg_id
                    RETURNING q.msg_id, q.message ->> ''step_uuid'' AS step)
         SELECT array_agg(msg_id), array_agg(step) FROM u',
        pgmq.format_table_name(p_queue, 'q'))
    INTO v_ids, v_steps USING p_ids, v_until;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE tasker.workflow_steps ws SET claimed_until = v_until, claim_msg_id = x.msg_id
      FROM (SELECT w.workflow_step_uuid, e.msg_id
              FROM unnest(v_ids, v_steps) AS e(msg_id, step)
              JOIN tasker.workflow_steps w
                ON w.workflow_step_uuid = CASE WHEN e.step ~*
                       '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                       THEN e.step::uuid END
             ORDER BY w.workflow_step_uuid
               FOR NO KEY UPDATE OF w SKIP LOCKED) x
     WHERE ws.workflow_step_uuid = x.workflow_step_uuid;
    RETURN cardinality(v_ids);
END
$$;

-- Step execution: claim + hydrate, record result, checkpoints, result application, discovery.

-- Fail a step that cannot run (poison message, worker lost too often): store a failure
-- result, move it to enqueued_as_error_for_orchestration and tell result processing.
CREATE FUNCTION tasker._fail_claimed_step_v1(
    p_step uuid, p_task uuid, p_corr uuid, p_state text, p_error_type text, p_message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_state = 'enqueued' THEN
        PERFORM tasker._append_step_transition_v1(p_step, 'enqueued', 'in_progress', 'start', '{}');
    END IF;
    UPDATE tasker.workflow_steps SET results = jsonb_build_object(
            'step_uuid', p_step, 'success', false, 'status', 'error', 'result', '{}'::jsonb,
            'error', jsonb_build_object('message', p_message, 'error_type', p_error_type,
                                        'retryable', false),
            'metadata', jsonb_build_object('retryable', false, 'error_type', p_error_type,
                                           'execution_time_ms', 0,
                                           'completed_at', clock_timestamp())),
           in_process = false, updated_at = now()
     WHERE workflow_step_uuid = p_step;
    PERFORM tasker._append_step_transition_v1(p_step, 'in_progress',
        'enqueued_as_error_for_orchestration', 'enqueue_as_error_for_orchestration',
        jsonb_build_object('error_type', p_error_type));
    PERFORM tasker.send_v1('orchestration_step_results',
        jsonb_build_object('task_uuid', p_task, 'step_uuid', p_step, 'correlation_id', p_corr));
END
$$;

-- Claim steps from a worker queue: lock messages, start the steps (enqueued -> in_progress,
-- or re-claim an in_progress step whose worker vanished), hide the messages for p_vt and
-- return everything the handler needs. Stale messages (step no longer runnable) are
-- deleted; undecodable or over-read messages are set aside. One call, one commit.
CREATE FUNCTION tasker.claim_steps_v1(
    p_queue text, p_ids bigint[], p_limit integer, p_vt_seconds numeric, p_worker text,
    p_max_reads integer DEFAULT 5)
RETURNS TABLE (
    msg_id bigint, read_ct integer, task_uuid uuid, step_uuid uuid, correlation_id uuid,
    step_name text, attempts integer, max_attempts integer, retryable boolean, inputs jsonb,
    checkpoint jsonb, task_context jsonb, namespace text, task_name text, task_version text,
    named_task_uuid uuid, dependency_results jsonb, headers jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m record;
    v_step uuid;
    v_state text;
    v_ws record;
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
               in_process = true, updated_at = now()
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
    EXECUTE format('UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2),
                           read_ct = read_ct + 1 WHERE msg_id = ANY ($1)',
                   pgmq.format_table_name(p_queue, 'q'))
    USING v_claimed, p_vt_seconds::double precision;

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

-- Record handlers' results, a batch in one call: for each, store the result, move the step
-- to enqueued_(as_error_)for_orchestration and notify result processing; then delete the
-- step messages in one statement. A result is refused ('stale') unless its step is still
-- in_progress under the same attempt. p_results: [{msg_id, step_uuid, attempt, success,
-- results, headers}]. Returns {step_uuid: 'recorded' | 'stale'}.
CREATE FUNCTION tasker.record_step_results_v1(p_queue text, p_results jsonb, p_worker text)
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
        v_out := v_out || jsonb_build_object(r.step::text, 'recorded');
    END LOOP;
    IF cardinality(v_delete) > 0 THEN
        PERFORM tasker.delete_messages_v1(p_queue, v_delete);
    END IF;
    RETURN v_out;
END
$$;

-- What result processing needs to decide a step's fate.
CREATE FUNCTION tasker.load_step_results_v1(p_steps uuid[])
RETURNS TABLE (
    step_uuid uuid, task_uuid uuid, current_state text, step_name text, attempts integer,
    max_attempts integer, retryable boolean, inputs jsonb, results jsonb,
    named_task_uuid uuid, template_updated_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT ws.workflow_step_uuid, ws.task_uuid,
           tasker.get_current_step_state_v1(ws.workflow_step_uuid), ns.name::text,
           COALESCE(ws.attempts, 0), ws.max_attempts, ws.retryable, ws.inputs, ws.results,
           nt.named_task_uuid, nt.updated_at
      FROM tasker.workflow_steps ws
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
     WHERE ws.workflow_step_uuid = ANY (p_steps)
$$;

-- Apply orchestration's decision on a step result: complete, fail or wait_for_retry (with
-- backoff). Only from enqueued_(as_error_)for_orchestration; otherwise a no-op (duplicate).
CREATE FUNCTION tasker.apply_step_result_v1(
    p_step uuid, p_event text, p_backoff_seconds numeric DEFAULT NULL,
    p_metadata jsonb DEFAULT '{}')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_new text;
BEGIN
    v_new := tasker.transition_step_v1(
        p_step, ARRAY['enqueued_for_orchestration', 'enqueued_as_error_for_orchestration'],
        p_event, p_metadata);
    IF v_new = 'waiting_for_retry' THEN
        UPDATE tasker.workflow_steps
           SET backoff_request_seconds = p_backoff_seconds, last_attempted_at = now(),
               updated_at = now()
         WHERE workflow_step_uuid = p_step;
    END IF;
    RETURN v_new;
END
$$;

-- Discovery candidates only (processable states): discovery reads this small index instead
-- of every task's current state, so its cost follows the backlog, not the table size.
CREATE INDEX idx_task_transitions_processable
    ON tasker.task_transitions (to_state, created_at) INCLUDE (task_uuid)
    WHERE most_recent AND to_state IN ('pending', 'waiting_for_dependencies', 'waiting_for_retry');

-- Discovery for the safety-net poller (SPEC §3.3): tasks that may have work to do,
-- highest computed priority first, locked so replicas take disjoint tasks.
CREATE FUNCTION tasker.get_next_ready_tasks_v1(p_limit integer DEFAULT 5)
RETURNS TABLE (task_uuid uuid, current_state text, computed_priority double precision,
               execution_status text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cand record;
    v_ids uuid[] := '{}';
    v_states text[] := '{}';
    v_cps double precision[] := '{}';
    v_statuses text[] := '{}';
    v_status text;
BEGIN
    -- The best p_limit * 10 candidates by computed priority, walked in that order: a
    -- pending task is taken outright, any other only if it has ready steps. Stopping at
    -- p_limit tasks spares evaluating the rest.
    FOR v_cand IN
        WITH cand AS (
            SELECT tt.task_uuid, tt.to_state::text AS state, t.priority, t.created_at,
                   -- double precision (date_part), not numeric (extract): far cheaper
                   date_part('epoch', now() - tt.created_at) / 3600.0 AS state_hours,
                   date_part('epoch', now() - t.created_at) / 3600.0 AS age_hours
              FROM tasker.task_transitions tt
              -- One index probe per candidate (OFFSET 0 keeps the planner from hashing
              -- the whole tasks table for a few thousand candidates).
              CROSS JOIN LATERAL (SELECT x.priority, x.created_at FROM tasker.tasks x
                                   WHERE x.task_uuid = tt.task_uuid OFFSET 0) t
             WHERE tt.most_recent
               AND tt.to_state IN ('pending', 'waiting_for_dependencies', 'waiting_for_retry')
               AND (tt.to_state = 'pending'
                    OR (tt.to_state = 'waiting_for_dependencies'
                        AND tt.created_at >= now() - interval '60 minutes')
                    OR (tt.to_state = 'waiting_for_retry'
                        AND tt.created_at >= now() - interval '30 minutes'))
        )
        SELECT c.task_uuid, c.state, CASE
                   WHEN c.state_hours < 1 THEN c.priority + c.age_hours * 0.1
                   WHEN c.state_hours < 24 THEN c.priority * exp(-c.state_hours / 12.0)
                   ELSE 0.1 END AS cp
          FROM cand c
         ORDER BY 3 DESC, c.created_at
         LIMIT p_limit * 10
    LOOP
        EXIT WHEN cardinality(v_ids) >= p_limit;
        IF v_cand.state = 'pending' THEN
            v_status := 'pending';
        ELSE
            -- execution_status = 'has_ready_steps': no step in error, some step ready.
            SELECT CASE WHEN bool_or(r.current_state = 'error') THEN 'blocked_by_failures'
                        WHEN bool_or(r.ready_for_execution) THEN 'has_ready_steps' END
              INTO v_status
              FROM tasker.get_step_readiness_status_batch_v1(ARRAY[v_cand.task_uuid]) r;
            CONTINUE WHEN v_status IS DISTINCT FROM 'has_ready_steps';
        END IF;
        v_ids := v_ids || v_cand.task_uuid;
        v_states := v_states || v_cand.state;
        v_cps := v_cps || v_cand.cp;
        v_statuses := v_statuses || v_status;
    END LOOP;

    RETURN QUERY
    SELECT c.task_uuid, c.state, c.cp, c.es
      FROM unnest(v_ids, v_states, v_cps, v_statuses) WITH ORDINALITY
               AS c(task_uuid, state, cp, es, ord)
      JOIN tasker.tasks t ON t.task_uuid = c.task_uuid
     ORDER BY c.ord
       FOR UPDATE OF t SKIP LOCKED;
END
$$;

-- Cancel a task and every step that has not finished. Returns false if already terminal.
CREATE FUNCTION tasker.cancel_task_v1(p_task uuid, p_processor uuid, p_metadata jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_step record;
BEGIN
    PERFORM 1 FROM tasker.tasks WHERE task_uuid = p_task FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'TK404';
    END IF;
    v_state := tasker.get_current_task_state_v1(p_task);
    IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        RETURN false;
    END IF;
    FOR v_step IN
        SELECT ws.workflow_step_uuid,
               tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state
          FROM tasker.workflow_steps ws WHERE ws.task_uuid = p_task
           FOR NO KEY UPDATE
    LOOP
        IF v_step.state NOT IN ('complete', 'cancelled', 'resolved_manually') THEN
            PERFORM tasker._append_step_transition_v1(v_step.workflow_step_uuid, v_step.state,
                                                      'cancelled', 'cancel', p_metadata);
        END IF;
    END LOOP;
    PERFORM tasker._append_task_transition_v1(p_task, v_state, 'cancelled', 'cancel',
                                              p_processor, p_metadata);
    RETURN true;
END
$$;

-- Steps: claims (leases) and heartbeats, checkpoints, recording results, and applying
-- result processing's decisions.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- Fail a step that cannot run (poison message, worker lost too often): store a failure
-- result, move it to enqueued_as_error_for_orchestration and tell result processing.
CREATE OR REPLACE FUNCTION tasker._fail_claimed_step_v1(
    p_step uuid, p_task uuid, p_corr uuid, p_state text, p_error_type text, p_message text
)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- Claim steps from a worker queue: lock messages, start the steps (enqueued -> in_progress,
-- or re-claim an in_progress step whose lease expired), hide the messages and lease the
-- steps for p_vt_seconds and return everything the handler needs. Stale messages (step no
-- longer runnable) and duplicates (step leased by a live claim) are deleted; undecodable or
-- over-read messages are set aside. One call, one commit. It never waits on a
-- lock (messages and step rows are taken with SKIP LOCKED).
CREATE OR REPLACE FUNCTION tasker.claim_steps_v1(
    p_queue text, p_ids bigint[], p_limit integer, p_vt_seconds numeric, p_worker text,
    p_max_reads integer DEFAULT 5
)
 RETURNS TABLE(
    msg_id bigint, read_ct integer, task_uuid uuid, step_uuid uuid, correlation_id uuid,
    step_name text, attempts integer, max_attempts integer, retryable boolean, inputs jsonb,
    checkpoint jsonb, task_context jsonb, namespace text, task_name text, task_version text,
    named_task_uuid uuid, dependency_results jsonb, headers jsonb
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
    v_hand jsonb := NULLIF(current_setting('tasker.hand_off', true), '')::jsonb;
    v_handed bigint[] := '{}';
BEGIN
    IF v_hand ->> 'queue' = p_queue AND jsonb_array_length(v_hand -> 'ids') > 0 THEN
        -- Claimed by this transaction as they were enqueued (tasker._hand_off_v1): their
        -- messages are already hidden and read, their steps in progress.
        -- (in the order they were handed off; the hand-off says what the messages hold,
        -- so they are not read back from the queue table)
        v_handed := ARRAY(SELECT jsonb_array_elements_text(v_hand -> 'ids')::bigint);
        v_claimed := v_handed;
        v_steps := ARRAY(SELECT jsonb_array_elements_text(v_hand -> 'steps')::uuid);
        v_reads := array_fill(0, ARRAY[cardinality(v_handed)]);
        v_headers := ARRAY(SELECT NULLIF(h, 'null'::jsonb)
                             FROM jsonb_array_elements(v_hand -> 'headers') AS h);
        PERFORM set_config('tasker.hand_off', '', true);
    END IF;
    FOR m IN SELECT * FROM tasker.lock_messages_v1(p_queue, p_ids,
                                                   p_limit - cardinality(v_handed))
              WHERE p_limit > cardinality(v_handed) LOOP
        IF jsonb_typeof(m.message) IS DISTINCT FROM 'object'
           OR COALESCE(m.message ->> 'step_uuid', '') !~*
              '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            PERFORM tasker.set_aside_message_v1(p_queue, m.msg_id,
                'undecodable step message: step_uuid missing or not a UUID');
            CONTINUE;
        END IF;
        v_step := (m.message ->> 'step_uuid')::uuid;
        -- The message is locked first, so the step row is taken without waiting: a record
        -- holds the step row and then deletes this message (the reverse order), and a claim
        -- that waited here would deadlock with it. A step row locked by someone else leaves
        -- its message as it is (still visible; the next claim looks again).
        -- (The task's correlation id by a subquery, a probe of its key: a join to tasks was
        -- planned, under statistics of tiny tables, as a read of the whole tasks key.)
        SELECT ws.*, (SELECT t.correlation_id FROM tasker.tasks t
                       WHERE t.task_uuid = ws.task_uuid) AS corr INTO v_ws
          FROM tasker.workflow_steps ws
         WHERE ws.workflow_step_uuid = v_step FOR NO KEY UPDATE OF ws SKIP LOCKED;
        IF NOT FOUND THEN
            IF NOT EXISTS (SELECT 1 FROM tasker.workflow_steps
                            WHERE workflow_step_uuid = v_step) THEN
                PERFORM tasker.set_aside_message_v1(p_queue, m.msg_id,
                    format('unknown step %s', v_step));
            END IF;
            CONTINUE;
        END IF;
        v_state := v_ws.current_state;
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
        -- The row in one update (one row version per claim), and the transition logged.
        PERFORM tasker._start_step_v1(
            v_step, v_ws.task_uuid, ARRAY[v_state, 'in_progress'],
            ARRAY[CASE WHEN v_state = 'enqueued' THEN 'start' ELSE 'reclaim' END],
            p_worker, m.msg_id, v_until);
        v_claimed := v_claimed || m.msg_id;
        v_steps := v_steps || v_step;
        v_reads := v_reads || m.read_ct;
        v_headers := v_headers || m.headers;
    END LOOP;

    IF cardinality(v_claimed) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(v_claimed) > cardinality(v_handed) THEN
        EXECUTE format('UPDATE pgmq.%I SET vt = $2, read_ct = read_ct + 1
                         WHERE msg_id = ANY ($1) AND NOT msg_id = ANY ($3)', v_table)
        USING v_claimed, v_until, v_handed;
    END IF;

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
      LEFT JOIN deps d ON d.root = c.step;  -- in the order claimed (no Sort node)
END
$function$;

-- The worker's heartbeat for the messages of the steps it runs: hide each message and
-- extend its step's lease for p_vt_seconds more (the step's claim message becomes this
-- one: a worker that was handed a replacement message keeps its lease). Never waits on a
-- lock (SKIP LOCKED), so it cannot deadlock with a claim or a result being recorded: a row
-- locked by one of those is skipped this round (a recorder is finishing that step; a claim
-- decides on the lease as it stands). Returns the number of messages extended.
CREATE OR REPLACE FUNCTION tasker.extend_step_claims_v1(
    p_queue text, p_ids bigint[], p_vt_seconds numeric
)
 RETURNS integer
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$;

-- One heartbeat of a running handler: when step p_step is still in_progress under attempt
-- p_attempt, store p_report (with `reported_at`) as its progress, extend its lease and hide
-- its claim message p_msg_id for p_vt_seconds more (as extend_step_claims_v1 does), and
-- answer held = true. Otherwise the run has lost its claim (task cancelled, step resolved,
-- or re-claimed under a later attempt after its lease expired): nothing is written and the
-- answer names the step's state and attempt ('missing' for a deleted step).
--
-- Lock order: the step row first (waiting is fine: nothing else is held yet), then the
-- message with SKIP LOCKED (never waits, so no deadlock with a claim or a record holding
-- it; a skipped message stays hidden by the lease: a claim starts nothing for an
-- in_progress step whose lease is live).
CREATE OR REPLACE FUNCTION tasker.heartbeat_step_v1(
    p_queue text, p_msg_id bigint, p_step uuid, p_attempt integer, p_vt_seconds numeric,
    p_report jsonb
)
 RETURNS TABLE(held boolean, state text, attempts integer)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
#variable_conflict use_column
DECLARE
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := v_now + make_interval(secs => p_vt_seconds::double precision);
    v_done boolean;
BEGIN
    UPDATE tasker.workflow_steps ws
       SET progress = p_report || jsonb_build_object('reported_at', v_now),
           claimed_until = v_until, claim_msg_id = p_msg_id
     WHERE ws.workflow_step_uuid = p_step AND ws.attempts = p_attempt
       AND ws.current_state = 'in_progress'
    RETURNING true INTO v_done;
    IF v_done THEN
        EXECUTE format(
            'UPDATE pgmq.%1$I q SET vt = $2
              WHERE q.msg_id = (SELECT msg_id FROM pgmq.%1$I WHERE msg_id = $1
                                   FOR UPDATE SKIP LOCKED)',
            pgmq.format_table_name(p_queue, 'q'))
        USING p_msg_id, v_until;
        RETURN QUERY SELECT true, 'in_progress'::text, p_attempt;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT false, COALESCE(ws.current_state::text, 'missing'), ws.attempts
          FROM (SELECT p_step AS step) s
          LEFT JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = s.step;
END
$function$;

-- A worker claimed a step whose message it cannot use (its headers could not be decoded or
-- nest too deep): set the message aside with the reason and put a clean one (the step
-- message without headers, the same read count) in its place, invisible for p_vt_seconds
-- like a claimed message. The claimed step runs; if the worker dies, the clean message
-- brings it back. Returns the new message's id, or NULL when the message is gone.
CREATE OR REPLACE FUNCTION tasker.replace_poison_step_message_v1(
    p_queue text, p_msg_id bigint, p_reason text, p_task uuid, p_step uuid, p_corr uuid,
    p_vt_seconds numeric
)
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- Persist a checkpoint of a running step (history appended atomically) and return it;
-- NULL when refused because the step is no longer in progress under attempt p_attempt
-- (cancelled, or re-claimed after this worker was presumed lost).
CREATE OR REPLACE FUNCTION tasker.save_checkpoint_v2(
    p_step uuid, p_attempt integer, p_cursor jsonb, p_items bigint, p_accumulated jsonb
)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_checkpoint jsonb;
BEGIN
    UPDATE tasker.workflow_steps
       SET checkpoint = jsonb_build_object(
               'cursor', p_cursor, 'items_processed', p_items, 'timestamp', clock_timestamp(),
               'accumulated_results', p_accumulated,
               'history', COALESCE(checkpoint -> 'history', '[]'::jsonb)
                          || jsonb_build_array(jsonb_build_object(
                                 'cursor', p_cursor, 'items_processed', p_items,
                                 'timestamp', clock_timestamp()))),
           updated_at = now()
     WHERE workflow_step_uuid = p_step AND attempts = p_attempt
       AND tasker.get_current_step_state_v1(p_step) = 'in_progress'
    RETURNING checkpoint INTO v_checkpoint;
    RETURN v_checkpoint;
END
$function$;

-- A worker's plain success is applied in the statement that records it. Result processing
-- would only turn it into `complete` (its decisions matter for failures, retries, decision
-- points and batches), yet it cost every step one more message, wake-up, transaction and
-- WAL flush. A result is applied here when the worker reports success and its payload says
-- so (`success` true, as result processing reads it), unless its `result` carries a
-- decision-point or batch outcome: those, and every failure, still go to result processing.
-- The step moves in_progress -> enqueued_for_orchestration -> complete (the same history as
-- before), and each task such a result moved is evaluated with p_finalize: its ready steps
-- are enqueued (headers: the recorded step's, so a trace goes on), and a task with nothing
-- left to run gets its outcome. All of it commits with the record, in one flush.
-- Returns {step_uuid: 'recorded' | 'stale'} as before, plus "applied": [step_uuid] (the
-- results applied here) and "tasks": {task_uuid: evaluation}.
CREATE OR REPLACE FUNCTION tasker.record_step_results_v1(
    p_queue text, p_results jsonb, p_worker text
)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    r record;
    v_state text;
    v_out jsonb := '{}';
    v_delete bigint[] := '{}';
    v_applied jsonb := '[]';
    v_tasks jsonb := '{}';
    v_headers jsonb := '{}';
    v_touched uuid[] := '{}';
    v_task uuid;
    v_plain boolean;  -- a plain success, completed here
BEGIN
    FOR r IN
        SELECT (x ->> 'msg_id')::bigint AS msg_id, ws.workflow_step_uuid AS step,
               (x ->> 'attempt')::integer AS attempt, (x ->> 'success')::boolean AS success,
               x -> 'results' AS results, NULLIF(x -> 'headers', 'null'::jsonb) AS headers,
               NULLIF(x -> 'events', 'null'::jsonb) AS events, x ->> 'events_queue' AS events_queue,
               ws.task_uuid, (SELECT t.correlation_id FROM tasker.tasks t
                               WHERE t.task_uuid = ws.task_uuid) AS correlation_id
          FROM jsonb_array_elements(p_results) AS x
         -- each result's step by a probe of its key (OFFSET 0 keeps the lookup a probe: as a
         -- join ordered by the key it was planned, under statistics of tiny tables, as a
         -- read of the whole key)
         CROSS JOIN LATERAL (SELECT s.workflow_step_uuid, s.task_uuid FROM tasker.workflow_steps s
                              WHERE s.workflow_step_uuid = (x ->> 'step_uuid')::uuid
                             OFFSET 0) ws
         ORDER BY ws.workflow_step_uuid  -- one lock order: concurrent recorders cannot deadlock
    LOOP
        v_plain := COALESCE(r.success AND jsonb_typeof(r.results) = 'object'
                   AND r.results -> 'success' = 'true'::jsonb
                   AND NOT (jsonb_typeof(r.results -> 'result') = 'object'
                            AND r.results -> 'result' ?| ARRAY['decision_point_outcome',
                                                               'batch_processing_outcome']),
                   false);
        -- The row takes its result (the audit row of the transition below reads it) and, for
        -- a plain success applied here (migration 0024), its final state: one new version
        -- for the record and the completion, with both transitions logged. Only while this
        -- run (in progress under its attempt) holds the step: the update locks the row and
        -- checks its latest version, so no lock of its own is taken before (a row lock is a
        -- WAL record of its own).
        UPDATE tasker.workflow_steps SET results = r.results, in_process = false,
               current_state = CASE WHEN v_plain THEN 'complete'
                                    WHEN r.success THEN 'enqueued_for_orchestration'
                                    ELSE 'enqueued_as_error_for_orchestration' END,
               processed = processed OR v_plain,
               processed_at = CASE WHEN v_plain THEN now() ELSE processed_at END,
               updated_at = now()
         WHERE workflow_step_uuid = r.step AND current_state = 'in_progress'
           AND COALESCE(attempts, 0) = r.attempt;
        IF NOT FOUND THEN  -- stale: another attempt holds the step, or it moved on
            SELECT ws.current_state INTO v_state FROM tasker.workflow_steps ws
             WHERE ws.workflow_step_uuid = r.step;
            IF v_state IN ('complete', 'cancelled', 'resolved_manually', 'error') THEN
                v_delete := v_delete || r.msg_id;
            END IF;
            v_out := v_out || jsonb_build_object(r.step::text, 'stale');
            CONTINUE;
        END IF;
        -- The record's transition and, for a plain success, what apply_step_result_v1(step,
        -- 'complete') logs for result processing's decision (the reason and backoff kind of
        -- a success: none).
        PERFORM tasker._log_step_transitions_v1(
            r.step, r.task_uuid,
            CASE WHEN v_plain THEN ARRAY['in_progress', 'enqueued_for_orchestration', 'complete']
                 WHEN r.success THEN ARRAY['in_progress', 'enqueued_for_orchestration']
                 ELSE ARRAY['in_progress', 'enqueued_as_error_for_orchestration'] END,
            CASE WHEN v_plain THEN ARRAY['enqueue_for_orchestration', 'complete']
                 WHEN r.success THEN ARRAY['enqueue_for_orchestration']
                 ELSE ARRAY['enqueue_as_error_for_orchestration'] END,
            ARRAY[jsonb_build_object('worker_id', p_worker, 'correlation_id', r.correlation_id,
                                     'attempt', r.attempt),
                  '{"reason": null, "backoff_kind": null}'::jsonb]);
        v_delete := v_delete || r.msg_id;
        IF v_plain THEN
            v_applied := v_applied || to_jsonb(r.step::text);
            IF NOT r.task_uuid = ANY (v_touched) THEN
                v_touched := v_touched || r.task_uuid;
                v_headers := v_headers || jsonb_build_object(r.task_uuid::text, r.headers);
            END IF;
        ELSE
            PERFORM tasker.send_v1('orchestration_step_results',
                jsonb_build_object('task_uuid', r.task_uuid, 'step_uuid', r.step,
                                   'correlation_id', r.correlation_id), r.headers);
        END IF;
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
    FOR v_task IN SELECT t FROM unnest(v_touched) AS t ORDER BY t LOOP
        v_tasks := v_tasks || jsonb_build_object(v_task::text, tasker.evaluate_task_v1(
            v_task, NULL, true, NULLIF(v_headers -> v_task::text, 'null'::jsonb)));
    END LOOP;
    RETURN v_out || jsonb_build_object('applied', v_applied, 'tasks', v_tasks);
END
$function$;

-- A worker's record of results from one queue, then its claim of up to p_limit steps from
-- that queue, in one statement (one transaction when run on its own, one round trip, no
-- BEGIN or COMMIT messages). The record is told how many steps it may hand off (the
-- transaction-local tasker.hand_off, read by tasker._hand_off_v1): steps its evaluations
-- make ready on p_queue are claimed as they are enqueued, and claim_steps_v1 returns them
-- first, then claims the rest of p_limit from the queue. The first row carries the
-- record's outcomes (tasker.record_step_results_v1) and no step; each further row is a
-- claimed step, as claim_steps_v1 returns it.
CREATE OR REPLACE FUNCTION tasker.record_and_claim_v1(
    p_queue text, p_results jsonb, p_worker text, p_limit integer, p_vt_seconds numeric,
    p_max_reads integer
)
 RETURNS TABLE(
    outcomes jsonb, msg_id bigint, read_ct integer, task_uuid uuid, step_uuid uuid,
    correlation_id uuid, step_name text, attempts integer, max_attempts integer,
    retryable boolean, inputs jsonb, checkpoint jsonb, task_context jsonb, namespace text,
    task_name text, task_version text, named_task_uuid uuid, dependency_results jsonb,
    headers jsonb
)
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF p_limit > 0 THEN
        PERFORM set_config('tasker.hand_off', jsonb_build_object(
            'queue', p_queue, 'worker', p_worker, 'left', p_limit,
            'vt_seconds', p_vt_seconds, 'ids', '[]'::jsonb)::text, true);
    END IF;
    outcomes := tasker.record_step_results_v1(p_queue, p_results, p_worker);
    RETURN NEXT;
    IF p_limit > 0 THEN
        RETURN QUERY SELECT NULL::jsonb, c.*
                       FROM tasker.claim_steps_v1(p_queue, NULL, p_limit, p_vt_seconds,
                                                  p_worker, p_max_reads) AS c;
    END IF;
END
$function$;

-- What result processing needs to decide a step's fate. PL/pgSQL rather than SQL: a SQL
-- function carrying SET options is never inlined, and on PostgreSQL before 18 it parsed and
-- planned its query again on every call (about 0.3 ms per result batch); PL/pgSQL keeps
-- the plan per connection.
CREATE OR REPLACE FUNCTION tasker.load_step_results_v1(p_steps uuid[])
 RETURNS TABLE(
    step_uuid uuid, task_uuid uuid, current_state text, step_name text, attempts integer,
    max_attempts integer, retryable boolean, inputs jsonb, results jsonb, named_task_uuid uuid,
    template_updated_at timestamp with time zone
)
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.workflow_step_uuid, ws.task_uuid,
           ws.current_state::text, ns.name::text,
           COALESCE(ws.attempts, 0), ws.max_attempts, ws.retryable, ws.inputs, ws.results,
           nt.named_task_uuid, nt.updated_at
      FROM tasker.workflow_steps ws
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
     WHERE ws.workflow_step_uuid = ANY (p_steps);
END
$function$;

-- Apply orchestration's decision on a step result: complete, fail or wait_for_retry (with
-- backoff). Only from enqueued_(as_error_)for_orchestration; otherwise a no-op (duplicate).
CREATE OR REPLACE FUNCTION tasker.apply_step_result_v1(
    p_step uuid, p_event text, p_backoff_seconds numeric DEFAULT NULL::numeric,
    p_metadata jsonb DEFAULT '{}'::jsonb
)
 RETURNS text
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
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
$function$;

-- fail_fast: cancel every sibling of a failed batch worker (same batchable parent, through
-- `batch_dependency` edges) that has not finished: not started, queued, running (its
-- result will be refused) or waiting for a retry. Returns how many were cancelled.
CREATE OR REPLACE FUNCTION tasker.cancel_batch_siblings_v1(
    p_step uuid, p_metadata jsonb DEFAULT '{}'::jsonb
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
    v_sibling uuid;
    v_count integer := 0;
BEGIN
    FOR v_sibling IN
        SELECT e2.to_step_uuid
          FROM tasker.workflow_step_edges e1
          JOIN tasker.workflow_step_edges e2
            ON e2.from_step_uuid = e1.from_step_uuid AND e2.name = 'batch_dependency'
         WHERE e1.to_step_uuid = p_step AND e1.name = 'batch_dependency'
           AND e2.to_step_uuid <> p_step
         ORDER BY e2.to_step_uuid
    LOOP
        IF tasker.transition_step_v1(
               v_sibling,
               ARRAY['pending', 'enqueued', 'in_progress', 'waiting_for_retry',
                     'enqueued_as_error_for_orchestration'],
               'cancel',
               COALESCE(p_metadata, '{}') || jsonb_build_object('failed_step', p_step))
           IS NOT NULL THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
$function$;

-- Apply orchestration's decisions on a batch of step results, then evaluate every task one
-- of them moved (enqueue what became ready; a task with nothing left to run gets its
-- outcome: complete, blocked by failures with a DLQ entry, or error). p_items: [{step_uuid,
-- event, backoff_seconds, metadata, cancel_siblings}] where cancel_siblings (fail_fast) is
-- the metadata for cancelling the step's unfinished batch siblings, or null. p_headers:
-- {task_uuid: headers} for the messages each task's evaluation sends.
-- Returns {"steps": {step_uuid: new state or null}, "cancelled": {step_uuid: count},
--          "tasks": {task_uuid: evaluation}}.
CREATE OR REPLACE FUNCTION tasker.apply_step_results_v1(
    p_items jsonb, p_processor uuid, p_headers jsonb DEFAULT '{}'::jsonb
)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$;

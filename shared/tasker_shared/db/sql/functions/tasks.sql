-- Tasks: templates, task and step creation, request outcomes, evaluation (enqueue ready
-- steps, walk the task to the state its steps call for, decide a finished task's outcome),
-- ready-task discovery and cancellation.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- Register (upsert) a template; creates the namespace and its worker queue.
CREATE OR REPLACE FUNCTION tasker.register_template_v1(
    p_namespace text, p_name text, p_version text, p_description text, p_configuration jsonb,
    p_identity_strategy text DEFAULT 'strict'::text
)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_ns uuid;
    v_nt uuid;
BEGIN
    INSERT INTO tasker.task_namespaces (name) VALUES (p_namespace)
    ON CONFLICT (name) DO NOTHING;
    SELECT task_namespace_uuid INTO v_ns FROM tasker.task_namespaces WHERE name = p_namespace;
    INSERT INTO tasker.named_tasks (task_namespace_uuid, name, version, description,
                                    configuration, identity_strategy)
    VALUES (v_ns, p_name, p_version, p_description, p_configuration,
            p_identity_strategy::tasker.identity_strategy)
    ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE
        SET configuration = EXCLUDED.configuration, description = EXCLUDED.description,
            identity_strategy = EXCLUDED.identity_strategy, updated_at = now()
        WHERE tasker.named_tasks.configuration IS DISTINCT FROM EXCLUDED.configuration
           OR tasker.named_tasks.identity_strategy IS DISTINCT FROM EXCLUDED.identity_strategy
    RETURNING named_task_uuid INTO v_nt;
    IF v_nt IS NULL THEN
        SELECT named_task_uuid INTO v_nt FROM tasker.named_tasks
         WHERE task_namespace_uuid = v_ns AND name = p_name AND version = p_version;
    END IF;
    PERFORM tasker.ensure_queue_v1('worker_' || p_namespace || '_queue');
    RETURN v_nt;
END
$function$;

-- Create steps (and edges) in a task, idempotently. p_steps: [{name, retryable,
-- max_attempts, inputs}], p_edges: [{from, to, name}] by step name. Edges may name steps
-- created earlier. Returns the number of steps created now. Raises TK400 on a cycle.
-- Steps that exist already are left out by NOT EXISTS (a probe of the task's own steps)
-- rather than ON CONFLICT, whose speculative insert writes a confirmation WAL record per
-- row besides the row. Two creators of the same step at once (two results of one task
-- applied together) cannot both insert it: the later one fails on the unique key and its
-- batch is retried, which then finds the step. Edges keep ON CONFLICT: its arbiter is the
-- edge's key, whereas a NOT EXISTS probe on (from, to, name) was planned as a scan of every
-- edge with that name (a cost that grows with history).
CREATE OR REPLACE FUNCTION tasker.create_steps_v1(p_task uuid, p_steps jsonb, p_edges jsonb)
 RETURNS integer
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
DECLARE
    v_created integer;
BEGIN
    INSERT INTO tasker.named_steps (name)
    SELECT DISTINCT s ->> 'name' FROM jsonb_array_elements(p_steps) s
     ORDER BY 1  -- one global lock order: concurrent creators cannot deadlock
    ON CONFLICT (name) DO NOTHING;

    WITH ins AS (
        INSERT INTO tasker.workflow_steps (task_uuid, named_step_uuid, retryable, max_attempts,
                                           inputs)
        SELECT p_task, ns.named_step_uuid, COALESCE((s ->> 'retryable')::boolean, true),
               COALESCE((s ->> 'max_attempts')::integer, 3), COALESCE(s -> 'inputs', '{}')
          FROM jsonb_array_elements(p_steps) s
          JOIN tasker.named_steps ns ON ns.name = s ->> 'name'
         WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_steps x
                            WHERE x.task_uuid = p_task
                              AND x.named_step_uuid = ns.named_step_uuid)
        RETURNING workflow_step_uuid
    ), tr AS (
        INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state,
                                                      metadata, sort_key)
        SELECT workflow_step_uuid, NULL, 'pending',
               jsonb_build_object('event', 'create', 'timestamp', clock_timestamp()), 1
          FROM ins
        RETURNING 1
    )
    SELECT count(*) INTO v_created FROM tr;

    IF jsonb_array_length(COALESCE(p_edges, '[]')) > 0 THEN
        INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name)
        SELECT f.workflow_step_uuid, t.workflow_step_uuid, COALESCE(e ->> 'name', 'provides')
          FROM jsonb_array_elements(p_edges) e
          JOIN tasker.named_steps fn ON fn.name = e ->> 'from'
          JOIN tasker.workflow_steps f
            ON f.task_uuid = p_task AND f.named_step_uuid = fn.named_step_uuid
          JOIN tasker.named_steps tn ON tn.name = e ->> 'to'
          JOIN tasker.workflow_steps t
            ON t.task_uuid = p_task AND t.named_step_uuid = tn.named_step_uuid
        ON CONFLICT (from_step_uuid, to_step_uuid, name) DO NOTHING;
        IF tasker.task_has_cycle_v1(p_task) THEN
            RAISE EXCEPTION 'dependency cycle detected in task %', p_task USING ERRCODE = 'TK400';
        END IF;
    END IF;
    RETURN v_created;
END
$function$;

-- Whether the task's edges contain a cycle. PL/pgSQL rather than SQL: called from
-- PL/pgSQL as a plain expression, a SQL function's recursive query was parsed and planned
-- again on every task created (about 0.2 ms); PL/pgSQL keeps the plan per connection.
CREATE OR REPLACE FUNCTION tasker.task_has_cycle_v1(p_task uuid)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    RETURN EXISTS (
        WITH RECURSIVE e AS (  -- the task's edges, found from its steps: a probe per step
            -- whatever the statistics say, never a read of every edge (OFFSET 0 keeps the
            -- planner from turning the LATERAL subquery into a join it may reorder)
            SELECT x.from_step_uuid, x.to_step_uuid FROM tasker.workflow_steps ws
             CROSS JOIN LATERAL (SELECT ed.from_step_uuid, ed.to_step_uuid
                                   FROM tasker.workflow_step_edges ed
                                  WHERE ed.to_step_uuid = ws.workflow_step_uuid OFFSET 0) x
             WHERE ws.task_uuid = p_task
        ), walk(origin, node) AS (  -- reachable pairs (UNION: at most n^2 rows, never paths)
            SELECT from_step_uuid, to_step_uuid FROM e
            UNION
            SELECT w.origin, e.to_step_uuid
              FROM walk w JOIN e ON e.from_step_uuid = w.node
             WHERE w.node <> w.origin
        )
        SELECT 1 FROM walk WHERE node = origin);
END
$function$;

-- Create a task with its initial steps, edges and first transitions. Returns NULL when
-- a task with the same identity already exists (nothing is created then).
CREATE OR REPLACE FUNCTION tasker.create_task_v1(
    p_named_task uuid, p_task jsonb, p_steps jsonb, p_edges jsonb
)
 RETURNS uuid
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
DECLARE
    v_task uuid;
BEGIN
    INSERT INTO tasker.tasks (named_task_uuid, requested_at, initiator, source_system, reason,
                              tags, context, identity_hash, priority, correlation_id,
                              parent_correlation_id)
    VALUES (p_named_task, COALESCE((p_task ->> 'requested_at')::timestamptz, now()),
            p_task ->> 'initiator', p_task ->> 'source_system', p_task ->> 'reason',
            COALESCE(p_task -> 'tags', '[]'), COALESCE(p_task -> 'context', '{}'),
            p_task ->> 'identity_hash', COALESCE((p_task ->> 'priority')::integer, 0),
            (p_task ->> 'correlation_id')::uuid, (p_task ->> 'parent_correlation_id')::uuid)
    ON CONFLICT (identity_hash) DO NOTHING
    RETURNING task_uuid INTO v_task;
    IF v_task IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, sort_key,
                                         most_recent)
    VALUES (v_task, NULL, 'pending',
            jsonb_build_object('event', 'create', 'timestamp', clock_timestamp()), 1, true);
    PERFORM tasker.create_steps_v1(v_task, p_steps, p_edges);
    RETURN v_task;
END
$function$;

-- A task request's outcome, stored (first answer wins) and announced on
-- tasker_task_request_outcomes, so whoever waits on the request learns it. One function for
-- every outcome: task creation calls it in the creating statement, ingestion for invalid
-- requests.
CREATE OR REPLACE FUNCTION tasker.announce_request_outcome_v1(
    p_request text, p_outcome text, p_task uuid, p_reason text, p_error_code text
)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO tasker.task_request_outcomes (request_id, outcome, task_uuid, reason)
    VALUES (p_request, p_outcome, p_task, p_reason)
    ON CONFLICT (request_id) DO NOTHING;
    PERFORM pg_notify('tasker_task_request_outcomes', json_build_object(
        'request_id', p_request, 'outcome', p_outcome, 'task_uuid', p_task,
        'reason', NULLIF(left(COALESCE(p_reason, ''), 3000), ''),
        'error_code', p_error_code)::text);
END
$function$;

-- Walk the (locked) task from p_from to p_target through the transition table.
CREATE OR REPLACE FUNCTION tasker._walk_task_v1(
    p_task uuid, p_from text, p_target text, p_processor uuid, p_metadata jsonb
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
    v_events text[];
    v_event text;
    v_state text := p_from;
    v_next text;
    v_states text[] := '{}';
BEGIN
    IF p_from = p_target THEN
        -- Already there (every evaluation that enqueues a task's next steps while others
        -- run): the path is empty, no lookups needed.
        RETURN p_from;
    END IF;
    SELECT events INTO v_events FROM tasker.task_state_paths
     WHERE from_state = p_from AND target = p_target;
    IF v_events IS NULL THEN
        RAISE EXCEPTION 'no path for task % from % to %', p_task, p_from, p_target
            USING ERRCODE = 'TK001';
    END IF;
    FOREACH v_event IN ARRAY v_events LOOP
        SELECT to_state INTO v_next FROM tasker.task_state_transitions
         WHERE from_state = v_state AND event = v_event;
        IF v_next IS NULL THEN
            RAISE EXCEPTION 'task transition % --%--> ? is not allowed', v_state, v_event
                USING ERRCODE = 'TK001';
        END IF;
        v_states := v_states || v_next;
        v_state := v_next;
    END LOOP;
    IF cardinality(v_states) > 0 THEN  -- the whole walk appended at once
        PERFORM tasker._append_task_transitions_v1(p_task, p_from, v_states, v_events,
                                                   p_processor, p_metadata);
    END IF;
    RETURN v_state;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.task_snapshot_v1(p_task uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
    SELECT jsonb_build_object(
        'task_uuid', t.task_uuid, 'namespace', tn.name, 'task_name', nt.name,
        'version', nt.version, 'current_state', tasker.get_current_task_state_v1(t.task_uuid),
        'snapshot_timestamp', now(),
        'task_details', jsonb_build_object('correlation_id', t.correlation_id,
                                           'priority', t.priority,
                                           'requested_at', t.requested_at,
                                           'created_at', t.created_at),
        'steps', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                      'step_uuid', r.workflow_step_uuid, 'name', r.name,
                      'state', r.current_state, 'attempts', r.attempts,
                      'max_attempts', r.max_attempts) ORDER BY r.name), '[]')
                    FROM tasker.get_step_readiness_status_v1(t.task_uuid) r))
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
     WHERE t.task_uuid = p_task
$function$;

-- Evaluate a task: enqueue its ready steps and move it to the state its steps call for.
-- With p_finalize, also decide a finished task's outcome (complete / blocked / error);
-- without it, a finished task gets a finalization request instead. Returns a summary
-- (`dlq_entry` names the investigation a blocked task opened, if it opened one).
-- Hand-off: a worker recording results may claim, in the same transaction, the steps their
-- evaluation enqueues (tasker.record_step_results_v1 followed by tasker.claim_steps_v1, see
-- the worker's record_and_claim). It says so in the transaction-local setting
-- tasker.hand_off: {"queue", "worker", "left" (slots it reserved), "vt_seconds", "ids"}.
-- While `left` lasts, a step enqueued on that queue is claimed at once: its message is
-- sent hidden until the claim's lease ends and read once, its row takes `in_progress` in
-- one version, and both transitions (enqueue, start) are logged in one insert; the claim
-- statement returns it with what it claims itself (the messages are listed in `ids`, with
-- their steps and headers in `steps` and `headers`).
-- The same rows and lease as an enqueue followed by a claim, without the message's
-- notification, update and lock, and without the step row's intermediate version.
-- Returns false (nothing done) when no hand-off applies. Called by evaluate_task_v1 only,
-- under its plan settings (no SET options of its own: each call would save and restore
-- them).
CREATE OR REPLACE FUNCTION tasker._hand_off_v1(
    p_queue text, p_task uuid, p_step uuid, p_message jsonb, p_headers jsonb
)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_hand jsonb := NULLIF(current_setting('tasker.hand_off', true), '')::jsonb;
    v_until timestamptz;
    v_msg bigint;
BEGIN
    IF v_hand IS NULL OR v_hand ->> 'queue' IS DISTINCT FROM p_queue
       OR COALESCE((v_hand ->> 'left')::integer, 0) <= 0 THEN
        RETURN false;
    END IF;
    v_until := clock_timestamp()
               + make_interval(secs => (v_hand ->> 'vt_seconds')::double precision);
    v_msg := tasker._send_claimed_v1(p_queue, p_message, p_headers, v_until);
    PERFORM tasker._start_step_v1(
        p_step, p_task, ARRAY['pending', 'enqueued', 'in_progress'], ARRAY['enqueue', 'start'],
        v_hand ->> 'worker', v_msg, v_until);
    -- What the claim returns of the message, so it need not read it back: its id, its
    -- step and its headers (read once: read_ct 1).
    PERFORM set_config('tasker.hand_off', jsonb_build_object(
        'queue', p_queue, 'worker', v_hand -> 'worker', 'vt_seconds', v_hand -> 'vt_seconds',
        'left', (v_hand ->> 'left')::integer - 1,
        'ids', COALESCE(v_hand -> 'ids', '[]') || to_jsonb(v_msg),
        'steps', COALESCE(v_hand -> 'steps', '[]') || to_jsonb(p_step),
        'headers', COALESCE(v_hand -> 'headers', '[]')
                   || jsonb_build_array(COALESCE(p_headers, 'null'::jsonb)))::text, true);
    RETURN true;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.evaluate_task_v1(
    p_task uuid, p_processor uuid DEFAULT NULL::uuid, p_finalize boolean DEFAULT false,
    p_headers jsonb DEFAULT NULL::jsonb
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
    v_state text;
    v_queue text;
    v_corr uuid;
    v_step record;
    v_ready uuid[] := '{}';
    v_ready_states text[] := '{}';
    v_failed_ids uuid[] := '{}';
    v_total integer := 0;
    v_done integer := 0;
    v_failed integer := 0;
    v_busy integer := 0;
    v_waiting integer := 0;
    v_exhausted integer := 0;
    v_failures jsonb;
    v_dlq uuid;
    v_wake timestamptz;
    v_status text;
    v_enqueued integer := 0;
    v_new text;
    v_action text := 'none';
    v_message jsonb;
    i integer;
BEGIN
    SELECT 'worker_' || tn.name || '_queue', t.correlation_id INTO v_queue, v_corr
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
     WHERE t.task_uuid = p_task
       FOR NO KEY UPDATE OF t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'TK404';
    END IF;
    v_state := tasker.get_current_task_state_v1(p_task);
    IF v_state IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        RETURN jsonb_build_object('task_uuid', p_task, 'state', v_state, 'action', 'terminal',
                                  'enqueued', 0);
    END IF;

    -- One scan of the task's steps gives both the counts and the steps to enqueue. Only a
    -- step that is pending or waiting for a retry can become ready: its parents and last
    -- failure are looked up (tasker._step_readiness_v1); the others' states are enough.
    FOR v_step IN
        SELECT ws.workflow_step_uuid, ws.current_state::text AS current_state,
               COALESCE(r.ready_for_execution, false) AS ready_for_execution, r.next_retry_at
          FROM tasker.workflow_steps ws
          LEFT JOIN LATERAL (
              SELECT x.ready_for_execution, x.next_retry_at
                FROM tasker._step_readiness_v1(
                         ws.workflow_step_uuid, ws.current_state, ws.processed, ws.in_process,
                         ws.attempts, ws.retryable, ws.max_attempts,
                         ws.backoff_request_seconds, ws.last_attempted_at) x
               WHERE ws.current_state IN ('pending', 'waiting_for_retry')
              OFFSET 0) r ON true
         WHERE ws.task_uuid = p_task
         -- the order of the (task, named step) key the scan reads anyway: no Sort node
         ORDER BY ws.named_step_uuid
    LOOP
        v_total := v_total + 1;
        IF v_step.ready_for_execution THEN
            v_ready := v_ready || v_step.workflow_step_uuid;
            v_ready_states := v_ready_states || v_step.current_state;
        END IF;
        CASE
            WHEN v_step.current_state IN ('complete', 'resolved_manually') THEN
                v_done := v_done + 1;
            WHEN v_step.current_state = 'error' THEN
                v_failed := v_failed + 1;
                v_failed_ids := v_failed_ids || v_step.workflow_step_uuid;
            WHEN v_step.current_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                          'enqueued_as_error_for_orchestration') THEN
                v_busy := v_busy + 1;
            WHEN v_step.current_state = 'waiting_for_retry' THEN
                v_waiting := v_waiting + 1;
                v_wake := LEAST(v_wake, v_step.next_retry_at);
            ELSE
                NULL;
        END CASE;
    END LOOP;
    v_status := CASE
        WHEN v_failed > 0 THEN 'blocked_by_failures'
        WHEN cardinality(v_ready) > 0 THEN 'has_ready_steps'
        WHEN v_busy > 0 THEN 'processing'
        WHEN v_total > 0 AND v_done = v_total THEN 'all_complete'
        ELSE 'waiting_for_dependencies' END;

    IF cardinality(v_ready) > 0 THEN
        FOR i IN 1 .. cardinality(v_ready) LOOP
            IF v_ready_states[i] = 'waiting_for_retry' THEN
                PERFORM tasker._append_step_transition_v1(
                    v_ready[i], 'waiting_for_retry', 'pending', 'retry', '{}');
            END IF;
            v_message := jsonb_build_object('task_uuid', p_task, 'step_uuid', v_ready[i],
                                            'correlation_id', v_corr);
            IF NOT tasker._hand_off_v1(v_queue, p_task, v_ready[i], v_message, p_headers) THEN
                PERFORM tasker._append_step_transition_v1(v_ready[i], 'pending', 'enqueued',
                                                          'enqueue', '{}');
                PERFORM tasker.send_v1(v_queue, v_message, p_headers);
            END IF;
        END LOOP;
        v_enqueued := cardinality(v_ready);
        v_new := tasker._walk_task_v1(p_task, v_state, 'steps_in_process', p_processor,
                                      jsonb_build_object('enqueued', v_enqueued));
        v_action := 'enqueued';
    ELSIF v_busy > 0 THEN
        v_new := v_state;
        v_action := 'processing';
    ELSIF v_done = v_total THEN
        IF p_finalize THEN
            v_new := tasker._walk_task_v1(p_task, v_state, 'complete', p_processor, '{}');
            v_action := 'completed';
        ELSE
            PERFORM tasker.send_v1('orchestration_task_finalizations',
                jsonb_build_object('task_uuid', p_task, 'reason', 'all_complete'), p_headers);
            v_new := v_state;
            v_action := 'finalization_requested';
        END IF;
    ELSIF v_waiting > 0 THEN
        -- a retry still to come (even beside a failed step): its timer wakes the task
        v_new := tasker._walk_task_v1(p_task, v_state, 'waiting_for_retry', p_processor, '{}');
        PERFORM tasker.send_v1('orchestration_task_finalizations',
            jsonb_build_object('task_uuid', p_task, 'reason', 'retry_timer'), p_headers,
            GREATEST(COALESCE(v_wake, clock_timestamp()), clock_timestamp()));
        v_action := 'waiting_for_retry';
    ELSIF v_failed > 0 THEN
        IF p_finalize THEN
            v_new := tasker._walk_task_v1(p_task, v_state, 'blocked_by_failures', p_processor,
                                          jsonb_build_object('failed_steps', v_failed));
            v_action := 'blocked';
            -- what failed and why, for the investigation (at most 50 steps named)
            SELECT count(*) FILTER (WHERE f.exhausted),
                   jsonb_agg(jsonb_build_object(
                       'step_uuid', f.workflow_step_uuid, 'name', f.name,
                       'why', CASE WHEN f.exhausted THEN 'attempts_exhausted'
                                   ELSE 'not_retryable' END,
                       'attempts', f.attempts, 'max_attempts', f.max_attempts,
                       'error_type', f.error ->> 'error_type',
                       'message', left(f.error ->> 'message', 500))
                       ORDER BY f.name) FILTER (WHERE f.n <= 50)
              INTO v_exhausted, v_failures
              FROM (SELECT ws.workflow_step_uuid, ns.name::text AS name,
                           COALESCE(ws.attempts, 0) AS attempts, ws.max_attempts,
                           CASE WHEN jsonb_typeof(ws.results -> 'error') = 'object'
                                THEN ws.results -> 'error' END AS error,
                           COALESCE((ws.results -> 'metadata' ->> 'retryable')::boolean, false)
                               AND COALESCE(ws.attempts, 0) >= ws.max_attempts AS exhausted,
                           row_number() OVER (ORDER BY ns.name) AS n
                      FROM unnest(v_failed_ids) AS q(step_uuid)
                      CROSS JOIN LATERAL (SELECT w.* FROM tasker.workflow_steps w
                                           WHERE w.workflow_step_uuid = q.step_uuid
                                          OFFSET 0) ws
                      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid) f;
            INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason,
                                          task_snapshot, metadata)
            VALUES (p_task, 'blocked_by_failures', 'max_retries_exceeded',
                    tasker.task_snapshot_v1(p_task),
                    jsonb_build_object('detection_method', 'finalization',
                                       'failed_steps', v_failed,
                                       'exhausted_steps', v_exhausted,
                                       'failures', COALESCE(v_failures, '[]')))
            ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING
            RETURNING dlq_entry_uuid INTO v_dlq;
            -- steps whose retryable failures used up every attempt end the task in error
            IF v_exhausted > 0 THEN
                PERFORM tasker._append_task_transition_v1(
                    p_task, 'blocked_by_failures', 'error', 'give_up', p_processor,
                    jsonb_build_object('reason', 'max_retries_exceeded'));
                v_new := 'error';
                v_action := 'error';
            END IF;
        ELSE
            PERFORM tasker.send_v1('orchestration_task_finalizations',
                jsonb_build_object('task_uuid', p_task, 'reason', 'blocked'), p_headers);
            v_new := v_state;
            v_action := 'finalization_requested';
        END IF;
    ELSE
        v_new := tasker._walk_task_v1(p_task, v_state, 'waiting_for_dependencies',
                                      p_processor, '{}');
        v_action := 'waiting_for_dependencies';
    END IF;
    RETURN jsonb_build_object('task_uuid', p_task, 'state', v_new, 'action', v_action,
                              'enqueued', v_enqueued, 'execution_status', v_status,
                              'dlq_entry', v_dlq);
END
$function$;

-- Discovery for the safety-net poller (SPEC §3.3): tasks that may have work to do,
-- highest computed priority first, locked so replicas take disjoint tasks.
CREATE OR REPLACE FUNCTION tasker.get_next_ready_tasks_v1(p_limit integer DEFAULT 5)
 RETURNS TABLE(
    task_uuid uuid, current_state text, computed_priority double precision,
    execution_status text
)
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$;

-- Cancel a task and every step that has not finished. Returns false if already terminal.
CREATE OR REPLACE FUNCTION tasker.cancel_task_v1(
    p_task uuid, p_processor uuid, p_metadata jsonb
)
 RETURNS boolean
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$;

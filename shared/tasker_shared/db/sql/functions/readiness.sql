-- Readiness (SPEC section 3.3): which steps can run now, the retry backoff, a task's
-- aggregate execution context, dependency levels and ancestors.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- Helpers on the hot path, made cheap to call.
--
-- The readiness predicate and the retry-time formula were declared IMMUTABLE but read the
-- clock and the session time zone (now(), timestamptz + interval), which are STABLE.
-- PostgreSQL only inlines a SQL function whose body is no more volatile than declared, so
-- every readiness scan called them once per step as separate function calls (about 18
-- calls per step of a linear workflow). Declared STABLE, they are inlined into the scan.
CREATE OR REPLACE FUNCTION tasker.evaluate_step_state_readiness_v1(
    p_state text, p_processed boolean, p_in_process boolean, p_deps_ok boolean,
    p_retry_eligible boolean, p_next_retry_at timestamp with time zone
)
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
    SELECT p_state IN ('pending', 'waiting_for_retry')
       AND NOT COALESCE(p_processed, false)
       AND NOT COALESCE(p_in_process, false)
       AND p_deps_ok
       AND p_retry_eligible
       AND (p_next_retry_at IS NULL OR p_next_retry_at <= now())
$function$;

CREATE OR REPLACE FUNCTION tasker.calculate_step_next_retry_time_v1(
    p_backoff_seconds numeric, p_last_attempted_at timestamp with time zone,
    p_failure_time timestamp with time zone, p_attempts integer,
    p_max_backoff integer DEFAULT 60, p_multiplier numeric DEFAULT 2.0
)
 RETURNS timestamp with time zone
 LANGUAGE sql
 STABLE
AS $function$
    SELECT CASE
        WHEN p_backoff_seconds IS NOT NULL AND p_last_attempted_at IS NOT NULL
            THEN p_last_attempted_at + make_interval(secs => p_backoff_seconds::double precision)
        WHEN p_failure_time IS NOT NULL
            THEN p_failure_time + make_interval(secs => LEAST(
                power(p_multiplier, COALESCE(p_attempts, 0)), p_max_backoff)::double precision)
        ELSE NULL
    END
$function$;

-- The readiness of one step from its row's columns: its parents (how many, how many done),
-- whether a retry is allowed, its last failure and the time of its next retry, and whether
-- it can run now (SPEC section 3.3). A SQL function inlined where it is called (no SET
-- options, STABLE), so callers keep one plan: the batch scan below for every step, and
-- evaluate_task_v1 only for the steps that can become ready (pending, waiting for a retry).
-- Parents and the last failure are looked up per step (index probes), so the cost follows
-- the number of steps asked for, never the size of the transition history.
CREATE OR REPLACE FUNCTION tasker._step_readiness_v1(
    p_step uuid, p_state text, p_processed boolean, p_in_process boolean, p_attempts integer,
    p_retryable boolean, p_max_attempts integer, p_backoff_seconds numeric,
    p_last_attempted_at timestamp with time zone
)
 RETURNS TABLE(
    total_parents integer, completed_parents integer, dependencies_satisfied boolean,
    retry_eligible boolean, last_failure_at timestamp with time zone,
    next_retry_at timestamp with time zone, ready_for_execution boolean
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT par.total, par.done, par.total = par.done, r.ok, f.at, n.at,
           tasker.evaluate_step_state_readiness_v1(p_state, p_processed, p_in_process,
                                                   par.total = par.done, r.ok, n.at)
      FROM (SELECT count(*)::integer AS total,
                   (count(*) FILTER (WHERE p.current_state IN ('complete', 'resolved_manually')))
                       ::integer AS done
              FROM tasker.workflow_step_edges e
              JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
             WHERE e.to_step_uuid = p_step) par
     CROSS JOIN (SELECT COALESCE(p_attempts, 0) = 0
                        OR (COALESCE(p_retryable, true)
                            AND COALESCE(p_attempts, 0) < COALESCE(p_max_attempts, 3)) AS ok) r
     CROSS JOIN (SELECT max(ft.created_at) AS at
                   FROM tasker.workflow_step_transitions ft
                  WHERE ft.workflow_step_uuid = p_step AND ft.to_state = 'error') f
     CROSS JOIN LATERAL (SELECT tasker.calculate_step_next_retry_time_v1(
                                    p_backoff_seconds, p_last_attempted_at, f.at, p_attempts)
                                    AS at) n
$function$;

-- The readiness scan reached a task's steps through `task_uuid = ANY (p_tasks)`; ANALYZEd
-- while tiny, the steps table made that generic plan a full scan of the primary key index
-- filtered by task (cheaper than a bitmap scan on one page), kept for the connection's life
-- as the table grew. Now one probe per task, as the rest of the query already was.
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status_batch_v1(
    p_tasks uuid[], p_steps uuid[] DEFAULT NULL::uuid[]
)
 RETURNS TABLE(
    workflow_step_uuid uuid, task_uuid uuid, named_step_uuid uuid, name text,
    current_state text, dependencies_satisfied boolean, retry_eligible boolean,
    ready_for_execution boolean, last_failure_at timestamp with time zone,
    next_retry_at timestamp with time zone, total_parents integer, completed_parents integer,
    attempts integer, max_attempts integer, backoff_request_seconds numeric,
    last_attempted_at timestamp with time zone
)
 LANGUAGE plpgsql
 STABLE
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.workflow_step_uuid, ws.task_uuid, ws.named_step_uuid, ns.name::text,
           ws.current_state::text, r.dependencies_satisfied, r.retry_eligible,
           r.ready_for_execution, r.last_failure_at, r.next_retry_at, r.total_parents,
           r.completed_parents, COALESCE(ws.attempts, 0), ws.max_attempts,
           ws.backoff_request_seconds, ws.last_attempted_at
      FROM (SELECT DISTINCT x FROM unnest(p_tasks) AS x) AS q(task_uuid)
      -- one index probe per task (OFFSET 0 keeps it a probe whatever the statistics)
      CROSS JOIN LATERAL (
          SELECT w.* FROM tasker.workflow_steps w
           WHERE w.task_uuid = q.task_uuid
             AND (p_steps IS NULL OR w.workflow_step_uuid = ANY (p_steps)) OFFSET 0) ws
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      CROSS JOIN LATERAL tasker._step_readiness_v1(
          ws.workflow_step_uuid, ws.current_state, ws.processed, ws.in_process, ws.attempts,
          ws.retryable, ws.max_attempts, ws.backoff_request_seconds, ws.last_attempted_at) r;
END
$function$;

-- A single-task readiness scan: an inlinable SQL wrapper, not a PL/pgSQL function that
-- copies the batch function's rows into a second result set.
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status_v1(
    p_task uuid, p_steps uuid[] DEFAULT NULL::uuid[]
)
 RETURNS TABLE(
    workflow_step_uuid uuid, task_uuid uuid, named_step_uuid uuid, name text,
    current_state text, dependencies_satisfied boolean, retry_eligible boolean,
    ready_for_execution boolean, last_failure_at timestamp with time zone,
    next_retry_at timestamp with time zone, total_parents integer, completed_parents integer,
    attempts integer, max_attempts integer, backoff_request_seconds numeric,
    last_attempted_at timestamp with time zone
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT * FROM tasker.get_step_readiness_status_batch_v1(ARRAY[p_task], p_steps)
$function$;

-- Aggregate execution context of several tasks (SPEC §3.3).
CREATE OR REPLACE FUNCTION tasker.get_task_execution_contexts_batch_v1(p_tasks uuid[])
 RETURNS TABLE(
    task_uuid uuid, named_task_uuid uuid, status text, total_steps integer,
    pending_steps integer, in_progress_steps integer, completed_steps integer,
    failed_steps integer, ready_steps integer, enqueued_steps integer,
    waiting_for_retry_steps integer, exhausted_failed_steps integer, execution_status text,
    recommended_action text, completion_percentage numeric, health_status text
)
 LANGUAGE plpgsql
 STABLE
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$  -- see get_step_readiness_status_batch_v1
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH r AS (
        SELECT * FROM tasker.get_step_readiness_status_batch_v1(p_tasks)
    ), agg AS (
        SELECT t.task_uuid, t.named_task_uuid,
               COALESCE(tasker.get_current_task_state_v1(t.task_uuid), 'pending') AS status,
               count(r.workflow_step_uuid)::integer AS total,
               (count(*) FILTER (WHERE r.current_state = 'pending'))::integer AS pending,
               (count(*) FILTER (WHERE r.current_state IN (
                   'in_progress', 'enqueued_for_orchestration',
                   'enqueued_as_error_for_orchestration')))::integer AS in_progress,
               (count(*) FILTER (WHERE r.current_state IN (
                   'complete', 'resolved_manually')))::integer AS completed,
               (count(*) FILTER (WHERE r.current_state = 'error'))::integer AS failed,
               (count(*) FILTER (WHERE r.ready_for_execution))::integer AS ready,
               (count(*) FILTER (WHERE r.current_state = 'enqueued'))::integer AS enqueued,
               (count(*) FILTER (WHERE r.current_state = 'waiting_for_retry'))::integer AS waiting,
               (count(*) FILTER (WHERE r.current_state = 'error'
                                   AND COALESCE((ws.results -> 'metadata' ->> 'retryable')::boolean,
                                                false)
                                   AND COALESCE(ws.attempts, 0) >= ws.max_attempts))::integer
                   AS exhausted
          FROM (SELECT DISTINCT x FROM unnest(p_tasks) AS x) AS u(task_uuid)
          JOIN tasker.tasks t ON t.task_uuid = u.task_uuid
          LEFT JOIN r ON r.task_uuid = t.task_uuid
          LEFT JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid
         GROUP BY t.task_uuid, t.named_task_uuid
    ), st AS (
        SELECT agg.*, CASE
                WHEN failed > 0 THEN 'blocked_by_failures'
                WHEN ready > 0 THEN 'has_ready_steps'
                WHEN enqueued + in_progress > 0 THEN 'processing'
                WHEN total > 0 AND completed = total THEN 'all_complete'
                ELSE 'waiting_for_dependencies'
            END AS execution_status
          FROM agg
    )
    SELECT st.task_uuid, st.named_task_uuid, st.status, st.total, st.pending, st.in_progress,
           st.completed, st.failed, st.ready, st.enqueued, st.waiting, st.exhausted,
           st.execution_status,
           CASE st.execution_status
               WHEN 'blocked_by_failures' THEN 'handle_failures'
               WHEN 'has_ready_steps' THEN 'execute_ready_steps'
               WHEN 'processing' THEN 'wait_for_completion'
               WHEN 'all_complete' THEN 'finalize_task'
               ELSE 'wait_for_dependencies'
           END,
           CASE WHEN st.total = 0 THEN 0.0
                ELSE round(st.completed::numeric * 100 / st.total, 2) END,
           CASE WHEN st.failed > 0 THEN 'blocked'
                WHEN st.waiting = 0 THEN 'healthy'
                ELSE 'recovering' END
      FROM st;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.get_task_execution_context_v1(p_task uuid)
 RETURNS TABLE(
    task_uuid uuid, named_task_uuid uuid, status text, total_steps integer,
    pending_steps integer, in_progress_steps integer, completed_steps integer,
    failed_steps integer, ready_steps integer, enqueued_steps integer,
    waiting_for_retry_steps integer, exhausted_failed_steps integer, execution_status text,
    recommended_action text, completion_percentage numeric, health_status text
)
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT * FROM tasker.get_task_execution_contexts_batch_v1(ARRAY[p_task]);
END
$function$;

-- Longest-path dependency level of each step of a task (roots are level 0).
CREATE OR REPLACE FUNCTION tasker.calculate_dependency_levels_v1(p_task uuid)
 RETURNS TABLE(workflow_step_uuid uuid, dependency_level integer)
 LANGUAGE plpgsql
 STABLE
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH RECURSIVE steps AS (
        SELECT ws.workflow_step_uuid FROM tasker.workflow_steps ws WHERE ws.task_uuid = p_task
    ), walk(step_uuid, level) AS (
        SELECT s.workflow_step_uuid, 0 FROM steps s
         WHERE NOT EXISTS (SELECT 1 FROM tasker.workflow_step_edges e
                            WHERE e.to_step_uuid = s.workflow_step_uuid)
        UNION  -- not ALL: one row per (step, level), never one per path
        SELECT e.to_step_uuid, w.level + 1
          FROM walk w JOIN tasker.workflow_step_edges e ON e.from_step_uuid = w.step_uuid
         WHERE w.level < 50
    )
    SELECT step_uuid, max(level)::integer FROM walk GROUP BY step_uuid;
END
$function$;

-- All ancestors of a step with their distance (1 = direct parent), name and results.
CREATE OR REPLACE FUNCTION tasker.get_step_transitive_dependencies_v1(p_step uuid)
 RETURNS TABLE(
    workflow_step_uuid uuid, name text, results jsonb, processed boolean, distance integer
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
    WITH RECURSIVE up(step_uuid, distance) AS (
        SELECT e.from_step_uuid, 1 FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = p_step
        UNION
        SELECT e.from_step_uuid, u.distance + 1
          FROM up u JOIN tasker.workflow_step_edges e ON e.to_step_uuid = u.step_uuid
         WHERE u.distance < 50
    ), nearest AS (
        SELECT step_uuid, min(distance) AS distance FROM up GROUP BY step_uuid
    )
    SELECT ws.workflow_step_uuid, ns.name::text, ws.results, ws.processed, n.distance
      FROM nearest n
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = n.step_uuid
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid;
END
$function$;

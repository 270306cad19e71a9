-- Analytics: system health counts, throughput and duration metrics, slowest steps and
-- tasks.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- Tasks per task state (12) + total, steps per step state (10) + total.
CREATE OR REPLACE FUNCTION tasker.get_system_health_counts_v1()
 RETURNS TABLE(
    pending_tasks bigint, initializing_tasks bigint, enqueuing_steps_tasks bigint,
    steps_in_process_tasks bigint, evaluating_results_tasks bigint,
    waiting_for_dependencies_tasks bigint, waiting_for_retry_tasks bigint,
    blocked_by_failures_tasks bigint, complete_tasks bigint, error_tasks bigint,
    cancelled_tasks bigint, resolved_manually_tasks bigint, total_tasks bigint,
    pending_steps bigint, enqueued_steps bigint, in_progress_steps bigint,
    enqueued_for_orchestration_steps bigint, enqueued_as_error_for_orchestration_steps bigint,
    waiting_for_retry_steps bigint, complete_steps bigint, error_steps bigint,
    cancelled_steps bigint, resolved_manually_steps bigint, total_steps bigint
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH ts AS (
        SELECT COALESCE(tt.to_state, 'pending') AS s
          FROM tasker.tasks t
          LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
    ), ss AS (
        SELECT ws.current_state AS s FROM tasker.workflow_steps ws
    ), tc AS (
        SELECT count(*) FILTER (WHERE s = 'pending') AS pending,
               count(*) FILTER (WHERE s = 'initializing') AS initializing,
               count(*) FILTER (WHERE s = 'enqueuing_steps') AS enqueuing_steps,
               count(*) FILTER (WHERE s = 'steps_in_process') AS steps_in_process,
               count(*) FILTER (WHERE s = 'evaluating_results') AS evaluating_results,
               count(*) FILTER (WHERE s = 'waiting_for_dependencies') AS waiting_deps,
               count(*) FILTER (WHERE s = 'waiting_for_retry') AS waiting_retry,
               count(*) FILTER (WHERE s = 'blocked_by_failures') AS blocked,
               count(*) FILTER (WHERE s = 'complete') AS complete,
               count(*) FILTER (WHERE s = 'error') AS error,
               count(*) FILTER (WHERE s = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE s = 'resolved_manually') AS resolved,
               count(*) AS total
          FROM ts
    ), sc AS (
        SELECT count(*) FILTER (WHERE s = 'pending') AS pending,
               count(*) FILTER (WHERE s = 'enqueued') AS enqueued,
               count(*) FILTER (WHERE s = 'in_progress') AS in_progress,
               count(*) FILTER (WHERE s = 'enqueued_for_orchestration') AS efo,
               count(*) FILTER (WHERE s = 'enqueued_as_error_for_orchestration') AS eaefo,
               count(*) FILTER (WHERE s = 'waiting_for_retry') AS waiting_retry,
               count(*) FILTER (WHERE s = 'complete') AS complete,
               count(*) FILTER (WHERE s = 'error') AS error,
               count(*) FILTER (WHERE s = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE s = 'resolved_manually') AS resolved,
               count(*) AS total
          FROM ss
    )
    SELECT tc.pending, tc.initializing, tc.enqueuing_steps, tc.steps_in_process,
           tc.evaluating_results, tc.waiting_deps, tc.waiting_retry, tc.blocked, tc.complete,
           tc.error, tc.cancelled, tc.resolved, tc.total,
           sc.pending, sc.enqueued, sc.in_progress, sc.efo, sc.eaefo, sc.waiting_retry,
           sc.complete, sc.error, sc.cancelled, sc.resolved, sc.total
      FROM tc, sc
$function$;

-- Performance over [p_since, p_now]. Task figures are over the tasks created in the window
-- (their current state); step figures over the step results recorded in it (the audit).
-- Rates are percentages; system_health_score = complete / (complete + error), 1 when none.
CREATE OR REPLACE FUNCTION tasker.get_analytics_metrics_v1(
    p_since timestamp with time zone DEFAULT (now() - '01:00:00'::interval),
    p_now timestamp with time zone DEFAULT now()
)
 RETURNS TABLE(
    active_tasks_count bigint, total_namespaces_count bigint, unique_task_types_count bigint,
    system_health_score numeric, task_throughput bigint, completion_count bigint,
    error_count bigint, completion_rate numeric, error_rate numeric, avg_task_duration numeric,
    avg_step_duration numeric, step_throughput bigint,
    analysis_period_start timestamp with time zone, calculated_at timestamp with time zone
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH w AS (
        SELECT t.task_uuid, t.created_at, t.completed_at,
               COALESCE(tt.to_state, 'pending') AS state
          FROM tasker.tasks t
          LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
         WHERE t.created_at >= p_since AND t.created_at <= p_now
    ), wa AS (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE state = 'complete') AS done,
               count(*) FILTER (WHERE state = 'error') AS failed,
               avg(extract(epoch FROM completed_at - created_at))
                   FILTER (WHERE state = 'complete' AND completed_at IS NOT NULL) AS avg_dur
          FROM w
    ), st AS (
        SELECT count(*) AS n, avg(a.execution_time_ms) / 1000.0 AS avg_dur
          FROM tasker.workflow_step_result_audit a
         WHERE a.recorded_at >= p_since AND a.recorded_at <= p_now
    )
    SELECT (SELECT count(*) FROM tasker.task_transitions tt
             WHERE tt.most_recent
               AND tt.to_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')),
           (SELECT count(*) FROM tasker.task_namespaces),
           (SELECT count(*) FROM tasker.named_tasks),
           CASE WHEN wa.done + wa.failed = 0 THEN 1.0
                ELSE round(wa.done::numeric / (wa.done + wa.failed), 4) END,
           wa.total, wa.done, wa.failed,
           CASE WHEN wa.total = 0 THEN 0.0 ELSE round(wa.done * 100.0 / wa.total, 2) END,
           CASE WHEN wa.total = 0 THEN 0.0 ELSE round(wa.failed * 100.0 / wa.total, 2) END,
           round(COALESCE(wa.avg_dur, 0), 3), round(COALESCE(st.avg_dur, 0), 3), st.n,
           p_since, p_now
      FROM wa, st
$function$;

-- Slowest steps over the results recorded since `p_since`, grouped by (namespace, task,
-- version, step); groups with fewer than `p_min_executions` results are left out.
CREATE OR REPLACE FUNCTION tasker.get_slowest_steps_aggregated_v1(
    p_since timestamp with time zone DEFAULT (now() - '24:00:00'::interval),
    p_limit integer DEFAULT 10, p_min_executions integer DEFAULT 5,
    p_namespace text DEFAULT NULL::text, p_task_name text DEFAULT NULL::text,
    p_version text DEFAULT NULL::text
)
 RETURNS TABLE(
    namespace_name text, task_name text, version text, step_name text,
    average_duration_seconds numeric, max_duration_seconds numeric, execution_count bigint,
    error_count bigint, error_rate numeric, last_executed_at timestamp with time zone
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT tn.name::text, nt.name::text, nt.version::text, ns.name::text,
           round(avg(a.execution_time_ms) / 1000.0, 3),
           round(max(a.execution_time_ms) / 1000.0, 3),
           count(*), count(*) FILTER (WHERE NOT a.success),
           round(count(*) FILTER (WHERE NOT a.success) * 100.0 / count(*), 2),
           max(a.recorded_at)
      FROM tasker.workflow_step_result_audit a
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = a.workflow_step_uuid
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = a.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
     WHERE a.recorded_at >= p_since
       AND (p_namespace IS NULL OR tn.name = p_namespace)
       AND (p_task_name IS NULL OR nt.name = p_task_name)
       AND (p_version IS NULL OR nt.version = p_version)
     GROUP BY tn.name, nt.name, nt.version, ns.name
    HAVING count(*) >= p_min_executions
     ORDER BY avg(a.execution_time_ms) DESC NULLS LAST, ns.name
     LIMIT p_limit
$function$;

-- Slowest task types over the tasks created since `p_since` that finished (complete or
-- error), grouped by (namespace, task, version).
CREATE OR REPLACE FUNCTION tasker.get_slowest_tasks_aggregated_v1(
    p_since timestamp with time zone DEFAULT (now() - '24:00:00'::interval),
    p_limit integer DEFAULT 10, p_min_executions integer DEFAULT 5,
    p_namespace text DEFAULT NULL::text, p_task_name text DEFAULT NULL::text,
    p_version text DEFAULT NULL::text
)
 RETURNS TABLE(
    namespace_name text, task_name text, version text, average_duration_seconds numeric,
    max_duration_seconds numeric, execution_count bigint, average_step_count numeric,
    error_count bigint, error_rate numeric, last_executed_at timestamp with time zone
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH f AS (
        SELECT t.task_uuid, tn.name::text AS ns, nt.name::text AS tname, nt.version::text AS ver,
               extract(epoch FROM t.completed_at - t.created_at) AS dur, t.completed_at,
               tt.to_state = 'error' AS failed,
               (SELECT count(*) FROM tasker.workflow_steps ws
                 WHERE ws.task_uuid = t.task_uuid) AS steps
          FROM tasker.tasks t
          JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE t.created_at >= p_since AND t.completed_at IS NOT NULL
           AND tt.to_state IN ('complete', 'error')
           AND (p_namespace IS NULL OR tn.name = p_namespace)
           AND (p_task_name IS NULL OR nt.name = p_task_name)
           AND (p_version IS NULL OR nt.version = p_version)
    )
    SELECT f.ns, f.tname, f.ver, round(avg(f.dur), 3), round(max(f.dur), 3), count(*),
           round(avg(f.steps), 2), count(*) FILTER (WHERE f.failed),
           round(count(*) FILTER (WHERE f.failed) * 100.0 / count(*), 2), max(f.completed_at)
      FROM f
     GROUP BY f.ns, f.tname, f.ver
    HAVING count(*) >= p_min_executions
     ORDER BY avg(f.dur) DESC, f.tname
     LIMIT p_limit
$function$;

-- Dashboard (web UI) reads.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- How many tasks match the filters, per current state.
CREATE OR REPLACE FUNCTION tasker.ui_task_state_counts_v1(
    p_namespace text, p_name text, p_from timestamp with time zone,
    p_to timestamp with time zone, p_correlation uuid
)
 RETURNS TABLE(state text, tasks bigint)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT COALESCE(tt.to_state, 'pending')::text, count(*)
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
     WHERE (p_from IS NULL OR t.task_uuid >= tasker.uuid_v7_floor_v1(p_from))
       AND (p_to IS NULL OR t.task_uuid < tasker.uuid_v7_floor_v1(p_to))
       AND (p_correlation IS NULL OR t.correlation_id = p_correlation)
       AND (p_namespace IS NULL OR tn.name = p_namespace)
       AND (p_name IS NULL OR nt.name = p_name)
     GROUP BY 1
$function$;

-- One page of tasks matching the filters (NULL = no filter), newest first, after the
-- cursor p_before (a task uuid; NULL for the first page). Each page walks the primary key
-- from the cursor, so page 1,000 costs what page 1 costs.
CREATE OR REPLACE FUNCTION tasker.ui_list_tasks_v1(
    p_namespace text, p_name text, p_state text, p_from timestamp with time zone,
    p_to timestamp with time zone, p_correlation uuid, p_before uuid, p_limit integer
)
 RETURNS TABLE(task_uuid uuid)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT t.task_uuid
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
     WHERE (p_before IS NULL OR t.task_uuid < p_before)
       AND (p_from IS NULL OR t.task_uuid >= tasker.uuid_v7_floor_v1(p_from))
       AND (p_to IS NULL OR t.task_uuid < tasker.uuid_v7_floor_v1(p_to))
       AND (p_correlation IS NULL OR t.correlation_id = p_correlation)
       AND (p_namespace IS NULL OR tn.name = p_namespace)
       AND (p_name IS NULL OR nt.name = p_name)
       AND (p_state IS NULL OR COALESCE(tt.to_state, 'pending') = p_state)
     ORDER BY t.task_uuid DESC
     LIMIT p_limit
$function$;

-- A task's current state, since when, its namespace, its staleness threshold in that state
-- (the template's lifecycle overrides the given defaults) and its open DLQ entry.
CREATE OR REPLACE FUNCTION tasker.ui_task_facts_v1(
    p_task uuid, p_deps_minutes numeric, p_retry_minutes numeric, p_in_process_minutes numeric,
    p_max_lifetime_hours numeric
)
 RETURNS TABLE(
    state text, state_since timestamp with time zone, namespace text,
    task_created_at timestamp with time zone, threshold_minutes numeric,
    max_lifetime_minutes numeric, watched boolean, dlq_entry_uuid uuid, dlq_reason text
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT COALESCE(tt.to_state, 'pending')::text, COALESCE(tt.created_at, t.created_at),
           tn.name::text, t.created_at,
           tasker.calculate_staleness_threshold_v1(COALESCE(tt.to_state, 'pending'),
               nt.configuration, p_deps_minutes, p_retry_minutes, p_in_process_minutes),
           COALESCE(tasker._lifecycle_number_v1(nt.configuration, 'max_duration_minutes'),
                    p_max_lifetime_hours * 60),
           COALESCE(tt.to_state, 'pending') IN ('waiting_for_dependencies',
                                                'waiting_for_retry', 'steps_in_process'),
           d.dlq_entry_uuid, d.dlq_reason::text
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
      LEFT JOIN tasker.tasks_dlq d
             ON d.task_uuid = t.task_uuid AND d.resolution_status = 'pending'
     WHERE t.task_uuid = p_task
$function$;

-- Per step of a task: since when it is in its current state, its claim lease and the
-- error message of its last failure (the readiness function gives the rest).
CREATE OR REPLACE FUNCTION tasker.ui_step_facts_v1(p_task uuid)
 RETURNS TABLE(
    workflow_step_uuid uuid, state_since timestamp with time zone,
    claimed_until timestamp with time zone, retryable boolean, error_message text,
    error_retryable boolean
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT ws.workflow_step_uuid, COALESCE(st.created_at, ws.created_at), ws.claimed_until,
           ws.retryable,
           CASE WHEN jsonb_typeof(ws.results -> 'error') = 'object'
                THEN left(ws.results -> 'error' ->> 'message', 500) END,
           CASE WHEN jsonb_typeof(ws.results -> 'error') = 'object'
                THEN (ws.results -> 'error' ->> 'retryable')::boolean END
      FROM tasker.workflow_steps ws
      LEFT JOIN LATERAL (SELECT x.created_at FROM tasker.workflow_step_transitions x
                          WHERE x.workflow_step_uuid = ws.workflow_step_uuid
                          ORDER BY x.sort_key DESC LIMIT 1) st ON true
     WHERE ws.task_uuid = p_task
$function$;

-- Every transition of one step, oldest first: its attempts and retry timeline.
CREATE OR REPLACE FUNCTION tasker.ui_step_transitions_v1(p_task uuid, p_step uuid)
 RETURNS TABLE(
    from_state text, to_state text, created_at timestamp with time zone, metadata jsonb
)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT st.from_state::text, st.to_state::text, st.created_at, st.metadata
      FROM tasker.workflow_step_transitions st
      JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid
     WHERE st.workflow_step_uuid = p_step AND ws.task_uuid = p_task
     ORDER BY st.sort_key
$function$;

-- Worker queues (worker_<namespace>_queue; one, or all when p_queue is NULL): messages
-- waiting (visible), in flight (claimed, hidden), the age of the oldest waiting message and
-- of the oldest one no worker ever read, and the steps of the namespace claimed in the last
-- p_window_seconds (with the latest claim).
CREATE OR REPLACE FUNCTION tasker.ui_queue_activity_v1(p_queue text, p_window_seconds numeric)
 RETURNS TABLE(
    queue_name text, namespace text, waiting bigint, in_flight bigint,
    oldest_waiting_seconds double precision, oldest_unread_seconds double precision,
    claims bigint, last_claim_at timestamp with time zone
)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    q record;
    v_since uuid := tasker.uuid_v7_floor_v1(
        now() - make_interval(secs => p_window_seconds::double precision));
    v_ns text[];
    v_claims bigint[];
    v_last timestamptz[];
BEGIN
    SELECT array_agg(c.ns), array_agg(c.n), array_agg(c.last_at) INTO v_ns, v_claims, v_last
      FROM (SELECT tn.name::text AS ns, count(*) AS n, max(st.created_at) AS last_at
              FROM tasker.workflow_step_transitions st
              JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid
              JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
              JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
              JOIN tasker.task_namespaces tn
                ON tn.task_namespace_uuid = nt.task_namespace_uuid
             WHERE st.workflow_step_transition_uuid >= v_since
               AND st.to_state = 'in_progress'
               AND (p_queue IS NULL OR 'worker_' || tn.name || '_queue' = p_queue)
             GROUP BY tn.name) c;
    FOR q IN SELECT m.queue_name FROM pgmq.meta m
              WHERE m.queue_name LIKE 'worker\_%\_queue'
                AND (p_queue IS NULL OR m.queue_name = p_queue)
              ORDER BY m.queue_name LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %1$L::text, x.ns, x.waiting, x.in_flight, x.oldest, x.unread,
                    COALESCE(c.n, 0)::bigint, c.last_at
               FROM (SELECT substr(%1$L, 8, length(%1$L) - 13) AS ns,
                            count(*) FILTER (WHERE vt <= clock_timestamp()) AS waiting,
                            count(*) FILTER (WHERE vt > clock_timestamp()) AS in_flight,
                            COALESCE(extract(epoch FROM clock_timestamp() - min(enqueued_at)
                                     FILTER (WHERE vt <= clock_timestamp())), 0)::float8
                                AS oldest,
                            COALESCE(extract(epoch FROM clock_timestamp() - min(enqueued_at)
                                     FILTER (WHERE vt <= clock_timestamp() AND read_ct = 0)),
                                     0)::float8 AS unread
                       FROM pgmq.%2$I) x
               LEFT JOIN unnest($1, $2, $3) AS c(ns, n, last_at) ON c.ns = x.ns',
            q.queue_name, pgmq.format_table_name(q.queue_name, 'q'))
        USING COALESCE(v_ns, '{}'), COALESCE(v_claims, '{}'), COALESCE(v_last, '{}');
    END LOOP;
END
$function$;

-- Per minute of the last p_minutes: tasks completed and failed (transitions to complete /
-- error), step results recorded, failed ones, and step execution time percentiles.
CREATE OR REPLACE FUNCTION tasker.ui_throughput_v1(p_minutes integer)
 RETURNS TABLE(
    minute timestamp with time zone, tasks_completed bigint, tasks_failed bigint, steps bigint,
    steps_failed bigint, p50_ms double precision, p95_ms double precision,
    p99_ms double precision
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH bounds AS (
        SELECT date_trunc('minute', now()) - make_interval(mins => p_minutes - 1) AS since
    ), minutes AS (
        SELECT generate_series(b.since, date_trunc('minute', now()), interval '1 minute') AS m
          FROM bounds b
    ), tasks AS (
        SELECT date_trunc('minute', tt.created_at) AS m,
               count(*) FILTER (WHERE tt.to_state = 'complete') AS done,
               count(*) FILTER (WHERE tt.to_state = 'error') AS failed
          FROM tasker.task_transitions tt, bounds b
         WHERE tt.task_transition_uuid >= tasker.uuid_v7_floor_v1(b.since)
           AND tt.to_state IN ('complete', 'error')
         GROUP BY 1
    ), steps AS (
        SELECT date_trunc('minute', a.recorded_at) AS m, count(*) AS n,
               count(*) FILTER (WHERE NOT a.success) AS failed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY a.execution_time_ms) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY a.execution_time_ms) AS p95,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY a.execution_time_ms) AS p99
          FROM tasker.workflow_step_result_audit a, bounds b
         WHERE a.workflow_step_result_audit_uuid >= tasker.uuid_v7_floor_v1(b.since)
         GROUP BY 1
    )
    SELECT mi.m, COALESCE(t.done, 0), COALESCE(t.failed, 0), COALESCE(s.n, 0),
           COALESCE(s.failed, 0), s.p50, s.p95, s.p99
      FROM minutes mi
      LEFT JOIN tasks t ON t.m = mi.m
      LEFT JOIN steps s ON s.m = mi.m
     ORDER BY mi.m
$function$;

-- Operations: staleness detection, DLQ investigations, analytics (SPEC 3.2, 6.4, 6.5, 7.1).
-- Every time-dependent function takes `p_now` (default now()) so tests can control time.

-- A numeric lifecycle setting of a template configuration, or NULL when unset/not a number.
CREATE FUNCTION tasker._lifecycle_number_v1(p_config jsonb, p_key text) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_config -> 'lifecycle' -> p_key) = 'number'
                THEN (p_config -> 'lifecycle' ->> p_key)::numeric END
$$;

-- Minutes a task may stay in `p_state`: the template's lifecycle override, else the default;
-- 1440 for states the detector does not watch.
CREATE FUNCTION tasker.calculate_staleness_threshold_v1(
    p_state text, p_template_config jsonb, p_deps_minutes numeric DEFAULT 60,
    p_retry_minutes numeric DEFAULT 30, p_in_process_minutes numeric DEFAULT 30)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_state
        WHEN 'waiting_for_dependencies' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_waiting_for_dependencies_minutes'), p_deps_minutes)
        WHEN 'waiting_for_retry' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_waiting_for_retry_minutes'), p_retry_minutes)
        WHEN 'steps_in_process' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_steps_in_process_minutes'), p_in_process_minutes)
        ELSE 1440
    END
$$;

-- Tasks the detector should act on: in a watched state with no pending DLQ entry, and in
-- that state past its threshold or older than the maximum lifetime (template
-- `max_duration_minutes` overrides it). `move_to_dlq` / `transition_to_error` combine the
-- settings with the template's `staleness_action`, `auto_dlq_on_timeout`,
-- `auto_fail_on_timeout`; tasks for which both are false are left alone.
CREATE FUNCTION tasker.get_stale_tasks_for_dlq_v1(
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_max_lifetime_hours numeric DEFAULT 24,
    p_batch integer DEFAULT 100, p_now timestamptz DEFAULT now(),
    p_auto_error boolean DEFAULT true, p_auto_dlq boolean DEFAULT true)
RETURNS TABLE (
    task_uuid uuid, namespace_name text, task_name text, version text, current_state text,
    state_since timestamptz, time_in_state_minutes numeric, task_age_minutes numeric,
    threshold_minutes numeric, max_lifetime_minutes numeric, stale_reason text,
    move_to_dlq boolean, transition_to_error boolean, priority integer)
LANGUAGE sql STABLE AS $$
    WITH cur AS (
        SELECT tt.task_uuid, tt.to_state::text AS state, tt.created_at AS since
          FROM tasker.task_transitions tt
         WHERE tt.most_recent
           AND tt.to_state IN ('waiting_for_dependencies', 'waiting_for_retry',
                               'steps_in_process')
    ), c AS (
        SELECT cur.task_uuid, tn.name::text AS ns, nt.name::text AS tname,
               nt.version::text AS ver, cur.state, cur.since, t.priority,
               extract(epoch FROM p_now - cur.since) / 60.0 AS in_state,
               extract(epoch FROM p_now - t.created_at) / 60.0 AS age,
               tasker.calculate_staleness_threshold_v1(cur.state, nt.configuration,
                   p_deps_minutes, p_retry_minutes, p_in_process_minutes) AS threshold,
               COALESCE(tasker._lifecycle_number_v1(nt.configuration, 'max_duration_minutes'),
                        p_max_lifetime_hours * 60) AS lifetime,
               COALESCE(nt.configuration -> 'lifecycle' ->> 'staleness_action', 'dlq') AS act,
               (nt.configuration -> 'lifecycle' ->> 'auto_dlq_on_timeout')::boolean AS lc_dlq,
               (nt.configuration -> 'lifecycle' ->> 'auto_fail_on_timeout')::boolean AS lc_err
          FROM cur
          JOIN tasker.tasks t ON t.task_uuid = cur.task_uuid
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE NOT EXISTS (SELECT 1 FROM tasker.tasks_dlq d
                            WHERE d.task_uuid = cur.task_uuid
                              AND d.resolution_status = 'pending')
    ), d AS (
        SELECT c.*,
               p_auto_dlq AND COALESCE(c.lc_dlq, c.act = 'dlq') AS do_dlq,
               p_auto_error AND COALESCE(c.lc_err, c.act IN ('dlq', 'error')) AS do_error
          FROM c
         WHERE c.in_state >= c.threshold OR c.age >= c.lifetime
    )
    SELECT d.task_uuid, d.ns, d.tname, d.ver, d.state, d.since, round(d.in_state, 2),
           round(d.age, 2), d.threshold, d.lifetime,
           CASE WHEN d.in_state >= d.threshold THEN 'state_threshold' ELSE 'max_lifetime' END,
           d.do_dlq, d.do_error, d.priority
      FROM d
     WHERE d.do_dlq OR d.do_error
     ORDER BY d.since, d.task_uuid
     LIMIT p_batch
$$;

-- Open a DLQ entry with a snapshot of the task; NULL when the task already has a pending one.
CREATE FUNCTION tasker.create_dlq_entry_v1(
    p_task uuid, p_namespace text, p_task_name text, p_state text,
    p_minutes_in_state numeric, p_threshold_minutes numeric,
    p_reason text DEFAULT 'staleness_timeout', p_metadata jsonb DEFAULT '{}',
    p_now timestamptz DEFAULT now())
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_entry uuid;
BEGIN
    INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, dlq_timestamp,
                                  task_snapshot, metadata)
    VALUES (p_task, p_state, p_reason::tasker.dlq_reason, p_now,
            COALESCE(tasker.task_snapshot_v1(p_task), '{}') || jsonb_build_object(
                'task_uuid', p_task, 'namespace', p_namespace, 'task_name', p_task_name,
                'current_state', p_state, 'time_in_state_minutes', p_minutes_in_state,
                'threshold_minutes', p_threshold_minutes, 'snapshot_timestamp', p_now),
            jsonb_build_object('detection_method', 'automatic_staleness',
                               'time_in_state_minutes', p_minutes_in_state,
                               'threshold_minutes', p_threshold_minutes)
            || COALESCE(p_metadata, '{}'))
    ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING
    RETURNING dlq_entry_uuid INTO v_entry;
    RETURN v_entry;
END
$$;

-- Compare-and-swap a stale task from `p_state` to error; false when it is no longer there.
CREATE FUNCTION tasker.transition_stale_task_to_error_v1(
    p_task uuid, p_state text, p_namespace text, p_task_name text,
    p_processor uuid DEFAULT NULL, p_metadata jsonb DEFAULT '{}')
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN tasker.transition_task_v1(
        p_task, p_state, 'staleness_timeout', p_processor,
        jsonb_build_object('reason', 'staleness_timeout', 'namespace', p_namespace,
                           'task_name', p_task_name) || COALESCE(p_metadata, '{}'))
        IS NOT NULL;
END
$$;

-- One detector pass. Dry run reports what would happen and changes nothing. Otherwise each
-- candidate is locked with SKIP LOCKED (a task another replica holds is left to it) and
-- re-checked under the lock, so no task is processed twice.
CREATE FUNCTION tasker.detect_and_transition_stale_tasks_v1(
    p_dry_run boolean DEFAULT true, p_batch integer DEFAULT 100,
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_max_lifetime_hours numeric DEFAULT 24,
    p_processor uuid DEFAULT NULL, p_auto_error boolean DEFAULT true,
    p_auto_dlq boolean DEFAULT true, p_now timestamptz DEFAULT now())
RETURNS TABLE (
    task_uuid uuid, namespace_name text, task_name text, current_state text,
    time_in_state_minutes numeric, task_age_minutes numeric, threshold_minutes numeric,
    stale_reason text, action_taken text, dlq_entry_uuid uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v record;
    v_entry uuid;
    v_moved boolean;
BEGIN
    FOR v IN SELECT * FROM tasker.get_stale_tasks_for_dlq_v1(
                 p_deps_minutes, p_retry_minutes, p_in_process_minutes, p_max_lifetime_hours,
                 p_batch, p_now, p_auto_error, p_auto_dlq) LOOP
        task_uuid := v.task_uuid;
        namespace_name := v.namespace_name;
        task_name := v.task_name;
        current_state := v.current_state;
        time_in_state_minutes := v.time_in_state_minutes;
        task_age_minutes := v.task_age_minutes;
        threshold_minutes := v.threshold_minutes;
        stale_reason := v.stale_reason;
        dlq_entry_uuid := NULL;
        IF p_dry_run THEN
            action_taken := CASE
                WHEN v.move_to_dlq AND v.transition_to_error
                    THEN 'would_transition_to_dlq_and_error'
                WHEN v.move_to_dlq THEN 'would_move_to_dlq_only'
                ELSE 'would_transition_to_error_only' END;
            RETURN NEXT;
            CONTINUE;
        END IF;
        PERFORM 1 FROM tasker.tasks t WHERE t.task_uuid = v.task_uuid
            FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        -- Fresh look under the lock: same state since the same moment, still no open entry.
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM tasker.task_transitions tt
             WHERE tt.task_uuid = v.task_uuid AND tt.most_recent
               AND tt.to_state = v.current_state AND tt.created_at = v.state_since);
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM tasker.tasks_dlq d
             WHERE d.task_uuid = v.task_uuid AND d.resolution_status = 'pending');
        IF v.move_to_dlq THEN
            v_entry := tasker.create_dlq_entry_v1(
                v.task_uuid, v.namespace_name, v.task_name, v.current_state,
                v.time_in_state_minutes, v.threshold_minutes, 'staleness_timeout',
                jsonb_build_object('stale_reason', v.stale_reason,
                                   'task_age_minutes', v.task_age_minutes,
                                   'max_lifetime_minutes', v.max_lifetime_minutes,
                                   'processor_uuid', p_processor),
                p_now);
            dlq_entry_uuid := v_entry;
        END IF;
        v_moved := false;
        IF v.transition_to_error THEN
            v_moved := tasker.transition_stale_task_to_error_v1(
                v.task_uuid, v.current_state, v.namespace_name, v.task_name, p_processor,
                jsonb_build_object('stale_reason', v.stale_reason,
                                   'time_in_state_minutes', v.time_in_state_minutes,
                                   'threshold_minutes', v.threshold_minutes,
                                   'dlq_entry_uuid', v_entry));
        END IF;
        action_taken := CASE
            WHEN v_entry IS NOT NULL AND v_moved THEN 'transitioned_to_dlq_and_error'
            WHEN v_entry IS NOT NULL THEN 'moved_to_dlq_only'
            WHEN v_moved THEN 'transitioned_to_error_only'
            ELSE 'transition_failed' END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Tasks sitting in an active state (initializing, enqueuing_steps, steps_in_process,
-- evaluating_results) for longer than `p_timeout_minutes`.
CREATE FUNCTION tasker.find_stuck_tasks_v1(
    p_timeout_minutes numeric DEFAULT 10, p_now timestamptz DEFAULT now())
RETURNS TABLE (task_uuid uuid, namespace_name text, task_name text, current_state text,
               minutes_in_state numeric, processor_uuid uuid)
LANGUAGE sql STABLE AS $$
    SELECT tt.task_uuid, tn.name::text, nt.name::text, tt.to_state::text,
           round(extract(epoch FROM p_now - tt.created_at) / 60.0, 2), tt.processor_uuid
      FROM tasker.task_transitions tt
      JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
     WHERE tt.most_recent
       AND tt.to_state IN ('initializing', 'enqueuing_steps', 'steps_in_process',
                           'evaluating_results')
       AND tt.created_at <= p_now - make_interval(secs => p_timeout_minutes * 60)
     ORDER BY tt.created_at
$$;

-- ---------------------------------------------------------------------------------------
-- DLQ investigations

-- Open a DLQ entry by hand (any reason); raises TK404 for an unknown task and 23505 when
-- the task already has a pending entry.
CREATE FUNCTION tasker.create_manual_dlq_entry_v1(
    p_task uuid, p_reason text DEFAULT 'manual_dlq', p_notes text DEFAULT NULL,
    p_created_by text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_entry uuid;
BEGIN
    PERFORM 1 FROM tasker.tasks WHERE task_uuid = p_task;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'TK404';
    END IF;
    v_state := COALESCE(tasker.get_current_task_state_v1(p_task), 'pending');
    INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, task_snapshot,
                                  resolution_notes, metadata)
    VALUES (p_task, v_state, p_reason::tasker.dlq_reason, tasker.task_snapshot_v1(p_task),
            p_notes, jsonb_build_object('detection_method', 'manual', 'created_by', p_created_by))
    RETURNING dlq_entry_uuid INTO v_entry;
    RETURN v_entry;
END
$$;

-- Record an investigation's progress; NULL arguments leave fields unchanged. Leaving
-- `pending` stamps resolution_timestamp; each update is appended to metadata.history.
CREATE FUNCTION tasker.update_dlq_investigation_v1(
    p_entry uuid, p_status text DEFAULT NULL, p_notes text DEFAULT NULL,
    p_resolved_by text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
    p_now timestamptz DEFAULT now())
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_status tasker.dlq_resolution_status := p_status::tasker.dlq_resolution_status;
BEGIN
    UPDATE tasker.tasks_dlq d
       SET resolution_status = COALESCE(v_status, d.resolution_status),
           resolution_notes = COALESCE(p_notes, d.resolution_notes),
           resolved_by = COALESCE(p_resolved_by, d.resolved_by),
           resolution_timestamp = CASE
               WHEN COALESCE(v_status, d.resolution_status) = 'pending' THEN NULL
               WHEN d.resolution_status = 'pending' THEN p_now
               ELSE COALESCE(d.resolution_timestamp, p_now) END,
           metadata = (d.metadata || COALESCE(p_metadata, '{}')) || jsonb_build_object(
               'history', COALESCE(d.metadata -> 'history', '[]'::jsonb) || jsonb_build_array(
                   jsonb_strip_nulls(jsonb_build_object(
                       'at', p_now, 'from_status', d.resolution_status,
                       'to_status', COALESCE(v_status, d.resolution_status),
                       'by', p_resolved_by, 'notes', p_notes))))
     WHERE d.dlq_entry_uuid = p_entry;
    RETURN FOUND;
END
$$;

CREATE VIEW tasker.v_dlq_dashboard AS
    SELECT d.dlq_reason::text AS dlq_reason,
           count(*) AS total_entries,
           count(*) FILTER (WHERE d.resolution_status = 'pending') AS pending,
           count(*) FILTER (WHERE d.resolution_status = 'manually_resolved') AS manually_resolved,
           count(*) FILTER (WHERE d.resolution_status = 'permanently_failed')
               AS permanent_failures,
           count(*) FILTER (WHERE d.resolution_status = 'cancelled') AS cancelled,
           min(d.dlq_timestamp) AS oldest_entry,
           max(d.dlq_timestamp) AS newest_entry,
           round(avg(extract(epoch FROM d.resolution_timestamp - d.dlq_timestamp) / 60.0)
                 FILTER (WHERE d.resolution_timestamp IS NOT NULL), 2)
               AS avg_resolution_time_minutes
      FROM tasker.tasks_dlq d
     GROUP BY d.dlq_reason;

-- Pending entries, most urgent first: a base score by reason plus minutes in the DLQ.
CREATE VIEW tasker.v_dlq_investigation_queue AS
    SELECT q.*, q.base_score + q.minutes_in_dlq AS priority_score
      FROM (
        SELECT d.dlq_entry_uuid, d.task_uuid, tn.name::text AS namespace_name,
               nt.name::text AS task_name, d.original_state::text AS original_state,
               d.dlq_reason::text AS dlq_reason, d.dlq_timestamp, d.resolution_notes,
               round(extract(epoch FROM now() - d.dlq_timestamp) / 60.0, 2) AS minutes_in_dlq,
               CASE d.dlq_reason
                   WHEN 'dependency_cycle_detected' THEN 1000
                   WHEN 'max_retries_exceeded' THEN 500
                   WHEN 'staleness_timeout' THEN 100
                   WHEN 'worker_unavailable' THEN 50
                   ELSE 10 END AS base_score
          FROM tasker.tasks_dlq d
          JOIN tasker.tasks t ON t.task_uuid = d.task_uuid
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE d.resolution_status = 'pending') q;

-- Every non-terminal task with its staleness threshold and health: stale (at or past the
-- threshold), warning (at 80% of it) or healthy.
CREATE FUNCTION tasker.get_task_staleness_monitoring_v1(
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_now timestamptz DEFAULT now())
RETURNS TABLE (task_uuid uuid, namespace_name text, task_name text, current_state text,
               time_in_state_minutes numeric, task_age_minutes numeric,
               staleness_threshold_minutes numeric, health_status text, priority integer)
LANGUAGE sql STABLE AS $$
    WITH m AS (
        SELECT tt.task_uuid, tn.name::text AS ns, nt.name::text AS tname,
               tt.to_state::text AS state, t.priority,
               extract(epoch FROM p_now - tt.created_at) / 60.0 AS in_state,
               extract(epoch FROM p_now - t.created_at) / 60.0 AS age,
               tasker.calculate_staleness_threshold_v1(tt.to_state, nt.configuration,
                   p_deps_minutes, p_retry_minutes, p_in_process_minutes) AS threshold
          FROM tasker.task_transitions tt
          JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
          JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
          JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE tt.most_recent
           AND tt.to_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually')
    )
    SELECT m.task_uuid, m.ns, m.tname, m.state, round(m.in_state, 2), round(m.age, 2),
           m.threshold,
           CASE WHEN m.in_state >= m.threshold THEN 'stale'
                WHEN m.in_state >= m.threshold * 0.8 THEN 'warning'
                ELSE 'healthy' END,
           m.priority
      FROM m
     ORDER BY m.in_state / NULLIF(m.threshold, 0) DESC NULLS LAST, m.task_uuid
$$;

CREATE VIEW tasker.v_task_staleness_monitoring AS
    SELECT * FROM tasker.get_task_staleness_monitoring_v1();

-- ---------------------------------------------------------------------------------------
-- Analytics

-- Tasks per task state (12) + total, steps per step state (10) + total.
CREATE FUNCTION tasker.get_system_health_counts_v1()
RETURNS TABLE (
    pending_tasks bigint, initializing_tasks bigint, enqueuing_steps_tasks bigint,
    steps_in_process_tasks bigint, evaluating_results_tasks bigint,
    waiting_for_dependencies_tasks bigint, waiting_for_retry_tasks bigint,
    blocked_by_failures_tasks bigint, complete_tasks bigint, error_tasks bigint,
    cancelled_tasks bigint, resolved_manually_tasks bigint, total_tasks bigint,
    pending_steps bigint, enqueued_steps bigint, in_progress_steps bigint,
    enqueued_for_orchestration_steps bigint, enqueued_as_error_for_orchestration_steps bigint,
    waiting_for_retry_steps bigint, complete_steps bigint, error_steps bigint,
    cancelled_steps bigint, resolved_manually_steps bigint, total_steps bigint)
LANGUAGE sql STABLE AS $$
    WITH ts AS (
        SELECT COALESCE(tt.to_state, 'pending') AS s
          FROM tasker.tasks t
          LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
    ), ss AS (
        SELECT COALESCE(st.to_state, 'pending') AS s
          FROM tasker.workflow_steps ws
          LEFT JOIN tasker.workflow_step_transitions st
                 ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
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
$$;

-- Performance over [p_since, p_now]. Task figures are over the tasks created in the window
-- (their current state); step figures over the step results recorded in it (the audit).
-- Rates are percentages; system_health_score = complete / (complete + error), 1 when none.
CREATE FUNCTION tasker.get_analytics_metrics_v1(
    p_since timestamptz DEFAULT now() - interval '1 hour', p_now timestamptz DEFAULT now())
RETURNS TABLE (
    active_tasks_count bigint, total_namespaces_count bigint, unique_task_types_count bigint,
    system_health_score numeric, task_throughput bigint, completion_count bigint,
    error_count bigint, completion_rate numeric, error_rate numeric,
    avg_task_duration numeric, avg_step_duration numeric, step_throughput bigint,
    analysis_period_start timestamptz, calculated_at timestamptz)
LANGUAGE sql STABLE AS $$
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
$$;

-- Slowest steps over the results recorded since `p_since`, grouped by (namespace, task,
-- version, step); groups with fewer than `p_min_executions` results are left out.
CREATE FUNCTION tasker.get_slowest_steps_aggregated_v1(
    p_since timestamptz DEFAULT now() - interval '24 hours', p_limit integer DEFAULT 10,
    p_min_executions integer DEFAULT 5, p_namespace text DEFAULT NULL,
    p_task_name text DEFAULT NULL, p_version text DEFAULT NULL)
RETURNS TABLE (
    namespace_name text, task_name text, version text, step_name text,
    average_duration_seconds numeric, max_duration_seconds numeric, execution_count bigint,
    error_count bigint, error_rate numeric, last_executed_at timestamptz)
LANGUAGE sql STABLE AS $$
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
$$;

-- Slowest task types over the tasks created since `p_since` that finished (complete or
-- error), grouped by (namespace, task, version).
CREATE FUNCTION tasker.get_slowest_tasks_aggregated_v1(
    p_since timestamptz DEFAULT now() - interval '24 hours', p_limit integer DEFAULT 10,
    p_min_executions integer DEFAULT 5, p_namespace text DEFAULT NULL,
    p_task_name text DEFAULT NULL, p_version text DEFAULT NULL)
RETURNS TABLE (
    namespace_name text, task_name text, version text, average_duration_seconds numeric,
    max_duration_seconds numeric, execution_count bigint, average_step_count numeric,
    error_count bigint, error_rate numeric, last_executed_at timestamptz)
LANGUAGE sql STABLE AS $$
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
$$;

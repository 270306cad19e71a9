-- Operations: staleness detection and the dead-letter queue (DLQ) with its views, stuck
-- tasks and stalled checkpoints.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- A numeric lifecycle setting of a template configuration, or NULL when unset/not a number.
CREATE OR REPLACE FUNCTION tasker._lifecycle_number_v1(p_config jsonb, p_key text)
 RETURNS numeric
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE WHEN jsonb_typeof(p_config -> 'lifecycle' -> p_key) = 'number'
                THEN (p_config -> 'lifecycle' ->> p_key)::numeric END
$function$;

-- Minutes a task may stay in `p_state`: the template's lifecycle override, else the default;
-- 1440 for states the detector does not watch.
CREATE OR REPLACE FUNCTION tasker.calculate_staleness_threshold_v1(
    p_state text, p_template_config jsonb, p_deps_minutes numeric DEFAULT 60,
    p_retry_minutes numeric DEFAULT 30, p_in_process_minutes numeric DEFAULT 30
)
 RETURNS numeric
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE p_state
        WHEN 'waiting_for_dependencies' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_waiting_for_dependencies_minutes'), p_deps_minutes)
        WHEN 'waiting_for_retry' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_waiting_for_retry_minutes'), p_retry_minutes)
        WHEN 'steps_in_process' THEN COALESCE(tasker._lifecycle_number_v1(
            p_template_config, 'max_steps_in_process_minutes'), p_in_process_minutes)
        ELSE 1440
    END
$function$;

-- Tasks the detector should act on: in a watched state with no pending DLQ entry, and in
-- that state past its threshold or older than the maximum lifetime (template
-- `max_duration_minutes` overrides it). `move_to_dlq` / `transition_to_error` combine the
-- settings with the template's `staleness_action`, `auto_dlq_on_timeout`,
-- `auto_fail_on_timeout`; tasks for which both are false are left alone.
CREATE OR REPLACE FUNCTION tasker.get_stale_tasks_for_dlq_v1(
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_max_lifetime_hours numeric DEFAULT 24,
    p_batch integer DEFAULT 100, p_now timestamp with time zone DEFAULT now(),
    p_auto_error boolean DEFAULT true, p_auto_dlq boolean DEFAULT true
)
 RETURNS TABLE(
    task_uuid uuid, namespace_name text, task_name text, version text, current_state text,
    state_since timestamp with time zone, time_in_state_minutes numeric,
    task_age_minutes numeric, threshold_minutes numeric, max_lifetime_minutes numeric,
    stale_reason text, move_to_dlq boolean, transition_to_error boolean, priority integer
)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$;

-- Open a DLQ entry with a snapshot of the task; NULL when the task already has a pending one.
CREATE OR REPLACE FUNCTION tasker.create_dlq_entry_v1(
    p_task uuid, p_namespace text, p_task_name text, p_state text, p_minutes_in_state numeric,
    p_threshold_minutes numeric, p_reason text DEFAULT 'staleness_timeout'::text,
    p_metadata jsonb DEFAULT '{}'::jsonb, p_now timestamp with time zone DEFAULT now()
)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- Compare-and-swap a stale task from `p_state` to error; false when it is no longer there.
CREATE OR REPLACE FUNCTION tasker.transition_stale_task_to_error_v1(
    p_task uuid, p_state text, p_namespace text, p_task_name text,
    p_processor uuid DEFAULT NULL::uuid, p_metadata jsonb DEFAULT '{}'::jsonb
)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
    RETURN tasker.transition_task_v1(
        p_task, p_state, 'staleness_timeout', p_processor,
        jsonb_build_object('reason', 'staleness_timeout', 'namespace', p_namespace,
                           'task_name', p_task_name) || COALESCE(p_metadata, '{}'))
        IS NOT NULL;
END
$function$;

-- One detector pass. Dry run reports what would happen and changes nothing. Otherwise each
-- candidate is locked with SKIP LOCKED (a task another replica holds is left to it) and
-- re-checked under the lock, so no task is processed twice.
CREATE OR REPLACE FUNCTION tasker.detect_and_transition_stale_tasks_v1(
    p_dry_run boolean DEFAULT true, p_batch integer DEFAULT 100,
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_max_lifetime_hours numeric DEFAULT 24,
    p_processor uuid DEFAULT NULL::uuid, p_auto_error boolean DEFAULT true,
    p_auto_dlq boolean DEFAULT true, p_now timestamp with time zone DEFAULT now()
)
 RETURNS TABLE(
    task_uuid uuid, namespace_name text, task_name text, current_state text,
    time_in_state_minutes numeric, task_age_minutes numeric, threshold_minutes numeric,
    stale_reason text, action_taken text, dlq_entry_uuid uuid
)
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- Tasks sitting in an active state (initializing, enqueuing_steps, steps_in_process,
-- evaluating_results) for longer than `p_timeout_minutes`.
CREATE OR REPLACE FUNCTION tasker.find_stuck_tasks_v1(
    p_timeout_minutes numeric DEFAULT 10, p_now timestamp with time zone DEFAULT now()
)
 RETURNS TABLE(
    task_uuid uuid, namespace_name text, task_name text, current_state text,
    minutes_in_state numeric, processor_uuid uuid
)
 LANGUAGE sql
 STABLE
AS $function$
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
$function$;

-- Batch worker steps in progress that made no progress for p_stall_seconds: their last
-- checkpoint (or, without one since the current attempt began, the attempt's start) is
-- older than that. Oldest first.
CREATE OR REPLACE FUNCTION tasker.find_stalled_checkpoints_v1(
    p_stall_seconds numeric, p_limit integer DEFAULT 100,
    p_now timestamp with time zone DEFAULT NULL::timestamp with time zone
)
 RETURNS TABLE(
    step_uuid uuid, task_uuid uuid, step_name text, attempts integer, cursor jsonb,
    items_processed bigint, last_progress_at timestamp with time zone,
    stalled_seconds double precision
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH running AS (
        SELECT ws.workflow_step_uuid, ws.task_uuid, ws.named_step_uuid, ws.attempts,
               ws.checkpoint,
               GREATEST(ws.last_attempted_at,
                        (ws.checkpoint ->> 'timestamp')::timestamptz) AS progress_at
          FROM tasker.workflow_steps ws
         WHERE ws.in_process AND ws.inputs ? 'batch_metadata'
           AND ws.current_state = 'in_progress'
    )
    SELECT r.workflow_step_uuid, r.task_uuid, ns.name::text, COALESCE(r.attempts, 0),
           r.checkpoint -> 'cursor', (r.checkpoint ->> 'items_processed')::bigint,
           r.progress_at,
           extract(epoch FROM COALESCE(p_now, clock_timestamp()) - r.progress_at)::float8
      FROM running r
      JOIN tasker.named_steps ns ON ns.named_step_uuid = r.named_step_uuid
     WHERE r.progress_at < COALESCE(p_now, clock_timestamp())
                           - make_interval(secs => p_stall_seconds::double precision)
     ORDER BY r.progress_at
     LIMIT p_limit
$function$;

-- Open a DLQ entry by hand (any reason); raises TK404 for an unknown task and 23505 when
-- the task already has a pending entry.
CREATE OR REPLACE FUNCTION tasker.create_manual_dlq_entry_v1(
    p_task uuid, p_reason text DEFAULT 'manual_dlq'::text, p_notes text DEFAULT NULL::text,
    p_created_by text DEFAULT NULL::text
)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
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
$function$;

-- Record an investigation's progress; NULL arguments leave fields unchanged. Leaving
-- `pending` stamps resolution_timestamp; each update is appended to metadata.history.
CREATE OR REPLACE FUNCTION tasker.update_dlq_investigation_v1(
    p_entry uuid, p_status text DEFAULT NULL::text, p_notes text DEFAULT NULL::text,
    p_resolved_by text DEFAULT NULL::text, p_metadata jsonb DEFAULT NULL::jsonb,
    p_now timestamp with time zone DEFAULT now()
)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE VIEW tasker.v_dlq_dashboard AS
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
CREATE OR REPLACE VIEW tasker.v_dlq_investigation_queue AS
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
-- threshold), warning (at 80% of it) or healthy. A task blocked by failures waits for an
-- operator whatever the time: stale at once (threshold 0), listed first.
CREATE OR REPLACE FUNCTION tasker.get_task_staleness_monitoring_v1(
    p_deps_minutes numeric DEFAULT 60, p_retry_minutes numeric DEFAULT 30,
    p_in_process_minutes numeric DEFAULT 30, p_now timestamp with time zone DEFAULT now()
)
 RETURNS TABLE(
    task_uuid uuid, namespace_name text, task_name text, current_state text,
    time_in_state_minutes numeric, task_age_minutes numeric,
    staleness_threshold_minutes numeric, health_status text, priority integer
)
 LANGUAGE sql
 STABLE
AS $function$
    WITH m AS (
        SELECT tt.task_uuid, tn.name::text AS ns, nt.name::text AS tname,
               tt.to_state::text AS state, t.priority,
               extract(epoch FROM p_now - tt.created_at) / 60.0 AS in_state,
               extract(epoch FROM p_now - t.created_at) / 60.0 AS age,
               CASE WHEN tt.to_state = 'blocked_by_failures' THEN 0
                    ELSE tasker.calculate_staleness_threshold_v1(tt.to_state, nt.configuration,
                             p_deps_minutes, p_retry_minutes, p_in_process_minutes)
               END AS threshold
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
     ORDER BY COALESCE(m.in_state / NULLIF(m.threshold, 0), 'Infinity'::numeric) DESC,
              m.task_uuid
$function$;

CREATE OR REPLACE VIEW tasker.v_task_staleness_monitoring AS
    SELECT * FROM tasker.get_task_staleness_monitoring_v1();

-- Tables that stay healthy whatever the server's vacuum settings and statistics (issue 18):
-- storage parameters, hot-path plans that do not flip with statistics, and what retention
-- needs (indexes for bulk deletes, one batched prune function). The maintenance loop
-- (tasker_shared.db.maintenance) runs VACUUM/ANALYZE and the prune.

-- 1. Storage parameters. Steps and tasks are updated in place a few times each (claim,
-- result, completion) and none of those updates touches an indexed column: with free room
-- on the page the new row version is a HOT update (no index entries, and the old version
-- is pruned on the page by the next reader, without VACUUM). On servers running
-- autovacuum, these high-churn tables are vacuumed after a fixed number of dead rows
-- rather than a fraction of a table that only grows.
ALTER TABLE tasker.workflow_steps SET (
    fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE tasker.tasks SET (
    fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE tasker.task_transitions SET (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE tasker.workflow_step_transitions SET (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_insert_scale_factor = 0.05);

-- Queue tables churn at thousands of rows a second and hold few live rows: vacuumed after
-- a fixed number of dead rows, without cost-based throttling. Applied to every PGMQ queue
-- and archive table that has no such setting yet; the maintenance loop calls it again when
-- it finds a queue created since (a new namespace's worker queue).
CREATE FUNCTION tasker.tune_queue_tables_v1() RETURNS integer
LANGUAGE plpgsql SET lock_timeout = '200ms' AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relname
          FROM pg_class c
         WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind = 'r'
           AND (c.relname LIKE 'q\_%' OR c.relname LIKE 'a\_%')
           AND NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) o
                            WHERE o LIKE 'autovacuum_vacuum_threshold=%')
    LOOP
        BEGIN
            IF r.relname LIKE 'q\_%' THEN
                EXECUTE format('ALTER TABLE %s SET (autovacuum_vacuum_threshold = 1000,'
                               ' autovacuum_vacuum_scale_factor = 0,'
                               ' autovacuum_vacuum_cost_delay = 0,'
                               ' autovacuum_analyze_threshold = 10000,'
                               ' autovacuum_analyze_scale_factor = 0)', r.rel);
            ELSE
                EXECUTE format('ALTER TABLE %s SET (autovacuum_vacuum_threshold = 10000,'
                               ' autovacuum_vacuum_scale_factor = 0.05)', r.rel);
            END IF;
            n := n + 1;
        EXCEPTION WHEN lock_not_available THEN  -- busy: the next call retries
            NULL;
        END;
    END LOOP;
    RETURN n;
END
$$;
SELECT tasker.tune_queue_tables_v1();

-- 2. Hot-path plans whatever the statistics say. The hot functions cache generic plans
-- per connection (0009/0010) with sequential scans disabled, but a plan made after the
-- near-empty tables were ANALYZEd still hashed or materialized the whole partial index of
-- current step states (idx_step_transitions_most_recent) to join it to a task's few steps
-- (readiness, evaluation): cheap on day one, a scan of every step ever run later, and kept
-- for the connection's life. Without hash joins, merge joins and materialization every
-- join is a parameterized index probe, whatever the table sizes were when it was planned.
-- Settings a function already carries are kept (later migrations may tune their own).
DO $$
DECLARE
    f record;
    s text[];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, COALESCE(p.proconfig, '{}') AS cfg
          FROM pg_proc p
          JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
         WHERE p.pronamespace = 'tasker'::regnamespace
           AND p.proname = ANY (ARRAY[
               -- creation and evaluation
               'create_task_v1', 'create_steps_v1', 'evaluate_task_v1', '_walk_task_v1',
               'get_step_readiness_status_batch_v1', 'get_task_execution_contexts_batch_v1',
               'get_step_transitive_dependencies_v1', 'get_next_ready_tasks_v1',
               -- transitions
               'transition_task_v1', 'transition_step_v1', '_append_task_transition_v1',
               '_append_step_transition_v1', 'get_current_task_state_v1',
               'get_current_step_state_v1',
               -- claims and results
               'claim_steps_v1', 'record_step_results_v1', 'load_step_results_v1',
               'lock_step_result_messages_v1', 'apply_step_results_v1',
               'apply_step_result_v1', 'cancel_batch_siblings_v1', 'save_checkpoint_v2',
               -- message locks (dynamic SQL on the queue tables plans with these settings)
               'lock_messages_v1', 'lock_task_request_messages_v1',
               'lock_finalization_messages_v1', 'delete_messages_v1',
               'extend_visibility_v1', 'message_failed_v1',
               -- operator and gateway point reads
               'cancel_task_v1', 'resolve_step_v1', 'get_task_rows_v1', 'get_step_rows_v1',
               'get_step_edges_v1'])
    LOOP
        FOREACH s SLICE 1 IN ARRAY ARRAY[
            ARRAY['enable_seqscan', 'off'], ARRAY['enable_hashjoin', 'off'],
            ARRAY['enable_mergejoin', 'off'], ARRAY['enable_material', 'off'],
            ARRAY['plan_cache_mode', 'force_generic_plan']]
        LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM unnest(f.cfg) c WHERE c LIKE s[1] || '=%');
            EXECUTE format('ALTER FUNCTION %s SET %I = %L', f.sig, s[1], s[2]);
        END LOOP;
    END LOOP;
END
$$;

-- The readiness scan reached a task's steps through `task_uuid = ANY (p_tasks)`; ANALYZEd
-- while tiny, the steps table made that generic plan a full scan of the primary key index
-- filtered by task (cheaper than a bitmap scan on one page), kept for the connection's life
-- as the table grew. Now one probe per task, as the rest of the query already was.
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status_batch_v1(
    p_tasks uuid[], p_steps uuid[] DEFAULT NULL)
RETURNS TABLE (
    workflow_step_uuid uuid, task_uuid uuid, named_step_uuid uuid, name text,
    current_state text, dependencies_satisfied boolean, retry_eligible boolean,
    ready_for_execution boolean, last_failure_at timestamptz, next_retry_at timestamptz,
    total_parents integer, completed_parents integer, attempts integer, max_attempts integer,
    backoff_request_seconds numeric, last_attempted_at timestamptz)
LANGUAGE plpgsql STABLE
-- The generic plan (index probes per step) suits any input; without this setting the plan
-- cache keeps re-planning for each call (custom plans look cheaper), which costs more
-- than running the query.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off
SET enable_mergejoin = off SET enable_material = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- Parents and the last failure are looked up per step (index probes), so the cost
    -- follows the number of steps asked for, never the size of the transition history.
    SELECT c.workflow_step_uuid, c.task_uuid, c.named_step_uuid, c.name, c.current_state,
           c.deps_ok, c.retry_ok,
           tasker.evaluate_step_state_readiness_v1(c.current_state, c.processed, c.in_process,
                                                   c.deps_ok, c.retry_ok, c.next_retry_at),
           c.last_failure_at, c.next_retry_at, c.total_parents, c.completed_parents,
           COALESCE(c.attempts, 0), c.max_attempts, c.backoff_request_seconds,
           c.last_attempted_at
      FROM (
        SELECT ws.workflow_step_uuid, ws.task_uuid, ws.named_step_uuid, ns.name::text AS name,
               COALESCE(st.to_state, 'pending')::text AS current_state,
               ws.processed, ws.in_process, ws.attempts, ws.max_attempts,
               ws.backoff_request_seconds, ws.last_attempted_at,
               par.total AS total_parents, par.done AS completed_parents,
               par.total = par.done AS deps_ok,
               (COALESCE(ws.attempts, 0) = 0
                OR (COALESCE(ws.retryable, true)
                    AND COALESCE(ws.attempts, 0) < COALESCE(ws.max_attempts, 3))) AS retry_ok,
               f.last_failure_at,
               tasker.calculate_step_next_retry_time_v1(
                   ws.backoff_request_seconds, ws.last_attempted_at, f.last_failure_at,
                   ws.attempts) AS next_retry_at
          FROM (SELECT DISTINCT x FROM unnest(p_tasks) AS x) AS q(task_uuid)
          -- one index probe per task (OFFSET 0 keeps it a probe whatever the statistics)
          CROSS JOIN LATERAL (
              SELECT w.* FROM tasker.workflow_steps w
               WHERE w.task_uuid = q.task_uuid
                 AND (p_steps IS NULL OR w.workflow_step_uuid = ANY (p_steps)) OFFSET 0) ws
          JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
          LEFT JOIN tasker.workflow_step_transitions st
                 ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
          CROSS JOIN LATERAL (
              SELECT count(*)::integer AS total,
                     (count(*) FILTER (WHERE pst.to_state IN ('complete', 'resolved_manually')))
                         ::integer AS done
                FROM tasker.workflow_step_edges e
                LEFT JOIN tasker.workflow_step_transitions pst
                       ON pst.workflow_step_uuid = e.from_step_uuid AND pst.most_recent
               WHERE e.to_step_uuid = ws.workflow_step_uuid) par
          CROSS JOIN LATERAL (
              SELECT max(ft.created_at) AS last_failure_at
                FROM tasker.workflow_step_transitions ft
               WHERE ft.workflow_step_uuid = ws.workflow_step_uuid
                 AND ft.to_state = 'error') f
      ) c;
END
$$;

-- 3. Retention. Deleting a task must not scan a table per deleted row: every foreign key
-- that cascades has an index leading with its column. The audit rows' keys to their task
-- and to their transition repeat what their key to the step already says (a step's
-- transitions and audit rows are deleted with it), and checking them locked the task row
-- and the transition row once per recorded result: those two keys go.
ALTER TABLE tasker.workflow_step_result_audit
    DROP CONSTRAINT IF EXISTS workflow_step_result_audit_task_uuid_fkey,
    DROP CONSTRAINT IF EXISTS workflow_step_result_audit_workflow_step_transition_uuid_fkey;
CREATE INDEX IF NOT EXISTS idx_dlq_task ON tasker.tasks_dlq (task_uuid);
CREATE INDEX IF NOT EXISTS idx_request_outcomes_recorded_at
    ON tasker.task_request_outcomes (recorded_at);
CREATE INDEX IF NOT EXISTS idx_poison_messages_set_aside_at
    ON tasker.poison_messages (set_aside_at);

-- One batch of retention: up to p_limit finished tasks (complete, error, cancelled,
-- resolved manually) whose last transition is older than p_before, with their steps,
-- edges, transitions and audit rows; also up to p_limit request outcomes, poison records
-- and archived messages of each queue older than p_before. A task with a DLQ entry still
-- pending, or one created or resolved after p_before, is kept (the investigation needs
-- it). Tasks locked by anyone are skipped. Returns how many of each were deleted.
CREATE FUNCTION tasker.prune_history_v1(p_before timestamptz, p_limit integer)
RETURNS jsonb LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off AS $$
DECLARE
    v_tasks uuid[];
    v_steps uuid[] := '{}';
    v_outcomes integer;
    v_poison integer;
    v_archived integer := 0;
    v_n integer;
    q record;
BEGIN
    v_tasks := ARRAY(
        SELECT t.task_uuid
          FROM tasker.tasks t
         WHERE t.task_uuid IN (
                   SELECT tt.task_uuid
                     FROM tasker.task_transitions tt
                    WHERE tt.most_recent
                      AND tt.to_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                      AND tt.created_at < p_before
                      AND NOT EXISTS (
                          SELECT 1 FROM tasker.tasks_dlq d
                           WHERE d.task_uuid = tt.task_uuid
                             AND (d.resolution_status = 'pending' OR d.created_at >= p_before
                                  OR d.updated_at >= p_before))
                    ORDER BY tt.created_at
                    LIMIT p_limit)
           FOR UPDATE OF t SKIP LOCKED);
    IF cardinality(v_tasks) > 0 THEN
        v_steps := ARRAY(SELECT ws.workflow_step_uuid FROM tasker.workflow_steps ws
                          WHERE ws.task_uuid = ANY (v_tasks));
        DELETE FROM tasker.workflow_step_result_audit WHERE workflow_step_uuid = ANY (v_steps);
        DELETE FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = ANY (v_steps);
        DELETE FROM tasker.workflow_step_edges WHERE to_step_uuid = ANY (v_steps);
        DELETE FROM tasker.workflow_step_edges WHERE from_step_uuid = ANY (v_steps);
        DELETE FROM tasker.workflow_steps WHERE workflow_step_uuid = ANY (v_steps);
        DELETE FROM tasker.task_transitions WHERE task_uuid = ANY (v_tasks);
        DELETE FROM tasker.tasks_dlq WHERE task_uuid = ANY (v_tasks);
        DELETE FROM tasker.tasks WHERE task_uuid = ANY (v_tasks);
    END IF;
    DELETE FROM tasker.task_request_outcomes o
     WHERE o.request_id IN (SELECT x.request_id FROM tasker.task_request_outcomes x
                             WHERE x.recorded_at < p_before
                             ORDER BY x.recorded_at LIMIT p_limit);
    GET DIAGNOSTICS v_outcomes = ROW_COUNT;
    DELETE FROM tasker.poison_messages p
     WHERE p.poison_message_uuid IN (
               SELECT x.poison_message_uuid FROM tasker.poison_messages x
                WHERE x.set_aside_at < p_before ORDER BY x.set_aside_at LIMIT p_limit);
    GET DIAGNOSTICS v_poison = ROW_COUNT;
    FOR q IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
        EXECUTE format(
            'DELETE FROM pgmq.%1$I WHERE msg_id IN (SELECT msg_id FROM pgmq.%1$I
              WHERE archived_at < $1 ORDER BY archived_at LIMIT $2)',
            pgmq.format_table_name(q.queue_name, 'a'))
        USING p_before, p_limit;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_archived := v_archived + v_n;
    END LOOP;
    RETURN jsonb_build_object('tasks', cardinality(v_tasks), 'steps', cardinality(v_steps),
                              'outcomes', v_outcomes, 'poison', v_poison,
                              'archived', v_archived);
END
$$;

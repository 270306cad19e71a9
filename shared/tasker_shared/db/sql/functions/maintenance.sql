-- Table health: storage settings of the queue tables and pruning of finished history.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

-- Queue tables churn at thousands of rows a second and hold few live rows: vacuumed after
-- a fixed number of dead rows, without cost-based throttling. Applied to every PGMQ queue
-- and archive table that has no such setting yet; the maintenance loop calls it again when
-- it finds a queue created since (a new namespace's worker queue).
CREATE OR REPLACE FUNCTION tasker.tune_queue_tables_v1()
 RETURNS integer
 LANGUAGE plpgsql
 SET lock_timeout TO '200ms'
AS $function$
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
$function$;

-- One batch of retention: up to p_limit finished tasks (complete, error, cancelled,
-- resolved manually) whose last transition is older than p_before, with their steps,
-- edges, transitions and audit rows; also up to p_limit request outcomes, poison records
-- and archived messages of each queue older than p_before. A task with a DLQ entry still
-- pending, or one created or resolved after p_before, is kept (the investigation needs
-- it). Tasks locked by anyone are skipped. Returns how many of each were deleted.
CREATE OR REPLACE FUNCTION tasker.prune_history_v1(
    p_before timestamp with time zone, p_limit integer
)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
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
$function$;

-- The gateway's task and step views read through these functions. As inlinable SQL
-- functions their queries were planned on every call (1-2.5 ms of planning against 0.1 ms
-- of execution), and with stale statistics a fresh deployment's plans hashed the whole edge
-- table for one task. As PL/pgSQL with generic plans and sequential scans disabled (like the
-- orchestration functions, 0009/0010) each connection plans them once, as index probes.
CREATE OR REPLACE FUNCTION tasker.get_task_rows_v1(p_tasks uuid[])
RETURNS TABLE (
    task_uuid uuid, named_task_uuid uuid, name text, namespace text, version text,
    status text, created_at timestamptz, updated_at timestamptz, completed_at timestamptz,
    context jsonb, initiator text, source_system text, reason text, priority integer,
    tags jsonb, correlation_id uuid, parent_correlation_id uuid, template_updated_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.task_uuid, t.named_task_uuid, nt.name::text, tn.name::text, nt.version::text,
           COALESCE(tt.to_state, 'pending')::text, t.created_at,
           GREATEST(t.updated_at, tt.created_at), t.completed_at, t.context,
           t.initiator::text, t.source_system::text, t.reason::text, t.priority, t.tags,
           t.correlation_id, t.parent_correlation_id, nt.updated_at
      FROM tasker.tasks t
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
      LEFT JOIN tasker.task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent
     WHERE t.task_uuid = ANY (p_tasks);
END
$$;

CREATE OR REPLACE FUNCTION tasker.get_step_rows_v1(p_tasks uuid[], p_steps uuid[] DEFAULT NULL)
RETURNS TABLE (
    workflow_step_uuid uuid, task_uuid uuid, retryable boolean, in_process boolean,
    processed boolean, processed_at timestamptz, inputs jsonb, results jsonb,
    created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.workflow_step_uuid, ws.task_uuid, ws.retryable, ws.in_process, ws.processed,
           ws.processed_at, ws.inputs, ws.results, ws.created_at, ws.updated_at
      FROM tasker.workflow_steps ws
     WHERE ws.task_uuid = ANY (p_tasks)
       AND (p_steps IS NULL OR ws.workflow_step_uuid = ANY (p_steps));
END
$$;

CREATE OR REPLACE FUNCTION tasker.get_step_edges_v1(p_tasks uuid[])
RETURNS TABLE (task_uuid uuid, from_step_uuid uuid, to_step_uuid uuid)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.task_uuid, e.from_step_uuid, e.to_step_uuid
      FROM tasker.workflow_steps ws
      -- one index probe per step, whatever the statistics say about the edge table
      CROSS JOIN LATERAL (SELECT x.from_step_uuid, x.to_step_uuid
                            FROM tasker.workflow_step_edges x
                           WHERE x.to_step_uuid = ws.workflow_step_uuid OFFSET 0) e
     WHERE ws.task_uuid = ANY (p_tasks);
END
$$;

-- Helpers on the hot path, made cheap to call.
--
-- The readiness predicate and the retry-time formula were declared IMMUTABLE but read the
-- clock and the session time zone (now(), timestamptz + interval), which are STABLE.
-- PostgreSQL only inlines a SQL function whose body is no more volatile than declared, so
-- every readiness scan called them once per step as separate function calls (about 18
-- calls per step of a linear workflow). Declared STABLE, they are inlined into the scan.
CREATE OR REPLACE FUNCTION tasker.evaluate_step_state_readiness_v1(
    p_state text, p_processed boolean, p_in_process boolean, p_deps_ok boolean,
    p_retry_eligible boolean, p_next_retry_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_state IN ('pending', 'waiting_for_retry')
       AND NOT COALESCE(p_processed, false)
       AND NOT COALESCE(p_in_process, false)
       AND p_deps_ok
       AND p_retry_eligible
       AND (p_next_retry_at IS NULL OR p_next_retry_at <= now())
$$;

CREATE OR REPLACE FUNCTION tasker.calculate_step_next_retry_time_v1(
    p_backoff_seconds numeric, p_last_attempted_at timestamptz, p_failure_time timestamptz,
    p_attempts integer, p_max_backoff integer DEFAULT 60, p_multiplier numeric DEFAULT 2.0)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_backoff_seconds IS NOT NULL AND p_last_attempted_at IS NOT NULL
            THEN p_last_attempted_at + make_interval(secs => p_backoff_seconds::double precision)
        WHEN p_failure_time IS NOT NULL
            THEN p_failure_time + make_interval(secs => LEAST(
                power(p_multiplier, COALESCE(p_attempts, 0)), p_max_backoff)::double precision)
        ELSE NULL
    END
$$;

-- A single-task readiness scan: an inlinable SQL wrapper, not a PL/pgSQL function that
-- copies the batch function's rows into a second result set.
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status_v1(
    p_task uuid, p_steps uuid[] DEFAULT NULL)
RETURNS TABLE (
    workflow_step_uuid uuid, task_uuid uuid, named_step_uuid uuid, name text,
    current_state text, dependencies_satisfied boolean, retry_eligible boolean,
    ready_for_execution boolean, last_failure_at timestamptz, next_retry_at timestamptz,
    total_parents integer, completed_parents integer, attempts integer, max_attempts integer,
    backoff_request_seconds numeric, last_attempted_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT * FROM tasker.get_step_readiness_status_batch_v1(ARRAY[p_task], p_steps)
$$;

-- What result processing needs to decide a step's fate. PL/pgSQL rather than SQL: a SQL
-- function carrying SET options is never inlined, and on PostgreSQL before 18 it parsed and
-- planned its query again on every call (about 0.3 ms per result batch); PL/pgSQL keeps
-- the plan per connection.
CREATE OR REPLACE FUNCTION tasker.load_step_results_v1(p_steps uuid[])
RETURNS TABLE (
    step_uuid uuid, task_uuid uuid, current_state text, step_name text, attempts integer,
    max_attempts integer, retryable boolean, inputs jsonb, results jsonb,
    named_task_uuid uuid, template_updated_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT ws.workflow_step_uuid, ws.task_uuid,
           COALESCE(st.to_state, 'pending')::text, ns.name::text,
           COALESCE(ws.attempts, 0), ws.max_attempts, ws.retryable, ws.inputs, ws.results,
           nt.named_task_uuid, nt.updated_at
      FROM tasker.workflow_steps ws
      JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
      JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
      JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      LEFT JOIN tasker.workflow_step_transitions st
             ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
     WHERE ws.workflow_step_uuid = ANY (p_steps);
END
$$;

-- UUIDv7 keys: PostgreSQL 18's native uuidv7(); before 18 one SQL expression (inlined into
-- every INSERT's default) instead of a PL/pgSQL call per row. gen_random_uuid() gives a
-- version-4 UUID; its first 48 bits become the Unix time in milliseconds and its version
-- nibble goes from 0100 to 0111 (bits 52 and 53 set).
DO $$
BEGIN
    IF current_setting('server_version_num')::integer >= 180000 THEN
        EXECUTE $f$
            CREATE OR REPLACE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
            LANGUAGE sql VOLATILE PARALLEL SAFE AS 'SELECT uuidv7()'
        $f$;
    ELSE
        EXECUTE $f$
            CREATE OR REPLACE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
            LANGUAGE sql VOLATILE PARALLEL SAFE AS $b$
                SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM clock_timestamp())
                                                * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
            $b$
        $f$;
    END IF;
END
$$;

-- Functions the tables themselves use: key generation (column defaults), the state checks
-- of the transition tables (CHECK constraints) and the triggers. They cannot be dropped
-- while the tables use them: change them in place.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

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

-- The smallest UUIDv7 of an instant (every UUIDv7 made at or after p_at sorts after it).
CREATE OR REPLACE FUNCTION tasker.uuid_v7_floor_v1(p_at timestamp with time zone)
 RETURNS uuid
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT encode(substring(int8send(floor(extract(epoch FROM p_at) * 1000)::bigint) FROM 3)
                  || '\x00000000000000000000'::bytea, 'hex')::uuid
$function$;

CREATE OR REPLACE FUNCTION tasker.update_updated_at_column()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION tasker.create_step_result_audit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    INSERT INTO tasker.workflow_step_result_audit (
        workflow_step_uuid, workflow_step_transition_uuid, task_uuid, worker_uuid,
        correlation_id, success, execution_time_ms)
    SELECT NEW.workflow_step_uuid, NEW.workflow_step_transition_uuid, ws.task_uuid,
           NEW.metadata ->> 'worker_id',
           NULLIF(NEW.metadata ->> 'correlation_id', '')::uuid,
           NEW.to_state = 'enqueued_for_orchestration',
           NULLIF(ws.results -> 'metadata' ->> 'execution_time_ms', '')::numeric::bigint
    FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = NEW.workflow_step_uuid;
    RETURN NEW;
END
$function$;

-- The transition tables' state CHECKs as calls of an immutable function. PostgreSQL rebuilds
-- a CHECK expression from its stored text for every INSERT and UPDATE statement; an IN list
-- of ten or twelve string constants stores every byte as a number, and re-reading those two
-- constraints cost about 15 us per transition row against 3 us for a function call.
-- The allowed values are exactly the same.
CREATE OR REPLACE FUNCTION tasker.is_task_state_v1(p_state text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
BEGIN
    RETURN p_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually');
END
$function$;

CREATE OR REPLACE FUNCTION tasker.is_step_state_v1(p_state text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
BEGIN
    RETURN p_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually');
END
$function$;

-- Tasker schema: namespaces, templates, tasks, steps, edges, transitions, audit, DLQ.
CREATE SCHEMA IF NOT EXISTS tasker;

-- UUIDv7 (RFC 9562) built from clock_timestamp() and gen_random_uuid(): works on PostgreSQL 13+.
CREATE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    ms bytea := substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3);
    b bytea := uuid_send(gen_random_uuid());
BEGIN
    b := overlay(b PLACING ms FROM 1 FOR 6);
    b := set_byte(b, 6, (get_byte(b, 6) & 15) | 112);
    RETURN encode(b, 'hex')::uuid;
END
$$;

CREATE TYPE tasker.identity_strategy AS ENUM ('strict', 'caller_provided', 'always_unique');
CREATE TYPE tasker.dlq_reason AS ENUM (
    'staleness_timeout', 'max_retries_exceeded', 'dependency_cycle_detected',
    'worker_unavailable', 'manual_dlq');
CREATE TYPE tasker.dlq_resolution_status AS ENUM (
    'pending', 'manually_resolved', 'permanently_failed', 'cancelled');

CREATE TABLE tasker.task_namespaces (
    task_namespace_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    name varchar(64) NOT NULL UNIQUE,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasker.named_tasks (
    named_task_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_namespace_uuid uuid NOT NULL REFERENCES tasker.task_namespaces,
    name varchar(255) NOT NULL,
    version varchar(50) NOT NULL DEFAULT '0.1.0',
    description text,
    configuration jsonb NOT NULL,
    identity_strategy tasker.identity_strategy NOT NULL DEFAULT 'strict',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_namespace_uuid, name, version)
);
CREATE INDEX idx_named_tasks_lifecycle ON tasker.named_tasks USING gin ((configuration -> 'lifecycle'));

CREATE TABLE tasker.named_steps (
    named_step_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    name varchar(255) NOT NULL UNIQUE,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasker.named_tasks_named_steps (
    ntns_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    named_task_uuid uuid NOT NULL REFERENCES tasker.named_tasks ON DELETE CASCADE,
    named_step_uuid uuid NOT NULL REFERENCES tasker.named_steps,
    default_retryable boolean NOT NULL DEFAULT true,
    default_max_attempts integer NOT NULL DEFAULT 3,
    UNIQUE (named_task_uuid, named_step_uuid)
);

CREATE TABLE tasker.tasks (
    task_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    named_task_uuid uuid NOT NULL REFERENCES tasker.named_tasks,
    complete boolean NOT NULL DEFAULT false,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    initiator varchar(128),
    source_system varchar(128),
    reason varchar(128),
    tags jsonb NOT NULL DEFAULT '[]',
    context jsonb NOT NULL DEFAULT '{}',
    identity_hash varchar(128) NOT NULL,
    priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    correlation_id uuid NOT NULL,
    parent_correlation_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_tasks_identity_hash ON tasker.tasks (identity_hash);
CREATE INDEX idx_tasks_named_task ON tasker.tasks (named_task_uuid);
CREATE INDEX idx_tasks_created_at ON tasker.tasks (created_at);
CREATE INDEX idx_tasks_correlation ON tasker.tasks (correlation_id);

CREATE TABLE tasker.workflow_steps (
    workflow_step_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    named_step_uuid uuid NOT NULL REFERENCES tasker.named_steps,
    retryable boolean NOT NULL DEFAULT true,
    max_attempts integer NOT NULL DEFAULT 3,
    in_process boolean NOT NULL DEFAULT false,
    processed boolean NOT NULL DEFAULT false,
    processed_at timestamptz,
    attempts integer,
    last_attempted_at timestamptz,
    backoff_request_seconds numeric(12, 3),
    inputs jsonb,
    results jsonb,
    priority integer NOT NULL DEFAULT 0,
    checkpoint jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_uuid, named_step_uuid)
);

CREATE TABLE tasker.workflow_step_edges (
    workflow_step_edge_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    from_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    to_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    name varchar(64) NOT NULL DEFAULT 'provides'
        CHECK (name IN ('provides', 'batch_dependency', 'worker_to_convergence')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_step_uuid <> to_step_uuid),
    UNIQUE (from_step_uuid, to_step_uuid, name)
);
CREATE INDEX idx_edges_to ON tasker.workflow_step_edges (to_step_uuid);

CREATE TABLE tasker.task_transitions (
    task_transition_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    from_state varchar(64) CHECK (from_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually')),
    to_state varchar(64) NOT NULL CHECK (to_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures', 'complete',
        'error', 'cancelled', 'resolved_manually')),
    metadata jsonb NOT NULL DEFAULT '{}',
    transition_metadata jsonb,
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL DEFAULT true,
    processor_uuid uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_uuid, sort_key)
);
CREATE UNIQUE INDEX idx_task_transitions_most_recent
    ON tasker.task_transitions (task_uuid) INCLUDE (to_state, created_at) WHERE most_recent;
CREATE INDEX idx_task_transitions_current_state
    ON tasker.task_transitions (to_state, created_at) WHERE most_recent;

CREATE TABLE tasker.workflow_step_transitions (
    workflow_step_transition_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    workflow_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    from_state varchar(64) CHECK (from_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually')),
    to_state varchar(64) NOT NULL CHECK (to_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete', 'error',
        'cancelled', 'resolved_manually')),
    metadata jsonb NOT NULL DEFAULT '{}',
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_step_uuid, sort_key)
);
CREATE UNIQUE INDEX idx_step_transitions_most_recent
    ON tasker.workflow_step_transitions (workflow_step_uuid) INCLUDE (to_state, created_at)
    WHERE most_recent;
CREATE INDEX idx_step_transitions_errors
    ON tasker.workflow_step_transitions (workflow_step_uuid, created_at) WHERE to_state = 'error';

CREATE TABLE tasker.workflow_step_result_audit (
    workflow_step_result_audit_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    workflow_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    workflow_step_transition_uuid uuid NOT NULL
        REFERENCES tasker.workflow_step_transitions ON DELETE CASCADE,
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    worker_uuid text,
    correlation_id uuid,
    success boolean NOT NULL,
    execution_time_ms bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_step_uuid, workflow_step_transition_uuid)
);

CREATE FUNCTION tasker.create_step_result_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
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
$$;
CREATE TRIGGER trg_step_result_audit AFTER INSERT ON tasker.workflow_step_transitions
    FOR EACH ROW WHEN (NEW.to_state IN ('enqueued_for_orchestration',
                                        'enqueued_as_error_for_orchestration'))
    EXECUTE FUNCTION tasker.create_step_result_audit();

CREATE TABLE tasker.tasks_dlq (
    dlq_entry_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    original_state varchar(64) NOT NULL,
    dlq_reason tasker.dlq_reason NOT NULL,
    dlq_timestamp timestamptz NOT NULL DEFAULT now(),
    resolution_status tasker.dlq_resolution_status NOT NULL DEFAULT 'pending',
    resolution_timestamp timestamptz,
    resolution_notes text,
    resolved_by text,
    task_snapshot jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_dlq_one_pending_per_task ON tasker.tasks_dlq (task_uuid)
    WHERE resolution_status = 'pending';
CREATE INDEX idx_dlq_reason ON tasker.tasks_dlq (dlq_reason, dlq_timestamp);

CREATE FUNCTION tasker.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER update_dlq_updated_at BEFORE UPDATE ON tasker.tasks_dlq
    FOR EACH ROW EXECUTE FUNCTION tasker.update_updated_at_column();

-- Messages set aside: undecodable, or read too many times. The message itself is archived
-- in PGMQ (pgmq.a_<queue>); this row says why.
CREATE TABLE tasker.poison_messages (
    poison_message_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    queue_name text NOT NULL,
    msg_id bigint NOT NULL,
    read_ct integer NOT NULL,
    reason text NOT NULL,
    message jsonb,
    headers jsonb,
    set_aside_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (queue_name, msg_id)
);

-- Outcome of each task request, so a caller that missed the NOTIFY can still learn it.
CREATE TABLE tasker.task_request_outcomes (
    request_id text PRIMARY KEY,
    outcome text NOT NULL CHECK (outcome IN ('created', 'duplicate', 'invalid')),
    task_uuid uuid,
    reason text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The state machines' transition tables (the same as tasker_shared.domain.states).
CREATE TABLE tasker.task_state_transitions (
    from_state varchar(64) NOT NULL,
    event varchar(64) NOT NULL,
    to_state varchar(64) NOT NULL,
    PRIMARY KEY (from_state, event)
);
CREATE TABLE tasker.step_state_transitions (
    from_state varchar(64) NOT NULL,
    event varchar(64) NOT NULL,
    to_state varchar(64) NOT NULL,
    PRIMARY KEY (from_state, event)
);

INSERT INTO tasker.task_state_transitions (from_state, event, to_state) VALUES
    ('pending', 'start', 'initializing'),
    ('initializing', 'ready_steps_found', 'enqueuing_steps'),
    ('initializing', 'no_steps_found', 'complete'),
    ('initializing', 'no_dependencies_ready', 'waiting_for_dependencies'),
    ('enqueuing_steps', 'steps_enqueued', 'steps_in_process'),
    ('enqueuing_steps', 'enqueue_failed', 'error'),
    ('steps_in_process', 'step_completed', 'evaluating_results'),
    ('steps_in_process', 'all_steps_completed', 'evaluating_results'),
    ('steps_in_process', 'step_failed', 'waiting_for_retry'),
    ('evaluating_results', 'all_steps_successful', 'complete'),
    ('evaluating_results', 'ready_steps_found', 'enqueuing_steps'),
    ('evaluating_results', 'no_dependencies_ready', 'waiting_for_dependencies'),
    ('evaluating_results', 'step_failed', 'waiting_for_retry'),
    ('evaluating_results', 'permanent_failure', 'blocked_by_failures'),
    ('waiting_for_dependencies', 'dependencies_ready', 'evaluating_results'),
    ('waiting_for_retry', 'retry_ready', 'enqueuing_steps'),
    ('waiting_for_retry', 'dependencies_ready', 'evaluating_results'),
    ('blocked_by_failures', 'give_up', 'error'),
    ('blocked_by_failures', 'manual_resolution', 'resolved_manually'),
    ('blocked_by_failures', 'dependencies_ready', 'evaluating_results'),
    ('waiting_for_dependencies', 'staleness_timeout', 'error'),
    ('waiting_for_retry', 'staleness_timeout', 'error'),
    ('steps_in_process', 'staleness_timeout', 'error');
INSERT INTO tasker.task_state_transitions (from_state, event, to_state)
SELECT s, 'cancel', 'cancelled' FROM unnest(ARRAY[
    'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
    'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures']) AS s;

INSERT INTO tasker.step_state_transitions (from_state, event, to_state) VALUES
    ('pending', 'enqueue', 'enqueued'),
    ('enqueued', 'start', 'in_progress'),
    ('pending', 'start', 'in_progress'),
    ('in_progress', 'reclaim', 'in_progress'),
    ('in_progress', 'enqueue_for_orchestration', 'enqueued_for_orchestration'),
    ('in_progress', 'enqueue_as_error_for_orchestration', 'enqueued_as_error_for_orchestration'),
    ('enqueued_for_orchestration', 'complete', 'complete'),
    ('enqueued_for_orchestration', 'fail', 'error'),
    ('enqueued_as_error_for_orchestration', 'fail', 'error'),
    ('enqueued_as_error_for_orchestration', 'complete', 'complete'),
    ('enqueued_as_error_for_orchestration', 'wait_for_retry', 'waiting_for_retry'),
    ('in_progress', 'wait_for_retry', 'waiting_for_retry'),
    ('enqueued', 'wait_for_retry', 'waiting_for_retry'),
    ('pending', 'wait_for_retry', 'waiting_for_retry'),
    ('waiting_for_retry', 'retry', 'pending'),
    ('error', 'retry', 'pending'),
    ('error', 'reset_for_retry', 'pending'),
    ('in_progress', 'complete', 'complete'),
    ('in_progress', 'fail', 'error'),
    ('pending', 'fail', 'error'),
    ('enqueued', 'fail', 'error');
INSERT INTO tasker.step_state_transitions (from_state, event, to_state)
SELECT s, e.event, e.to_state
FROM unnest(ARRAY[
    'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
    'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'error']) AS s
CROSS JOIN (VALUES ('cancel', 'cancelled'), ('complete_manually', 'complete'),
                   ('resolve_manually', 'resolved_manually')) AS e(event, to_state);

-- workflow_steps rewritten with its columns ordered by how often they change (issue 18: WAL
-- per step).
--
-- A step row is updated in place two or three times in its life (enqueued, claimed,
-- finished), each a HOT update whose WAL record carries the new row version. PostgreSQL
-- leaves out of that record the bytes the old and the new version share at their start and
-- at their end, but only those: a changed column near the front (in_process was the sixth)
-- and one at the end (current_state, added last) left nothing to leave out, so every update
-- logged the whole row, its inputs included (about 340 bytes).
--
-- Now the columns that are written once (keys, settings, inputs) come first, then those
-- written by a few updates (checkpoint, progress, results), and last the small ones every
-- update changes (times, lease, attempts, flags, state). A claim logs only that tail.
--
-- Nothing references the table by foreign key, by view or by row type (migrations 0026,
-- 0027); its constraints and storage options are recreated under their old names.
CREATE TABLE tasker.workflow_steps_reordered (
    workflow_step_uuid uuid NOT NULL DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL,
    named_step_uuid uuid NOT NULL,
    retryable boolean NOT NULL DEFAULT true,
    max_attempts integer NOT NULL DEFAULT 3,
    priority integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    inputs jsonb,
    backoff_request_seconds numeric(12, 3),
    checkpoint jsonb,
    progress jsonb,
    results jsonb,
    processed_at timestamptz,
    last_attempted_at timestamptz,
    claimed_until timestamptz,
    claim_msg_id bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    attempts integer,
    in_process boolean NOT NULL DEFAULT false,
    processed boolean NOT NULL DEFAULT false,
    current_state varchar(64) NOT NULL DEFAULT 'pending'
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);

INSERT INTO tasker.workflow_steps_reordered (
    workflow_step_uuid, task_uuid, named_step_uuid, retryable, max_attempts, priority,
    created_at, inputs, backoff_request_seconds, checkpoint, progress, results, processed_at,
    last_attempted_at, claimed_until, claim_msg_id, updated_at, attempts, in_process,
    processed, current_state)
SELECT workflow_step_uuid, task_uuid, named_step_uuid, retryable, max_attempts, priority,
       created_at, inputs, backoff_request_seconds, checkpoint, progress, results, processed_at,
       last_attempted_at, claimed_until, claim_msg_id, updated_at, attempts, in_process,
       processed, current_state
  FROM tasker.workflow_steps;

DROP TABLE tasker.workflow_steps;
ALTER TABLE tasker.workflow_steps_reordered RENAME TO workflow_steps;
ALTER TABLE tasker.workflow_steps
    ADD CONSTRAINT workflow_steps_pkey PRIMARY KEY (workflow_step_uuid),
    ADD CONSTRAINT workflow_steps_task_uuid_named_step_uuid_key
        UNIQUE (task_uuid, named_step_uuid),
    ADD CONSTRAINT workflow_steps_current_state_check
        CHECK (tasker.is_step_state_v1(current_state));
ANALYZE tasker.workflow_steps;

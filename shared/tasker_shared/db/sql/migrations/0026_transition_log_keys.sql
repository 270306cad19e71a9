-- The transition logs are keyed by what identifies a transition, (step or task, sort_key),
-- and checked by the functions that write them instead of by foreign keys (issue 18: WAL
-- and CPU per step).
--
-- Every step transition inserted a row into two B-trees: the (step, sort_key) key its
-- writer and readers use, and a primary key on a uuid that only the dashboard's time-window
-- scans used (a uuid v7 range). And every insert ran a foreign key check, which locks the
-- step row FOR KEY SHARE: a WAL record of its own whenever the writer had not locked the
-- row already. The same held for task transitions and the task row. On a W1 burst of
-- linear-4 tasks this is 7.1 -> 6.6 KB of WAL per step.
--
-- Now (step, sort_key) and (task, sort_key) are the primary keys (replacing the unique
-- constraints on the same columns); the uuid columns stay, filled as before, and the
-- time-window scans read two small partial indexes (one entry per claim, one per finished
-- task). The logs are written only by tasker._log_step_transitions_v1 and
-- tasker._append_task_transitions_v1, whose callers hold the step or task; retention
-- (tasker.prune_history_v1) deletes a task's transitions explicitly before its steps
-- and the task.
ALTER TABLE tasker.workflow_step_transitions
    DROP CONSTRAINT workflow_step_transitions_workflow_step_uuid_fkey,
    DROP CONSTRAINT workflow_step_transitions_pkey,
    DROP CONSTRAINT workflow_step_transitions_workflow_step_uuid_sort_key_key,
    ADD CONSTRAINT workflow_step_transitions_pkey PRIMARY KEY (workflow_step_uuid, sort_key);
CREATE INDEX idx_step_transitions_claims
    ON tasker.workflow_step_transitions (workflow_step_transition_uuid)
    WHERE to_state = 'in_progress';

ALTER TABLE tasker.task_transitions
    DROP CONSTRAINT task_transitions_task_uuid_fkey,
    DROP CONSTRAINT task_transitions_pkey,
    DROP CONSTRAINT task_transitions_task_uuid_sort_key_key,
    ADD CONSTRAINT task_transitions_pkey PRIMARY KEY (task_uuid, sort_key);
CREATE INDEX idx_task_transitions_finished
    ON tasker.task_transitions (task_transition_uuid)
    WHERE to_state IN ('complete', 'error');

-- Replaced by tasker._log_step_transitions_v1 (several transitions in one insert).
DROP FUNCTION IF EXISTS tasker._log_step_transition_v1(uuid, uuid, text, text, text, jsonb);

-- The same for the rows written with a step by the functions that hold it: its result
-- audit rows (the trigger on its transitions; the key share lock on the row the record had
-- just updated was one more WAL record per result) and its edges (written with the steps
-- by tasker.create_steps_v1 and the dynamic-step functions); retention deletes both.
ALTER TABLE tasker.workflow_step_result_audit
    DROP CONSTRAINT workflow_step_result_audit_workflow_step_uuid_fkey;
ALTER TABLE tasker.workflow_step_edges
    DROP CONSTRAINT workflow_step_edges_from_step_uuid_fkey,
    DROP CONSTRAINT workflow_step_edges_to_step_uuid_fkey;

ALTER TABLE tasker.workflow_steps SET (fillfactor = 50);

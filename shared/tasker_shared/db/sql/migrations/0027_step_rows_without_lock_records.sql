-- Fewer WAL records per step (issue 18), continuing migration 0026.
--
-- A foreign key check locks the referenced row FOR KEY SHARE, and a row lock is a WAL record
-- of its own (about 55 bytes). Creating a linear-4 task wrote four of them on the task row
-- (one per step: workflow_steps.task_uuid), four on the registry's named steps
-- (workflow_steps.named_step_uuid) and one on its named task (tasks.named_task_uuid):
-- 9 records, about 0.13 KB per step. None of these keys guards anything the engine does:
-- steps are created only by functions that created or hold their task
-- (tasker.create_steps_v1), retention (tasker.prune_history_v1) deletes a task's steps
-- explicitly before the task, and registry rows (named tasks and steps) are never deleted.
ALTER TABLE tasker.workflow_steps
    DROP CONSTRAINT workflow_steps_task_uuid_fkey,
    DROP CONSTRAINT workflow_steps_named_step_uuid_fkey;
ALTER TABLE tasker.tasks
    DROP CONSTRAINT tasks_named_task_uuid_fkey;

-- An edge is identified by (from, to, name), its unique key and now its primary key; its
-- uuid, read by nothing, cost one more B-tree entry per edge.
ALTER TABLE tasker.workflow_step_edges
    DROP CONSTRAINT workflow_step_edges_pkey,
    DROP CONSTRAINT workflow_step_edges_from_step_uuid_to_step_uuid_name_key,
    DROP COLUMN workflow_step_edge_uuid,
    ADD CONSTRAINT workflow_step_edges_pkey PRIMARY KEY (from_step_uuid, to_step_uuid, name);

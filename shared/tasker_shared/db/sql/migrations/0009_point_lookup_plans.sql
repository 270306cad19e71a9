-- Hot-path functions do point lookups (one task, one step, a few messages). PL/pgSQL caches
-- their statement plans per connection; a plan made while the tables were still small (a
-- new deployment) may choose sequential scans and keep them as the tables grow, making every
-- call slower as history accumulates. With sequential scans disabled inside these functions
-- the cached plans always use the indexes, whatever the table sizes were when they were made.
ALTER FUNCTION tasker.get_step_transitive_dependencies_v1(uuid) SET enable_seqscan = off;
ALTER FUNCTION tasker.get_current_task_state_v1(uuid) SET enable_seqscan = off;
ALTER FUNCTION tasker.get_current_step_state_v1(uuid) SET enable_seqscan = off;
ALTER FUNCTION tasker._append_task_transition_v1(uuid, text, text, text, uuid, jsonb)
    SET enable_seqscan = off;
ALTER FUNCTION tasker._append_step_transition_v1(uuid, text, text, text, jsonb)
    SET enable_seqscan = off;
ALTER FUNCTION tasker.evaluate_task_v1(uuid, uuid, boolean, jsonb) SET enable_seqscan = off;
ALTER FUNCTION tasker.claim_steps_v1(text, bigint[], integer, numeric, text, integer)
    SET enable_seqscan = off;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text) SET enable_seqscan = off;
ALTER FUNCTION tasker.load_step_results_v1(uuid[]) SET enable_seqscan = off;
ALTER FUNCTION tasker.apply_step_result_v1(uuid, text, numeric, jsonb) SET enable_seqscan = off;
ALTER FUNCTION tasker.create_steps_v1(uuid, jsonb, jsonb) SET enable_seqscan = off;

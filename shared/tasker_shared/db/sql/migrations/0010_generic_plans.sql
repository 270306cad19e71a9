-- Hot-path functions run the same point lookups on every call. With the default plan cache
-- mode PostgreSQL keeps re-planning a statement whose generic plan looks costlier than its
-- custom plans, and with sequential scans disabled (0009) that is most of them: the
-- ancestor hydration of a claim alone spent about 0.5 ms planning per call against 0.1 ms
-- executing. These functions take generic plans, cached per connection; sequential scans
-- stay disabled, so the generic plans use the indexes whatever the parameters.
ALTER FUNCTION tasker.get_step_transitive_dependencies_v1(uuid)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.get_current_task_state_v1(uuid) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.get_current_step_state_v1(uuid) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker._append_task_transition_v1(uuid, text, text, text, uuid, jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker._append_step_transition_v1(uuid, text, text, text, jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.evaluate_task_v1(uuid, uuid, boolean, jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.claim_steps_v1(text, bigint[], integer, numeric, text, integer)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.record_step_results_v1(text, jsonb, text)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.load_step_results_v1(uuid[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.lock_step_results_v1(uuid[]) SET enable_seqscan = off;
ALTER FUNCTION tasker.lock_step_results_v1(uuid[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.apply_step_result_v1(uuid, text, numeric, jsonb)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.create_steps_v1(uuid, jsonb, jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION tasker.create_task_v1(uuid, jsonb, jsonb, jsonb) SET enable_seqscan = off;
ALTER FUNCTION tasker.create_task_v1(uuid, jsonb, jsonb, jsonb)
    SET plan_cache_mode = force_generic_plan;

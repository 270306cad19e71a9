-- Task and step state machines: current states, compare-and-swap transitions checked against
-- the transition tables (tasker.task_state_transitions, tasker.step_state_transitions), and
-- the append of transition rows.
--
-- What is written here is what runs: the migrator applies the function files after the
-- migrations whenever one of them changed (README, "Where the SQL that runs lives").
-- Hot-path functions carry SET enable_seqscan/enable_hashjoin/enable_mergejoin/
-- enable_material = off and plan_cache_mode = force_generic_plan: their plans, cached per
-- connection, stay parameterized index probes whatever the statistics were when planned.

CREATE OR REPLACE FUNCTION tasker.get_current_task_state_v1(p_task uuid)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
BEGIN
    RETURN (SELECT to_state FROM tasker.task_transitions WHERE task_uuid = p_task AND most_recent);
END
$function$;

CREATE OR REPLACE FUNCTION tasker.get_current_step_state_v1(p_step uuid)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
BEGIN
    RETURN COALESCE((SELECT current_state FROM tasker.workflow_steps
                      WHERE workflow_step_uuid = p_step), 'pending');
END
$function$;

-- Append a walk of transitions (p_from -> p_to[1] -> p_to[2] ...; p_events[i] leads to
-- p_to[i]); the caller has checked them and holds the task lock. The previous latest row
-- loses `most_recent` once for the whole walk and only the walk's last row gets it, so the
-- states a task passes within one transaction (pending -> initializing -> enqueuing_steps
-- -> steps_in_process when it is created) cost one flag flip, not one each, and no entries
-- in the partial indexes on the latest transition. Each transition is announced.
CREATE OR REPLACE FUNCTION tasker._append_task_transitions_v1(
    p_task uuid, p_from text, p_to text[], p_events text[], p_processor uuid, p_metadata jsonb
)
 RETURNS void
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_sort integer;
    v_n integer := cardinality(p_to);
    v_last text := p_to[cardinality(p_to)];
BEGIN
    UPDATE tasker.task_transitions SET most_recent = false, updated_at = now()
     WHERE task_uuid = p_task AND most_recent
    RETURNING sort_key INTO v_sort;
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, sort_key,
                                         most_recent, processor_uuid)
    SELECT p_task, CASE WHEN i = 1 THEN p_from ELSE p_to[i - 1] END, p_to[i],
           COALESCE(p_metadata, '{}') || jsonb_build_object('event', p_events[i],
                                                            'timestamp', clock_timestamp()),
           COALESCE(v_sort, 0) + i, i = v_n, p_processor
      FROM generate_series(1, v_n) AS i;  -- sort_key and the flag say the order: no Sort
    IF v_last IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        UPDATE tasker.tasks SET complete = (v_last IN ('complete', 'resolved_manually')),
               completed_at = now(), updated_at = now()
         WHERE task_uuid = p_task;
    ELSIF p_from IN ('complete', 'error', 'cancelled', 'resolved_manually') THEN
        UPDATE tasker.tasks SET complete = false, completed_at = NULL, updated_at = now()
         WHERE task_uuid = p_task;
    END IF;
    -- One notification for the transitions of this call (a NOTIFY costs the committing
    -- backend about 35 us and the notification queue's lock): the states passed through,
    -- p_from first, and the event of each step between them.
    PERFORM pg_notify('tasker_task_events', json_build_object(
        'task_uuid', p_task, 'states', array_prepend(p_from, p_to), 'events', p_events)::text)
      WHERE v_n > 0;
END
$function$;

-- One transition (see _append_task_transitions_v1).
CREATE OR REPLACE FUNCTION tasker._append_task_transition_v1(
    p_task uuid, p_from text, p_to text, p_event text, p_processor uuid, p_metadata jsonb
)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM tasker._append_task_transitions_v1(p_task, p_from, ARRAY[p_to], ARRAY[p_event],
                                               p_processor, p_metadata);
END
$function$;

-- Compare-and-swap task transition: applies `p_event` only when the current state is
-- `p_from` and the transition table allows it. Returns the new state, or NULL when the
-- current state is not `p_from`. Raises TK001 when the table forbids the transition.
CREATE OR REPLACE FUNCTION tasker.transition_task_v1(
    p_task uuid, p_from text, p_event text, p_processor uuid DEFAULT NULL::uuid,
    p_metadata jsonb DEFAULT '{}'::jsonb
)
 RETURNS text
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_current text;
    v_to text;
BEGIN
    PERFORM 1 FROM tasker.tasks WHERE task_uuid = p_task FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'TK404';
    END IF;
    v_current := tasker.get_current_task_state_v1(p_task);
    IF v_current IS DISTINCT FROM p_from THEN
        RETURN NULL;
    END IF;
    SELECT to_state INTO v_to FROM tasker.task_state_transitions
     WHERE from_state = p_from AND event = p_event;
    IF v_to IS NULL THEN
        RAISE EXCEPTION 'task transition % --%--> ? is not allowed', p_from, p_event
            USING ERRCODE = 'TK001';
    END IF;
    PERFORM tasker._append_task_transition_v1(p_task, p_from, v_to, p_event, p_processor,
                                              p_metadata);
    RETURN v_to;
END
$function$;

-- Append rows to a step's transition log and announce each, nothing more: for callers that
-- set the step row (current_state and the rest) in an update of their own (a claim, a
-- record), so the row gets one new version per call instead of one per transition.
-- p_states[1] is the state the step leaves, p_states[i + 1] the state the i-th transition
-- enters, with p_events[i] and p_metadata[i]: a plain success logs in_progress ->
-- enqueued_for_orchestration -> complete with one lookup and one insert.
-- Its plans are an index probe and an insert whatever the statistics say: no SET options
-- (each call of a function with SET options saves and restores them).
CREATE OR REPLACE FUNCTION tasker._log_step_transitions_v1(
    p_step uuid, p_task uuid, p_states text[], p_events text[], p_metadata jsonb[]
)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_sort integer;
    v_at timestamptz := clock_timestamp();
BEGIN
    -- A concurrent append to the same step's log would collide on its key (step, sort_key)
    -- and fail instead of forking the log.
    SELECT st.sort_key INTO v_sort FROM tasker.workflow_step_transitions st
     WHERE st.workflow_step_uuid = p_step ORDER BY st.sort_key DESC LIMIT 1;
    INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state,
                                                  metadata, sort_key)
    SELECT p_step, p_states[i], p_states[i + 1],
           COALESCE(p_metadata[i], '{}') || jsonb_build_object('event', p_events[i],
                                                               'timestamp', v_at),
           COALESCE(v_sort, 0) + i
      FROM generate_subscripts(p_events, 1) AS i;  -- sort_key says the order: no Sort
    -- One notification for the transitions logged here (see _append_task_transitions_v1).
    PERFORM pg_notify('tasker_step_events', json_build_object(
        'task_uuid', p_task, 'step_uuid', p_step, 'states', p_states,
        'events', p_events)::text)
      WHERE cardinality(p_events) > 0;
END
$function$;

-- A step taken by a claim: its row in progress under the claim (attempt counted, lease until
-- p_until, message p_msg) in one update, and its transitions from p_states[1] to
-- in_progress logged (the last one, the start, names the worker and the message). For a
-- claim of a queued step (claim_steps_v1) and a step claimed as it is enqueued
-- (_hand_off_v1). No SET options: its callers' plan settings apply.
CREATE OR REPLACE FUNCTION tasker._start_step_v1(
    p_step uuid, p_task uuid, p_states text[], p_events text[], p_worker text, p_msg bigint,
    p_until timestamp with time zone
)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    UPDATE tasker.workflow_steps
       SET attempts = COALESCE(attempts, 0) + 1, last_attempted_at = now(),
           in_process = true, current_state = 'in_progress', updated_at = now(),
           claimed_until = p_until, claim_msg_id = p_msg
     WHERE workflow_step_uuid = p_step;
    PERFORM tasker._log_step_transitions_v1(
        p_step, p_task, p_states, p_events,
        array_fill('{}'::jsonb, ARRAY[cardinality(p_events) - 1])
            || jsonb_build_object('worker_id', p_worker, 'msg_id', p_msg));
END
$function$;

-- A step transition: the state on the step row, updated in place (a HOT update: no index
-- covers the columns it changes; migration 0025), and its log row.
CREATE OR REPLACE FUNCTION tasker._append_step_transition_v1(
    p_step uuid, p_from text, p_to text, p_event text, p_metadata jsonb
)
 RETURNS void
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
AS $function$
DECLARE
    v_task uuid;
    v_finished boolean := p_to IN ('complete', 'cancelled', 'resolved_manually');
BEGIN
    UPDATE tasker.workflow_steps
       SET current_state = p_to,
           processed = processed OR v_finished,
           processed_at = CASE WHEN v_finished THEN now() ELSE processed_at END,
           -- in_progress (start / reclaim) runs the step; enqueued leaves the flag as it is
           in_process = CASE WHEN p_to = 'enqueued' THEN in_process
                             ELSE p_to = 'in_progress' END,
           attempts = CASE WHEN p_event = 'reset_for_retry' THEN 0  -- ResetAttemptsAction
                           ELSE attempts END,                       -- (SPEC section 2.2)
           updated_at = now()
     WHERE workflow_step_uuid = p_step
    RETURNING task_uuid INTO v_task;
    PERFORM tasker._log_step_transitions_v1(p_step, v_task, ARRAY[p_from, p_to],
                                            ARRAY[p_event], ARRAY[p_metadata]);
END
$function$;

-- Compare-and-swap step transition; `p_from` may list several acceptable current states.
CREATE OR REPLACE FUNCTION tasker.transition_step_v1(
    p_step uuid, p_from text[], p_event text, p_metadata jsonb DEFAULT '{}'::jsonb
)
 RETURNS text
 LANGUAGE plpgsql
 SET enable_seqscan TO 'off'
 SET enable_hashjoin TO 'off'
 SET enable_mergejoin TO 'off'
 SET enable_material TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_current text;
    v_to text;
BEGIN
    SELECT current_state INTO v_current FROM tasker.workflow_steps
     WHERE workflow_step_uuid = p_step FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'step % not found', p_step USING ERRCODE = 'TK404';
    END IF;
    IF (v_current = ANY (p_from)) IS NOT TRUE THEN  -- also for a NULL or empty p_from
        RETURN NULL;
    END IF;
    SELECT to_state INTO v_to FROM tasker.step_state_transitions
     WHERE from_state = v_current AND event = p_event;
    IF v_to IS NULL THEN
        RAISE EXCEPTION 'step transition % --%--> ? is not allowed', v_current, p_event
            USING ERRCODE = 'TK001';
    END IF;
    PERFORM tasker._append_step_transition_v1(p_step, v_current, v_to, p_event, p_metadata);
    RETURN v_to;
END
$function$;

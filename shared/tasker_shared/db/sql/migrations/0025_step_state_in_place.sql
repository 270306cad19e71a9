-- A step's current state lives on its row; its transition log is append-only (issue 18:
-- WAL per step, dead rows, cost that does not grow with history).
--
-- Each step transition used to insert its row and flip the previous row's `most_recent`
-- flag: an UPDATE that touched the predicate of a partial index, so every flip wrote a new
-- row version with entries in every index of the table (about five per step, plus the
-- partial index's own entry, and as many dead rows for VACUUM). Now
-- `workflow_steps.current_state` is set in place by the same function that appends the
-- transition (_append_step_transition_v1, which already updated the step row for most
-- transitions; no index covers the column, so it is a HOT update), and readers take the
-- state from the step row instead of a join. The latest transition of a step, where its
-- time matters, is the one with the highest sort_key. Measured on a W1 burst of linear-4
-- tasks: 9.7 -> 8.6 KB of WAL per step, and no dead transition rows.
ALTER TABLE tasker.workflow_steps
    ADD COLUMN current_state varchar(64) NOT NULL DEFAULT 'pending'
        CONSTRAINT workflow_steps_current_state_check
        CHECK (tasker.is_step_state_v1(current_state));

UPDATE tasker.workflow_steps ws SET current_state = st.to_state
  FROM tasker.workflow_step_transitions st
 WHERE st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
   AND ws.current_state IS DISTINCT FROM st.to_state;

DROP INDEX tasker.idx_step_transitions_most_recent;
ALTER TABLE tasker.workflow_step_transitions DROP COLUMN most_recent;


-- Retention (engine/src/retention.rs): finished runs are pruned with their steps and the
-- events that tell their progress; operators' entries stay for the audit window.

-- A waiting step's last reason: the step records each poll in `polls` and the reason here,
-- and writes a `step.waiting` event only when it starts waiting or the reason changes.
ALTER TABLE urumi.steps ADD COLUMN wait_reason text;

-- History pointers, not references: the run an event or a rerun points at may have been
-- pruned. (Each foreign key also cost a lookup of the run on every event insert.)
ALTER TABLE urumi.events DROP CONSTRAINT events_run_id_fkey;
ALTER TABLE urumi.runs DROP CONSTRAINT runs_rerun_of_fkey;
-- A run only blocks a successor while it is active, and only finished runs are pruned; the
-- rule stays so that a blocked run can never point at nothing.
ALTER TABLE urumi.runs DROP CONSTRAINT runs_blocked_by_fkey,
    ADD CONSTRAINT runs_blocked_by_fkey FOREIGN KEY (blocked_by) REFERENCES urumi.runs (id)
        ON DELETE SET NULL;

-- The pruner's index: finished runs of a status, oldest first. An entry is written once, when
-- a run finishes.
CREATE INDEX runs_finished ON urumi.runs (status, finished_at) WHERE finished_at IS NOT NULL;
-- Audit entries and stopped workers are pruned by age; events are read oldest-first by id
-- (their primary key), so no index is added for them.

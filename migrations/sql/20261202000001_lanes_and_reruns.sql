-- Priority lanes and owners (issue 10): workers claim interactive runs first, then scheduled
-- ones, then bulk ones round robin across owners, and never let bulk runs fill every slot.
-- Both columns have constant defaults: a catalog-only change, no table rewrite.
ALTER TABLE urumi.runs
    ADD COLUMN lane  text NOT NULL DEFAULT 'interactive'
        CHECK (lane IN ('interactive', 'scheduled', 'bulk')),
    -- Who the run's work is for (the actor that started it, or the operation's owner): the
    -- key of the bulk lane's round robin.
    ADD COLUMN owner text NOT NULL DEFAULT '';

-- The claim's index: due runs of a lane in wake order (replaces the single wake order).
DROP INDEX urumi.runs_due;
CREATE INDEX runs_due ON urumi.runs (lane, wake_at)
    WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL;
-- The bulk lane's round robin: due bulk runs per owner in wake order. Runs of other lanes
-- are not in it, so it costs interactive runs nothing.
CREATE INDEX runs_due_bulk ON urumi.runs (owner, wake_at)
    WHERE lane = 'bulk' AND status IN ('queued', 'waiting') AND blocked_by IS NULL;

-- A rerun from a named step (issue 10) starts with the steps before it carried over from the
-- run it re-runs (`rerun_of`): their checkpoints are copied, and they are not run again. Such
-- a run is never "fresh" at its first claim (its first step is not the one to start).
ALTER TABLE urumi.runs ADD COLUMN carried_steps integer NOT NULL DEFAULT 0 CHECK (carried_steps >= 0);

-- When each owner's bulk runs were last claimed: the tie-break of the bulk lane's round robin
-- (one row per owner that ever ran bulk work; owners are token actors, a bounded set).
CREATE TABLE urumi.bulk_owners (
    owner           text PRIMARY KEY,
    last_claimed_at timestamptz NOT NULL
);

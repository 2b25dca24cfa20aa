-- Scheduled runs (engine::schedule): each slot of a schedule — its name and the time the cron
-- expression gave — starts at most one run, however many workers run the same schedule. The
-- primary key is the de-duplication: the first worker to insert the slot starts the run in the
-- same transaction; the others find it and do nothing.
CREATE TABLE urumi.schedule_slots (
    schedule    text        NOT NULL CHECK (length(schedule) BETWEEN 1 AND 128),
    slot_at     timestamptz NOT NULL,
    -- The run the slot started; NULL when it was skipped (see `skipped`).
    run_id      uuid,
    -- Why no run was started (e.g. the subject still had an active run).
    skipped     text,
    started_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, slot_at),
    CHECK ((run_id IS NULL) <> (skipped IS NULL))
);

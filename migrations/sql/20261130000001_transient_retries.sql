-- Transient errors (5xx, 429, timeouts, connection loss) have their own budget, in time,
-- separate from the attempts that count real failures; and a step whose worker died while
-- running it is counted, so a step that kills every worker ends instead of looping.
ALTER TABLE urumi.steps
    -- Retries after transient errors in the current streak (reset by any other outcome).
    ADD COLUMN transient_retries integer NOT NULL DEFAULT 0,
    -- When the current streak of transient errors began.
    ADD COLUMN transient_since timestamptz,
    -- Attempts that ended with no outcome: the worker died or lost its lease mid-step.
    ADD COLUMN interrupted integer NOT NULL DEFAULT 0;

ALTER TABLE urumi.steps DROP CONSTRAINT steps_wait_kind_check;
ALTER TABLE urumi.steps ADD CONSTRAINT steps_wait_kind_check
    CHECK (wait_kind IN ('poll', 'backoff', 'transient'));

-- Hourly rollups of finished steps (issue 14): what `/insights/steps` reads for windows longer
-- than a day, so a 30-day window costs its 720 hours' rows instead of every step row. An hour
-- is rolled once it has ended (5 minutes of slack for late commits) by the workers' pruner
-- loop; `urumi.insight_rollup.done_until` says how far. Rows older than the longest window go.
CREATE TABLE urumi.step_hours (
    hour        timestamptz NOT NULL,
    definition  text        NOT NULL,
    version     integer     NOT NULL,
    step        text        NOT NULL,
    position    integer     NOT NULL,
    count       bigint      NOT NULL,
    failed      bigint      NOT NULL,
    retries     bigint      NOT NULL,
    polls       bigint      NOT NULL,
    waiting_ms  float8      NOT NULL,
    total_ms    float8      NOT NULL,
    -- The duration histogram, sparse: bucket numbers (engine::insights::rollup) and counts.
    buckets     integer[]   NOT NULL,
    counts      bigint[]    NOT NULL,
    PRIMARY KEY (hour, definition, version, step)
);

-- Per hour and step, its errors (cut to 200 characters) and how many steps ended with them.
CREATE TABLE urumi.step_hour_errors (
    hour        timestamptz NOT NULL,
    definition  text        NOT NULL,
    version     integer     NOT NULL,
    step        text        NOT NULL,
    error       text        NOT NULL,
    steps       bigint      NOT NULL,
    PRIMARY KEY (hour, definition, version, step, error)
);

-- How far the rollup has gone: every hour before `done_until` is in `step_hours`.
CREATE TABLE urumi.insight_rollup (
    id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
    done_until  timestamptz NOT NULL
);

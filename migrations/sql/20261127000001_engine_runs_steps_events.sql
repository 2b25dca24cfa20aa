-- The durable workflow engine's tables. The `runs` row is both the run's record and its
-- queue entry: a run is claimable when it is queued/waiting, not blocked, and due.
CREATE SCHEMA IF NOT EXISTS urumi;

CREATE TABLE urumi.runs (
    id                  uuid PRIMARY KEY,
    definition          text        NOT NULL,
    version             integer     NOT NULL CHECK (version > 0),
    def_key             text        GENERATED ALWAYS AS (definition || '@' || version::text) STORED,
    subject             text        NOT NULL CHECK (length(subject) BETWEEN 1 AND 512),
    input               jsonb       NOT NULL,
    output              jsonb,
    status              text        NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    -- A run created to supersede an active run waits here until that run has ended.
    blocked_by          uuid REFERENCES urumi.runs (id),
    -- When the run is next due (queued/waiting runs are claimed once wake_at <= now()).
    wake_at             timestamptz NOT NULL DEFAULT now(),
    lease_owner         text,
    lease_token         uuid,
    lease_expires_at    timestamptz,
    cancel_requested_at timestamptz,
    cancel_requested_by text,
    error               text,
    rerun_of            uuid REFERENCES urumi.runs (id),
    created_by          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'running') = (lease_token IS NOT NULL))
) WITH (fillfactor = 80);

-- Invariant: at most one active run per subject (a superseding run waits blocked, see below).
CREATE UNIQUE INDEX runs_one_active_per_subject ON urumi.runs (subject)
    WHERE status IN ('queued', 'running', 'waiting') AND blocked_by IS NULL;
-- At most one run waits to supersede the active one.
CREATE UNIQUE INDEX runs_one_blocked_per_subject ON urumi.runs (subject)
    WHERE status = 'queued' AND blocked_by IS NOT NULL;
-- The claim query's index: due runs in wake order.
CREATE INDEX runs_due ON urumi.runs (wake_at)
    WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL;
-- No index covers lease_expires_at, so lease renewals are HOT updates; the sweeper finds
-- running runs through runs_by_status (there are at most as many as worker slots).
CREATE INDEX runs_by_subject ON urumi.runs (subject, created_at DESC);
CREATE INDEX runs_by_status ON urumi.runs (status, created_at DESC, id DESC);
CREATE INDEX runs_blocked_by ON urumi.runs (blocked_by) WHERE blocked_by IS NOT NULL;

CREATE TABLE urumi.steps (
    run_id           uuid        NOT NULL REFERENCES urumi.runs (id) ON DELETE CASCADE,
    name             text        NOT NULL,
    position         integer     NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'waiting', 'succeeded', 'failed', 'skipped')),
    -- Why a waiting step waits: 'poll' (not ready yet; costs no attempt) or 'backoff' (retry).
    wait_kind        text        CHECK (wait_kind IN ('poll', 'backoff')),
    attempts         integer     NOT NULL DEFAULT 0,
    polls            integer     NOT NULL DEFAULT 0,
    output           jsonb,
    last_error       text,
    next_attempt_at  timestamptz,
    wait_started_at  timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name),
    UNIQUE (run_id, position)
) WITH (fillfactor = 80);

-- Append-only: every run and step transition and every operator action, in the transaction
-- that made it. Feeds the audit log, the live stream and metrics.
CREATE TABLE urumi.events (
    id          bigserial PRIMARY KEY,
    run_id      uuid        REFERENCES urumi.runs (id) ON DELETE CASCADE,
    subject     text,
    kind        text        NOT NULL,
    step        text,
    actor       text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_by_run ON urumi.events (run_id, id);
CREATE INDEX events_by_subject ON urumi.events (subject, id);

-- Live worker processes and the definition versions each serves.
CREATE TABLE urumi.workers (
    id            text PRIMARY KEY,
    hostname      text        NOT NULL,
    pid           integer     NOT NULL,
    definitions   text[]      NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz
);

-- Bulk operations (issue 10): an operator's one request to act on every run a selector
-- matches, carried out by a parent run of `operation@1` that starts its targets at most
-- `max_concurrency` at a time. The rows go when the engine prunes the parent run (cascade), so
-- operations are kept exactly as long as runs are.
CREATE TABLE urumi.operations (
    id               uuid PRIMARY KEY,
    run_id           uuid        NOT NULL UNIQUE REFERENCES urumi.runs (id) ON DELETE CASCADE,
    action           text        NOT NULL CHECK (action IN ('retry', 'cancel', 'rerun', 'repair', 'delete')),
    from_step        text,
    -- The selector as the operator sent it (shown back; the targets below are what it matched).
    selector         jsonb       NOT NULL,
    max_concurrency  integer     NOT NULL CHECK (max_concurrency BETWEEN 1 AND 10000),
    -- Canary: the first `canary_size` targets go first; then pause for approval or go on.
    canary_size      integer     NOT NULL DEFAULT 0 CHECK (canary_size >= 0),
    canary_then      text        CHECK (canary_then IN ('pause', 'continue')),
    canary_passed    boolean     NOT NULL DEFAULT false,
    -- Failure budget: stop by itself once more than this many targets failed (NULL: none).
    max_failures     integer     CHECK (max_failures >= 0),
    state            text        NOT NULL DEFAULT 'running'
                     CHECK (state IN ('running', 'paused', 'awaiting_approval', 'succeeded', 'stopped', 'cancelled')),
    reason           text,
    matched          integer     NOT NULL,
    owner            text        NOT NULL,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX operations_by_created ON urumi.operations (created_at DESC, id DESC);

CREATE TABLE urumi.operation_targets (
    operation_id  uuid        NOT NULL REFERENCES urumi.operations (id) ON DELETE CASCADE,
    position      integer     NOT NULL,
    -- The run the selector matched (no foreign key: runs are pruned on their own schedule).
    run_id        uuid        NOT NULL,
    subject       text        NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    -- The run the operation started for this target (the retried run itself for a retry).
    child_run_id  uuid,
    reason        text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operation_id, position)
);
-- The parent's poll: the targets still to start or to watch.
CREATE INDEX operation_targets_open ON urumi.operation_targets (operation_id, state, position)
    WHERE state IN ('pending', 'running');

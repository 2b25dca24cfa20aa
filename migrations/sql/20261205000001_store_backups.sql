-- A store's backups (store.backup@1): one row per request, written with its run (so a
-- re-run of the same run can never make a second backup object). `pending` until the
-- dump Job's archive is recorded (size and checksum), `failed` when its run failed,
-- `pruned` once retention removed the archive (the row stays as history).
CREATE TABLE urumi.store_backups (
    id           uuid PRIMARY KEY,
    store_id     uuid        NOT NULL REFERENCES urumi.stores (id) ON DELETE CASCADE,
    run_id       uuid        NOT NULL UNIQUE,
    reason       text        NOT NULL CHECK (reason IN ('manual', 'scheduled', 'pre_upgrade')),
    -- Where the archive goes: set by the run's `target` step (the worker's settings decide).
    storage      text        CHECK (storage IN ('pvc', 's3')),
    status       text        NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'complete', 'failed', 'pruned')),
    size_bytes   bigint      CHECK (size_bytes >= 0),
    sha256       text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    requested_by text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    pruned_at    timestamptz,
    CHECK ((status = 'complete') = (sha256 IS NOT NULL AND completed_at IS NOT NULL)
           OR status = 'pruned')
);
CREATE INDEX store_backups_by_store ON urumi.store_backups (store_id, created_at DESC);

-- Operations can back stores up in bulk.
ALTER TABLE urumi.operations DROP CONSTRAINT operations_action_check;
ALTER TABLE urumi.operations ADD CONSTRAINT operations_action_check
    CHECK (action IN ('retry', 'cancel', 'rerun', 'repair', 'delete', 'suspend', 'resume', 'backup'));

-- A backup follows its run: failed when the run fails or is cancelled, pending again when an
-- operator retries it (complete is set by the run's own `record` step).
CREATE FUNCTION urumi.backup_follows_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('failed', 'cancelled') THEN
        UPDATE urumi.store_backups SET status = 'failed'
            WHERE run_id = NEW.id AND status = 'pending';
    ELSIF OLD.status IN ('failed', 'cancelled') AND NEW.status IN ('queued', 'running', 'waiting') THEN
        UPDATE urumi.store_backups SET status = 'pending'
            WHERE run_id = NEW.id AND status = 'failed';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER runs_backup_status AFTER UPDATE OF status ON urumi.runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.definition = 'store.backup')
    EXECUTE FUNCTION urumi.backup_follows_run();

-- A store whose upgrade could not roll back (issue 11): `store.upgrade` failing at one of its
-- rollback steps leaves the store on neither release (its web tier may be at zero, its
-- database migrated), so the store is `failed`, not `ready`; an operator's retry of that run
-- (which resumes at the failed rollback step) makes it `ready` again while the rollback
-- finishes. An upgrade that rolled back cleanly fails at `finish` and keeps the store `ready`.
-- The provisioning rules are unchanged.
CREATE OR REPLACE FUNCTION urumi.store_follows_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    store uuid;
BEGIN
    IF NEW.subject NOT LIKE 'store:%'
       OR NEW.definition NOT IN ('store.provision', 'store.upgrade') THEN
        RETURN NULL;
    END IF;
    store := substr(NEW.subject, 7)::uuid;
    IF NEW.definition = 'store.provision' THEN
        IF NEW.status = 'failed' THEN
            UPDATE urumi.stores SET status = 'failed', updated_at = now()
                WHERE id = store AND status = 'provisioning';
        ELSIF OLD.status = 'failed' AND NEW.status IN ('queued', 'running', 'waiting') THEN
            UPDATE urumi.stores SET status = 'provisioning', updated_at = now()
                WHERE id = store AND status = 'failed';
        END IF;
    ELSIF NEW.definition = 'store.upgrade' THEN
        -- The engine's run error names the step that failed: `step "<name>" failed: …`.
        IF NEW.status = 'failed' AND NEW.error LIKE 'step "rollback\_%' THEN
            UPDATE urumi.stores SET status = 'failed', updated_at = now()
                WHERE id = store AND status = 'ready';
        ELSIF OLD.status = 'failed' AND OLD.error LIKE 'step "rollback\_%'
              AND NEW.status IN ('queued', 'running', 'waiting') THEN
            UPDATE urumi.stores SET status = 'ready', updated_at = now()
                WHERE id = store AND status = 'failed';
        END IF;
    END IF;
    RETURN NULL;
END $$;

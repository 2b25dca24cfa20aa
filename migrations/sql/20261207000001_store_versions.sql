-- Store upgrades: a store records the release channel it follows, the release label it runs
-- (`version`) and the pins it runs (`pins`: the WordPress, MariaDB and WP-CLI images and the
-- WooCommerce version, as JSON). Written when a store is created and by a successful
-- `store.upgrade`; the workers render a store's workloads from `pins`, so a channel moving
-- on never changes a store behind its back.
--
-- Stores created before this migration follow the default channel `stable`; their
-- `version` and `pins` stay NULL ("unrecorded": rendered from `[stores.images]`, exactly as
-- before) until their first upgrade records them. A migration cannot read the deployment's
-- settings, so it does not guess which images those stores run.
ALTER TABLE urumi.stores
    ADD COLUMN channel text NOT NULL DEFAULT 'stable',
    ADD COLUMN version text,
    ADD COLUMN pins jsonb,
    ADD CONSTRAINT stores_pins_is_object CHECK (pins IS NULL OR jsonb_typeof(pins) = 'object'),
    ADD CONSTRAINT stores_version_with_pins CHECK ((version IS NULL) = (pins IS NULL));

-- The fleet's version spread (GROUP BY channel, version over live stores).
CREATE INDEX stores_channel_version ON urumi.stores (channel, version) WHERE status <> 'deleted';

-- An upgrade's pre-upgrade backup follows its run like a backup run's own (failed when the
-- run fails or is cancelled while it is still pending; a complete one stays complete when
-- the upgrade is rolled back and the run fails).
DROP TRIGGER runs_backup_status ON urumi.runs;
CREATE TRIGGER runs_backup_status AFTER UPDATE OF status ON urumi.runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND NEW.definition IN ('store.backup', 'store.upgrade'))
    EXECUTE FUNCTION urumi.backup_follows_run();

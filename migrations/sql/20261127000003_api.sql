-- The control-plane API's tables and the hooks that keep stores and the event log in step.

-- Bearer tokens. Only a SHA-256 of the secret part is stored; the token's id is its public
-- prefix, so a lookup never compares secrets in SQL (the hash is compared in constant time
-- in the API process).
CREATE TABLE urumi.api_tokens (
    id           uuid PRIMARY KEY,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    revoked_by   text
);
-- A token's name is the actor recorded in the audit log, so live names are unique.
CREATE UNIQUE INDEX api_tokens_live_name ON urumi.api_tokens (name) WHERE revoked_at IS NULL;

-- Idempotency keys of create requests: the first request's body hash and its answer. A key is
-- scoped to the actor that sent it.
CREATE TABLE urumi.idempotency_keys (
    actor          text        NOT NULL,
    key            text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash   bytea       NOT NULL,
    response       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
CREATE INDEX idempotency_keys_by_age ON urumi.idempotency_keys (created_at);

-- Keyset pagination orders by id (UUIDv7: time-ordered), newest first.
CREATE INDEX stores_by_status_id ON urumi.stores (status, id DESC);
CREATE INDEX stores_live_by_actor ON urumi.stores (created_by) WHERE status <> 'deleted';
CREATE INDEX runs_by_status_id ON urumi.runs (status, id DESC);
CREATE INDEX runs_by_definition_id ON urumi.runs (definition, id DESC);
CREATE INDEX events_by_actor ON urumi.events (actor, id DESC);
CREATE INDEX events_by_kind ON urumi.events (kind, id DESC);

-- The live stream needs a cursor in commit order. `id` (a sequence) is handed out at insert
-- time, so a lower id can commit after a higher one. `txid` is the inserting transaction's
-- id: every transaction still in flight has a txid >= pg_snapshot_xmin(current snapshot), so
-- events ordered by (txid, id) below that bound form a prefix that never grows in the middle.
ALTER TABLE urumi.events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_by_txid ON urumi.events (txid, id);

-- Wake the API's stream readers once per statement that wrote events.
CREATE FUNCTION urumi.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('urumi_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON urumi.events
    FOR EACH STATEMENT EXECUTE FUNCTION urumi.notify_events();

-- A store follows its provisioning run: failed when the run fails, provisioning again when an
-- operator retries it. (ready, deleting and deleted are set by the workflows' own steps.)
CREATE FUNCTION urumi.store_follows_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    store uuid;
BEGIN
    IF NEW.subject NOT LIKE 'store:%' OR NEW.definition <> 'store.provision' THEN
        RETURN NULL;
    END IF;
    store := substr(NEW.subject, 7)::uuid;
    IF NEW.status = 'failed' THEN
        UPDATE urumi.stores SET status = 'failed', updated_at = now()
            WHERE id = store AND status = 'provisioning';
    ELSIF OLD.status = 'failed' AND NEW.status IN ('queued', 'running', 'waiting') THEN
        UPDATE urumi.stores SET status = 'provisioning', updated_at = now()
            WHERE id = store AND status = 'failed';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER runs_store_status AFTER UPDATE OF status ON urumi.runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.subject LIKE 'store:%')
    EXECUTE FUNCTION urumi.store_follows_run();

-- Every store status change is an event too, so the live stream and the audit log show it.
CREATE FUNCTION urumi.store_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO urumi.events (subject, kind, actor, detail)
    VALUES ('store:' || NEW.id, 'store.' || NEW.status, 'system',
            jsonb_build_object('from', OLD.status, 'to', NEW.status, 'url', NEW.url));
    RETURN NULL;
END $$;
CREATE TRIGGER stores_status_event AFTER UPDATE OF status ON urumi.stores
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION urumi.store_status_event();

-- Stores: one row per store the platform was asked to create. Kept after deletion (status
-- 'deleted') so its audit history stays meaningful.
CREATE TABLE urumi.stores (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug        text        NOT NULL CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    engine      text        NOT NULL,
    plan        text        NOT NULL,
    status      text        NOT NULL DEFAULT 'provisioning'
                CHECK (status IN ('provisioning', 'ready', 'failed', 'deleting', 'deleted')),
    url         text,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    ready_at    timestamptz,
    deleted_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A slug is taken while its store is not deleted.
CREATE UNIQUE INDEX stores_live_slug ON urumi.stores (slug) WHERE status <> 'deleted';
CREATE INDEX stores_by_status ON urumi.stores (status, created_at DESC, id DESC);

-- Each store's resource usage against its quota (issue 11 "Resource usage", issue 14's store
-- view): what the store's ResourceQuota says in `status.used` / `status.hard`, as a worker's
-- `store.usage` run last observed it. One row per store, rewritten by each observation; the row goes
-- with its store (cascade), so the table is as big as the fleet.
CREATE TABLE urumi.store_usage (
    store_id     uuid        PRIMARY KEY REFERENCES urumi.stores (id) ON DELETE CASCADE,
    -- [{"name": "requests.cpu", "used": "250m", "hard": "2", "used_value": 0.25, "hard_value": 2}]
    -- in the quota's order; *_value in base units (cores, bytes, counts), null if unparsable.
    resources    jsonb       NOT NULL CHECK (jsonb_typeof(resources) = 'array'),
    -- When a run last read the quota (whether or not it changed).
    observed_at  timestamptz NOT NULL
);

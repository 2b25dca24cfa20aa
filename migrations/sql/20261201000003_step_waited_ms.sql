-- Time a step spent waiting (polling for readiness or in a retry backoff), in milliseconds,
-- summed over its waits: each restart of a waiting step adds the time since its wait began.
-- The insights read it to split a step's duration into waiting and working. A constant
-- default makes this a catalog-only change (no table rewrite).
ALTER TABLE urumi.steps ADD COLUMN waited_ms bigint NOT NULL DEFAULT 0;

-- Fewer writes per checkpointed step (issue: throughput). Every event insert writes an entry
-- into each index of urumi.events, and step progress (`step.*`, written by workers, several per
-- run) is nearly all of them. The audit filters by actor and by kind need an index only to
-- find *rare* values; step progress is never rare (a walk of the primary key newest-first finds
-- a page of it at once), so those two indexes leave step progress out. The audit query adds
-- the same condition when it filters by actor or by a kind that is not step progress
-- (engine::db::read::events_page_query), so the planner can use them.
DROP INDEX urumi.events_by_actor;
CREATE INDEX events_by_actor ON urumi.events (actor, id DESC) WHERE kind NOT LIKE 'step.%';
DROP INDEX urumi.events_by_kind;
CREATE INDEX events_by_kind ON urumi.events (kind, id DESC) WHERE kind NOT LIKE 'step.%';

-- A step row is updated two or three times in a run's life (started, succeeded, waiting…).
-- With room on its page the update is HOT (no new entry in either index of urumi.steps); at
-- fillfactor 80 about half were not. New pages keep half their space free.
ALTER TABLE urumi.steps SET (fillfactor = 50);

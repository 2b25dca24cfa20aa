-- A subject's runs are read newest first by id (UUIDv7, time-ordered): a subject's runs, the
-- store list's newest run, whether a run is its subject's newest, and /runs?store_id=. One
-- index serves all of them, also under generic plans (its order is the queries' order).
DROP INDEX urumi.runs_by_subject;
CREATE INDEX runs_by_subject_id ON urumi.runs (subject, id DESC);
-- runs_by_status_id (status, id DESC) serves every query by status; nothing orders runs of a
-- status by created_at. Every run update that changes its status writes an entry into each
-- index of the table, so an index no query needs is a cost on every step.
DROP INDEX urumi.runs_by_status;

-- The W3C `traceparent` of the request that started a run (NULL when traces are off or the run
-- was not started inside a traced request). A worker's run and step spans take it as their
-- parent, so a step run hours later by another worker joins the request's trace. A nullable
-- column without a default is a catalog-only change (no table rewrite, no scan).
ALTER TABLE urumi.runs ADD COLUMN trace_context text;

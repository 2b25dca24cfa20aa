-- A store can be suspended (store.suspend@1): its workloads scaled to zero, its storefront
-- answered by the shared suspended page, its volumes, Secrets and database kept.
ALTER TABLE urumi.stores DROP CONSTRAINT stores_status_check;
ALTER TABLE urumi.stores ADD CONSTRAINT stores_status_check
    CHECK (status IN ('provisioning', 'ready', 'failed', 'suspended', 'deleting', 'deleted'));

-- Operations can suspend and resume stores in bulk.
ALTER TABLE urumi.operations DROP CONSTRAINT operations_action_check;
ALTER TABLE urumi.operations ADD CONSTRAINT operations_action_check
    CHECK (action IN ('retry', 'cancel', 'rerun', 'repair', 'delete', 'suspend', 'resume'));

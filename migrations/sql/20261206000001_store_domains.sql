-- Custom domains of stores (store.domains@1): each row is a host the store's Ingress answers
-- besides its own `<slug>.<base_domain>`. The domain is stored lowercased, without a
-- trailing dot (urumi_store::domains::validate), and is unique across all stores: two stores
-- can never share one (the API answers 409 for a domain another store holds).
CREATE TABLE urumi.store_domains (
    store_id   uuid        NOT NULL REFERENCES urumi.stores (id) ON DELETE CASCADE,
    domain     text        NOT NULL CHECK (domain = lower(domain) AND length(domain) <= 253),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, domain)
);
CREATE UNIQUE INDEX store_domains_domain ON urumi.store_domains (domain);

-- A deleted store frees its domains: when its status becomes `deleted` (after its namespace,
-- and so its Ingress, is gone), its rows go in the same statement's transaction, so another
-- store may claim them. A `deleting` store still holds them (its Ingress still exists).
CREATE FUNCTION urumi.deleted_store_frees_domains() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM urumi.store_domains WHERE store_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER stores_deleted_frees_domains AFTER UPDATE OF status ON urumi.stores
    FOR EACH ROW WHEN (NEW.status = 'deleted' AND OLD.status IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION urumi.deleted_store_frees_domains();

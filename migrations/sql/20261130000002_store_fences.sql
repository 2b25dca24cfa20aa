-- A store's namespace is identified by its UID, recorded when a run of the store creates
-- it: a namespace of the same name made later (a reused slug) is never taken for this
-- store's.
ALTER TABLE urumi.stores ADD COLUMN namespace_uid text;

-- `deleted` is final: no write may bring a deleted store back (a late step of a superseded
-- run, a retried old run, a trigger). The statement fails instead.
CREATE FUNCTION urumi.deleted_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'store % is deleted; its status cannot change to %', OLD.id, NEW.status
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER stores_deleted_is_final BEFORE UPDATE OF status ON urumi.stores
    FOR EACH ROW WHEN (OLD.status = 'deleted' AND NEW.status IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION urumi.deleted_is_final();

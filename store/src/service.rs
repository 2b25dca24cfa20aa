//! Asking for store changes: create, delete, repair, suspend, resume, resize, custom domains,
//! back up and restore. Each writes the store row (and its domains or backup), starts its
//! workflow run and records who asked, in one transaction — or refuses with a clear error and
//! writes nothing.

use serde_json::json;
use sqlx::PgConnection;
use urumi_engine::{Engine, NewRun, Who};
use uuid::Uuid;

use super::backups::{self, BackupReason, BackupStatus};
use super::db::{self, Store};
use super::definitions::{
    BACKUP, DELETE, DOMAINS, PROVISION, REPAIR, RESIZE, RESTORE, RESUME, SUSPEND, StoreInput,
};
use super::domains::{self, Checked, MAX_PER_STORE};
use super::engines;
use super::names::{self, slugify};
use super::settings::StoreSettings;
use super::status::StoreStatus;

/// Why a store request was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name cannot become a store address.
    #[error(transparent)]
    InvalidName(#[from] names::Error),
    /// No such plan.
    #[error("{0}")]
    UnknownPlan(String),
    /// No such release channel (the message names the known ones).
    #[error("{0}")]
    UnknownChannel(String),
    /// No such engine (in [`engines::NAMES`]).
    #[error("unknown engine {0:?}; known engines: {known}", known = engines::NAMES.join(", "))]
    UnknownEngine(String),
    /// A live store already uses the slug.
    #[error("the address {0:?} is taken by another store")]
    SlugTaken(String),
    /// No such store.
    #[error("store {0} not found")]
    NotFound(Uuid),
    /// The store was deleted.
    #[error("store {0} is deleted")]
    Deleted(Uuid),
    /// The action does not apply to a store in this status (e.g. suspending a deleting one).
    #[error("store {id} is {status}; only a {needs} store can be {done}")]
    WrongStatus {
        id: Uuid,
        status: StoreStatus,
        /// The statuses that can, in words ("ready or suspended").
        needs: &'static str,
        done: &'static str,
    },
    /// A plan change the store cannot take: its usage is above the new plan's quota, or its
    /// volumes would have to shrink.
    #[error("store {id} does not fit plan {plan}: {}", why.join("; "))]
    DoesNotFit {
        id: Uuid,
        plan: String,
        why: Vec<String>,
    },
    /// No such backup of this store.
    #[error("backup {backup} of store {store} not found")]
    BackupNotFound { store: Uuid, backup: Uuid },
    /// The backup is another store's: a store is only ever restored from its own.
    #[error(
        "backup {backup} belongs to another store, not to store {store}; a store can only be restored from its own backups"
    )]
    BackupOfAnotherStore { store: Uuid, backup: Uuid },
    /// The backup has no archive to restore (pending, failed or pruned).
    #[error("backup {backup} is {status}; only a complete backup can be restored")]
    BackupNotRestorable { backup: Uuid, status: &'static str },
    /// The domain breaks a rule of [`domains::check`].
    #[error(transparent)]
    InvalidDomain(#[from] domains::Error),
    /// Another store holds the domain.
    #[error("the domain {0:?} is taken by another store")]
    DomainTaken(String),
    /// The store already holds [`MAX_PER_STORE`] domains.
    #[error("store {id} already has {max} custom domains, the most a store may have")]
    TooManyDomains { id: Uuid, max: usize },
    /// Removing a domain the store does not hold.
    #[error("store {id} has no custom domain {domain:?}")]
    DomainNotAttached { id: Uuid, domain: String },
    /// The engine refused (e.g. a conflicting active run).
    #[error(transparent)]
    Engine(#[from] urumi_engine::Error),
    /// Postgres failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// A store and the run working on it.
#[derive(Debug, Clone)]
pub struct Requested {
    pub store: Store,
    pub run_id: Uuid,
}

/// The input of a run on `store` as it is now, its domains read in the caller's transaction.
pub(crate) async fn input_of(conn: &mut PgConnection, store: &Store) -> Result<StoreInput, Error> {
    let domains = db::domains(&mut *conn, store.id).await?;
    Ok(StoreInput::of(store, domains))
}

/// Store `id`, locked for the rest of the caller's transaction (two requests on one store
/// take turns); an unknown or deleted store is refused.
pub(crate) async fn locked(conn: &mut PgConnection, id: Uuid) -> Result<Store, Error> {
    let store = db::get_for_update(&mut *conn, id)
        .await?
        .ok_or(Error::NotFound(id))?;
    if store.status == StoreStatus::Deleted {
        return Err(Error::Deleted(id));
    }
    Ok(store)
}

/// Refuses unless `store` is in one of `allowed` (`needs` says which in words, `done` what
/// the action would have made of it).
pub(crate) fn require(
    store: &Store,
    allowed: &[StoreStatus],
    needs: &'static str,
    done: &'static str,
) -> Result<(), Error> {
    if allowed.contains(&store.status) {
        return Ok(());
    }
    Err(Error::WrongStatus {
        id: store.id,
        status: store.status,
        needs,
        done,
    })
}

/// Starts `definition` on `store` with `input`, in `who`'s lane and the caller's transaction.
pub(crate) async fn start(
    conn: &mut PgConnection,
    engine: &Engine,
    definition: &str,
    store: Store,
    input: &StoreInput,
    who: &Who<'_>,
) -> Result<Requested, Error> {
    let run = NewRun::new(definition, super::subject::subject(store.id), json!(input))
        .actor(who.actor)
        .lane(who.lane)
        .owner(who.owner);
    let started = engine.start_run_in(&mut *conn, run).await?;
    Ok(Requested {
        store,
        run_id: started.run_id,
    })
}

/// What a suspend or resume request did.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    /// Its run was started.
    Started(Requested),
    /// The store already is where the action would take it (suspending a suspended store,
    /// resuming a ready one): nothing was started.
    Unchanged(Store),
}

/// Creates a store and starts `store.provision`.
///
/// # Errors
/// [`Error`] — nothing is written when refused.
pub async fn create(
    engine: &Engine,
    settings: &StoreSettings,
    name: &str,
    engine_name: &str,
    plan: Option<&str>,
    actor: &str,
) -> Result<Requested, Error> {
    let mut tx = engine.pool().begin().await?;
    let requested = create_in(&mut tx, engine, settings, name, engine_name, plan, actor).await?;
    tx.commit().await?;
    Ok(requested)
}

/// [`create`] inside the caller's transaction (the API adds its audit entry, idempotency
/// record and cap check to the same commit). Validation happens before any write.
///
/// # Errors
/// [`Error`].
pub async fn create_in(
    tx: &mut PgConnection,
    engine: &Engine,
    settings: &StoreSettings,
    name: &str,
    engine_name: &str,
    plan: Option<&str>,
    actor: &str,
) -> Result<Requested, Error> {
    let slug = slugify(name, &settings.platform_namespace)?;
    if !engines::is_known(engine_name) {
        return Err(Error::UnknownEngine(engine_name.to_owned()));
    }
    let plan_name = plan.unwrap_or(&settings.default_plan).to_owned();
    settings
        .plan(Some(&plan_name))
        .map_err(Error::UnknownPlan)?;
    let (channel, release) = settings.channel(None).map_err(Error::UnknownChannel)?;
    let id = Uuid::now_v7();
    let store = db::insert(
        &mut *tx,
        id,
        name.trim(),
        slug.as_str(),
        engine_name,
        &plan_name,
        actor,
        (&channel, &release.version, &release.pins),
    )
    .await?
    .ok_or_else(|| Error::SlugTaken(slug.to_string()))?;
    // A new store has no custom domains.
    let input = json!(StoreInput::of(&store, Vec::new()));
    let run = NewRun::new(PROVISION, super::subject::subject(id), input).actor(actor);
    let started = engine.start_run_in(&mut *tx, run).await?;
    Ok(Requested {
        store,
        run_id: started.run_id,
    })
}

async fn live<'e>(pool: impl sqlx::PgExecutor<'e>, id: Uuid) -> Result<Store, Error> {
    let store = db::get(pool, id).await?.ok_or(Error::NotFound(id))?;
    if store.status == StoreStatus::Deleted {
        return Err(Error::Deleted(id));
    }
    Ok(store)
}

/// Starts `store.delete` (superseding a provisioning or repair run at its next step
/// boundary) and marks the store `deleting`.
///
/// # Errors
/// [`Error`].
pub async fn delete(engine: &Engine, id: Uuid, actor: &str) -> Result<Requested, Error> {
    let mut tx = engine.pool().begin().await?;
    let requested = delete_in(&mut tx, engine, id, &Who::interactive(actor)).await?;
    tx.commit().await?;
    Ok(requested)
}

/// [`delete`] inside the caller's transaction, the run started in `who`'s lane.
///
/// # Errors
/// [`Error`].
pub async fn delete_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    who: &Who<'_>,
) -> Result<Requested, Error> {
    let store = locked(&mut *tx, id).await?;
    let input = input_of(&mut *tx, &store).await?;
    let started = start(&mut *tx, engine, DELETE, store, &input, who).await?;
    if let Some(now) = db::set_status(&mut *tx, id, StoreStatus::Deleting, None).await? {
        return Err(Error::Deleted(id)).inspect_err(|_| {
            tracing::warn!(store = %id, %now, "store could not be marked deleting");
        });
    }
    let store = db::get(&mut *tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(Requested {
        store,
        run_id: started.run_id,
    })
}

/// Starts `store.repair`: re-apply the desired state and report what had drifted.
///
/// # Errors
/// [`Error`].
pub async fn repair(engine: &Engine, id: Uuid, actor: &str) -> Result<Requested, Error> {
    let mut tx = engine.pool().begin().await?;
    let requested = repair_in(&mut tx, engine, id, &Who::interactive(actor)).await?;
    tx.commit().await?;
    Ok(requested)
}

/// [`repair`] inside the caller's transaction, the run started in `who`'s lane.
///
/// # Errors
/// [`Error`].
pub async fn repair_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    who: &Who<'_>,
) -> Result<Requested, Error> {
    let store = live(&mut *tx, id).await?;
    let input = input_of(&mut *tx, &store).await?;
    start(&mut *tx, engine, REPAIR, store, &input, who).await
}

/// [`suspend_in`] in a transaction of its own, in the interactive lane.
///
/// # Errors
/// As [`suspend_in`].
pub async fn suspend(engine: &Engine, id: Uuid, actor: &str) -> Result<Lifecycle, Error> {
    let mut tx = engine.pool().begin().await?;
    let done = suspend_in(&mut tx, engine, id, &Who::interactive(actor)).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`resume_in`] in a transaction of its own, in the interactive lane.
///
/// # Errors
/// As [`resume_in`].
pub async fn resume(engine: &Engine, id: Uuid, actor: &str) -> Result<Lifecycle, Error> {
    let mut tx = engine.pool().begin().await?;
    let done = resume_in(&mut tx, engine, id, &Who::interactive(actor)).await?;
    tx.commit().await?;
    Ok(done)
}

/// Starts `store.suspend` on a ready store; a suspended store is left as it is
/// ([`Lifecycle::Unchanged`]).
///
/// # Errors
/// [`Error::WrongStatus`] for a store neither ready nor suspended (provisioning, failed,
/// deleting); [`Error::Engine`] with a conflict while another run of the store is active.
pub async fn suspend_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    who: &Who<'_>,
) -> Result<Lifecycle, Error> {
    lifecycle_in(tx, engine, id, who, Move::Suspend).await
}

/// Starts `store.resume` on a suspended store; a ready store is left as it is.
///
/// # Errors
/// As [`suspend_in`], for a store neither suspended nor ready.
pub async fn resume_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    who: &Who<'_>,
) -> Result<Lifecycle, Error> {
    lifecycle_in(tx, engine, id, who, Move::Resume).await
}

#[derive(Clone, Copy)]
enum Move {
    Suspend,
    Resume,
}

async fn lifecycle_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    who: &Who<'_>,
    action: Move,
) -> Result<Lifecycle, Error> {
    use StoreStatus::{Ready, Suspended};
    let (from, to, definition, done) = match action {
        Move::Suspend => (Ready, Suspended, SUSPEND, "suspended"),
        Move::Resume => (Suspended, Ready, RESUME, "resumed"),
    };
    let store = locked(&mut *tx, id).await?;
    if store.status == to {
        return Ok(Lifecycle::Unchanged(store));
    }
    require(&store, &[from], from.as_str(), done)?;
    let mut input = input_of(&mut *tx, &store).await?;
    input.suspended = matches!(action, Move::Suspend);
    let requested = start(&mut *tx, engine, definition, store, &input, who).await?;
    Ok(Lifecycle::Started(requested))
}

/// Moves a store to another plan: records the plan and starts `store.resize`, which applies
/// the new quota, LimitRange and volume sizes and waits for the workloads (not for a
/// suspended store's). The same plan starts nothing ([`Lifecycle::Unchanged`]).
///
/// # Errors
/// [`Error::UnknownPlan`]; [`Error::WrongStatus`] unless the store is ready or suspended;
/// [`Error::DoesNotFit`] when its last observed usage is above the new plan's quota, when the
/// new plan lowers a quota and its usage was never observed, or when a volume would shrink;
/// [`Error::Engine`] with a conflict while another run of the store is active.
pub async fn resize_in(
    tx: &mut PgConnection,
    engine: &Engine,
    settings: &StoreSettings,
    id: Uuid,
    plan_name: &str,
    who: &Who<'_>,
) -> Result<Lifecycle, Error> {
    let plan = settings.plan(Some(plan_name)).map_err(Error::UnknownPlan)?;
    let store = locked(&mut *tx, id).await?;
    require(
        &store,
        &[StoreStatus::Ready, StoreStatus::Suspended],
        "ready or suspended",
        "moved to another plan",
    )?;
    if store.plan == plan_name {
        return Ok(Lifecycle::Unchanged(store));
    }
    let why = misfits(settings, &store, plan_name, plan, &mut *tx).await?;
    if !why.is_empty() {
        return Err(Error::DoesNotFit {
            id,
            plan: plan_name.to_owned(),
            why,
        });
    }
    db::set_plan(&mut *tx, id, plan_name).await?;
    let mut input = input_of(&mut *tx, &store).await?;
    input.plan = plan_name.to_owned();
    let requested = start(&mut *tx, engine, RESIZE, store, &input, who).await?;
    Ok(Lifecycle::Started(requested))
}

/// A change to a store's custom domains.
#[derive(Debug, Clone, Copy)]
pub enum DomainChange<'a> {
    /// Attach the domain (as typed; checked and lowercased here).
    Add(&'a str),
    /// Detach the domain (looked up lowercased).
    Remove(&'a str),
}

/// [`domains_in`] in a transaction of its own, in the interactive lane.
///
/// # Errors
/// As [`domains_in`].
pub async fn domains(
    engine: &Engine,
    settings: &StoreSettings,
    id: Uuid,
    change: DomainChange<'_>,
    actor: &str,
) -> Result<Lifecycle, Error> {
    let mut tx = engine.pool().begin().await?;
    let done = domains_in(
        &mut tx,
        engine,
        settings,
        id,
        change,
        &Who::interactive(actor),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// A [`DomainChange`] once checked.
enum Wanted {
    Add(String),
    OwnHost,
    Remove(String),
}

/// Adds or removes a custom domain of a ready store: the row is written and `store.domains`
/// started with the store's whole domain list (after the change), in the caller's
/// transaction. Adding a domain the store already holds, or its own host, starts nothing
/// ([`Lifecycle::Unchanged`]).
///
/// # Errors
/// [`Error::NotFound`], [`Error::Deleted`]; [`Error::InvalidDomain`] (before any status
/// check: a bad name is bad for any store); [`Error::WrongStatus`] unless the store is ready
/// (a suspended store's site URL cannot be written: its database is scaled down);
/// [`Error::DomainTaken`] when another store holds it; [`Error::TooManyDomains`];
/// [`Error::DomainNotAttached`] removing one it does not hold; [`Error::Engine`] with a
/// conflict while another run of the store is active (the row written is rolled back with
/// the caller's transaction).
pub async fn domains_in(
    tx: &mut PgConnection,
    engine: &Engine,
    settings: &StoreSettings,
    id: Uuid,
    change: DomainChange<'_>,
    who: &Who<'_>,
) -> Result<Lifecycle, Error> {
    let store = locked(&mut *tx, id).await?;
    let own_host = format!("{}.{}", store.slug, settings.base_domain);
    let wanted = match change {
        DomainChange::Add(domain) => {
            match domains::check(domain, &settings.base_domain, &own_host)? {
                Checked::Custom(domain) => Wanted::Add(domain),
                Checked::OwnHost => Wanted::OwnHost,
            }
        }
        DomainChange::Remove(domain) => Wanted::Remove(domains::normalize(domain)),
    };
    require(
        &store,
        &[StoreStatus::Ready],
        "ready",
        "given or relieved of a custom domain",
    )?;
    match wanted {
        Wanted::OwnHost => return Ok(Lifecycle::Unchanged(store)),
        Wanted::Add(domain) => {
            match db::domain_holder(&mut *tx, &domain).await? {
                Some(holder) if holder == id => return Ok(Lifecycle::Unchanged(store)),
                Some(_) => return Err(Error::DomainTaken(domain)),
                None => {}
            }
            if db::domains(&mut *tx, id).await?.len() >= MAX_PER_STORE {
                return Err(Error::TooManyDomains {
                    id,
                    max: MAX_PER_STORE,
                });
            }
            if !db::attach_domain(&mut *tx, id, &domain).await? {
                return Err(Error::DomainTaken(domain));
            }
        }
        Wanted::Remove(domain) => {
            if !db::detach_domain(&mut *tx, id, &domain).await? {
                return Err(Error::DomainNotAttached { id, domain });
            }
        }
    }
    let input = input_of(&mut *tx, &store).await?;
    let requested = start(&mut *tx, engine, DOMAINS, store, &input, who).await?;
    Ok(Lifecycle::Started(requested))
}

/// Why `store` cannot move to `plan`: usage above the new quota, a lowered quota with no
/// usage observed, a volume that would shrink.
async fn misfits(
    settings: &StoreSettings,
    store: &Store,
    plan_name: &str,
    plan: &super::settings::Plan,
    conn: &mut PgConnection,
) -> Result<Vec<String>, Error> {
    use super::usage::parse_quantity;
    let mut why = Vec::new();
    let current = settings.plan(Some(&store.plan)).ok();
    let lower = |new: &str, old: &str| match (parse_quantity(new), parse_quantity(old)) {
        (Some(n), Some(o)) => n < o,
        _ => new != old,
    };
    if let Some(current) = current {
        // The database volume comes from the StatefulSet's volumeClaimTemplates, which
        // Kubernetes never lets change; the uploads volume is a plain PVC: it may grow (where
        // the storage class allows expansion), never shrink.
        if parse_quantity(&plan.db_storage) != parse_quantity(&current.db_storage) {
            why.push(format!(
                "its database volume's size is fixed when it is made ({} → {}: a StatefulSet's volume claim templates cannot change)",
                current.db_storage, plan.db_storage
            ));
        }
        if lower(&plan.wp_storage, &current.wp_storage) {
            why.push(format!(
                "its uploads volume cannot shrink ({} → {})",
                current.wp_storage, plan.wp_storage
            ));
        }
    }
    match super::usage::of_store(&mut *conn, store.id).await? {
        Some(usage) => why.extend(super::usage::misfits(plan_name, plan, &usage)),
        None => {
            let lowered = current.is_none_or(|c| {
                plan.quota_hard()
                    .iter()
                    .zip(c.quota_hard())
                    .any(|((_, new), (_, old))| lower(new, old))
            });
            if lowered {
                why.push(
                    "its usage has not been observed yet, and the plan lowers its quota; wait for the next usage observation ([usage] cron)".to_owned(),
                );
            }
        }
    }
    Ok(why)
}

/// A store and the run that backs it up or restores it, and the backup concerned.
#[derive(Debug, Clone)]
pub struct BackupRequested {
    pub requested: Requested,
    pub backup_id: Uuid,
}

/// Starts `store.backup` of a ready store, recording a `pending` backup with the run (one
/// request, one backup: the row is keyed by the run).
///
/// # Errors
/// [`Error::WrongStatus`] unless the store is ready (a suspended store's database is not
/// running); [`Error::Engine`] with a conflict while another run of the store is active.
pub async fn backup_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    reason: BackupReason,
    who: &Who<'_>,
) -> Result<BackupRequested, Error> {
    let store = locked(&mut *tx, id).await?;
    require(
        &store,
        &[StoreStatus::Ready],
        "ready",
        "backed up (a suspended store's database is not running: resume it first)",
    )?;
    let backup_id = Uuid::now_v7();
    let mut input = input_of(&mut *tx, &store).await?;
    input.backup_id = Some(backup_id);
    let requested = start(&mut *tx, engine, BACKUP, store, &input, who).await?;
    backups::insert(&mut *tx, backup_id, id, requested.run_id, reason, who.actor).await?;
    Ok(BackupRequested {
        requested,
        backup_id,
    })
}

/// Starts `store.restore` of a ready store from one of its own complete backups.
///
/// # Errors
/// [`Error::BackupNotFound`]; [`Error::BackupOfAnotherStore`];
/// [`Error::BackupNotRestorable`] for a backup that is not complete; [`Error::WrongStatus`]
/// unless the store is ready; [`Error::Engine`] with a conflict while another run of the
/// store is active.
pub async fn restore_in(
    tx: &mut PgConnection,
    engine: &Engine,
    id: Uuid,
    backup_id: Uuid,
    who: &Who<'_>,
) -> Result<BackupRequested, Error> {
    let store = locked(&mut *tx, id).await?;
    let backup = backups::get(&mut *tx, backup_id)
        .await?
        .ok_or(Error::BackupNotFound {
            store: id,
            backup: backup_id,
        })?;
    if backup.store_id != id {
        return Err(Error::BackupOfAnotherStore {
            store: id,
            backup: backup_id,
        });
    }
    if backup.status != BackupStatus::Complete {
        return Err(Error::BackupNotRestorable {
            backup: backup_id,
            status: backup.status.as_str(),
        });
    }
    require(&store, &[StoreStatus::Ready], "ready", "restored")?;
    let mut input = input_of(&mut *tx, &store).await?;
    input.backup_id = Some(backup_id);
    let requested = start(&mut *tx, engine, RESTORE, store, &input, who).await?;
    Ok(BackupRequested {
        requested,
        backup_id,
    })
}

//! Asking for a store upgrade: the store onto its channel's (or another channel's) current
//! release. The request records a `pre_upgrade` backup row and starts `store.upgrade@1` in one
//! transaction — or refuses and writes nothing. The run carries its target (the channel's
//! release and pins, read now), so it does not change course when the channel moves on.

use sqlx::PgConnection;
use urumi_engine::{Engine, Who};
use uuid::Uuid;

use super::backups::{self, BackupReason};
use super::db::Store;
use super::definitions::{UPGRADE, UpgradeTarget};
use super::service::{self, Error, Requested};
use super::settings::StoreSettings;
use super::status::StoreStatus;

/// What an upgrade request did.
#[derive(Debug, Clone)]
pub enum Upgrade {
    /// `store.upgrade` was started, with the pre-upgrade backup it makes.
    Started {
        requested: Requested,
        backup_id: Uuid,
        target: UpgradeTarget,
    },
    /// The store already runs the channel's current release with its pins: nothing started.
    Already(Store),
}

/// The release `store` would be upgraded to on `channel` (its own channel for `None`).
///
/// # Errors
/// [`Error::UnknownChannel`].
pub fn target_of(
    settings: &StoreSettings,
    store: &Store,
    channel: Option<&str>,
) -> Result<UpgradeTarget, Error> {
    let (name, release) = settings
        .channel(Some(channel.unwrap_or(&store.channel)))
        .map_err(Error::UnknownChannel)?;
    Ok(UpgradeTarget {
        channel: name,
        version: release.version,
        pins: release.pins,
    })
}

/// Whether `store` already runs `target` (same channel, release and pins).
#[must_use]
pub fn runs(store: &Store, target: &UpgradeTarget) -> bool {
    store.channel == target.channel
        && store.version.as_deref() == Some(target.version.as_str())
        && store.pins.as_ref().is_some_and(|p| p.0 == target.pins)
}

/// Starts `store.upgrade` of a ready store onto `channel`'s current release (its own channel
/// for `None`), recording the `pre_upgrade` backup the run makes first.
///
/// # Errors
/// [`Error::UnknownChannel`]; [`Error::NotFound`], [`Error::Deleted`];
/// [`Error::WrongStatus`] unless the store is ready; [`Error::Engine`] with a conflict while
/// another run of the store is active.
pub async fn upgrade_in(
    tx: &mut PgConnection,
    engine: &Engine,
    settings: &StoreSettings,
    id: Uuid,
    channel: Option<&str>,
    who: &Who<'_>,
) -> Result<Upgrade, Error> {
    let store = service::locked(&mut *tx, id).await?;
    let target = target_of(settings, &store, channel)?;
    service::require(&store, &[StoreStatus::Ready], "ready", "upgraded")?;
    if runs(&store, &target) {
        return Ok(Upgrade::Already(store));
    }
    let backup_id = Uuid::now_v7();
    let mut input = service::input_of(&mut *tx, &store).await?;
    input.backup_id = Some(backup_id);
    input.upgrade = Some(target.clone());
    let requested = service::start(&mut *tx, engine, UPGRADE, store, &input, who).await?;
    backups::insert(
        &mut *tx,
        backup_id,
        id,
        requested.run_id,
        BackupReason::PreUpgrade,
        who.actor,
    )
    .await?;
    Ok(Upgrade::Started {
        requested,
        backup_id,
        target,
    })
}

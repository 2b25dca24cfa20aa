//! A store's status and the moves between statuses: the store state machine, in one place.
//!
//! ```text
//!   provisioning ──► ready ⇄ suspended     (provisioning ⇄ failed follow the provisioning
//!        │  ▲           │       │          run, by trigger: migrations/…_api.sql;
//!        ▼  │           ▼       │          ready → suspended: store.suspend's last step,
//!       failed ─────► deleting ◄┘          suspended → ready: store.resume's)
//!                        │
//!                        ▼
//!                     deleted   (final: a trigger refuses any way out)
//! ```
//!
//! Every status write names the status it moves to, and the database applies it only from a
//! status that may precede it ([`StoreStatus::entered_from`]), so a late step of a
//! superseded or cancelled run cannot mark a deleting or deleted store `ready`.

use std::fmt;

use serde::Serialize;

/// Where a store is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreStatus {
    /// Its provisioning run is under way (or being retried).
    Provisioning,
    /// Provisioned, and its storefront answered.
    Ready,
    /// Its provisioning run failed; an operator can retry it.
    Failed,
    /// Suspended (`store.suspend`): workloads at zero replicas, the storefront answered by
    /// the suspended page; volumes, Secrets and database kept. `store.resume` brings it back.
    Suspended,
    /// Its deletion run is under way.
    Deleting,
    /// Gone from the cluster; the row stays for its history. Final.
    Deleted,
}

impl StoreStatus {
    /// Every status.
    pub const ALL: [StoreStatus; 6] = [
        StoreStatus::Provisioning,
        StoreStatus::Ready,
        StoreStatus::Failed,
        StoreStatus::Suspended,
        StoreStatus::Deleting,
        StoreStatus::Deleted,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StoreStatus::Provisioning => "provisioning",
            StoreStatus::Ready => "ready",
            StoreStatus::Failed => "failed",
            StoreStatus::Suspended => "suspended",
            StoreStatus::Deleting => "deleting",
            StoreStatus::Deleted => "deleted",
        }
    }

    /// The status stored as `s`.
    fn named(s: &str) -> Result<Self, String> {
        StoreStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown store status {s:?}"))
    }

    /// The statuses a write may move a store from into `self` (the workflows' writes; the
    /// provisioning/failed moves are the trigger's).
    #[must_use]
    pub fn entered_from(self) -> &'static [StoreStatus] {
        use StoreStatus::{Deleted, Deleting, Failed, Provisioning, Ready, Suspended};
        match self {
            // Provisioning ends ready; a resume brings a suspended store back.
            Ready => &[Provisioning, Ready, Suspended],
            // Only a ready store is suspended (suspending a suspended one changes nothing).
            Suspended => &[Ready, Suspended],
            Deleting => &[Provisioning, Ready, Failed, Suspended, Deleting],
            Deleted => &[Deleting, Deleted],
            Provisioning => &[Failed, Provisioning],
            Failed => &[Provisioning, Failed],
        }
    }
}

impl fmt::Display for StoreStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for StoreStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        StoreStatus::named(&s)
    }
}

/// Read from the `status` text column: `query_as!` names it (`status AS "status: StoreStatus"`),
/// and a value that names no status is a decode error.
impl sqlx::Type<sqlx::Postgres> for StoreStatus {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for StoreStatus {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let s = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
        Ok(StoreStatus::named(s)?)
    }
}

#[cfg(test)]
mod tests {
    use super::StoreStatus;

    #[test]
    fn names_round_trip_and_deleted_is_entered_only_from_deleting() {
        for s in StoreStatus::ALL {
            assert_eq!(StoreStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert!(StoreStatus::try_from("gone".to_owned()).is_err());
        for s in StoreStatus::ALL {
            assert!(
                !s.entered_from().contains(&StoreStatus::Deleted) || s == StoreStatus::Deleted,
                "{s} may not follow deleted"
            );
        }
        assert!(
            !StoreStatus::Ready
                .entered_from()
                .contains(&StoreStatus::Deleting)
        );
        // Suspension moves between ready and suspended only.
        assert_eq!(
            StoreStatus::Suspended.entered_from(),
            [StoreStatus::Ready, StoreStatus::Suspended]
        );
        assert!(
            !StoreStatus::Suspended
                .entered_from()
                .contains(&StoreStatus::Deleting)
        );
    }
}

//! A store's runs have the subject `store:<id>`: the one place in Rust that spells it. SQL
//! that joins runs to stores spells it too: the `store_follows_run` trigger
//! (`migrations/sql/…_api.sql`) and the store list's newest-run join (`api::routes::stores`).

use uuid::Uuid;

const PREFIX: &str = "store:";

/// The run subject of store `id`.
#[must_use]
pub fn subject(id: Uuid) -> String {
    format!("{PREFIX}{id}")
}

/// The store id of a `store:<uuid>` subject; `None` for any other subject.
#[must_use]
pub fn store_of(subject: &str) -> Option<Uuid> {
    subject
        .strip_prefix(PREFIX)
        .and_then(|s| Uuid::try_parse(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_subject_round_trips_and_others_are_not_stores() {
        let id = Uuid::now_v7();
        assert_eq!(store_of(&subject(id)), Some(id));
        assert_eq!(store_of("token:1"), None);
        assert_eq!(store_of("store:not-a-uuid"), None);
    }
}

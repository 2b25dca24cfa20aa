//! `urumictl stores drift`'s text: what the newest finished drift sweep (`store.sweep`) found —
//! a summary line, then the drifted stores (their drifted objects, the repair run started for
//! each) and the stores the sweep could not judge. The run's output is read as the worker
//! wrote it (`urumi_store::sweep::SweepOutput`; the API serves it as a run's `output`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::output::{Table, cell, opt, time};

/// A sweep run's output.
#[derive(Debug, Deserialize)]
pub struct Sweep {
    #[serde(default)]
    pub repair: bool,
    pub checked: usize,
    pub drifted: Vec<Drifted>,
    pub failed: Vec<Failed>,
}

/// One drifted store.
#[derive(Debug, Deserialize)]
pub struct Drifted {
    pub store_id: Uuid,
    pub slug: String,
    pub objects: Vec<String>,
    pub repair_run_id: Option<Uuid>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One store the sweep could not judge.
#[derive(Debug, Deserialize)]
pub struct Failed {
    pub store_id: Uuid,
    pub error: String,
}

/// The text of `stores drift` for sweep run `run` that finished at `finished`.
#[must_use]
pub fn text(run: &str, finished: Option<&DateTime<Utc>>, s: &Sweep) -> String {
    let mut out = format!(
        "sweep {run}  (finished {}, repair {})\n{} ready stores checked: {} drifted, {} failed\n",
        time(finished),
        if s.repair { "on" } else { "off" },
        s.checked,
        s.drifted.len(),
        s.failed.len(),
    );
    if !s.drifted.is_empty() {
        let mut t = Table::new(&["STORE", "SLUG", "REPAIR RUN", "OBJECTS"]);
        for d in &s.drifted {
            t.row(vec![
                d.store_id.to_string(),
                d.slug.clone(),
                opt(d.repair_run_id),
                d.objects.join(", "),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
        for d in s.drifted.iter().filter(|d| d.note.is_some()) {
            out.push_str(&format!("{}: {}\n", d.slug, opt(d.note.as_ref())));
        }
    }
    if !s.failed.is_empty() {
        let mut t = Table::new(&["FAILED STORE", "ERROR"]);
        for f in &s.failed {
            t.row(vec![f.store_id.to_string(), cell(&f.error, 200)]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sweep_prints_its_summary_its_drifted_stores_with_their_repairs_and_its_failures() {
        let (a, b, f, r) = (
            "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-00000000000b",
            "00000000-0000-4000-8000-00000000000f",
            "00000000-0000-4000-8000-0000000000aa",
        );
        let s: Sweep = serde_json::from_value(json!({
            "repair": true,
            "checked": 12,
            "drifted": [
                { "store_id": a, "slug": "shop-a", "repair_run_id": r,
                  "objects": ["NetworkPolicy/allow-dns", "ResourceQuota/store-quota"] },
                { "store_id": b, "slug": "shop-b", "repair_run_id": null,
                  "objects": ["Deployment/wordpress"],
                  "note": "not repaired: the store has an active run x (store.delete)" },
            ],
            "failed": [{ "store_id": f, "error": "namespace store-f does not exist" }],
        }))
        .unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let got = text("run-1", Some(&at), &s);
        assert_eq!(
            got.lines().map(str::trim_end).collect::<Vec<_>>(),
            [
                "sweep run-1  (finished 2026-12-01 10:00:00, repair on)",
                "12 ready stores checked: 2 drifted, 1 failed",
                "",
                "STORE                                 SLUG    REPAIR RUN                            OBJECTS",
                "00000000-0000-4000-8000-00000000000a  shop-a  00000000-0000-4000-8000-0000000000aa  NetworkPolicy/allow-dns, ResourceQuota/store-quota",
                "00000000-0000-4000-8000-00000000000b  shop-b  -                                     Deployment/wordpress",
                "shop-b: not repaired: the store has an active run x (store.delete)",
                "",
                "FAILED STORE                          ERROR",
                "00000000-0000-4000-8000-00000000000f  namespace store-f does not exist",
            ],
            "{got}"
        );
    }

    #[test]
    fn a_clean_dry_sweep_is_one_summary() {
        let s: Sweep =
            serde_json::from_value(json!({ "checked": 3, "drifted": [], "failed": [] })).unwrap();
        assert_eq!(
            text("r", None, &s),
            "sweep r  (finished -, repair off)\n3 ready stores checked: 0 drifted, 0 failed\n"
        );
    }

    #[test]
    fn what_the_worker_writes_is_what_this_reads() {
        use urumi_store::sweep::{DriftedStore, SweepOutput};
        let written = SweepOutput {
            repair: false,
            checked: 1,
            drifted: vec![DriftedStore {
                store_id: Uuid::nil(),
                slug: "s".into(),
                objects: vec!["Service/web".into()],
                repair_run_id: None,
                note: None,
            }],
            failed: vec![],
        };
        let read: Sweep = serde_json::from_value(serde_json::to_value(&written).unwrap()).unwrap();
        assert_eq!(read.drifted[0].objects, ["Service/web"]);
        assert_eq!((read.checked, read.repair), (1, false));
    }
}

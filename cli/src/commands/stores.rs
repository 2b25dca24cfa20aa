//! `urumictl stores …`: list (following `next_cursor` with `--all`), create, show, delete,
//! repair, suspend, resume, resize, backup, restore, upgrade (each with `--dry-run`: the
//! cluster plan), a store's backups, a store's custom domains (`domains add|remove`, also with
//! `--dry-run`),
//! a store's runs, its resource usage against its quota, and the fleet's drift (the newest
//! drift sweep's findings).

use clap::Subcommand;
use uuid::Uuid;

use super::{Ctx, checked, more_hint, one_of, pages};
use crate::client::{enums, types};
use crate::commands::runs::run_table;
use crate::output::{self, Table, opt, time};
use crate::problem::{Failure, call};

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoresCmd {
    /// List stores, newest first.
    List {
        /// Only stores in this status.
        #[arg(long, value_parser = one_of::<types::StoreStatus>(enums::STORE_STATUS))]
        status: Option<types::StoreStatus>,
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
    /// Create a store and start provisioning it; prints the store's and the run's ids.
    /// Needs admin.
    Create {
        /// The store's name (its address is derived from it).
        name: String,
        /// A plan from the platform's settings; the default plan when absent.
        #[arg(long)]
        plan: Option<String>,
        /// The software the store runs.
        #[arg(long, default_value = "woocommerce",
              value_parser = one_of::<types::StoreEngine>(enums::STORE_ENGINE))]
        engine: types::StoreEngine,
        /// Makes the create safe to repeat: the same key and body answer the first result.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// One store: status, URL, timings and its current run.
    Show {
        /// The store's id.
        id: Uuid,
    },
    /// Start deleting a store (its namespace and everything in it). Needs admin.
    Delete {
        /// The store's id.
        id: Uuid,
        /// Check and print what would be deleted; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-apply a store's desired state. Needs operator.
    Repair {
        /// The store's id.
        id: Uuid,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Suspend a ready store: workloads to zero, the storefront answers "suspended"; volumes,
    /// database and Secrets kept. Needs operator.
    Suspend {
        /// The store's id.
        id: Uuid,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Resume a suspended store (ready again once its storefront answers). Needs operator.
    Resume {
        /// The store's id.
        id: Uuid,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move a ready or suspended store to another plan (`urumictl plans` lists them);
    /// refused when its usage would not fit. Needs operator.
    Resize {
        /// The store's id.
        id: Uuid,
        /// The plan to move to.
        #[arg(long)]
        plan: String,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Back a ready store up (database dump and uploads; size and SHA-256 recorded; backups
    /// beyond the plan's retention pruned). Needs operator.
    Backup {
        /// The store's id.
        id: Uuid,
        /// Check and print what would be written; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A store's backups, newest first: status, reason, size, checksum, when.
    Backups {
        /// The store's id.
        id: Uuid,
    },
    /// Restore a ready store from one of its own complete backups (`urumictl stores backups
    /// ID` lists them): web tier down, checksum verified, database and uploads replaced,
    /// storefront checked. Needs operator.
    Restore {
        /// The store's id.
        id: Uuid,
        /// The backup to restore from.
        #[arg(long)]
        backup: Uuid,
        /// Check and print what would be written; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A ready store's custom domains: add or remove one (`stores show` lists them).
    Domains {
        #[command(subcommand)]
        cmd: DomainsCmd,
    },
    /// Upgrade a ready store to a release channel's current release (`urumictl channels`
    /// lists them): pre-upgrade backup, new images, database update, storefront check —
    /// rolled back automatically on failure. Needs operator.
    Upgrade {
        /// The store's id.
        id: Uuid,
        /// The channel to move to (default: the store's own).
        #[arg(long)]
        channel: Option<String>,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A store's resource usage against its quota (resource, used, hard, %), as a worker
    /// last observed it (the worker's `[usage] cron`).
    Usage {
        /// The store's id.
        id: Uuid,
    },
    /// The drifted stores, as the newest finished drift sweep found them (the worker's
    /// `[sweep] cron`): each with the objects a repair would re-create or change, and the
    /// repair run started for it when the sweep repairs.
    Drift,
    /// A store's runs, newest first (a page; `--all` for every one).
    Runs {
        /// The store's id.
        id: Uuid,
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
}

/// `urumictl stores domains …`.
#[derive(Debug, Subcommand)]
pub enum DomainsCmd {
    /// Add a custom domain: the store's Ingress answers it (TLS from cert-manager when the
    /// platform issues certificates) and WordPress's site URL becomes the store's primary
    /// domain (its oldest). Point the domain's DNS at the platform's ingress first. Needs
    /// operator.
    Add {
        /// The store's id.
        id: Uuid,
        /// The domain, e.g. shop.example.com.
        domain: String,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a custom domain (the site URL moves to the next oldest, else the platform's
    /// host). Needs operator.
    Remove {
        /// The store's id.
        id: Uuid,
        /// The domain to remove.
        domain: String,
        /// Check and print what would change; start nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a store command.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(cmd: StoresCmd, ctx: &Ctx) -> Result<(), Failure> {
    let api = &ctx.api.client;
    match cmd {
        StoresCmd::List { status, all } => {
            let (items, next_cursor) = pages(all, |cursor, limit| async move {
                let mut req = api.list_stores();
                if let Some(s) = status {
                    req = req.status(s);
                }
                if let Some(c) = cursor {
                    req = req.cursor(c);
                }
                if let Some(l) = limit {
                    req = req.limit(l);
                }
                let page = call(req.send()).await?;
                Ok((page.items, page.next_cursor))
            })
            .await?;
            if ctx.json {
                return output::print_json(&types::StorePage { items, next_cursor });
            }
            store_table(&items).print();
            more_hint(ctx, next_cursor.as_ref());
        }
        StoresCmd::Create {
            name,
            plan,
            engine,
            idempotency_key,
        } => {
            let body = types::CreateStore {
                engine,
                name: checked("store name", name)?,
                plan: plan.map(|p| checked("plan", p)).transpose()?,
            };
            let mut req = api.create_store().body(body);
            if let Some(key) = idempotency_key {
                req = req.idempotency_key(checked::<types::CreateStoreIdempotencyKey>(
                    "idempotency key",
                    key,
                )?);
            }
            accepted(ctx, &call(req.send()).await?)?;
        }
        StoresCmd::Show { id } => {
            let store = call(api.get_store().id(id).send()).await?;
            if ctx.json {
                return output::print_json(&store);
            }
            output::print_fields(&store_fields(&store));
        }
        StoresCmd::Delete { id, dry_run } => {
            let a = call(api.delete_store().id(id).dry_run(dry_run).send()).await?;
            acted(ctx, &a, "delete")?;
        }
        StoresCmd::Repair { id, dry_run } => {
            let a = call(api.repair_store().id(id).dry_run(dry_run).send()).await?;
            acted(ctx, &a, "repair")?;
        }
        StoresCmd::Suspend { id, dry_run } => {
            let a = call(api.suspend_store().id(id).dry_run(dry_run).send()).await?;
            acted(ctx, &a, "suspend")?;
        }
        StoresCmd::Resume { id, dry_run } => {
            let a = call(api.resume_store().id(id).dry_run(dry_run).send()).await?;
            acted(ctx, &a, "resume")?;
        }
        StoresCmd::Resize { id, plan, dry_run } => {
            let body = types::ResizeStore {
                plan: checked("plan", plan)?,
            };
            let req = api.resize_store().id(id).dry_run(dry_run).body(body);
            acted(ctx, &call(req.send()).await?, "resize")?;
        }
        StoresCmd::Backup { id, dry_run } => {
            let a = call(api.backup_store().id(id).dry_run(dry_run).send()).await?;
            acted(ctx, &a, "backup")?;
        }
        StoresCmd::Backups { id } => {
            let list = call(api.list_store_backups().id(id).send()).await?;
            if ctx.json {
                return output::print_json(&list);
            }
            print!("{}", backups_text(&list.items));
        }
        StoresCmd::Restore {
            id,
            backup,
            dry_run,
        } => {
            let body = types::RestoreStore { backup_id: backup };
            let req = api.restore_store().id(id).dry_run(dry_run).body(body);
            acted(ctx, &call(req.send()).await?, "restore")?;
        }
        StoresCmd::Domains {
            cmd:
                DomainsCmd::Add {
                    id,
                    domain,
                    dry_run,
                },
        } => {
            let body = types::AddDomain {
                domain: checked("domain", domain)?,
            };
            let req = api.add_store_domain().id(id).dry_run(dry_run).body(body);
            acted(ctx, &call(req.send()).await?, DOMAIN_ADD)?;
        }
        StoresCmd::Domains {
            cmd:
                DomainsCmd::Remove {
                    id,
                    domain,
                    dry_run,
                },
        } => {
            let req = api
                .remove_store_domain()
                .id(id)
                .domain(domain)
                .dry_run(dry_run);
            acted(ctx, &call(req.send()).await?, "domain remove")?;
        }
        StoresCmd::Upgrade {
            id,
            channel,
            dry_run,
        } => {
            let body = types::UpgradeStore {
                channel: channel.map(|c| checked("channel", c)).transpose()?,
            };
            let req = api.upgrade_store().id(id).dry_run(dry_run).body(body);
            acted(ctx, &call(req.send()).await?, "upgrade")?;
        }
        StoresCmd::Usage { id } => {
            let usage = call(api.get_store_usage().id(id).send()).await?;
            if ctx.json {
                return output::print_json(&usage);
            }
            print!("{}", usage_text(&usage));
        }
        StoresCmd::Drift => {
            let newest = call(
                api.list_runs()
                    .kind(types::RunKind::StoreSweep)
                    .status(types::RunStatus::Succeeded)
                    .limit(1_u64)
                    .send(),
            )
            .await?;
            let Some(run) = newest.items.first() else {
                if ctx.json {
                    return output::print_json(&serde_json::Value::Null);
                }
                print!("{NO_SWEEP}");
                return Ok(());
            };
            let detail = call(api.get_run().id(run.id).send()).await?;
            let found = detail.output.unwrap_or_default();
            if ctx.json {
                return output::print_json(&found);
            }
            let found: super::drift::Sweep = serde_json::from_value(
                serde_json::to_value(&found).unwrap_or_default(),
            )
            .map_err(|e| Failure::Other(format!("the sweep's output is not understood: {e}")))?;
            print!(
                "{}",
                super::drift::text(&run.id.to_string(), run.finished_at.as_ref(), &found)
            );
        }
        StoresCmd::Runs { id, all } => {
            let (items, next_cursor) = pages(all, |cursor, limit| async move {
                let mut req = api.list_store_runs().id(id);
                if let Some(c) = cursor {
                    req = req.cursor(c);
                }
                if let Some(l) = limit {
                    req = req.limit(l);
                }
                let page = call(req.send()).await?;
                Ok((page.items, page.next_cursor))
            })
            .await?;
            if ctx.json {
                return output::print_json(&types::RunPage { items, next_cursor });
            }
            run_table(&items).print();
            more_hint(ctx, next_cursor.as_ref());
        }
    }
    Ok(())
}

/// What `stores drift` says before any sweep has finished.
const NO_SWEEP: &str =
    "no drift sweep has finished yet (the worker sweeps on its `[sweep] cron`)\n";

/// `store <id>  (name, status)` and `run <id>  (kind, status)`: what a create, delete or
/// repair started.
fn accepted(ctx: &Ctx, a: &types::StoreAccepted) -> Result<(), Failure> {
    if ctx.json {
        return output::print_json(a);
    }
    output::print_fields(&[
        (
            "store",
            format!("{}  ({}, {})", a.store.id, a.store.name, a.store.status),
        ),
        (
            "run",
            format!("{}  ({}, {})", a.run.id, a.run.kind, a.run.status),
        ),
    ]);
    Ok(())
}

/// The action name of `stores domains add` (its `already` reads differently).
const DOMAIN_ADD: &str = "domain add";

/// What a store action did, as printed: the store and its run; or, when nothing was
/// started, why — with a dry run's cluster plan.
fn action_text(a: &types::StoreAction, action: &str) -> String {
    let mut out = format!(
        "store  {}  ({}, {})\n",
        a.store.id, a.store.name, a.store.status
    );
    if let Some(run) = &a.run {
        out.push_str(&format!(
            "run    {}  ({}, {})\n",
            run.id, run.kind, run.status
        ));
    }
    match a.not_started {
        Some(types::NotStartedReason::Already) if action == DOMAIN_ADD => {
            out.push_str("nothing to do: the store already answers at that domain\n");
        }
        Some(types::NotStartedReason::Already) => {
            out.push_str(&format!(
                "nothing to do: the store already is {}\n",
                a.store.status
            ));
        }
        Some(types::NotStartedReason::DryRun) => {
            if let Some(plan) = &a.cluster_plan {
                out.push_str(&super::ops::plan_state_line(plan));
                out.push('\n');
            }
            if let Some(sp) = &a.plan {
                let id = a.store.id.to_string();
                for line in super::ops::store_plan_lines(&id, sp, action) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            out.push_str("dry run: nothing was started\n");
        }
        None => {}
    }
    out
}

fn acted(ctx: &Ctx, a: &types::StoreAction, action: &str) -> Result<(), Failure> {
    if ctx.json {
        return output::print_json(a);
    }
    print!("{}", action_text(a, action));
    Ok(())
}

/// The backups table, or `no backups yet`.
fn backups_text(items: &[types::Backup]) -> String {
    if items.is_empty() {
        return "no backups yet (`urumictl stores backup ID` makes one)\n".to_owned();
    }
    let mut t = Table::new(&[
        "ID",
        "STATUS",
        "REASON",
        "SIZE",
        "SHA256",
        "CREATED",
        "COMPLETED",
    ]);
    for b in items {
        t.row(vec![
            b.id.to_string(),
            b.status.to_string(),
            b.reason.to_string(),
            opt(b.size_bytes.map(size)),
            opt(b
                .sha256
                .as_ref()
                .map(|s| format!("{}…", &s[..s.len().min(12)]))),
            time(Some(&b.created_at)),
            time(b.completed_at.as_ref()),
        ]);
    }
    t.render()
}

/// Bytes in binary units (`1.5 MiB`).
fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss, reason = "a display value")]
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The usage table and when it was observed, or `not observed yet`.
fn usage_text(u: &types::StoreUsage) -> String {
    let Some(at) = &u.observed_at else {
        return "not observed yet (the worker reads quotas on its `[usage] cron`)\n".to_owned();
    };
    let mut t = Table::new(&["RESOURCE", "USED", "HARD", "%"]);
    for r in &u.resources {
        t.row(vec![
            r.name.clone(),
            r.used.clone(),
            r.hard.clone(),
            opt(r.fraction.map(|f| format!("{:.0}%", f * 100.0))),
        ]);
    }
    format!("{}observed {}\n", t.render(), time(Some(at)))
}

fn store_table(stores: &[types::Store]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "STATUS", "PLAN", "RUN", "CREATED", "URL"]);
    for s in stores {
        let run = s
            .current_run
            .as_ref()
            .map(|r| format!("{} {}", r.kind, r.status));
        t.row(vec![
            s.id.to_string(),
            s.name.clone(),
            s.status.to_string(),
            s.plan.clone(),
            opt(run),
            time(Some(&s.timings.created_at)),
            opt(s.url.as_ref()),
        ]);
    }
    t
}

fn store_fields(s: &types::Store) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", s.id.to_string()),
        ("name", s.name.clone()),
        ("slug", s.slug.clone()),
        ("engine", s.engine.to_string()),
        ("plan", s.plan.clone()),
        (
            "release",
            format!(
                "{} {}",
                s.channel,
                s.version.as_deref().unwrap_or("(unrecorded)")
            ),
        ),
        ("status", s.status.to_string()),
        ("url", opt(s.url.as_ref())),
        (
            "domains",
            if s.domains.is_empty() {
                output::NONE.to_owned()
            } else {
                s.domains.join(", ")
            },
        ),
        ("created_by", s.created_by.clone()),
        ("created", time(Some(&s.timings.created_at))),
        ("ready", time(s.timings.ready_at.as_ref())),
        ("deleted", time(s.timings.deleted_at.as_ref())),
        (
            "to_ready",
            opt(s.timings.seconds_to_ready.map(|secs| format!("{secs:.1}s"))),
        ),
    ];
    match &s.current_run {
        Some(r) => {
            fields.push(("run", format!("{}  ({}, {})", r.id, r.kind, r.status)));
            if let Some(e) = &r.error {
                fields.push(("run_error", output::cell(e, 200)));
            }
        }
        None => fields.push(("run", output::NONE.to_owned())),
    }
    fields
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: StoresCmd,
    }

    #[test]
    fn domains_add_and_remove_parse_their_store_domain_and_dry_run() {
        let id = "0190a000-0000-7000-8000-000000000001";
        let cli =
            Cli::try_parse_from(["stores", "domains", "add", id, "shop.example.com"]).unwrap();
        assert!(matches!(
            cli.cmd,
            StoresCmd::Domains { cmd: DomainsCmd::Add { domain, dry_run: false, .. } }
                if domain == "shop.example.com"
        ));
        let cli = Cli::try_parse_from([
            "stores",
            "domains",
            "remove",
            id,
            "shop.example.com",
            "--dry-run",
        ])
        .unwrap();
        assert!(matches!(
            cli.cmd,
            StoresCmd::Domains {
                cmd: DomainsCmd::Remove { dry_run: true, .. }
            }
        ));
        assert!(Cli::try_parse_from(["stores", "domains", "add", id]).is_err());
    }

    #[test]
    fn show_lists_the_custom_domains() {
        let a = answer(&serde_json::json!({}));
        let fields = store_fields(&a.store);
        assert!(fields.contains(&("domains", output::NONE.to_owned())));
        let mut store = a.store;
        store.domains = vec!["shop.example.com".into(), "www.example.org".into()];
        assert!(
            store_fields(&store)
                .contains(&("domains", "shop.example.com, www.example.org".to_owned()))
        );
    }

    fn answer(v: &serde_json::Value) -> types::StoreAction {
        let mut body = serde_json::json!({
            "store": {
                "id": "0190a000-0000-7000-8000-000000000001",
                "name": "Nap Shop", "slug": "nap-shop", "engine": "woocommerce",
                "plan": "starter", "channel": "stable", "status": "ready", "created_by": "t",
                "timings": { "created_at": "2026-12-01T10:00:00Z" },
            }
        });
        for (k, val) in v.as_object().unwrap() {
            body[k] = val.clone();
        }
        serde_json::from_value(body).expect("a StoreAction")
    }

    #[test]
    fn a_suspend_dry_run_prints_its_plan_and_that_nothing_started() {
        let a = answer(&serde_json::json!({
            "not_started": "dry_run",
            "cluster_plan": { "run_id": "0190a000-0000-7000-8000-0000000000ff", "state": "ready" },
            "plan": { "objects": [
                { "kind": "Deployment", "name": "wordpress", "change": "update", "fields": ["/spec/replicas"] },
                { "kind": "Service", "name": "store-suspended", "change": "create", "fields": [] },
                { "kind": "Namespace", "name": "store-nap-shop", "change": "unchanged", "fields": [] },
            ]},
        }));
        assert_eq!(
            action_text(&a, "suspend"),
            "store  0190a000-0000-7000-8000-000000000001  (Nap Shop, ready)\n\
             cluster plan: ready (run 0190a000-0000-7000-8000-0000000000ff; a server-side dry run, nothing was written)\n\
             store 0190a000-0000-7000-8000-000000000001:\n  \
             ~ Deployment/wordpress  /spec/replicas\n  \
             + Service/store-suspended\n  \
             1 unchanged\n\
             dry run: nothing was started\n"
        );
    }

    #[test]
    fn backups_print_as_a_table_with_sizes_and_short_checksums() {
        let items: Vec<types::Backup> = serde_json::from_value(serde_json::json!([
            { "id": "0190a000-0000-7000-8000-0000000000b2", "store_id": "0190a000-0000-7000-8000-000000000001",
              "run_id": "0190a000-0000-7000-8000-0000000000c2", "status": "complete", "reason": "manual",
              "storage": "pvc", "size_bytes": 5_452_595, "sha256": "ab".repeat(32), "requested_by": "t",
              "created_at": "2026-12-01T10:00:00Z", "completed_at": "2026-12-01T10:01:00Z" },
            { "id": "0190a000-0000-7000-8000-0000000000b1", "store_id": "0190a000-0000-7000-8000-000000000001",
              "run_id": "0190a000-0000-7000-8000-0000000000c1", "status": "failed", "reason": "scheduled",
              "requested_by": "t", "created_at": "2026-12-01T09:00:00Z" },
        ]))
        .unwrap();
        let text = backups_text(&items);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].contains("complete") && lines[1].contains("5.2 MiB"),
            "{text}"
        );
        assert!(lines[1].contains("abababababab…"), "{text}");
        assert!(
            lines[2].contains("failed") && lines[2].contains("scheduled"),
            "{text}"
        );
        assert_eq!(
            backups_text(&[]),
            "no backups yet (`urumictl stores backup ID` makes one)\n"
        );
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
    }

    #[test]
    fn a_started_run_and_an_unchanged_store_print_what_happened() {
        let started = answer(&serde_json::json!({
            "run": {
                "id": "0190a000-0000-7000-8000-00000000000a", "kind": "store.suspend",
                "status": "queued", "created_by": "t", "created_at": "2026-12-01T10:00:00Z",
            },
        }));
        assert!(
            action_text(&started, "suspend").ends_with(
                "run    0190a000-0000-7000-8000-00000000000a  (store.suspend, queued)\n"
            )
        );
        let domains = answer(&serde_json::json!({
            "run": {
                "id": "0190a000-0000-7000-8000-00000000000b", "kind": "store.domains",
                "status": "queued", "created_by": "t", "created_at": "2026-12-01T10:00:00Z",
            },
        }));
        assert!(
            action_text(&domains, DOMAIN_ADD).ends_with(
                "run    0190a000-0000-7000-8000-00000000000b  (store.domains, queued)\n"
            )
        );
        let already = answer(&serde_json::json!({ "not_started": "already" }));
        assert!(
            action_text(&already, DOMAIN_ADD)
                .ends_with("nothing to do: the store already answers at that domain\n")
        );
        assert!(
            action_text(&already, "resume")
                .ends_with("nothing to do: the store already is ready\n")
        );
    }
}

//! `urumictl plans`: the plans a store can be created on (`stores create --plan`), with
//! their quota and volume sizes; the default one is marked.

use super::Ctx;
use crate::output::{self, Table};
use crate::problem::{Failure, call};

/// Lists the plans.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(ctx: &Ctx) -> Result<(), Failure> {
    let list = call(ctx.api.client.list_plans().send()).await?;
    if ctx.json {
        return output::print_json(&list);
    }
    let mut t = Table::new(&[
        "NAME", "DEFAULT", "PODS", "CPU", "MEMORY", "PVCS", "STORAGE", "DB", "WP",
    ]);
    for p in &list.items {
        t.row(vec![
            p.name.clone(),
            if p.default { "yes" } else { "" }.to_owned(),
            p.pods.clone(),
            format!("{} (limit {})", p.requests_cpu, p.limits_cpu),
            format!("{} (limit {})", p.requests_memory, p.limits_memory),
            p.pvcs.clone(),
            p.requests_storage.clone(),
            p.db_storage.clone(),
            p.wp_storage.clone(),
        ]);
    }
    t.print();
    Ok(())
}

//! `urumictl channels`: the release channels (`stores upgrade --channel`) with their current
//! release and pins, the default one marked; then the fleet's version spread — how many live
//! stores run each release of each channel, the current one marked.

use super::Ctx;
use crate::output::{self, Table};
use crate::problem::{Failure, call};

/// Lists the channels and the version spread.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(ctx: &Ctx) -> Result<(), Failure> {
    let list = call(ctx.api.client.list_channels().send()).await?;
    if ctx.json {
        return output::print_json(&list);
    }
    let mut t = Table::new(&[
        "CHANNEL",
        "DEFAULT",
        "VERSION",
        "WORDPRESS",
        "MARIADB",
        "WP-CLI",
        "WOOCOMMERCE",
    ]);
    for c in &list.items {
        t.row(vec![
            c.name.clone(),
            if c.default { "yes" } else { "" }.to_owned(),
            c.version.clone(),
            c.wordpress.clone(),
            c.mariadb.clone(),
            c.wp_cli.clone(),
            c.woocommerce.clone(),
        ]);
    }
    t.print();
    println!();
    let mut v = Table::new(&["CHANNEL", "VERSION", "STORES", "CURRENT"]);
    for row in &list.versions {
        v.row(vec![
            row.channel.clone(),
            row.version.clone().unwrap_or_else(|| "(unrecorded)".into()),
            row.stores.to_string(),
            if row.current { "yes" } else { "" }.to_owned(),
        ]);
    }
    v.print();
    Ok(())
}

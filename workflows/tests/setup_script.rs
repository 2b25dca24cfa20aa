//! The store setup script, run twice against a fake `wp` that keeps state: the first run
//! builds the shop, the second changes nothing.

use std::path::Path;
use std::process::Command;

fn run_setup(state: &Path, bin: &Path, wp_path: &Path) -> String {
    let out = Command::new("sh")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/store-setup.sh"
        ))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("FAKE_WP_STATE", state)
        .env("WP_PATH", wp_path)
        .env("STORE_URL", "http://shop.stores.localhost")
        .env("STORE_TITLE", "Shop")
        .env("STORE_ADMIN_USER", "urumi-admin")
        .env("STORE_ADMIN_EMAIL", "admin@shop.stores.localhost")
        .env("STORE_ADMIN_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(state.join("changes")).unwrap_or_default()
}

#[test]
fn the_setup_script_builds_the_shop_once_and_a_rerun_changes_nothing() {
    let tmp = std::env::temp_dir().join(format!("urumi-setup-{}", std::process::id()));
    let (state, bin, wp_path) = (tmp.join("state"), tmp.join("bin"), tmp.join("html"));
    for d in [&state, &bin, &wp_path.join("wp-includes")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(wp_path.join("wp-includes/version.php"), "<?php\n").unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake-wp.sh"),
        bin.join("wp"),
    )
    .unwrap();

    let first = run_setup(&state, &bin, &wp_path);
    let first: Vec<&str> = first.lines().collect();
    assert_eq!(
        first,
        [
            "core install",
            "plugin install woocommerce",
            "plugin activate woocommerce",
            "option update woocommerce_coming_soon no",
            "install pages",
            "enable cod",
            "add flat_rate",
            "create product URUMI-TSHIRT",
            "create product URUMI-MUG",
            "create product URUMI-CAP",
        ]
    );
    let second = run_setup(&state, &bin, &wp_path);
    assert_eq!(
        second.lines().count(),
        first.len(),
        "the second run changed something: {second}"
    );
    assert_eq!(
        std::fs::read_dir(state.join("products")).unwrap().count(),
        3,
        "no duplicate products"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

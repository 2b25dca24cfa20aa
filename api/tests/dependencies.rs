//! The API never links Kubernetes: `cargo tree` of `urumi-api`'s normal dependencies names
//! no `kube*` or `k8s-openapi` crate. The store domain it needs is `urumi-store`; the steps'
//! code, which talks to the cluster, is `urumi-workflows`, for workers only.

use std::process::Command;

/// The package names (`name vX.Y.Z`, one a line) in `package`'s tree of normal dependencies.
/// Panics if cargo cannot produce it: the check must never pass by not running.
fn normal_dependencies(package: &str) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--manifest-path",
            manifest,
            "-p",
            package,
        ])
        .args(["-e", "normal", "--prefix", "none"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("{package} v"))),
        "the tree of {package} starts with it: {lines:?}"
    );
    lines
}

fn kube_crates(tree: &[String]) -> Vec<&str> {
    let mut found: Vec<&str> = tree
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("kube") || l.starts_with("k8s-openapi"))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

#[test]
fn the_api_links_neither_kube_nor_k8s_openapi() {
    let api = normal_dependencies("urumi-api");
    assert!(
        api.iter().any(|l| l.starts_with("urumi-store v")),
        "the API gets its store domain from urumi-store: {api:?}"
    );
    assert_eq!(kube_crates(&api), Vec::<&str>::new());
}

#[test]
fn the_check_sees_kube_where_it_is_linked() {
    // The same check on the crate with the steps' code finds kube: a tree in which it could
    // not see kube would make the test above pass for nothing.
    let workflows = normal_dependencies("urumi-workflows");
    let found = kube_crates(&workflows);
    assert!(found.iter().any(|l| l.starts_with("kube v")), "{found:?}");
    assert!(
        found.iter().any(|l| l.starts_with("k8s-openapi v")),
        "{found:?}"
    );
}

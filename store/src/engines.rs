//! The store engines this build knows, by name: what a create request may name and what a
//! store row's `engine` may hold. Their code (objects to render, answers to judge) is
//! `urumi_workflows::store::engines`, whose `BUILT_IN` serves exactly these names (a test
//! there checks it).

/// WooCommerce (WordPress + WooCommerce on MariaDB).
pub const WOOCOMMERCE: &str = "woocommerce";

/// The engine of runs whose input names none (started before inputs carried the engine).
pub const DEFAULT: &str = WOOCOMMERCE;

/// Every engine a store can be created with, in order.
pub const NAMES: &[&str] = &[WOOCOMMERCE];

/// True when `name` is an engine a store can be created with (names are exact).
#[must_use]
pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woocommerce_is_known_and_the_default_and_names_are_exact() {
        assert_eq!(NAMES, ["woocommerce"]);
        assert!(is_known(DEFAULT));
        assert!(!is_known("WooCommerce"));
        assert!(!is_known("magento"));
    }
}

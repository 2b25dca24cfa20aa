//! A store's custom domains: which names a store may be reached at besides its own host
//! `<slug>.<base_domain>`, checked before anything is written ([`check`], a pure function).
//!
//! The rules, each a variant of [`Error`] that names it:
//! - lowercased first; at most 253 characters; no trailing dot (write `shop.example.com`,
//!   not `shop.example.com.`); no wildcard; not an IP address;
//! - RFC 1123 labels: 1–63 characters of `a-z`, `0-9` and `-`, neither first nor last a `-`
//!   (internationalised names in their punycode form, `xn--…`); at least two labels; the
//!   top-level label not all digits;
//! - not the platform's base domain nor under it, except the store's own host, which every
//!   store already answers at ([`Checked::OwnHost`]: nothing to add).
//!
//! Across stores a domain is unique (`urumi.store_domains`' unique index; the service
//! answers [`crate::service::Error::DomainTaken`]), and a store holds at most
//! [`MAX_PER_STORE`].
//!
//! The *primary* domain ([`primary`]) is the oldest custom domain still attached, else the
//! store's own host: the URL WordPress is told it lives at (`home`, `siteurl`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The most custom domains one store may hold.
pub const MAX_PER_STORE: usize = 10;
/// The longest domain (RFC 1123, without the trailing dot).
pub const MAX_LENGTH: usize = 253;
/// The longest label.
pub const MAX_LABEL: usize = 63;

/// Why a name is not a domain a store may take; each names its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the domain is empty")]
    Empty,
    #[error("the domain is {0} characters long; a domain is at most 253 (RFC 1123)")]
    TooLong(usize),
    #[error("write the domain without its trailing dot ({0:?})")]
    TrailingDot(String),
    #[error("{0:?} is a wildcard; add each domain by its own name")]
    Wildcard(String),
    #[error("{0:?} is an IP address, not a domain")]
    IpAddress(String),
    #[error("{0:?} has one label; a domain needs at least two (e.g. shop.example.com)")]
    OneLabel(String),
    #[error("the label {label:?} of {domain:?} must be 1 to 63 characters (RFC 1123)")]
    LabelLength { domain: String, label: String },
    #[error(
        "the label {label:?} of {domain:?} may hold only a-z, 0-9 and '-' (RFC 1123; internationalised names in punycode, xn--…)"
    )]
    LabelCharacters { domain: String, label: String },
    #[error("the label {label:?} of {domain:?} must not start or end with '-' (RFC 1123)")]
    LabelHyphen { domain: String, label: String },
    #[error("the top-level label {tld:?} of {domain:?} is all digits; a domain's TLD is not")]
    NumericTld { domain: String, tld: String },
    #[error(
        "{domain:?} is under the platform's domain {base:?}; a store may use only its own host there ({own})"
    )]
    PlatformDomain {
        domain: String,
        base: String,
        own: String,
    },
}

/// What a valid name is for this store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A custom domain (lowercased), to attach.
    Custom(String),
    /// The store's own host `<slug>.<base_domain>`: it is always routed, nothing to add.
    OwnHost,
}

/// The lowercased form of `domain` as stored and looked up (`DELETE …/domains/{domain}`
/// finds `Shop.Example.com` as `shop.example.com`).
#[must_use]
pub fn normalize(domain: &str) -> String {
    domain.to_ascii_lowercase()
}

/// Checks `domain` for a store whose own host is `own_host` on a platform whose base domain
/// is `base_domain`.
///
/// # Errors
/// [`Error`], naming the first rule broken.
pub fn check(domain: &str, base_domain: &str, own_host: &str) -> Result<Checked, Error> {
    let d = normalize(domain);
    if d.is_empty() {
        return Err(Error::Empty);
    }
    if d.ends_with('.') {
        return Err(Error::TrailingDot(d));
    }
    if d.contains('*') {
        return Err(Error::Wildcard(d));
    }
    let bracketed = d.trim_start_matches('[').trim_end_matches(']');
    if d.parse::<Ipv4Addr>().is_ok() || bracketed.parse::<Ipv6Addr>().is_ok() {
        return Err(Error::IpAddress(d));
    }
    if d.len() > MAX_LENGTH {
        return Err(Error::TooLong(d.len()));
    }
    let labels: Vec<&str> = d.split('.').collect();
    for label in &labels {
        let bad = |make: fn(String, String) -> Error| Err(make(d.clone(), (*label).to_owned()));
        if label.is_empty() || label.len() > MAX_LABEL {
            return bad(|domain, label| Error::LabelLength { domain, label });
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad(|domain, label| Error::LabelCharacters { domain, label });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad(|domain, label| Error::LabelHyphen { domain, label });
        }
    }
    if labels.len() < 2 {
        return Err(Error::OneLabel(d));
    }
    let tld = labels[labels.len() - 1];
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::NumericTld {
            domain: d.clone(),
            tld: tld.to_owned(),
        });
    }
    let base = normalize(base_domain);
    if d == normalize(own_host) {
        return Ok(Checked::OwnHost);
    }
    if d == base || d.ends_with(&format!(".{base}")) {
        return Err(Error::PlatformDomain {
            domain: d,
            base,
            own: normalize(own_host),
        });
    }
    Ok(Checked::Custom(d))
}

/// The store's primary host: its oldest custom domain (`domains` is oldest first, as
/// `urumi.store_domains` lists them and run inputs carry them), else its own host.
#[must_use]
pub fn primary<'a>(domains: &'a [String], own_host: &'a str) -> &'a str {
    domains.first().map_or(own_host, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "stores.example.net";
    const OWN: &str = "acme.stores.example.net";

    fn check(d: &str) -> Result<Checked, Error> {
        super::check(d, BASE, OWN)
    }

    #[test]
    fn a_custom_domain_is_accepted_lowercased() {
        assert_eq!(
            check("Shop.ACME.com"),
            Ok(Checked::Custom("shop.acme.com".into()))
        );
        assert_eq!(
            check("xn--bcher-kva.example"),
            Ok(Checked::Custom("xn--bcher-kva.example".into()))
        );
        assert_eq!(check("a-b.c1.io"), Ok(Checked::Custom("a-b.c1.io".into())));
    }

    #[test]
    fn the_stores_own_host_is_nothing_to_add() {
        assert_eq!(check("ACME.stores.example.net"), Ok(Checked::OwnHost));
    }

    #[test]
    fn the_platform_domain_and_other_hosts_under_it_are_refused() {
        for d in [
            BASE,
            "other.stores.example.net",
            "x.acme.stores.example.net",
        ] {
            assert!(
                matches!(check(d), Err(Error::PlatformDomain { .. })),
                "{d}: {:?}",
                check(d)
            );
        }
        // A name that merely ends with the same letters is not under it.
        assert!(matches!(
            check("mystores.example.net"),
            Ok(Checked::Custom(_))
        ));
    }

    #[test]
    fn each_broken_rule_is_named() {
        assert_eq!(check(""), Err(Error::Empty));
        assert!(matches!(
            check("shop.example.com."),
            Err(Error::TrailingDot(_))
        ));
        assert!(matches!(check("*.example.com"), Err(Error::Wildcard(_))));
        assert!(matches!(check("10.0.0.1"), Err(Error::IpAddress(_))));
        assert!(matches!(check("::1"), Err(Error::IpAddress(_))));
        assert!(matches!(check("[2001:db8::1]"), Err(Error::IpAddress(_))));
        assert!(matches!(check("localhost"), Err(Error::OneLabel(_))));
        assert!(matches!(
            check("shop..example.com"),
            Err(Error::LabelLength { .. })
        ));
        let long = format!("{}.com", "a".repeat(64));
        assert!(matches!(check(&long), Err(Error::LabelLength { .. })));
        assert!(matches!(
            check("shop_1.example.com"),
            Err(Error::LabelCharacters { .. })
        ));
        assert!(matches!(
            check("bücher.example"),
            Err(Error::LabelCharacters { .. })
        ));
        assert!(matches!(
            check("shop .example.com"),
            Err(Error::LabelCharacters { .. })
        ));
        assert!(matches!(
            check("-shop.example.com"),
            Err(Error::LabelHyphen { .. })
        ));
        assert!(matches!(
            check("shop-.example.com"),
            Err(Error::LabelHyphen { .. })
        ));
        assert!(matches!(
            check("shop.example.123"),
            Err(Error::NumericTld { .. })
        ));
    }

    #[test]
    fn a_domain_is_at_most_253_characters() {
        let label = "a".repeat(63);
        let ok = format!("{label}.{label}.{label}.{}", "b".repeat(61)); // 253
        assert_eq!(ok.len(), 253);
        assert!(matches!(check(&ok), Ok(Checked::Custom(_))));
        let too_long = format!("c{ok}");
        assert_eq!(check(&too_long), Err(Error::TooLong(254)));
    }

    #[test]
    fn messages_name_the_rule() {
        let msg = check("shop.example.123").unwrap_err().to_string();
        assert!(
            msg.contains("top-level label") && msg.contains("digits"),
            "{msg}"
        );
        let msg = check("other.stores.example.net").unwrap_err().to_string();
        assert!(
            msg.contains("platform's domain") && msg.contains(OWN),
            "{msg}"
        );
    }

    #[test]
    fn the_primary_host_is_the_oldest_custom_domain_else_the_own_host() {
        assert_eq!(primary(&[], OWN), OWN);
        let domains = ["b.example.com".to_owned(), "a.example.com".to_owned()];
        assert_eq!(primary(&domains, OWN), "b.example.com");
    }
}

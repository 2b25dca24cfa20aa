//! Store names and slugs.
//!
//! `name` is what the user typed; the slug is a DNS-1123 label derived from it: 3–40
//! characters of `[a-z0-9-]`, starting with a letter, not ending with a dash. Reserved slugs
//! (`api`, `dashboard`, `www`, `admin`, `kube-*`, and the platform's own namespace) are
//! refused. The store's namespace is `store-<slug>`.

use std::fmt;

/// Why a name cannot become a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Empty or longer than 100 characters.
    #[error("a store name must be 1 to 100 characters, got {0}")]
    Length(usize),
    /// Fewer than 3 usable characters once reduced to `[a-z0-9-]`.
    #[error(
        "{name:?} gives the address {slug:?}, shorter than 3 characters; use more letters or digits"
    )]
    TooShort { name: String, slug: String },
    /// The slug would start with a digit.
    #[error("{name:?} gives the address {slug:?}, which must start with a letter")]
    LeadingDigit { name: String, slug: String },
    /// The slug is reserved for the platform.
    #[error("the address {slug:?} is reserved; choose another name")]
    Reserved { slug: String },
}

/// A validated store slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The store's namespace, `store-<slug>`.
    #[must_use]
    pub fn namespace(&self) -> String {
        format!("store-{}", self.0)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const RESERVED: [&str; 5] = ["api", "dashboard", "www", "admin", "urumi"];

/// Derives and checks the slug of `name`. `platform_namespace` is refused too.
///
/// # Errors
/// [`Error`] naming what is wrong.
pub fn slugify(name: &str, platform_namespace: &str) -> Result<Slug, Error> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > 100 {
        return Err(Error::Length(chars));
    }
    let mut slug = String::with_capacity(trimmed.len());
    for c in trimmed.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_owned();
    if slug.len() > 40 {
        slug.truncate(40);
        slug = slug.trim_end_matches('-').to_owned();
    }
    if slug.len() < 3 {
        return Err(Error::TooShort {
            name: name.to_owned(),
            slug,
        });
    }
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Error::LeadingDigit {
            name: name.to_owned(),
            slug,
        });
    }
    if RESERVED.contains(&slug.as_str()) || slug.starts_with("kube-") || slug == platform_namespace
    {
        return Err(Error::Reserved { slug });
    }
    Ok(Slug(slug))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(name: &str) -> Result<String, Error> {
        slugify(name, "urumi-system").map(|s| s.0)
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(slug("Bob's Bikes!").unwrap(), "bob-s-bikes");
        assert_eq!(slug("  ACME   Store  ").unwrap(), "acme-store");
        assert_eq!(slug("Café Déjà Vu").unwrap(), "caf-d-j-vu");
        assert_eq!(slug("shop2go").unwrap(), "shop2go");
    }

    #[test]
    fn long_names_are_cut_to_forty_without_a_trailing_dash() {
        let s = slug(&format!("{}-{}", "a".repeat(39), "tail")).unwrap();
        assert_eq!(s, "a".repeat(39));
        let s = slug(&"word ".repeat(20)).unwrap();
        assert!(s.len() <= 40 && !s.ends_with('-'), "{s}");
    }

    #[test]
    fn names_that_cannot_become_a_label_are_refused_with_a_reason() {
        assert_eq!(slug("").unwrap_err(), Error::Length(0));
        assert!(matches!(slug("!!"), Err(Error::TooShort { .. })));
        assert!(matches!(slug("ab"), Err(Error::TooShort { .. })));
        assert!(matches!(slug("42 shop"), Err(Error::LeadingDigit { .. })));
        assert!(matches!(slug(&"x".repeat(101)), Err(Error::Length(101))));
        assert_eq!(
            slug("7up").unwrap_err().to_string(),
            "\"7up\" gives the address \"7up\", which must start with a letter"
        );
    }

    #[test]
    fn reserved_slugs_are_refused() {
        for name in [
            "API",
            "www",
            "Admin",
            "dashboard",
            "kube-system",
            "Kube Proxy",
            "urumi-system",
        ] {
            assert!(matches!(slug(name), Err(Error::Reserved { .. })), "{name}");
        }
    }
}

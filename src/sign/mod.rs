//! Who made an image: signatures found beside it, verified offline against a Sigstore trusted
//! root. The pull stage fetches the material ([`Material`]); the `signature` check judges it.
//!
//! What is verified today: cosign keyed signatures (`expect.signature.key`), stored under the
//! `sha256-<hex>.sig` tag, each with its Rekor v1 entry (SET, and the entry's body matched to
//! the signature, key and payload). Keyless (Fulcio) signatures, Sigstore bundles in OCI 1.1
//! referrers and provenance attestations are not verified yet, and a spec asking for them is
//! refused when it is read.

pub mod cosign;
pub mod fulcio;
pub mod rekor;
pub mod trusted_root;

pub use trusted_root::TrustedRoot;

/// What was found beside an image, and the root it is judged against.
#[derive(Debug)]
pub struct Material {
    pub root: TrustedRoot,
    /// Where tdg looked, for a failure that found nothing.
    pub looked: String,
    pub found: Vec<cosign::Found>,
    /// The digest the signatures must sign: what the reference resolved to.
    pub subject: crate::digest::Digest,
}

/// Whether signatures were fetched for the spec's checks.
#[derive(Debug, Default)]
pub enum State {
    #[default]
    NotAsked,
    Fetched(Material),
    /// The lookup itself failed (the registry, the trusted root).
    Failed(String),
}

/// Whether the embedded production root is old enough to warn about on `today` (Unix days).
pub fn root_is_stale(root: &TrustedRoot, now: std::time::SystemTime) -> bool {
    if !root.origin.starts_with("the embedded") {
        return false;
    }
    let taken =
        humantime::parse_rfc3339_weak(&format!("{}T00:00:00Z", trusted_root::PRODUCTION_DATE))
            .unwrap_or(now);
    now.duration_since(taken)
        .is_ok_and(|d| d > std::time::Duration::from_secs(365 * 86400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_embedded_root_goes_stale_after_a_year() {
        let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
        let production = TrustedRoot::production();
        assert!(!root_is_stale(&production, at("2026-06-01T00:00:00Z")));
        assert!(root_is_stale(&production, at("2026-12-01T00:00:00Z")));
        let mut own = production.clone();
        own.origin = "/etc/tdg/trusted_root.json".into();
        assert!(!root_is_stale(&own, at("2030-01-01T00:00:00Z")));
    }
}

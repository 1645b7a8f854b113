//! Who made an image: signatures found beside it, verified offline against a Sigstore trusted
//! root. The pull stage fetches the material ([`Material`]); the `signature` check judges it.
//!
//! Verified: cosign signatures stored under the `sha256-<hex>.sig` tag, keyed or keyless, each
//! with its Rekor v1 entry ([`cosign`], [`rekor`], [`fulcio`]) or, for a key the spec says
//! signs without a log, none; attestations under `sha256-<hex>.att` for such a key; and
//! Sigstore bundles found as OCI 1.1 referrers, holding DSSE envelopes: cosign 3's signatures
//! and build-provenance attestations, logged in Rekor v1 or v2 ([`bundle`], [`inclusion`]),
//! timed by RFC 3161 responses ([`timestamp`]).

pub mod bundle;
pub mod cosign;
pub mod fulcio;
pub mod inclusion;
pub mod rekor;
pub mod sct;
pub mod timestamp;
pub mod trusted_root;

pub use trusted_root::TrustedRoot;

/// What was found beside an image, and the root it is judged against.
#[derive(Debug)]
pub struct Material {
    pub root: TrustedRoot,
    /// Where tdg looked, for a failure that found nothing.
    pub looked: String,
    pub found: Vec<cosign::Found>,
    /// DSSE envelopes under cosign's `sha256-<hex>.att` tag (attestations without bundles).
    pub attestations: Vec<cosign::Found>,
    /// Sigstore bundles among the image's referrers.
    pub bundles: Vec<Referred>,
    /// The digest the signatures must sign: what the reference resolved to.
    pub subject: crate::digest::Digest,
}

/// A Sigstore bundle found as a referrer: the referrer's descriptor and manifest, and the
/// bundle it holds.
#[derive(Debug, Clone)]
pub struct Referred {
    pub referrer: crate::oci::registry::Referrer,
    pub manifest: Vec<u8>,
    pub layer: crate::oci::manifest::Descriptor,
    pub bundle: Vec<u8>,
}

impl Referred {
    /// The referrer's digest, short, for messages.
    pub fn short(&self) -> &str {
        &self.referrer.digest[..19.min(self.referrer.digest.len())]
    }
}

/// Whether signatures were fetched for the spec's checks.
#[derive(Debug, Default)]
pub enum State {
    #[default]
    NotAsked,
    Fetched(Box<Material>),
    /// The lookup itself failed (the registry, the trusted root).
    Failed(String),
}

/// Whether the embedded production root is old enough to warn about on `today` (Unix days).
pub fn root_is_stale(root: &TrustedRoot, now: std::time::SystemTime) -> bool {
    if !root.embedded {
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
        let own = TrustedRoot::parse(&production.raw, "/etc/tdg/trusted_root.json").unwrap();
        assert!(!root_is_stale(&own, at("2030-01-01T00:00:00Z")));
    }
}

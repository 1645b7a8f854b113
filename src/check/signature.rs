//! The `signature` check (`expect.signature`): at least one signature found beside the image
//! verifies, by the spec's cosign key or keyless by its identity and issuer, with its Rekor
//! entry against the trusted root, and signs the digest the reference resolved to. A failure lists each signature and the step it
//! failed at. The material is fetched before judging (`pull::signatures`).

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Kind, Planned};
use crate::sign::{bundle, cosign, State};
use crate::spec::{SignatureExpectation, Spec};

pub const NAME: &str = "signature";

#[derive(Debug)]
pub struct Check(pub SignatureExpectation);

pub fn plan(spec: &Spec) -> Vec<Arc<dyn Planned>> {
    spec.expect
        .signature
        .clone()
        .map(|s| Arc::new(Check(s)) as Arc<dyn Planned>)
        .into_iter()
        .collect()
}

impl Planned for Check {
    fn name(&self) -> String {
        NAME.into()
    }

    fn kind(&self) -> Kind {
        Kind::Signature
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        match s.signatures {
            State::Fetched(m) => judge(&self.0, m),
            State::Failed(e) => Err(Verdict::Error(e.clone())),
            State::NotAsked => Err(Verdict::Error("signatures were not fetched".into())),
        }
    }
}

/// Whether the material holds a signature the expectation accepts: the one judgement
/// `expect.signature` and `build.signatures` share.
pub fn judge(expect: &SignatureExpectation, m: &crate::sign::Material) -> Judged {
    let key;
    let matcher;
    let (signer, by) = match expect {
        SignatureExpectation::Key { key: path, written } => {
            let text = crate::located::read_capped(path, 64 << 10)
                .map_err(|e| Verdict::Error(format!("key {written}: {e:#}")))?;
            key = cosign::public_key(&text)
                .map_err(|e| Verdict::Error(format!("key {written}: {e}")))?;
            (cosign::Signer::Key(&key), written.clone())
        }
        SignatureExpectation::Keyless { identity, issuer } => {
            matcher = |s: &str| identity.matches(s);
            let shown = format!("{identity} from {issuer}");
            let signer = cosign::Signer::Keyless {
                identity: &matcher,
                shown: identity.to_string(),
                issuer,
            };
            (signer, shown)
        }
    };
    let mut why = Vec::new();
    for (i, f) in m.found.iter().enumerate() {
        match cosign::verify(f, &signer, &m.subject, &m.root) {
            Ok(_) => return stale(m),
            Err(e) => why.push(format!(
                "signature {} (layer {}): {e}",
                i + 1,
                f.layer.digest.short()
            )),
        }
    }
    for b in &m.bundles {
        match bundle::verify(&b.bundle, &m.subject, &signer, &m.root) {
            Ok(st) if st.predicate_type == bundle::COSIGN_SIGN_PREDICATE => return stale(m),
            // An attestation of something else (provenance) is not a signature.
            Ok(_) => {}
            Err(e) => why.push(format!("bundle {}: {e}", b.short())),
        }
    }
    if why.is_empty() {
        return fail(format!("no signature of {} ({})", m.subject, m.looked));
    }
    fail(format!(
        "no signature verifies for {by}: {}",
        why.join("; ")
    ))
}

/// A pass, with a warning when the embedded trusted root is over a year old.
pub(super) fn stale(m: &crate::sign::Material) -> Judged {
    if crate::sign::root_is_stale(&m.root, std::time::SystemTime::now()) {
        return Err(Verdict::Warn(format!(
            "verified with {}, which is over a year old; pass --trusted-root with a current trusted_root.json",
            m.root.origin
        )));
    }
    Ok(())
}

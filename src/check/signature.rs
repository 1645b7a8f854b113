//! The `signature` check (`expect.signature`): at least one signature found beside the image
//! verifies, by the spec's cosign key or keyless by its identity and issuer, with its Rekor
//! entry against the trusted root, and signs the digest the reference resolved to. A failure lists each signature and the step it
//! failed at. The material is fetched before judging (`pull::signatures`).

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
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

    fn needs(&self) -> Needs {
        Needs {
            referrers: true,
            ..Needs::default()
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        match s.signatures {
            State::Fetched(m) => judge(&self.0, m),
            State::Failed(e) => Err(Verdict::Error(e.clone())),
            State::NotAsked => Err(Verdict::Error("signatures were not fetched".into())),
        }
    }
}

/// Who a [`SignatureExpectation`] asks for, holding what the verifiers' [`cosign::Signer`]
/// borrows (the key's bytes, the identity matcher). Shared by `signature`, `provenance` and
/// `build.signatures`.
pub(crate) struct Policy<'e> {
    expect: &'e SignatureExpectation,
    key: Vec<u8>,
    /// For messages: the key as written, or `identity from issuer`.
    pub by: String,
}

impl<'e> Policy<'e> {
    pub fn of(expect: &'e SignatureExpectation) -> Result<Self, Verdict> {
        Ok(match expect {
            SignatureExpectation::Key { key, written, .. } => {
                let text = crate::located::read_capped(key, 64 << 10)
                    .map_err(|e| Verdict::Error(format!("key {written}: {e:#}")))?;
                let key = cosign::public_key(&text)
                    .map_err(|e| Verdict::Error(format!("key {written}: {e}")))?;
                Policy {
                    expect,
                    key,
                    by: written.clone(),
                }
            }
            SignatureExpectation::Keyless { identity, issuer } => Policy {
                expect,
                key: Vec::new(),
                by: format!("{identity} from {issuer}"),
            },
        })
    }

    /// What to say after the reasons `why`: with a key that must be logged, and a signature
    /// that had no log entry, how to accept one.
    pub fn hint(&self, why: &[String]) -> &'static str {
        let keyed_logged = matches!(self.expect, SignatureExpectation::Key { tlog: true, .. });
        if keyed_logged && why.iter().any(|w| w.contains(cosign::NO_LOG)) {
            " (if this key signs without a log, as cosign --tlog-upload=false does, add `tlog: false` beside `key:`)"
        } else {
            ""
        }
    }

    /// A pass; with a warning when the verdict rested on an embedded trusted root over a year
    /// old (a key without a log reads no root).
    pub fn pass(&self, m: &crate::sign::Material) -> Judged {
        match self.expect {
            SignatureExpectation::Key { tlog: false, .. } => Ok(()),
            _ => stale(m),
        }
    }

    /// Runs `f` with the signer the verifiers take.
    pub fn with<R>(&self, f: impl FnOnce(&cosign::Signer<'_>) -> R) -> R {
        match self.expect {
            SignatureExpectation::Key { tlog, .. } => f(&cosign::Signer::Key {
                spki: &self.key,
                tlog: *tlog,
            }),
            SignatureExpectation::Keyless { identity, issuer } => {
                let matcher = |s: &str| identity.matches(s);
                f(&cosign::Signer::Keyless {
                    identity: &matcher,
                    shown: identity.to_string(),
                    issuer,
                })
            }
        }
    }
}

/// Whether the material holds a signature the expectation accepts: the one judgement
/// `expect.signature` and `build.signatures` share.
pub fn judge(expect: &SignatureExpectation, m: &crate::sign::Material) -> Judged {
    let policy = Policy::of(expect)?;
    let mut why = Vec::new();
    let verified = policy.with(|signer| {
        for (i, f) in m.found.iter().enumerate() {
            match cosign::verify(f, signer, &m.subject, &m.root) {
                Ok(_) => return true,
                Err(e) => why.push(format!(
                    "signature {} (layer {}): {e}",
                    i + 1,
                    f.layer.digest.short()
                )),
            }
        }
        for b in &m.bundles {
            match bundle::verify(&b.bundle, &m.subject, signer, &m.root) {
                Ok(st) if st.predicate_type == bundle::COSIGN_SIGN_PREDICATE => return true,
                // An attestation of something else (provenance) is not a signature.
                Ok(_) => {}
                Err(e) => why.push(format!("bundle {}: {e}", b.short())),
            }
        }
        false
    });
    if verified {
        return policy.pass(m);
    }
    if why.is_empty() {
        return fail(format!("no signature of {} ({})", m.subject, m.looked));
    }
    fail(format!(
        "no signature verifies for {}: {}{}",
        policy.by,
        why.join("; "),
        policy.hint(&why)
    ))
}

/// A pass, with a warning when the embedded trusted root is over a year old.
fn stale(m: &crate::sign::Material) -> Judged {
    if crate::sign::root_is_stale(&m.root, std::time::SystemTime::now()) {
        return Err(Verdict::Warn(format!(
            "verified with {}, which is over a year old; pass --trusted-root with a current trusted_root.json",
            m.root.origin
        )));
    }
    Ok(())
}

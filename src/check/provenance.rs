//! The `provenance` check (`expect.provenance`): a SLSA provenance v1 attestation among the
//! image's referrers (a Sigstore bundle, as GitHub's `attest-build-provenance` pushes it), or
//! under cosign's `.att` tag for a key without a log, verifies for the identity and issuer (or
//! the key) asked, is about this image, and its
//! predicate names the repository, ref, commit, workflow and builder asked for.

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::sign::{bundle, State};
use crate::spec::{ProvenanceExpectation, Spec};

pub const NAME: &str = "provenance";

#[derive(Debug)]
pub struct Check(pub ProvenanceExpectation);

pub fn plan(spec: &Spec) -> Vec<Arc<dyn Planned>> {
    spec.expect
        .provenance
        .clone()
        .map(|p| Arc::new(Check(p)) as Arc<dyn Planned>)
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
        let m = match s.signatures {
            State::Fetched(m) => m,
            State::Failed(e) => return Err(Verdict::Error(e.clone())),
            State::NotAsked => return Err(Verdict::Error("attestations were not fetched".into())),
        };
        let e = &self.0;
        let policy = super::signature::Policy::of(&e.signer)?;
        let mut why = Vec::new();
        let judged = |at: String,
                      st: Result<bundle::Statement, crate::error::Reason>,
                      why: &mut Vec<String>| {
            match st {
                Ok(st) if st.predicate_type == bundle::SLSA_PROVENANCE_V1 => {
                    let wrong = wrong_fields(&e.fields, &st.predicate);
                    if wrong.is_empty() {
                        return true;
                    }
                    why.push(format!("{at}: {}", wrong.join(", ")));
                }
                Ok(_) => {}
                Err(err) => why.push(format!("{at}: {err}")),
            }
            false
        };
        let verified = policy.with(|signer| {
            m.bundles.iter().any(|b| {
                let st = bundle::verify(&b.bundle, &m.subject, signer, &m.root);
                judged(format!("bundle {}", b.short()), st, &mut why)
            }) || m.attestations.iter().any(|a| {
                let st = bundle::verify_attestation(a, &m.subject, signer);
                judged(
                    format!("attestation (layer {})", a.layer.digest.short()),
                    st,
                    &mut why,
                )
            })
        });
        if verified {
            return policy.pass(m);
        }
        if why.is_empty() {
            return fail(format!(
                "no SLSA provenance attestation of {} ({})",
                m.subject, m.looked
            ));
        }
        fail(format!(
            "no provenance verifies for {}: {}{}",
            policy.by,
            why.join("; "),
            policy.hint(&why)
        ))
    }
}

/// The predicate fields that are not what the spec asks.
fn wrong_fields(
    fields: &[(&'static str, &'static str, crate::spec::ValueMatch)],
    predicate: &serde_json::Value,
) -> Vec<String> {
    fields
        .iter()
        .filter_map(|(what, pointer, want)| {
            let got = predicate.pointer(pointer).and_then(|v| v.as_str());
            match got {
                Some(g) if want.matches(g) => None,
                Some(g) => Some(format!("{what} is '{g}', not {want}")),
                None => Some(format!("it names no {what} ({pointer})")),
            }
        })
        .collect()
}

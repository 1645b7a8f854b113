//! The `provenance` check (`expect.provenance`): a SLSA provenance v1 attestation among the
//! image's referrers (a Sigstore bundle, as GitHub's `attest-build-provenance` pushes it)
//! verifies keyless for the identity and issuer asked, is about this image, and its
//! predicate names the repository, ref, commit, workflow and builder asked for.

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Kind, Planned};
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

    fn kind(&self) -> Kind {
        Kind::Signature
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let m = match s.signatures {
            State::Fetched(m) => m,
            State::Failed(e) => return Err(Verdict::Error(e.clone())),
            State::NotAsked => return Err(Verdict::Error("attestations were not fetched".into())),
        };
        let e = &self.0;
        let matcher = |id: &str| e.identity.matches(id);
        let shown = e.identity.to_string();
        let policy = bundle::Signer::Keyless {
            identity: &matcher,
            shown: shown.clone(),
            issuer: &e.issuer,
        };
        let mut why = Vec::new();
        for b in &m.bundles {
            let at = b.short();
            match bundle::verify(&b.bundle, &m.subject, &policy, &m.root) {
                Ok(st) if st.predicate_type == bundle::SLSA_PROVENANCE_V1 => {
                    let wrong: Vec<String> = e
                        .fields
                        .iter()
                        .filter_map(|(what, pointer, want)| {
                            let got = st.predicate.pointer(pointer).and_then(|v| v.as_str());
                            match got {
                                Some(g) if want.matches(g) => None,
                                Some(g) => Some(format!("{what} is '{g}', not {want}")),
                                None => Some(format!("it names no {what} ({pointer})")),
                            }
                        })
                        .collect();
                    if wrong.is_empty() {
                        return super::signature::stale(m);
                    }
                    why.push(format!("bundle {at}: {}", wrong.join(", ")));
                }
                Ok(_) => {}
                Err(err) => why.push(format!("bundle {at}: {err}")),
            }
        }
        if why.is_empty() {
            return fail(format!(
                "no SLSA provenance attestation of {} ({})",
                m.subject, m.looked
            ));
        }
        fail(format!(
            "no provenance verifies for {shown} from {}: {}",
            e.issuer,
            why.join("; ")
        ))
    }
}

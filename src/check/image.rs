//! The image's own checks: the digest it resolves to, its platform, the platforms of its index,
//! and its config labels.

use std::sync::Arc;

use super::subject::{clip, fail, join, Judged, Subject};
use super::Planned;
use crate::digest::Digest;
use crate::oci::platform::Platform;
use crate::spec::{Spec, ValueMatch};

pub const DIGEST: &str = "digest";
pub const PLATFORM: &str = "platform";
pub const PLATFORMS: &str = "platforms";
pub const LABELS: &str = "labels";

#[derive(Debug)]
pub enum Check {
    /// The pin: the index's or the platform manifest's digest.
    Digest(Digest),
    Platform(Platform),
    /// The exact set of an index's platforms.
    Platforms(Vec<Platform>),
    Label {
        key: String,
        want: ValueMatch,
    },
}

pub fn plan(spec: &Spec, platform: Option<&Platform>) -> Vec<Arc<dyn Planned>> {
    let mut out: Vec<Arc<dyn Planned>> = Vec::new();
    if let Some(d) = &spec.digest {
        out.push(Arc::new(Check::Digest(d.clone())));
    }
    if let Some(p) = platform {
        out.push(Arc::new(Check::Platform(p.clone())));
    }
    if let Some(ps) = &spec.expect.platforms {
        out.push(Arc::new(Check::Platforms(ps.clone())));
    }
    for l in &spec.expect.labels {
        out.push(Arc::new(Check::Label {
            key: l.key.clone(),
            want: l.want.clone(),
        }));
    }
    out
}

impl Planned for Check {
    fn name(&self) -> String {
        match self {
            Check::Digest(_) => DIGEST.into(),
            Check::Platform(_) => PLATFORM.into(),
            Check::Platforms(_) => PLATFORMS.into(),
            Check::Label { key, .. } => format!("{LABELS}::{key}"),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let r = s.resolved;
        match self {
            Check::Digest(want) => {
                if want == &r.digest || want == &r.manifest_digest {
                    Ok(())
                } else {
                    fail(format!(
                        "pinned {want}, but the image resolved to {}",
                        r.digest
                    ))
                }
            }
            Check::Platform(want) => {
                if r.platform.satisfies(want) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected platform {want}, the image is {}",
                        r.platform
                    ))
                }
            }
            Check::Platforms(want) => platforms(want, r.index_platforms.as_deref(), &r.platform),
            Check::Label { key, want } => {
                let labels = r.config.labels();
                match labels.get(key) {
                    Some(v) if want.matches(v) => Ok(()),
                    Some(v) => fail(format!("label {key} is '{}', expected {want}", clip(v))),
                    None => {
                        let keys: Vec<&String> = labels.keys().collect();
                        fail(format!(
                            "label {key} is missing (labels: {})",
                            if keys.is_empty() {
                                "none".into()
                            } else {
                                join(&keys)
                            }
                        ))
                    }
                }
            }
        }
    }

    /// The platform check fails and a pin on the index can still be judged; nothing else can.
    fn without_platform(&self, resolved_to: &Digest, why: &str) -> Option<Judged> {
        match self {
            Check::Platform(_) => Some(fail(why)),
            Check::Digest(d) if d == resolved_to => Some(Ok(())),
            _ => None,
        }
    }
}

fn platforms(want: &[Platform], index: Option<&[Platform]>, single: &Platform) -> Judged {
    let mut found: Vec<String> = match index {
        Some(ps) => ps.iter().map(|p| p.to_string()).collect(),
        None => vec![single.to_string()],
    };
    let mut want: Vec<String> = want.iter().map(|p| p.to_string()).collect();
    found.sort();
    want.sort();
    if found == want {
        return Ok(());
    }
    let missing: Vec<&String> = want.iter().filter(|w| !found.contains(w)).collect();
    let extra: Vec<&String> = found.iter().filter(|f| !want.contains(f)).collect();
    let mut m = format!(
        "expected [{}], found [{}]",
        want.join(", "),
        found.join(", ")
    );
    if !missing.is_empty() {
        m += &format!("; missing {}", join(&missing));
    }
    if !extra.is_empty() {
        m += &format!("; unexpected {}", join(&extra));
    }
    if index.is_none() {
        m += " (a single-platform image, not an index)";
    }
    fail(m)
}

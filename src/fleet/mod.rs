//! `tdg audit --fleet`: every repository of a release, checked at once: the tag resolves, the
//! image passes its spec, it carries the revision label, and all of them agree on one revision.
//! Each component becomes one run in the verify report, so JSON and JUnit read the same.

pub mod load;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::check::SpecRun;
use crate::check::{Outcome, Plan, Status};
use crate::oci::mirror::Endpoint;
use crate::oci::source::Source;
use crate::pull::Env;
use crate::reference::ImageRef;

pub use load::{load_file, Component, Fleet};

pub const TAG: &str = "fleet::tag";
pub const LABEL: &str = "fleet::revision-label";
pub const REVISION: &str = "fleet::revision";

pub struct Options {
    /// The release tag, over the fleet file's.
    pub tag: Option<String>,
    /// The revision every component must carry; else the majority's.
    pub revision: Option<String>,
    /// Components checked at once.
    pub jobs: usize,
    /// How long one component may take; past it, that component is an error.
    pub timeout: Duration,
    /// Only these components are reported and have their specs checked; every component's
    /// revision is still read, so the fleet's revision is the whole fleet's.
    pub partition: Option<crate::partition::Partition>,
}

pub struct Audit {
    pub runs: Vec<SpecRun>,
    /// The revision the fleet was held to, and whether it was the majority's.
    pub revision: Option<(String, bool)>,
}

/// What one component showed, before the fleet's revision is known.
struct Probe {
    run: SpecRun,
    revision: Option<String>,
}

pub async fn audit(env: &Env, fleet: &Fleet, tag: Option<&str>, opts: &Options) -> Audit {
    let tag = opts.tag.as_deref().or(tag);
    let mine = |i: usize, c: &Component| {
        opts.partition
            .is_none_or(|p| p.keeps(i, &c.image.to_string()))
    };
    let probes: Vec<Probe> = futures_util::stream::iter(fleet.components.iter().enumerate())
        .map(|(i, c)| probe(env, fleet, c, tag, opts.timeout, mine(i, c)))
        .buffered(opts.jobs.max(1))
        .collect()
        .await;
    let revision = match &opts.revision {
        Some(r) => Some((r.clone(), false)),
        None => majority(probes.iter().filter_map(|p| p.revision.as_deref())),
    };
    let runs = probes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine(*i, &fleet.components[*i]))
        .map(|(i, mut p)| {
            p.run.position = i;
            if let (Some(got), None) = (&p.revision, &p.run.error) {
                let (status, message) = judge(got, revision.as_ref(), &p.run);
                p.run.outcomes.push(outcome(REVISION, status, message));
            }
            p.run
        })
        .collect();
    Audit { runs, revision }
}

/// One component's revision against the fleet's; with no fleet revision (a tie), every
/// component is a finding, since any side may be the drift.
fn judge(got: &str, fleet: Option<&(String, bool)>, run: &SpecRun) -> (Status, String) {
    let at = run.digest.as_deref().unwrap_or("?");
    match fleet {
        Some((want, _)) if got == want => (Status::Pass, String::new()),
        Some((want, majority)) => {
            let whose = if *majority {
                "the majority's"
            } else {
                "the one asked for"
            };
            (
                Status::Fail,
                format!(
                    "drifted: {} is at revision {got} ({at}); {whose} is {want}",
                    run.image
                ),
            )
        }
        None => (
            Status::Fail,
            format!(
                "{} is at revision {got} ({at}), but no revision has a majority; pass --revision to name the release's",
                run.image
            ),
        ),
    }
}

/// The most common revision; a tie goes to none of them, as either side may be the drift.
fn majority<'a>(revs: impl Iterator<Item = &'a str>) -> Option<(String, bool)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in revs {
        *counts.entry(r).or_default() += 1;
    }
    let top = counts.values().copied().max()?;
    let mut leaders = counts.iter().filter(|(_, n)| **n == top);
    let (first, _) = leaders.next()?;
    if leaders.next().is_some() {
        return None;
    }
    Some((first.to_string(), true))
}

fn outcome(check: &str, status: Status, message: impl Into<String>) -> Outcome {
    Outcome {
        check: check.to_string(),
        golden: None,
        status,
        message: message.into(),
        description: None,
        at: None,
        duration_ms: 0.0,
    }
}

async fn probe(
    env: &Env,
    fleet: &Fleet,
    c: &Component,
    tag: Option<&str>,
    timeout: Duration,
    with_spec: bool,
) -> Probe {
    let start = Instant::now();
    let image = fleet.reference(c, tag);
    let mut run = SpecRun::new(
        &c.image.to_string(),
        &fleet.path.display().to_string(),
        &fleet.file_digest.to_string(),
        &image
            .as_ref()
            .map_or_else(|| c.image.to_string(), |i| i.to_string()),
    );
    let revision = match image {
        None => {
            run.outcomes.push(outcome(
                TAG,
                Status::Error,
                "no tag: give the component one, set the fleet's tag, or pass --tag",
            ));
            None
        }
        Some(image) => {
            match tokio::time::timeout(timeout, examine(env, fleet, c, &image, &mut run, with_spec))
                .await
            {
                Ok(Ok(rev)) => rev,
                Ok(Err(e)) => {
                    run.error = Some(e.to_string());
                    run.outcomes
                        .push(outcome(TAG, Status::Error, e.to_string()));
                    None
                }
                Err(_) => {
                    let m = format!("no answer within {}s", timeout.as_secs_f64());
                    run.error = Some(m.clone());
                    run.outcomes.push(outcome(TAG, Status::Error, m));
                    None
                }
            }
        }
    };
    run.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    Probe { run, revision }
}

/// The tag, the label, and (`with_spec`) the spec, in that order; returns the revision the
/// image carries.
async fn examine(
    env: &Env,
    fleet: &Fleet,
    c: &Component,
    image: &ImageRef,
    run: &mut SpecRun,
    with_spec: bool,
) -> crate::error::Result<Option<String>> {
    let endpoint = env.mirrors.endpoint(image);
    let source = Source::open(&endpoint)?;
    if let (Endpoint::Registry { .. }, Source::Registry(r), Some(tag)) =
        (&endpoint, &source, &image.tag)
    {
        if image.digest.is_none() && r.manifest_if_any(tag).await?.is_none() {
            run.outcomes.push(outcome(
                TAG,
                Status::Fail,
                format!("{image}: the tag is missing"),
            ));
            return Ok(None);
        }
    }
    let platform = c
        .platform
        .clone()
        .or_else(|| c.spec.as_ref().and_then(|s| s.platform.clone()));
    let resolved =
        crate::oci::resolve::resolve(&source, image, platform.as_ref(), &env.cache).await?;
    run.source = Some(resolved.source.clone());
    run.digest = Some(resolved.digest.to_string());
    run.manifest_digest = Some(resolved.manifest_digest.to_string());
    run.platform = Some(resolved.platform.to_string());
    run.outcomes.push(outcome(TAG, Status::Pass, ""));
    let revision = resolved.config.labels().get(&fleet.revision_label).cloned();
    run.outcomes.push(match &revision {
        Some(_) => outcome(LABEL, Status::Pass, ""),
        None => outcome(
            LABEL,
            Status::Fail,
            format!("{image} has no {} label", fleet.revision_label),
        ),
    });
    if let Some(spec) = c.spec.as_ref().filter(|_| with_spec) {
        let mut pinned = image.clone();
        pinned.digest = Some(resolved.digest.clone());
        let plan: Plan = crate::check::plan::plan(spec.clone(), Some(pinned), platform);
        let verified = crate::run::pipeline::run(env, &plan).await;
        run.outcomes
            .extend(verified.outcomes.into_iter().map(|mut o| {
                o.check = format!("spec::{}::{}", spec.name, o.check);
                o
            }));
        if let Some(e) = verified.error {
            run.error = Some(e);
        }
    }
    Ok(revision)
}

#[cfg(test)]
mod tests {
    use super::majority;

    #[test]
    fn majority_needs_a_single_leader() {
        let m = majority(["a", "b", "a"].into_iter());
        assert_eq!(m, Some(("a".to_string(), true)));
        assert_eq!(majority(["a", "b"].into_iter()), None);
        assert_eq!(majority(std::iter::empty()), None);
    }
}

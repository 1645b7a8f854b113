//! `cargo test`'s harness (libtest-mimic): every check of every spec in `specs/` is a trial
//! named `<spec name>::<check>`, run against fixture images served by a real registry on
//! loopback through a mirror for `ghcr.io`, exactly as a release would run against GHCR.
//! Behaviour trials (`behaviour::…`) prove the pull, flatten, auth, cache and error paths, and
//! that every check kind fails on an image that breaks it.
//!
//! `--list` reads the YAML only: the registry starts the first time a trial needs it.

mod cases;
mod debian;
mod factory;
mod fixtures;
mod registry;
mod signing;
mod upstream;
mod world;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    // Run inside GitHub Actions, tdg would annotate and write the job's summary: trials that
    // want that set these themselves, on their own children.
    std::env::remove_var("GITHUB_ACTIONS");
    std::env::remove_var("GITHUB_STEP_SUMMARY");
    let (args, partition) = match partition_arg(std::env::args().collect()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("harness: {e}");
            std::process::exit(2);
        }
    };
    let args = Arguments::from_iter(args);
    let mut trials = match world::spec_trials() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("harness: {e:#}");
            std::process::exit(2);
        }
    };
    trials.extend(cases::all());
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some(p) = partition {
        trials = trials
            .into_iter()
            .enumerate()
            .filter(|(i, t)| p.keeps(*i, t.name()))
            .map(|(_, t)| t)
            .collect();
    }
    let conclusion = libtest_mimic::run(&args, trials);
    world::shutdown();
    conclusion.exit();
}

/// `--partition slice:K/N` or `hash:K/N` (nextest's spellings; libtest has no such flag), taken
/// out of the arguments: the trials, sorted by name, are split before any filter applies, so a
/// CI matrix of N jobs runs each trial once.
fn partition_arg(
    mut args: Vec<String>,
) -> Result<(Vec<String>, Option<tdg::partition::Partition>), String> {
    let Some(i) = args
        .iter()
        .position(|a| a == "--partition" || a.starts_with("--partition="))
    else {
        return Ok((args, None));
    };
    let value = match args[i].strip_prefix("--partition=") {
        Some(v) => v.to_string(),
        None if i + 1 < args.len() => args.remove(i + 1),
        None => return Err("--partition needs slice:K/N or hash:K/N".into()),
    };
    args.remove(i);
    Ok((args, Some(value.parse()?)))
}

/// Wraps an anyhow test body as a trial body.
pub fn trial(name: &str, f: fn() -> anyhow::Result<()>) -> Trial {
    Trial::test(format!("behaviour::{name}"), move || {
        f().map_err(|e| Failed::from(format!("{e:#}")))
    })
    .with_kind("behaviour")
}

//! Talos's version ranges (`compatibility.talos.version`) against blang/semver itself: the
//! generated ranges and Talos versions below are decided by tdg and by the Go reference
//! (`harness/factory/main.go ranges`, blang/semver/v4 as Talos calls it), and must agree on
//! every one, refusals included.

use anyhow::{ensure, Result};

use tdg::talos::version::{Range, SemVer};

use super::schematic_gen::Rng;
use crate::factory;

const OPS: &[&str] = &[
    "", "=", "==", ">", ">=", "<", "<=", "!", "!=", "~", "~>", "=>",
];
const VERSIONS: &[&str] = &[
    "1.11.0",
    "v1.11.0",
    "1.12.0",
    "v1.12.0",
    "1.12.0-beta.1",
    "1.12.0-alpha.0",
    "1.0.0",
    "2.0.0",
    "1.x",
    "1.11.x",
    "v1.12.x",
    "1.x.x",
    "x",
    "1.11",
    "1",
    "01.11.0",
    "1.11.0+b.1",
    "1.2.3-x.1",
    "1.11.0,",
    "vv1.0.0",
    "1.11.0-",
    "1.11.0-01",
    "banana",
    "",
];
const JOINERS: &[&str] = &[" ", "  ", " || ", "||", " ||", ", ", ",", "\t"];
const TALOS: &[&str] = &[
    "v1.11.5",
    "v1.12.0-beta.1",
    "v1.12.0",
    "1.11",
    "v1.10.9",
    "v2.0.0",
    "v1.11.0",
    " v1.12.1 ",
    "v1.12",
    "banana",
    "v1.12-beta.1",
];

/// The cases the fidelity issue names, with Talos's verdict written out.
const NAMED: &[(&str, &str, Option<bool>)] = &[
    (">= v1.11.0, < v1.12.0", "v1.11.5", None),
    (">= 1.11.0 < 1.12.0", "v1.11.5", Some(true)),
    (">= v1.11.0 || >= v1.13.0", "v1.11.5", Some(true)),
    ("< v1.10.0 || >= v1.13.0", "v1.11.5", Some(false)),
    (">= v1.12.0", "v1.12.0-beta.1", Some(true)),
    ("!= v1.11.5", "v1.11.5", Some(false)),
    ("1.11.x", "v1.11.9", Some(true)),
    ("~> 1.11", "v1.11.5", None),
    (">= v1.0.0", "v1.11.5", Some(true)),
];

fn generated(n: usize) -> Vec<(String, String)> {
    let mut r = Rng(20261201);
    (0..n)
        .map(|_| {
            let mut range = String::new();
            for i in 0..1 + r.below(3) {
                if i > 0 {
                    range += r.pick(JOINERS);
                }
                // Mostly what parses, so every outcome is reached often.
                let (ops, versions) = if r.chance(0.7) {
                    (&OPS[..9], &VERSIONS[..13])
                } else {
                    (OPS, VERSIONS)
                };
                range += r.pick(ops);
                if r.chance(0.5) {
                    range.push(' ');
                }
                range += r.pick(versions);
            }
            if r.chance(0.1) {
                range = format!(" {range} ");
            }
            (range, r.pick(TALOS).to_string())
        })
        .collect()
}

fn tdg_decides(range: &str, talos: &str) -> Result<bool, String> {
    let v = SemVer::parse_tolerant(talos).map_err(|e| e.to_string())?;
    let r = Range::parse(range).map_err(|e| e.to_string())?;
    Ok(r.matches(&v.core()))
}

pub fn version_ranges_match_blang_semver() -> Result<()> {
    let mut queries: Vec<(String, String)> = NAMED
        .iter()
        .map(|(r, t, _)| (r.to_string(), t.to_string()))
        .collect();
    queries.extend(generated(4000));
    let go = factory::ranges_batch(&queries)?;
    let (mut admitted, mut refused, mut errors, mut mismatches) = (0, 0, 0, Vec::new());
    for ((range, talos), want) in queries.iter().zip(&go) {
        let got = tdg_decides(range, talos);
        match (&got, want) {
            (Ok(a), Ok(b)) if a == b => {
                if *a {
                    admitted += 1
                } else {
                    refused += 1
                }
            }
            (Err(_), Err(_)) => errors += 1,
            _ => mismatches.push(format!(
                "{range:?} with {talos:?}: tdg {got:?}, go {want:?}"
            )),
        }
    }
    for ((r, t, verdict), want) in NAMED.iter().zip(&go) {
        ensure!(
            want.as_ref().ok().copied() == *verdict,
            "the Go reference decides {r:?} with {t:?} as {want:?}, not {verdict:?}"
        );
    }
    ensure!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        queries.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The generator must reach every outcome, or the comparison proves little.
    ensure!(
        admitted > 300 && refused > 300 && errors > 300,
        "{admitted} admitted, {refused} refused, {errors} errors"
    );
    eprintln!(
        "ranges: {admitted} admitted, {refused} refused, {errors} errors, all as blang/semver"
    );
    Ok(())
}

//! GitHub Actions' own output: workflow commands that annotate the spec line a failure comes
//! from, and a Markdown job summary (`$GITHUB_STEP_SUMMARY`).
//!
//! The command syntax and its escaping follow actions/toolkit `packages/core/src/command.ts`
//! (`escapeData`, `escapeProperty`).

use std::fmt::Write as _;

use crate::check::SpecRun;
use crate::check::Status;

/// `::error`/`::warning` lines: one per failed or errored check, at the line of the spec key it
/// comes from; one per spec that could not be evaluated; a warning per skipped check (a skip
/// fails the run, exit 1, so it must be seen) and per passing check that carries one.
pub fn annotations(runs: &[SpecRun]) -> String {
    let mut out = String::new();
    for r in runs {
        if let Some(e) = &r.error {
            out += &command("error", &r.spec_path, None, &r.spec, e);
            continue;
        }
        for o in &r.outcomes {
            let title = format!("{}: {}", r.spec, o.check);
            let at = o.at.map(|p| (p.line, p.column));
            match o.status {
                Status::Fail | Status::Error => {
                    let word = if o.status == Status::Fail {
                        "failed"
                    } else {
                        "could not be evaluated"
                    };
                    let message = if o.message.is_empty() {
                        word.to_string()
                    } else {
                        o.message.clone()
                    };
                    out += &command("error", &r.spec_path, at, &title, &message);
                }
                Status::Skipped => {
                    let m = format!("skipped, which fails the run: {}", o.message);
                    out += &command("warning", &r.spec_path, at, &title, &m);
                }
                Status::Pass if o.message.starts_with("warning: ") => {
                    let m = &o.message["warning: ".len()..];
                    out += &command("warning", &r.spec_path, at, &title, m);
                }
                _ => {}
            }
        }
    }
    out
}

/// One workflow command line.
pub fn command(
    level: &str,
    file: &str,
    at: Option<(u64, u64)>,
    title: &str,
    message: &str,
) -> String {
    let mut props = Vec::new();
    if !file.is_empty() {
        props.push(format!("file={}", property(file)));
        if let Some((line, col)) = at.filter(|(l, _)| *l > 0) {
            props.push(format!("line={line},col={col}"));
        }
    }
    props.push(format!("title={}", property(title)));
    let props = props.join(",");
    format!("::{level} {props}::{}\n", data(message))
}

/// `escapeData`: a message may hold anything but its own line breaks and `%`.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `escapeProperty`: `:` ends the properties and `,` separates them.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The job summary: for every spec its image, digest and counts; a table of what did not pass.
/// A run where everything passed is one line.
pub fn summary(runs: &[SpecRun]) -> String {
    let count = |s: Status| {
        runs.iter()
            .flat_map(|r| &r.outcomes)
            .filter(|o| o.status == s)
            .count()
    };
    let (pass, fail, error, skipped) = (
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Error),
        count(Status::Skipped),
    );
    let specs = match runs.len() {
        1 => format!("`{}`", runs[0].spec),
        n => format!("{n} specs"),
    };
    // The same verdict as the exit code: a skipped check is not a pass.
    if crate::check::exit(runs) == crate::exit::Exit::Passed {
        return format!("✅ tdg: {specs}: {pass} checks passed\n");
    }
    let mut out = format!("### ❌ tdg: {specs}\n\n");
    out += "| spec | image | digest | passed | failed | errors | skipped |\n";
    out += "|---|---|---|---:|---:|---:|---:|\n";
    for r in runs {
        let n = |s: Status| r.outcomes.iter().filter(|o| o.status == s).count();
        let errors = if r.error.is_some() {
            r.outcomes.len()
        } else {
            n(Status::Error)
        };
        let _ = writeln!(
            out,
            "| {} {} | `{}` | {} | {} | {} | {} | {} |",
            if r.worst() == Status::Pass && r.error.is_none() {
                "✅"
            } else {
                "❌"
            },
            cell(&r.spec),
            cell(&r.image),
            r.digest
                .as_deref()
                .map_or("—".to_string(), |d| format!("`{}`", cell(d))),
            n(Status::Pass),
            n(Status::Fail),
            errors,
            n(Status::Skipped),
        );
    }
    out += "\n| spec | check | status | where | message |\n|---|---|---|---|---|\n";
    for r in runs {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "| {} | — | not evaluated | `{}` | {} |",
                cell(&r.spec),
                cell(&r.spec_path),
                cell(e)
            );
            continue;
        }
        for o in r
            .outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Fail | Status::Error | Status::Skipped))
        {
            let place = match o.at {
                Some(p) => format!("`{}:{}`", cell(&r.spec_path), p.line),
                None => format!("`{}`", cell(&r.spec_path)),
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {place} | {} |",
                cell(&r.spec),
                cell(&o.check),
                o.status.word(),
                cell(&o.message)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{pass} passed, {fail} failed, {error} errors, {skipped} skipped"
    );
    out
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('`', "'")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn run_with(status: Status, message: &str) -> SpecRun {
        let mut r = SpecRun::new("s", "specs/s.yaml", "", "oci:l:t");
        r.outcomes.push(Outcome {
            check: "boot::reached".into(),
            golden: None,
            status,
            message: message.into(),
            description: None,
            at: Some(crate::spec::SpecPos { line: 9, column: 3 }),
            duration_ms: 0.0,
        });
        r
    }

    /// A skipped check fails the run (exit 1): the summary does not call it a pass, and an
    /// annotation says why.
    #[test]
    fn a_skip_is_not_summarised_as_a_pass() {
        let runs = [run_with(Status::Skipped, "--no-boot")];
        let s = summary(&runs);
        assert!(!s.starts_with("✅") && s.contains("| ❌ s |"), "{s}");
        assert!(
            s.contains("| s | `boot::reached` | skipped | `specs/s.yaml:9` | --no-boot |"),
            "{s}"
        );
        assert_eq!(
            annotations(&runs),
            "::warning file=specs/s.yaml,line=9,col=3,title=s%3A boot%3A%3Areached::skipped, which fails the run: --no-boot\n"
        );
        let passed = [run_with(Status::Pass, "")];
        assert_eq!(summary(&passed), "✅ tdg: `s`: 1 checks passed\n");
        assert_eq!(annotations(&passed), "");
    }

    #[test]
    fn properties_and_data_are_escaped_as_the_toolkit_does() {
        let line = command(
            "error",
            "specs/a,b.yaml",
            Some((3, 5)),
            "x: files::a",
            "50% off\nnext",
        );
        assert_eq!(
            line,
            "::error file=specs/a%2Cb.yaml,line=3,col=5,title=x%3A files%3A%3Aa::50%25 off%0Anext\n"
        );
    }
}

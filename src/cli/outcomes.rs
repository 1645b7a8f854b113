//! Printing a verification, the same way for every command that verifies: notes on stderr,
//! the report in the chosen format on stdout, or into `--output` with the human report on
//! stderr beside it, and the exit code. Inside GitHub Actions, annotations go to stdout and a
//! summary to `$GITHUB_STEP_SUMMARY` whatever the report's format.

use std::path::Path;

use anyhow::{Context, Result};

use tdg::exit::Exit;
use tdg::report::{self, github, Format, Style};
use tdg::run::Verification;

/// `format: None` is the default for where tdg runs ([`Format::default_here`]).
pub fn present(
    v: &Verification,
    format: Option<Format>,
    output: Option<&Path>,
    style: Style,
) -> Result<Exit> {
    let format = format.unwrap_or_else(Format::default_here);
    let github = format == Format::Github || report::in_github_actions();
    for note in &v.notes {
        eprintln!("tdg: {note}");
    }
    let text = report::render(format, &v.runs, v.partition.as_ref(), style)?;
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            // The file is for machines; the person running tdg still sees the verdict.
            eprint!("{}", report::human(&v.runs, style));
            // GitHub reads workflow commands from stdout only, whatever went into the file.
            if github {
                super::stdout::print(&github::annotations(&v.runs))?;
            }
        }
        // JSON or JUnit on stdout stays parseable: no annotations mixed in.
        None => super::stdout::print(&text)?,
    }
    if github {
        step_summary(&github::summary(&v.runs))?;
    }
    Ok(v.exit())
}

/// Appends to the file `GITHUB_STEP_SUMMARY` names, when it names one.
pub fn step_summary(markdown: &str) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("opening GITHUB_STEP_SUMMARY {}", path.to_string_lossy()))?;
    f.write_all(markdown.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("appending to {}", path.to_string_lossy()))
}

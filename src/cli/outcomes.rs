//! Printing a verification, the same way for every command that verifies: notes on stderr,
//! the report in the chosen format on stdout, or into `--output` with the human report on
//! stderr beside it, and the exit code.

use std::path::Path;

use anyhow::{Context, Result};

use tdg::report::{self, Format};
use tdg::verification::Verification;

pub fn present(v: &Verification, format: Format, output: Option<&Path>) -> Result<u8> {
    for note in &v.notes {
        eprintln!("tdg: {note}");
    }
    let text = report::render(format, &v.runs)?;
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            // The file is for machines; the person running tdg still sees the verdict.
            eprint!("{}", report::human(&v.runs));
        }
        None => super::stdout::print(&text)?,
    }
    Ok(v.exit_code())
}

//! Reading the text files a user names, and the located error they give: `file:line:col:
//! message`, with the source line when there is one. Specs and schematics share it.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct LocatedError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// Source lines around the error, when the YAML parser gave them.
    pub snippet: Option<String>,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: the file could not be read at all, so there is no place in it to name.
        if self.line == 0 {
            return write!(f, "{}: {}", self.file.display(), self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for LocatedError {}

impl LocatedError {
    /// The error with its source line and caret below it, for a terminal.
    pub fn with_snippet(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "{self}{}",
            self.snippet
                .as_ref()
                .map(|s| format!("\n{s}"))
                .unwrap_or_default()
        )
    }
}

/// A UTF-8 file's text; `what` names it in errors ("spec", "schematic").
pub fn read_text(path: &Path, what: &str) -> Result<String, LocatedError> {
    let bytes = std::fs::read(path).map_err(|e| LocatedError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read {what}: {e}"),
        snippet: None,
    })?;
    String::from_utf8(bytes).map_err(|e| LocatedError {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message: format!(
            "{what} is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ),
        snippet: None,
    })
}

/// A UTF-8 file of at most `cap` bytes, whole; anything larger is an error, not a truncation.
pub fn read_capped(path: &Path, cap: u64) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    if buf.len() as u64 > cap {
        anyhow::bail!("{}: larger than the {cap}-byte limit", path.display());
    }
    String::from_utf8(buf).with_context(|| format!("{} is not UTF-8", path.display()))
}

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
    /// The error with its source line and caret below it, for a terminal. The located error
    /// stays reachable (`downcast_ref::<Snippeted>`) for reporters that point at the line.
    pub fn with_snippet(&self) -> anyhow::Error {
        anyhow::Error::new(Snippeted(self.clone()))
    }
}

/// A [`LocatedError`] shown with its snippet.
#[derive(Debug)]
pub struct Snippeted(pub LocatedError);

impl fmt::Display for Snippeted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        match &self.0.snippet {
            Some(s) => write!(f, "\n{s}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Snippeted {}

/// The lines of a YAML text as YAML counts them (`b-break`: CRLF, CR or LF), so a snippet
/// shows the line a parser's error names.
pub fn yaml_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Writes `path` by renaming a new file in its directory over it: a symlink planted at `path`
/// is replaced, never written through, and a reader never sees half a file. The file gets the
/// mode a plain create gives (0666 less the umask, so 0644 usually), not a temporary's 0600.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Opens `path` for reading only if it is a regular file (after symlinks). The open itself
/// does not block: a FIFO given as a spec or config would otherwise hang tdg until a writer
/// came, and `/dev/zero` would be read forever.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// The directory a spec's goldens must stay inside: `TDG_REPO` (`--repo`) when set, else the
/// directory holding `specs/` when the spec lives in one, else the spec's own directory.
///
/// The answer is absolute, so `specs/x.yaml`, `./specs/x.yaml` and `/repo/specs/x.yaml` from
/// any working directory name the same root (a relative `specs/x.yaml` once gave an empty one).
pub fn repo_root(spec_file: &Path) -> PathBuf {
    if let Some(r) = std::env::var_os("TDG_REPO").filter(|r| !r.is_empty()) {
        return absolute(Path::new(&r));
    }
    let file = absolute(spec_file);
    let dir = file.parent().unwrap_or(Path::new("/"));
    match dir.file_name() {
        Some(n) if n == "specs" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// `path` made absolute against the working directory (`..` kept: a symlink may stand
/// before it); unchanged when the working directory cannot be read.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `Ok` when `path` lies inside `root` once symlinks are resolved (as far as the path exists)
/// and, if it exists, is a regular file: a golden may not read `/proc/self/environ` or write
/// beside `/etc/passwd`.
pub fn confine(path: &Path, root: &Path) -> Result<(), String> {
    let root_c = root
        .canonicalize()
        .map_err(|e| format!("the spec's repository {}: {e}", root.display()))?;
    let outside = || {
        format!(
            "{} is outside the spec's repository {} (set TDG_REPO or --repo for another)",
            path.display(),
            root.display()
        )
    };
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            return Err(format!("{} is not a regular file", path.display()));
        }
    }
    // The deepest part of the path that exists, resolved; the rest must not climb.
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_os_string());
                existing = p.to_path_buf();
            }
            _ => return Err(outside()),
        }
        if existing.as_os_str().is_empty() {
            existing = PathBuf::from(".");
        }
    }
    if rest.iter().any(|c| c == "..") {
        return Err(outside());
    }
    let resolved = existing.canonicalize().map_err(|_| outside())?;
    if !resolved.starts_with(&root_c) {
        return Err(outside());
    }
    Ok(())
}

/// At most `cap` bytes of a regular file, whole; more is an error, never a truncation.
pub fn read_bounded(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    open_regular(path)?.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {cap}-byte limit"),
        ));
    }
    Ok(buf)
}

/// A UTF-8 file's text; `what` names it in errors ("spec", "schematic").
pub fn read_text(path: &Path, what: &str) -> Result<String, LocatedError> {
    let bytes = read_bounded(path, crate::limits::MAX_TEXT_INPUT).map_err(|e| LocatedError {
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
    let buf = read_bounded(path, cap).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(buf).with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_break_at_cr_lf_and_crlf() {
        // Found by the spec fuzz target: an error at line 79 of a text with 21 LFs and many
        // lone CRs, which YAML counts as line breaks and `str::lines` does not.
        assert_eq!(yaml_lines("a\rb\r\nc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(yaml_lines("a\r\r"), ["a", ""]);
        let text = "apiVersion: tdg/v1\rname: x\r\r\rimage: [\r";
        let e = crate::spec::load_str(Path::new("s.yaml"), text).unwrap_err();
        assert!(e.line as usize <= yaml_lines(text).len() + 1, "{e}");
        assert!(e.line > 1, "{e}");
    }

    #[test]
    fn text_inputs_are_regular_files_of_bounded_size() {
        // A FIFO hung tdg and /dev/zero took 4.2 GB (issue 15); both are refused at once.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("spec.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_text(&fifo, "spec").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        let e = read_text(Path::new("/dev/zero"), "schematic").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let e = read_capped(&big, 1024).unwrap_err();
        assert!(format!("{e:#}").contains("1024-byte limit"), "{e:#}");
        assert_eq!(read_capped(&big, 4096).unwrap().len(), 2048);
    }
}

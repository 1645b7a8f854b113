//! Reading the text files a user names, and the located error they give: `file:line:col:
//! message`, with the source line when there is one. Specs and schematics share it.

use crate::reason::Reason;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

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

/// The source line of an error and a caret under its column, headed by where it is
/// (`--> file:line:col`), as rustc shows one.
pub fn snippet(text: &str, file: &Path, line: u64, column: u64) -> Option<String> {
    let lines = yaml_lines(text);
    let src = lines.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let width = line.to_string().len();
    let pad = " ".repeat(width);
    // A long line is shown from a little before the column, and cut: never printed whole.
    let col = column.saturating_sub(1) as usize;
    let start = col.saturating_sub(40);
    let shown: String = src.chars().skip(start).take(120).collect();
    let lead = if start > 0 { "…" } else { "" };
    let caret = " ".repeat(col - start + lead.chars().count());
    Some(format!(
        "{pad}--> {}:{line}:{column}\n{pad} |\n{line} | {lead}{shown}\n{pad} | {caret}^",
        file.display()
    ))
}

/// A YAML decoder's message (serde's and the parser's vocabulary) in the words of the file's
/// reader: no Rust type names, the parser's position suffix dropped (the prefix says where),
/// and for an unknown key or value the closest allowed one offered.
pub fn humane(m: &str) -> String {
    let m = m.split(", set DuplicateKeyPolicy").next().unwrap_or(m);
    let m = match m.rfind(" at line ") {
        Some(i) if m[i..].contains(", column ") => &m[..i],
        _ => m,
    };
    let mut out = m
        .replace("mapping key", "key")
        .replace("invalid type: ", "")
        .replace("unknown variant", "unknown value")
        .replace("expected string scalar", "expected text")
        .replace("expected a string", "expected text")
        .replace(
            "expected mapping start",
            "expected a mapping (`key: value` lines, or {…})",
        )
        .replace(
            "expected sequence start",
            "expected a list (`- item` lines, or […])",
        )
        .replace(
            "externally tagged enum expected scalar or mapping",
            "expected a single word",
        )
        .replace(
            "invalid boolean (strict mode expects true/false)",
            "expected true or false (yes, no, on and off are not booleans here)",
        );
    // serde-saphyr's hint for a null where a value must be.
    static NULL: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"cannot deserialize null into (\w+); use Option<[^>]*>+").expect("regex")
    });
    static TYPES: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\b(?:tuple struct|newtype struct|struct) [A-Z]\w*").expect("regex")
    });
    static ENUMS: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\benum [A-Z]\w*").expect("regex"));
    static SHAPES: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\b(?:a )?(sequence|map)\b").expect("regex"));
    out = NULL
        .replace_all(&out, |c: &regex::Captures| {
            let what = if &c[1] == "string" { "text" } else { &c[1] };
            format!("expected {what}, not null (leave the key out instead)")
        })
        .into_owned();
    // serde's derived `expecting`: `struct FileExpect`, `enum FileType`.
    out = TYPES.replace_all(&out, "a mapping").into_owned();
    out = ENUMS
        .replace_all(&out, "one of the allowed words")
        .into_owned();
    for (rust, yaml) in [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected option", "expected a value"),
        ("unit value", "nothing (null)"),
        ("unit variant", "a single word"),
    ] {
        out = out.replace(rust, yaml);
    }
    out = SHAPES
        .replace_all(&out, |c: &regex::Captures| {
            if &c[1] == "map" {
                "a mapping"
            } else {
                "a list"
            }
        })
        .into_owned();
    // `data did not match any variant of untagged enum X`: no form of it fit.
    if let Some(i) = out.find("data did not match any variant") {
        out.truncate(i);
        out.push_str("a value of none of the allowed forms (see `tdg schema`)");
    }
    if let Some(hint) = did_you_mean(&out) {
        out.push_str(&hint);
    }
    out
}

/// `unknown field `sise`, expected one of …, size, …` → ` (did you mean `size`?)`, for a
/// name within a small edit distance of one allowed.
fn did_you_mean(m: &str) -> Option<String> {
    let rest = m
        .strip_prefix("unknown field `")
        .or_else(|| m.strip_prefix("unknown value `"))?;
    let (got, rest) = rest.split_once('`')?;
    let allowed = rest.split_once("expected ")?.1;
    let allowed = allowed.strip_prefix("one of ").unwrap_or(allowed);
    let best = allowed
        .split(", ")
        .flat_map(|a| a.split(" or "))
        .map(|a| a.trim().trim_matches('`'))
        .filter(|a| !a.is_empty() && *a != got)
        .map(|a| (strsim::damerau_levenshtein(got, a), a))
        .min()?;
    let near = best.0 <= 2.min(got.chars().count().max(2) - 1) || got.eq_ignore_ascii_case(best.1);
    near.then(|| format!(" (did you mean `{}`?)", best.1))
}

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

/// The directory a spec's goldens must stay inside: `repo` (`--repo`, `TDG_REPO`) when given,
/// else the directory holding `specs/` when the spec lives in one, else the spec's own
/// directory.
///
/// The answer is absolute, so `specs/x.yaml`, `./specs/x.yaml` and `/repo/specs/x.yaml` from
/// any working directory name the same root (a relative `specs/x.yaml` once gave an empty one).
pub fn repo_root(spec_file: &Path, repo: Option<&Path>) -> PathBuf {
    if let Some(r) = repo.filter(|r| !r.as_os_str().is_empty()) {
        return absolute(r);
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
pub fn confine(path: &Path, root: &Path) -> Result<(), Reason> {
    let root_c = root
        .canonicalize()
        .map_err(|e| Reason(format!("the spec's repository {}: {e}", root.display())))?;
    let outside = || {
        format!(
            "{} is outside the spec's repository {} (set TDG_REPO or --repo for another)",
            path.display(),
            root.display()
        )
    };
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.is_file() {
            return Err(format!("{} is not a regular file", path.display()).into());
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
            _ => return Err(outside().into()),
        }
        if existing.as_os_str().is_empty() {
            existing = PathBuf::from(".");
        }
    }
    if rest.iter().any(|c| c == "..") {
        return Err(outside().into());
    }
    let resolved = existing.canonicalize().map_err(|_| outside())?;
    if !resolved.starts_with(&root_c) {
        return Err(outside().into());
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

/// Standard input's text, at most [`crate::limits::MAX_TEXT_INPUT`] bytes; `name` stands for it
/// in errors.
pub fn read_stdin(name: &Path, what: &str) -> Result<String, LocatedError> {
    use std::io::Read as _;
    let cap = crate::limits::MAX_TEXT_INPUT;
    let mut buf = Vec::new();
    let read = std::io::stdin().lock().take(cap + 1).read_to_end(&mut buf);
    let read = read.and_then(|_| {
        if buf.len() as u64 > cap {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than the {cap}-byte limit"),
            ))
        } else {
            Ok(())
        }
    });
    text_of(name, what, read.map(|()| buf))
}

/// A UTF-8 file's text; `what` names it in errors ("spec", "schematic").
pub fn read_text(path: &Path, what: &str) -> Result<String, LocatedError> {
    text_of(
        path,
        what,
        read_bounded(path, crate::limits::MAX_TEXT_INPUT),
    )
}

fn text_of(
    path: &Path,
    what: &str,
    read: std::io::Result<Vec<u8>>,
) -> Result<String, LocatedError> {
    let bytes = read.map_err(|e| LocatedError {
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
    fn decoder_words_become_yaml_words_with_a_suggestion() {
        assert_eq!(
            humane("unknown field `sise`, expected one of path, size, mode at line 3, column 5"),
            "unknown field `sise`, expected one of path, size, mode (did you mean `size`?)"
        );
        assert_eq!(
            humane("unknown variant `fil`, expected one of file, dir, symlink"),
            "unknown value `fil`, expected one of file, dir, symlink (did you mean `file`?)"
        );
        // Too far from anything allowed: no guess.
        assert_eq!(
            humane("unknown field `colour`, expected `path` or `size`"),
            "unknown field `colour`, expected `path` or `size`"
        );
        assert_eq!(
            humane("unknown field `Path`, expected `path` or `size`"),
            "unknown field `Path`, expected `path` or `size` (did you mean `path`?)"
        );
        assert_eq!(
            humane("invalid type: sequence, expected struct FileExpect"),
            "a list, expected a mapping"
        );
    }

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

//! Golden trees: the whole flattened image, as `tdg tree` lists it with named redactions
//! applied, compared with a file kept in the repository. Evaluation only compares; `settle`
//! is the one place that writes, by the rules people expect of snapshot tests: `TDG_BLESS=1`
//! (or `tdg bless`) writes the golden, otherwise a differing listing goes beside it as `.new`
//! for review, and with `CI` set nothing is ever written.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::error::Reason;
use crate::layers::tree::{self, Tree};
use crate::limits::MAX_REPORT_TEXT;
use crate::spec::model::TreeField;
use crate::spec::TreeExpectation;

/// The listing as the golden holds it: masked fields read `[name]`.
pub fn render(t: &Tree, exp: &TreeExpectation) -> String {
    let mut out = String::new();
    for (path, e) in t.iter() {
        let path = path.as_str();
        let line = tree::line(path, &e);
        let masks: Vec<(&str, TreeField)> = exp
            .redactions
            .iter()
            .filter(|r| r.paths.is_match(path))
            .flat_map(|r| r.fields.iter().map(move |f| (r.name.as_str(), *f)))
            .collect();
        out.push_str(&if masks.is_empty() {
            line
        } else {
            mask(&line, &masks)
        });
        out.push('\n');
    }
    out
}

fn mask(line: &str, masks: &[(&str, TreeField)]) -> String {
    let mut parts: Vec<String> = line.splitn(6, ' ').map(str::to_string).collect();
    if parts.len() < 6 {
        return line.to_string();
    }
    for (name, field) in masks {
        let tag = format!("[{name}]");
        match field {
            TreeField::Mode => parts[1] = tag,
            TreeField::Owner => parts[2] = tag,
            TreeField::Size => parts[3] = tag,
            TreeField::Sha256 => parts[4] = tag,
            TreeField::Link => {
                for sep in [" -> ", " => ", " = "] {
                    if let Some(i) = parts[5].find(sep) {
                        parts[5] = format!("{}{sep}{tag}", &parts[5][..i]);
                    }
                }
            }
        }
    }
    parts.join(" ")
}

/// Compares a listing with the golden's text (`None`: there is no golden): `Ok` when equal,
/// else a short reason and a unified diff of at most `max_lines` lines.
pub fn compare(
    expected: Option<&str>,
    name: &str,
    actual: &str,
    max_lines: usize,
) -> Result<(), Reason> {
    let Some(expected) = expected else {
        return Err(
            format!("golden {name} is missing; bless it with TDG_BLESS=1 or `tdg bless`").into(),
        );
    };
    if expected == actual {
        return Ok(());
    }
    let diff = TextDiff::from_lines(expected, actual);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = diff
        .unified_diff()
        .context_radius(1)
        .header(name, "image")
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    let more = lines.len().saturating_sub(max_lines);
    lines.truncate(max_lines);
    let tail = if more > 0 {
        format!("\n… {more} more diff lines")
    } else {
        String::new()
    };
    Err(format!(
        "differs from {name}: {removed} line(s) removed, {added} added\n{}{tail}",
        lines.join("\n")
    )
    .into())
}

/// A build report with the values of `keys` replaced by `[redacted]`.
pub fn redact_report(text: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.split_once(": ") {
            Some((k, _))
                if !line.starts_with(char::is_whitespace) && keys.iter().any(|r| r == k) =>
            {
                out.push_str(k);
                out.push_str(": [redacted]");
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// One golden of a run: where it lives, how the spec names it, the listing the image gives,
/// and the golden's text as read (`None` when there is none). The checks compare these; `settle`
/// writes from them.
#[derive(Debug, Clone)]
pub struct Pending {
    pub golden: PathBuf,
    pub name: String,
    pub actual: String,
    pub expected: Option<String>,
    /// Why the golden may be neither read nor written: it lies outside the spec's repository
    /// or is not a regular file. Such a golden fails its check and nothing is written.
    pub refused: Option<String>,
}

impl Pending {
    pub(super) fn new(golden: &Path, repo: &Path, name: &str, actual: String) -> Self {
        let refused = crate::located::confine(golden, repo)
            .err()
            .map(|m| format!("golden {name}: {m}"));
        let expected = match refused {
            None => crate::located::read_capped(golden, crate::limits::MAX_TEXT_INPUT).ok(),
            Some(_) => None,
        };
        Pending {
            golden: golden.to_path_buf(),
            name: name.to_string(),
            actual,
            expected,
            refused,
        }
    }

    pub fn matched(&self) -> bool {
        self.refused.is_none() && self.expected.as_deref() == Some(self.actual.as_str())
    }

    pub fn compare(&self) -> Result<(), Reason> {
        if let Some(r) = &self.refused {
            return Err(r.clone().into());
        }
        compare(self.expected.as_deref(), &self.name, &self.actual, 24)
    }
}

/// Every golden a spec names, rendered once from the flattened image: the tree, and each build
/// report whose text could be read (a report that cannot be read fails its check on its own).
pub fn pending(
    spec: &crate::spec::Spec,
    flat: &crate::layers::flatten::Flattened,
    spool: &crate::layers::flatten::Spool,
) -> Vec<Pending> {
    let mut out = Vec::new();
    if let Some(exp) = &spec.expect.tree {
        out.push(Pending::new(
            &exp.golden,
            &exp.repo,
            &exp.written,
            render(&flat.tree, exp),
        ));
    }
    for f in &spec.expect.files {
        let Some(g) = f.report.as_ref().and_then(|r| r.golden.as_ref()) else {
            continue;
        };
        let Some(text) = flat
            .spooled(spool, &f.path)
            .ok()
            .and_then(|p| crate::located::read_capped(&p, MAX_REPORT_TEXT).ok())
        else {
            continue;
        };
        out.push(Pending::new(
            &g.file.path,
            &g.file.repo,
            &g.file.written,
            redact_report(&text, &g.redact),
        ));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write goldens (`TDG_BLESS=1`, `tdg bless`).
    Bless,
    /// Write `.new` beside a golden that differs; remove a stale one when it matches.
    Review,
    /// `CI` is set: never write.
    ReadOnly,
}

impl Mode {
    pub fn from_env() -> Mode {
        let set =
            |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        if set("CI") {
            Mode::ReadOnly
        } else if set("TDG_BLESS") {
            Mode::Bless
        } else {
            Mode::Review
        }
    }
}

pub fn new_path(golden: &Path) -> PathBuf {
    let mut s = golden.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

/// Writes what the mode allows; returns what it did, one line each, for the user.
pub fn settle(pending: &[Pending], mode: Mode) -> Result<Vec<String>, Reason> {
    let mut notes = Vec::new();
    for p in pending.iter().filter(|p| p.refused.is_none()) {
        let new = new_path(&p.golden);
        match (mode, p.matched()) {
            (Mode::ReadOnly, _) => {}
            (Mode::Bless, false) => {
                if let Some(dir) = p.golden.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Reason(format!("creating {}: {e}", dir.display())))?;
                }
                replace(&p.golden, &p.actual)?;
                let _ = std::fs::remove_file(&new);
                notes.push(format!("blessed {}", p.golden.display()));
            }
            (Mode::Review, false) => {
                if let Some(dir) = p.golden.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Reason(format!("creating {}: {e}", dir.display())))?;
                }
                replace(&new, &p.actual)?;
                notes.push(format!(
                    "wrote {} for review (accept with TDG_BLESS=1 or `tdg bless`)",
                    new.display()
                ));
            }
            (_, true) => {
                if std::fs::remove_file(&new).is_ok() {
                    notes.push(format!("removed stale {}", new.display()));
                }
            }
        }
    }
    Ok(notes)
}

fn replace(path: &Path, text: &str) -> Result<(), Reason> {
    crate::located::write_replacing(path, text.as_bytes())
        .map_err(|e| Reason(format!("writing {}: {e}", path.display())))
}

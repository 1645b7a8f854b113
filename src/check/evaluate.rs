//! Answers planned checks against a resolved, flattened image.

use std::io::Read;
use std::time::Instant;

use super::outcome::{Outcome, Status};
use super::plan::{Check, FileProp, Plan, What};
use crate::layers::flatten::{Flattened, Spool};
use crate::layers::tree::{Entry, Kind};
use crate::oci::resolve::Resolved;
use crate::spec::{FileExpectation, FileType};

/// Text checks read at most this much of a file.
pub const MAX_TEXT: u64 = 64 << 20;

pub struct Subject<'a> {
    pub resolved: &'a Resolved,
    pub flat: &'a Flattened,
    pub spool: &'a Spool,
    pub limits: crate::talos::initramfs::Limits,
    pub walks: super::talos::Walks,
    /// The goldens of this run, rendered once (`golden::pending`).
    pub goldens: &'a [super::golden::Pending],
}

impl Subject<'_> {
    pub(super) fn golden(&self, path: &std::path::Path) -> Option<&super::golden::Pending> {
        self.goldens.iter().find(|g| g.golden == path)
    }
}

pub fn evaluate(plan: &Plan, subject: &Subject<'_>) -> Vec<Outcome> {
    plan.checks
        .iter()
        .map(|c| {
            let start = Instant::now();
            let (status, message) = match one(plan, c, subject) {
                Ok(()) => (Status::Pass, String::new()),
                Err(Verdict::Fail(m)) => (Status::Fail, m),
                Err(Verdict::Error(m)) => (Status::Error, m),
            };
            Outcome {
                check: c.id.clone(),
                status,
                message,
                duration_ms: start.elapsed().as_secs_f64() * 1e3,
            }
        })
        .collect()
}

pub(super) enum Verdict {
    Fail(String),
    Error(String),
}

pub(super) fn fail<T>(m: impl Into<String>) -> Result<T, Verdict> {
    Err(Verdict::Fail(m.into()))
}

fn one(plan: &Plan, check: &Check, s: &Subject<'_>) -> Result<(), Verdict> {
    let r = s.resolved;
    match &check.what {
        What::Digest(want) => {
            if want == &r.digest || want == &r.manifest_digest {
                Ok(())
            } else {
                fail(format!(
                    "pinned {want}, but the image resolved to {}",
                    r.digest
                ))
            }
        }
        What::Platform(want) => {
            if r.platform.satisfies(want) {
                Ok(())
            } else {
                fail(format!(
                    "expected platform {want}, the image is {}",
                    r.platform
                ))
            }
        }
        What::Platforms(want) => {
            let mut found: Vec<String> = match &r.index_platforms {
                Some(ps) => ps.iter().map(|p| p.to_string()).collect(),
                None => vec![r.platform.to_string()],
            };
            let mut want: Vec<String> = want.iter().map(|p| p.to_string()).collect();
            found.sort();
            want.sort();
            if found == want {
                return Ok(());
            }
            let missing: Vec<&String> = want.iter().filter(|w| !found.contains(w)).collect();
            let extra: Vec<&String> = found.iter().filter(|f| !want.contains(f)).collect();
            let mut m = format!(
                "expected [{}], found [{}]",
                want.join(", "),
                found.join(", ")
            );
            if !missing.is_empty() {
                m += &format!("; missing {}", join(&missing));
            }
            if !extra.is_empty() {
                m += &format!("; unexpected {}", join(&extra));
            }
            if r.index_platforms.is_none() {
                m += " (a single-platform image, not an index)";
            }
            fail(m)
        }
        What::Label(i) => {
            let (key, want) = &plan.spec.expect.labels[*i];
            let labels = r.config.labels();
            match labels.get(key) {
                Some(v) if want.matches(v) => Ok(()),
                Some(v) => fail(format!("label {key} is '{}', expected {want}", clip(v))),
                None => {
                    let keys: Vec<&String> = labels.keys().collect();
                    fail(format!(
                        "label {key} is missing (labels: {})",
                        if keys.is_empty() {
                            "none".into()
                        } else {
                            join(&keys)
                        }
                    ))
                }
            }
        }
        What::File(i, prop) => file(plan, &plan.spec.expect.files[*i], *prop, s),
        What::Extension(p) => super::talos::extension(plan, *p, s),
        What::Tree => {
            let exp = plan.spec.expect.tree.as_ref().expect("planned with a tree");
            let g = s
                .golden(&exp.golden)
                .ok_or_else(|| Verdict::Error("the tree was not rendered".into()))?;
            g.compare().map_err(Verdict::Fail)
        }
        What::Absent(path) => {
            let tree = &s.flat.tree;
            let p = tree.resolve(path, false).unwrap_or_else(|_| path.clone());
            match tree.get(&p) {
                None => Ok(()),
                Some(e) => {
                    let below = tree.children_keys(&p).len();
                    let extra = if e.kind == Kind::Dir {
                        format!(", {below} entries below")
                    } else {
                        String::new()
                    };
                    fail(format!("present: {} ({}{extra})", p, e.kind.name()))
                }
            }
        }
    }
}

fn file(plan: &Plan, f: &FileExpectation, prop: FileProp, s: &Subject<'_>) -> Result<(), Verdict> {
    let tree = &s.flat.tree;
    let path = tree
        .resolve(&f.path, false)
        .map_err(|e| Verdict::Error(e.to_string()))?;
    let Some(e) = tree.get(&path) else {
        return fail(format!("missing{}", near(s, &path)));
    };
    match prop {
        FileProp::Exists => Ok(()),
        FileProp::Kernel
        | FileProp::Uki
        | FileProp::Initramfs { .. }
        | FileProp::Checksums
        | FileProp::Report
        | FileProp::Revision
        | FileProp::ReportGolden => super::talos::file(plan, f, &path, prop, s),
        FileProp::Type => {
            let want = f.kind.expect("planned with a type");
            let ok = match want {
                FileType::File => e.kind.has_content(),
                FileType::Dir => e.kind == Kind::Dir,
                FileType::Symlink => e.kind == Kind::Symlink,
            };
            if ok {
                Ok(())
            } else {
                fail(format!(
                    "expected {}, found {}",
                    type_word(want),
                    describe(e)
                ))
            }
        }
        FileProp::Mode => {
            let want = f.mode.expect("planned with a mode");
            if e.mode == want {
                Ok(())
            } else {
                fail(format!("expected mode {want:04o}, found {:04o}", e.mode))
            }
        }
        FileProp::Size => {
            let size = content_size(e)?;
            let (min, max) = f.size.expect("planned with a size");
            if let Some(min) = min.filter(|m| size < *m) {
                return fail(format!(
                    "size {} is below the minimum {}",
                    bytes(size),
                    bytes(min)
                ));
            }
            if let Some(max) = max.filter(|m| size > *m) {
                return fail(format!(
                    "size {} is above the maximum {}",
                    bytes(size),
                    bytes(max)
                ));
            }
            Ok(())
        }
        FileProp::Sha256 => {
            content_size(e)?;
            let want = f.sha256.as_ref().expect("planned with a sha256");
            match &e.sha256 {
                Some(got) if got == want => Ok(()),
                Some(got) => fail(format!(
                    "expected sha256 {}, found {}",
                    want.hex(),
                    got.hex()
                )),
                None => fail("has no content"),
            }
        }
        FileProp::Contains | FileProp::Matches => {
            let text = read_text(s, &path, e)?;
            let missing: Vec<String> = if prop == FileProp::Contains {
                f.contains
                    .iter()
                    .filter(|needle| !contains(&text, needle.as_bytes()))
                    .map(|n| format!("'{}'", clip(n)))
                    .collect()
            } else {
                f.matches
                    .iter()
                    .filter(|re| !re.is_match(&text))
                    .map(|re| format!("/{}/", clip(re.as_str())))
                    .collect()
            };
            if missing.is_empty() {
                Ok(())
            } else {
                let verb = if prop == FileProp::Contains {
                    "does not contain"
                } else {
                    "has no match for"
                };
                fail(format!(
                    "{verb} {} ({} bytes)",
                    missing.join(", "),
                    text.len()
                ))
            }
        }
    }
}

fn content_size(e: &Entry) -> Result<u64, Verdict> {
    match (e.kind.has_content(), e.size) {
        (true, Some(n)) => Ok(n),
        _ => fail(format!("expected a file, found {}", describe(e))),
    }
}

fn read_text(s: &Subject<'_>, path: &str, e: &Entry) -> Result<Vec<u8>, Verdict> {
    let size = content_size(e)?;
    if size > MAX_TEXT {
        return fail(format!(
            "{} is too large for text checks (limit {})",
            bytes(size),
            bytes(MAX_TEXT)
        ));
    }
    let d = s
        .flat
        .content
        .get(path)
        .ok_or_else(|| Verdict::Error(format!("content of {path} was not captured")))?;
    let mut buf = Vec::with_capacity(size as usize);
    std::fs::File::open(s.spool.path(d))
        .and_then(|f| f.take(MAX_TEXT).read_to_end(&mut buf))
        .map_err(|err| Verdict::Error(format!("reading spooled content of {path}: {err}")))?;
    Ok(buf)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn describe(e: &Entry) -> String {
    match (&e.kind, &e.link) {
        (Kind::Symlink, Some(t)) => format!("a symlink -> {t}"),
        (k, _) => format!("a {}", k.name()),
    }
}

fn type_word(t: FileType) -> &'static str {
    match t {
        FileType::File => "a file",
        FileType::Dir => "a dir",
        FileType::Symlink => "a symlink",
    }
}

/// Up to five siblings of a missing path, to make a typo obvious.
fn near(s: &Subject<'_>, path: &str) -> String {
    let tree = &s.flat.tree;
    let mut parent = path;
    while let Some((p, _)) = parent.rsplit_once('/') {
        parent = p;
        if tree.get(parent).is_some_and(|e| e.kind == Kind::Dir) {
            let depth = parent.matches('/').count() + 1;
            let kids: Vec<String> = tree
                .children_keys(parent)
                .into_iter()
                .filter(|k| k.matches('/').count() == depth)
                .collect();
            let names: Vec<&str> = kids
                .iter()
                .take(5)
                .map(|k| k.rsplit('/').next().unwrap_or(k))
                .collect();
            let more = if kids.len() > 5 {
                format!(", … {} more", kids.len() - 5)
            } else {
                String::new()
            };
            return format!(
                " ({parent}/ holds: {}{more})",
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
    }
    String::new()
}

fn bytes(n: u64) -> String {
    crate::spec::size::ByteSize(n).to_string()
}

fn clip(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

fn join<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

//! Checks on a build report (`validation/build-report.txt`): its `Key: Value` facts (also in
//! the JSON twin beside it when the image has one), the commit it names against the image's
//! revision label, and the whole report against a golden.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::files::file_check_name;
use super::subject::{clip, fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::limits::MAX_REPORT_TEXT;
use crate::spec::{FileExpectation, GoldenFile, KeyMatch};
use crate::talos::report::{self, REVISION_LABEL};

pub const REPORT: &str = "report";
pub const REVISION: &str = "report::revision";
pub const GOLDEN: &str = "report::golden";

#[derive(Debug)]
pub struct Check {
    pub path: String,
    pub what: What,
}

#[derive(Debug)]
pub enum What {
    Fields(Vec<KeyMatch>),
    /// The field naming the commit built.
    Revision(String),
    Golden(GoldenFile),
}

pub fn plan(f: &FileExpectation) -> Vec<Arc<dyn Planned>> {
    let Some(r) = &f.report else {
        return Vec::new();
    };
    let mut whats = Vec::new();
    if !r.fields.is_empty() {
        whats.push(What::Fields(r.fields.clone()));
    }
    if let Some(field) = &r.revision {
        whats.push(What::Revision(field.clone()));
    }
    if let Some(g) = &r.golden {
        whats.push(What::Golden(g.file.clone()));
    }
    whats
        .into_iter()
        .map(|what| {
            Arc::new(Check {
                path: f.path.clone(),
                what,
            }) as Arc<dyn Planned>
        })
        .collect()
}

/// Where a report's JSON twin sits: `build-report.json` beside `build-report.txt`.
pub fn json_twin(path: &str) -> Option<String> {
    path.strip_suffix(".txt").map(|stem| format!("{stem}.json"))
}

impl Planned for Check {
    fn name(&self) -> String {
        let what = match self.what {
            What::Fields(_) => REPORT,
            What::Revision(_) => REVISION,
            What::Golden(_) => GOLDEN,
        };
        file_check_name(&self.path, what)
    }

    fn golden(&self) -> Option<&std::path::Path> {
        match &self.what {
            What::Golden(g) => Some(&g.path),
            _ => None,
        }
    }

    fn needs(&self) -> Needs {
        let mut out = vec![self.path.clone()];
        if let What::Fields(_) = self.what {
            out.extend(json_twin(&self.path));
        }
        Needs::paths(out)
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let (path, _) = s.locate(&self.path)?;
        match &self.what {
            What::Fields(want) => {
                let txt = report::fields(&s.read_text(&path, MAX_REPORT_TEXT)?);
                check_fields(want, &txt, "")?;
                if let Some(json_path) = json_twin(&path) {
                    if s.flat.tree.get(&json_path).is_some() {
                        let json = report::json_fields(&s.read_text(&json_path, MAX_REPORT_TEXT)?)
                            .map_err(Verdict::failed)?;
                        check_fields(want, &json, "build-report.json: ")?;
                    }
                }
                Ok(())
            }
            What::Golden(g) => match s.golden(&g.path) {
                Some(g) => g.compare().map_err(Verdict::failed),
                // Not rendered: the report is missing or not text; say which.
                None => s
                    .read_text(&path, MAX_REPORT_TEXT)
                    .and_then(|_| Err(Verdict::Error("the report was not rendered".into()))),
            },
            What::Revision(field) => {
                let txt = report::fields(&s.read_text(&path, MAX_REPORT_TEXT)?);
                let Some(named) = txt.get(field) else {
                    return fail(format!("the report has no '{field}' field"));
                };
                let labels = s.resolved.config.labels();
                let Some(label) = labels.get(REVISION_LABEL) else {
                    return fail(format!(
                        "the image has no {REVISION_LABEL} label to compare '{field}' with"
                    ));
                };
                if report::same_commit(named, label) {
                    Ok(())
                } else {
                    fail(format!("the report's {field} is {named}, but the image's {REVISION_LABEL} is {label}: the tag points at another build"))
                }
            }
        }
    }
}

fn check_fields(want: &[KeyMatch], got: &BTreeMap<String, String>, prefix: &str) -> Judged {
    let mut problems = Vec::new();
    for KeyMatch { key, want } in want {
        match got.get(key) {
            Some(v) if want.matches(v) => {}
            Some(v) => problems.push(format!("{key} is '{}', expected {want}", clip(v))),
            None => problems.push(format!("no '{key}' field")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        fail(format!("{prefix}{}", problems.join("; ")))
    }
}

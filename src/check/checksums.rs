//! `files::<path>::checksums`: a `sha256sum` listing whose every line verifies against the
//! image's files under its root (and, when `complete`, that lists every one of them).

use std::sync::Arc;

use super::files::file_check_name;
use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::layers::tree::Kind as EntryKind;
use crate::limits::MAX_REPORT_TEXT;
use crate::spec::{ChecksumsExpectation, FileExpectation};
use crate::talos::checksums;

pub const CHECKSUMS: &str = "checksums";

#[derive(Debug)]
pub struct Check {
    pub path: String,
    pub want: ChecksumsExpectation,
}

pub fn plan(f: &FileExpectation) -> Vec<Arc<dyn Planned>> {
    f.checksums
        .iter()
        .map(|want| {
            Arc::new(Check {
                path: f.path.clone(),
                want: want.clone(),
            }) as Arc<dyn Planned>
        })
        .collect()
}

impl Planned for Check {
    fn name(&self) -> String {
        file_check_name(&self.path, CHECKSUMS)
    }

    fn needs(&self) -> Needs {
        Needs::paths([self.path.clone()])
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let (path, _) = s.locate(&self.path)?;
        let text = s.read_text(&path, MAX_REPORT_TEXT)?;
        let lines = checksums::parse(&text).map_err(Verdict::failed)?;
        if lines.is_empty() {
            return fail("lists no files");
        }
        let tree = &s.flat.tree;
        let root = tree
            .resolve(&self.want.root, true)
            .map_err(|e| Verdict::Error(e.to_string()))?;
        if !tree.get(&root).is_some_and(|e| e.kind == EntryKind::Dir) {
            return fail(format!(
                "checksums root {root} is not a directory in the image"
            ));
        }
        checksums::verify(&lines, tree, &root, &path, self.want.complete).map_err(Verdict::failed)
    }
}

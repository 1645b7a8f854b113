//! `tree`: the whole flattened image equals a golden `tdg tree` listing, once the spec's
//! redactions are applied (rendered once per run by [`super::golden::pending`]).

use std::sync::Arc;

use super::subject::{Judged, Subject, Verdict};
use super::Planned;
use crate::spec::Spec;

pub const TREE: &str = "tree";

#[derive(Debug)]
pub struct Check {
    pub golden: std::path::PathBuf,
}

pub fn plan(spec: &Spec) -> Vec<Arc<dyn Planned>> {
    spec.expect
        .tree
        .iter()
        .map(|t| {
            Arc::new(Check {
                golden: t.golden.clone(),
            }) as Arc<dyn Planned>
        })
        .collect()
}

impl Planned for Check {
    fn name(&self) -> String {
        TREE.into()
    }

    fn golden(&self) -> Option<&std::path::Path> {
        Some(&self.golden)
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let g = s
            .golden(&self.golden)
            .ok_or_else(|| Verdict::Error("the tree was not rendered".into()))?;
        g.compare().map_err(Verdict::failed)
    }
}

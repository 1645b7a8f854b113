//! Behaviour trials, grouped by what they prove.

use libtest_mimic::Trial;

use crate::trial;

pub fn all() -> Vec<Trial> {
    vec![]
}

//! The CLI's exit codes, in one place (design.md, "Exit codes"). Every command ends in one of
//! these; a fault that stops a run is [`Exit::Unevaluated`], never a pass.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: every check passed (or the command had nothing to judge and did its work).
    Passed,
    /// 1: at least one check failed or was skipped: the image is wrong.
    Failed,
    /// 2: the run could not be evaluated (bad spec, unreachable registry, auth, integrity).
    Unevaluated,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Failed => 1,
            Exit::Unevaluated => 2,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

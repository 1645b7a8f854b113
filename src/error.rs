//! The one error type of tdg's pipelines: what kind of fault it is, and the message with its
//! context. The kind is set where the fault is found (a registry's answer, a digest check, a
//! spec's line), never guessed later from text; [`Error::exit`] maps kinds to the CLI's
//! exit codes in one place.

use std::fmt;
use std::path::Path;

use crate::digest::Digest;
use crate::exit::Exit;
use crate::located::LocatedError;

/// Why a reader or a judge refused something ([`crate::reason`]).
pub use crate::reason::Reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A spec, schematic or other input file is malformed; the message names file:line:col.
    Input,
    /// Arguments or environment that cannot be honoured (an index with no platform named,
    /// blessing under CI, an `--output` that is not a layout).
    Usage,
    /// Bytes that do not match their digest or size: never a pass, never kept in the cache.
    Integrity,
    /// A registry could not be reached or answered with a fault.
    Registry { host: String },
    /// A registry refused the credentials, or asked for some.
    Auth { host: String },
    /// The image (resolved to `digest`) has no manifest for the platform asked for: an image
    /// problem, which checks report as a failed `platform`.
    PlatformMissing { digest: Digest },
    /// Reading or writing local files.
    Io,
    /// Anything else that stopped the run.
    Other,
    /// The reader of standard output went away (`tdg tree … | head`): not a fault of the run,
    /// so tdg stops quietly with 0, as ripgrep does.
    ReaderGone,
}

pub struct Error {
    kind: ErrorKind,
    inner: anyhow::Error,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl fmt::Display + Send + Sync + 'static) -> Self {
        Error {
            kind,
            inner: anyhow::Error::msg(message.to_string()),
        }
    }

    pub fn integrity(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Integrity, message.to_string())
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Usage, message.to_string())
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{}: {e}", path.display()))
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The spec (or other input file) line this error is about, when it is about one.
    pub fn located(&self) -> Option<&LocatedError> {
        match self.inner.downcast_ref::<crate::located::Snippeted>() {
            Some(s) => Some(&s.0),
            None => self.inner.downcast_ref::<Error>().and_then(Error::located),
        }
    }

    pub fn is_integrity(&self) -> bool {
        self.kind == ErrorKind::Integrity
    }

    /// The same fault, said of something larger ("pulling the base image …: <this>").
    pub fn context(self, c: impl fmt::Display + Send + Sync + 'static) -> Self {
        Error {
            kind: self.kind,
            inner: self.inner.context(c),
        }
    }

    /// The CLI's exit: every fault that stops a run could not be evaluated (a failed check is
    /// an outcome, not an error); a reader that went away is not a fault.
    pub fn exit(&self) -> Exit {
        match self.kind {
            ErrorKind::Input
            | ErrorKind::Usage
            | ErrorKind::Integrity
            | ErrorKind::Registry { .. }
            | ErrorKind::Auth { .. }
            | ErrorKind::PlatformMissing { .. }
            | ErrorKind::Io
            | ErrorKind::Other => Exit::Unevaluated,
            ErrorKind::ReaderGone => Exit::Passed,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.inner)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.inner)
    }
}

impl std::error::Error for Error {}

/// Untyped errors are faults of no particular kind, unless they carry one of ours under their
/// context (anyhow keeps it reachable), whose kind they keep.
impl From<anyhow::Error> for Error {
    fn from(inner: anyhow::Error) -> Self {
        let kind = inner
            .downcast_ref::<Error>()
            .map_or(ErrorKind::Other, |e| e.kind.clone());
        Error { kind, inner }
    }
}

impl From<crate::digest::VerifyError> for Error {
    fn from(e: crate::digest::VerifyError) -> Self {
        use crate::digest::VerifyError as V;
        match e {
            V::Mismatch(m) => Error::integrity(m),
            V::Unread(m) => Error::new(ErrorKind::Io, m),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e)
    }
}

impl From<LocatedError> for Error {
    fn from(e: LocatedError) -> Self {
        Error {
            kind: ErrorKind::Input,
            inner: e.with_snippet(),
        }
    }
}

/// `.during("pulling the base image …")` on a result, keeping the error's kind.
pub trait ResultExt<T> {
    fn during<C: fmt::Display + Send + Sync + 'static>(self, c: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn during<C: fmt::Display + Send + Sync + 'static>(self, c: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(c()))
    }
}

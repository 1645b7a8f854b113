//! The error of readers and judges: why something was refused, in words for the user. A leaf
//! module, so the modules the error type itself builds on (`located`) can use it.

/// Why a reader or a judge refused something, in words for the user: a signature bundle, a
/// certificate, a checksum line, a version, a YAML value. Callers make it a check's message or
/// wrap it in an `error::Error` with the kind they know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub String);

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Reason(s.to_string())
    }
}

/// Read as the text it is.
impl std::ops::Deref for Reason {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> Self {
        r.0
    }
}

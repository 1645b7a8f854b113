//! SOURCE_DATE_EPOCH (reproducible-builds.org): the one clock builds and release manifests
//! read, so the same inputs give the same bytes.

use anyhow::{Context, Result};

/// SOURCE_DATE_EPOCH, or 0: a build is reproducible unless told otherwise.
pub fn source_date_epoch() -> Result<u64> {
    Ok(source_date_epoch_set()?.unwrap_or(0))
}

/// SOURCE_DATE_EPOCH when it is set (a release manifest's date falls back to now instead).
pub fn source_date_epoch_set() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH '{v}' is not a number of seconds")),
        _ => Ok(None),
    }
}

/// Unix seconds as RFC 3339 (UTC), for messages.
pub fn rfc3339(t: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

//! Build reports: `validation/build-report.txt` (`Key: Value` lines, then free text such as an
//! inventory) and `validation/build-report.json` (`{"fields": {Key: Value}, ...}`).

use std::collections::BTreeMap;

/// The image label naming the commit an image was built from (OCI image-spec annotations).
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// `Key: Value` lines: a key starts at the beginning of the line and has no leading space; the
/// first occurrence of a key wins.
pub fn fields(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some((k, v)) = line.split_once(": ") {
            let k = k.trim();
            if !k.is_empty() && k.len() <= 64 {
                out.entry(k.to_string())
                    .or_insert_with(|| v.trim().to_string());
            }
        } else if let Some(k) = line.strip_suffix(':') {
            out.entry(k.trim().to_string()).or_insert_with(String::new);
        }
    }
    out
}

/// The `fields` object of the JSON report, as strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("build-report.json is not JSON: {0}")]
    NotJson(String),
    #[error("build-report.json has no \"fields\" object")]
    NoFields,
}

pub fn json_fields(text: &str) -> Result<BTreeMap<String, String>, ReportError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ReportError::NotJson(e.to_string()))?;
    let obj = v
        .get("fields")
        .and_then(|f| f.as_object())
        .ok_or(ReportError::NoFields)?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect())
}

/// Whether two commit ids name the same commit: equal, or one an abbreviation (7+ hex digits)
/// of the other.
pub fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    let hex = |s: &str| s.len() >= 7 && s.bytes().all(|c| c.is_ascii_hexdigit());
    hex(&a) && hex(&b) && (a.starts_with(&b) || b.starts_with(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_lines() {
        let f = fields("Talos Build Report\nTalos Version: v1.11.5\nOutputs:\n  boot/vmlinuz 12 bytes\nSource Commit: 0123abc\nTalos Version: v9\n");
        assert_eq!(f["Talos Version"], "v1.11.5");
        assert_eq!(f["Source Commit"], "0123abc");
        assert_eq!(f["Outputs"], "");
        assert!(!f.contains_key("boot/vmlinuz 12 bytes"));
    }

    #[test]
    fn commits() {
        assert!(same_commit(
            "0123abc",
            "0123abcdef0123abcdef0123abcdef0123abcdef"
        ));
        assert!(!same_commit("0123abd", "0123abcdef"));
        assert!(!same_commit("0123", "0123"));
    }
}

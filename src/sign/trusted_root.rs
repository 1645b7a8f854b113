//! A Sigstore `trusted_root.json` (protobuf-specs `sigstore_trustroot.proto`, JSON form): the
//! transparency logs' keys, Fulcio's certificate chains and the timestamp authorities a
//! signature is judged against. The public-good production root is embedded; `--trusted-root`
//! / `TDG_TRUSTED_ROOT` names another (a private Sigstore, or the harness's test PKI).

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::Reason;

/// sigstore/root-signing `targets/trusted_root.json` at c9bda74 (2025-09-22), as published.
const PRODUCTION: &str = include_str!("production_trusted_root.json");
/// When the embedded root was taken; a run warns when it is over a year old.
pub const PRODUCTION_DATE: &str = "2025-09-22";

#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Where it came from, for messages: `embedded production root (2025-09-22)` or a path.
    pub origin: String,
    /// Whether it is the root embedded in tdg, which ages (see `sign::root_is_stale`).
    pub embedded: bool,
    pub tlogs: Vec<LogKey>,
    /// Certificate Transparency logs: whose SCTs a keyless certificate must carry.
    pub ctlogs: Vec<LogKey>,
    /// Fulcio (or a private CA): the chains keyless certificates must lead to.
    pub cas: Vec<Authority>,
    /// Timestamp authorities, leaf first: whose RFC 3161 tokens say when a signature was made.
    pub tsas: Vec<Authority>,
    /// The raw JSON, kept for evidence bundles.
    pub raw: Vec<u8>,
}

/// A transparency log's key, with the period it signed in.
#[derive(Debug, Clone)]
pub struct LogKey {
    pub base_url: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub details: String,
    /// The log's ID, lowercase hex: the root's `logId.keyId` (Rekor v2: the signed-note key
    /// ID, SHA-256 of `origin \n 0x01 key`), else the SHA-256 of the key's SPKI (Rekor v1's).
    pub log_id: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// A certificate authority: its chain, issuer first and root last (DER), and its period.
#[derive(Debug, Clone)]
pub struct Authority {
    pub uri: String,
    pub chain: Vec<Vec<u8>>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Authority {
    pub fn valid_at(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

impl LogKey {
    /// Whether the key was valid at `t` (Unix seconds).
    pub fn valid_at(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    ctlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    uri: String,
    cert_chain: CertChainJson,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct CertChainJson {
    certificates: Vec<RawJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    #[serde(default)]
    log_id: Option<LogIdJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    #[serde(default)]
    key_details: String,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ValidForJson {
    start: Option<String>,
    end: Option<String>,
}

impl TrustedRoot {
    /// The embedded public-good root.
    pub fn production() -> Self {
        let origin = format!("the embedded Sigstore production root ({PRODUCTION_DATE})");
        let root = Self::parse(PRODUCTION.as_bytes(), &origin);
        TrustedRoot {
            embedded: true,
            ..root.expect("the embedded trusted root parses")
        }
    }

    /// `path`, or the embedded root when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self::production()),
            Some(p) => {
                let bytes = crate::located::read_bounded(p, crate::limits::MAX_TEXT_INPUT)
                    .map_err(|e| anyhow::anyhow!("trusted root {}: {e}", p.display()))?;
                Self::parse(&bytes, &p.display().to_string())
                    .map_err(|e| anyhow::anyhow!("trusted root {}: {e}", p.display()))
            }
        }
    }

    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, Reason> {
        let root: RootJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !root
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(format!("media type {:?} is not a trusted root", root.media_type).into());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let logs = |list: Vec<TlogJson>| -> Result<Vec<LogKey>, Reason> {
            list.into_iter()
                .map(|t| {
                    let spki = b64
                        .decode(&t.public_key.raw_bytes)
                        .map_err(|e| format!("a tlog key of {}: {e}", t.base_url))?;
                    let (start, end) = match &t.public_key.valid_for {
                        Some(v) => (time(&v.start)?, time(&v.end)?),
                        None => (None, None),
                    };
                    let log_id = match &t.log_id {
                        Some(id) => hex::encode(
                            b64.decode(&id.key_id)
                                .map_err(|e| format!("the log ID of {}: {e}", t.base_url))?,
                        ),
                        None => Digest::of(&spki).hex().to_string(),
                    };
                    Ok(LogKey {
                        base_url: t.base_url,
                        log_id,
                        spki,
                        details: t.public_key.key_details,
                        start,
                        end,
                    })
                })
                .collect::<Result<_, Reason>>()
        };
        let tlogs = logs(root.tlogs)?;
        let ctlogs = logs(root.ctlogs)?;
        let authorities = |list: Vec<AuthorityJson>| -> Result<Vec<Authority>, Reason> {
            list.into_iter()
                .map(|c| {
                    let chain = c
                        .cert_chain
                        .certificates
                        .iter()
                        .map(|r| b64.decode(&r.raw_bytes))
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("a certificate of {}: {e}", c.uri))?;
                    let (start, end) = match &c.valid_for {
                        Some(v) => (time(&v.start)?, time(&v.end)?),
                        None => (None, None),
                    };
                    Ok(Authority {
                        uri: c.uri,
                        chain,
                        start,
                        end,
                    })
                })
                .collect::<Result<_, Reason>>()
        };
        let cas = authorities(root.certificate_authorities)?;
        let tsas = authorities(root.timestamp_authorities)?;
        Ok(TrustedRoot {
            origin: origin.to_string(),
            embedded: false,
            tlogs,
            ctlogs,
            cas,
            tsas,
            raw: bytes.to_vec(),
        })
    }

    /// The log whose ID is `log_id` (hex), if the root trusts it.
    pub fn log(&self, log_id: &str) -> Option<&LogKey> {
        self.tlogs.iter().find(|l| l.log_id == log_id)
    }
}

/// An RFC 3339 time as Unix seconds.
fn time(t: &Option<String>) -> Result<Option<i64>, Reason> {
    t.as_deref()
        .map(|s| {
            humantime::parse_rfc3339_weak(s)
                .map_err(|e| Reason(format!("time {s:?}: {e}")))
                .map(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64)
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_root_names_rekor_by_its_log_id() {
        let root = TrustedRoot::production();
        // rekor.sigstore.dev's log ID, as every Rekor v1 entry names it.
        let rekor = root
            .log("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
            .expect("rekor.sigstore.dev");
        assert_eq!(rekor.base_url, "https://rekor.sigstore.dev");
        assert_eq!(rekor.details, "PKIX_ECDSA_P256_SHA_256");
        assert!(rekor.valid_at(1_700_000_000) && !rekor.valid_at(1_600_000_000));
    }

    #[test]
    fn a_file_that_is_not_a_trusted_root_is_refused() {
        let e = TrustedRoot::parse(br#"{"mediaType":"application/json"}"#, "x").unwrap_err();
        assert!(e.contains("not a trusted root"), "{e}");
    }
}

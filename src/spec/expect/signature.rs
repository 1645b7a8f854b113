//! `expect.signature`: who signed the image (checked by `check::signature`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::located::LocatedError;
use crate::spec::validator::Validator;
use crate::spec::ValueMatch;

// As written.

/// Who must have signed: a named upstream signer (`siderolabs`), or the key or keyless signer
/// spelled out.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum SignatureSpec {
    Preset(SignerPreset),
    Signer(SignatureExpect),
}

/// Upstream signers by name.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignerPreset {
    /// Sidero Labs' own images, as the Image Factory verifies them
    /// (`cmd/image-factory/cmd/options.go`, `ContainerSignature`): keyless, from
    /// `https://accounts.google.com`, a `@siderolabs.com` address or their release service
    /// account.
    Siderolabs,
}

/// By hand rather than `untagged`: a word is a preset, a mapping the signer spelled out, and a
/// mistake in either says so in its own terms.
impl<'de> Deserialize<'de> for SignatureSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SignatureSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a signer's name (siderolabs), or {key} or {identity, issuer}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SignatureSpec, E> {
                SignerPreset::deserialize(serde::de::value::StrDeserializer::new(v))
                    .map(SignatureSpec::Preset)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<SignatureSpec, A::Error> {
                SignatureExpect::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(SignatureSpec::Signer)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureExpect {
    /// A cosign public key (PEM, ECDSA P-256), relative to the spec file.
    #[serde(default)]
    pub key: Option<String>,
    /// A keyless signer's identity: the certificate's SAN email or URI, exactly or as a
    /// `^...$` regex.
    #[serde(default)]
    pub identity: Option<String>,
    /// A keyless signer's OIDC issuer (`https://accounts.google.com`,
    /// `https://token.actions.githubusercontent.com`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// With `key`: `false` accepts a signature that has no transparency-log entry (a key that
    /// signs offline, as the Image Factory's does; `cosign verify --insecure-ignore-tlog`).
    /// Default `true`: a log entry is required, as `cosign verify` requires one.
    #[serde(default)]
    pub tlog: Option<bool>,
}

// Validated.

/// `signature: siderolabs`: the identities the Image Factory accepts on Sidero Labs' images
/// (siderolabs/image-factory `cmd/image-factory/cmd/options.go`, `DefaultOptions.ContainerSignature`:
/// `SubjectRegExp` `(@siderolabs\.com$|^releasemgr-svc@talos-production\.iam\.gserviceaccount\.com$)`,
/// searched unanchored as Go's `regexp.MatchString` does), anchored here as `ValueMatch` reads
/// a regex, and `(?s)` so `.` crosses a line break as that search would.
pub const SIDEROLABS_IDENTITY: &str =
    r"^((?s:.*)@siderolabs\.com|releasemgr-svc@talos-production\.iam\.gserviceaccount\.com)$";

pub const SIDEROLABS_ISSUER: &str = "https://accounts.google.com";

/// GitHub Actions' OIDC issuer, the default for `expect.provenance`.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The validated `expect.signature`: a cosign public key, or a keyless signer.
#[derive(Debug, Clone)]
pub enum SignatureExpectation {
    Key {
        /// Resolved against the spec file's directory.
        key: PathBuf,
        /// As the spec writes it.
        written: String,
        /// Whether a transparency-log entry is required (`tlog: false` says it is not).
        tlog: bool,
    },
    Keyless {
        /// Matched against the certificate's SAN emails and URIs.
        identity: ValueMatch,
        /// The OIDC issuer, exactly.
        issuer: String,
    },
}

impl Validator<'_> {
    pub(in crate::spec) fn signer_key(
        &self,
        key: &str,
        tlog: Option<bool>,
        at: &Location,
        what: &str,
    ) -> Result<SignatureExpectation, LocatedError> {
        if key.trim().is_empty() {
            return Err(self.err(at, format!("{what}.key names no file")));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        Ok(SignatureExpectation::Key {
            key: base.join(key),
            written: key.to_string(),
            tlog: tlog.unwrap_or(true),
        })
    }

    pub(in crate::spec) fn signature(
        &self,
        s: &Spanned<SignatureSpec>,
    ) -> Result<SignatureExpectation, LocatedError> {
        let at = &s.referenced;
        let v = match &s.value {
            SignatureSpec::Preset(SignerPreset::Siderolabs) => {
                return Ok(SignatureExpectation::Keyless {
                    identity: ValueMatch::parse(super::SIDEROLABS_IDENTITY)
                        .map_err(|m| self.err(at, m))?,
                    issuer: super::SIDEROLABS_ISSUER.to_string(),
                })
            }
            SignatureSpec::Signer(v) => v,
        };
        match (&v.key, &v.identity, &v.issuer) {
            (Some(key), None, None) if !key.trim().is_empty() => {
                self.signer_key(key, v.tlog, at, "signature")
            }
            (None, Some(identity), Some(issuer)) if !issuer.trim().is_empty() => {
                if v.tlog.is_some() {
                    return Err(self.err(
                        at,
                        "signature.tlog applies to a key; a keyless signature is always logged",
                    ));
                }
                Ok(SignatureExpectation::Keyless {
                    identity: ValueMatch::parse(identity)
                        .map_err(|m| self.err(at, format!("signature.identity: {m}")))?,
                    issuer: issuer.clone(),
                })
            }
            _ => Err(self.err(
                at,
                "signature needs key: FILE (a cosign public key), or identity and issuer (a keyless signer), not both",
            )),
        }
    }
}

//! `expect.provenance`: the image's SLSA provenance attestation (checked by `check::provenance`).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::signature::SignatureExpectation;
use crate::located::LocatedError;
use crate::spec::validator::Validator;
use crate::spec::ValueMatch;

// As written.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceExpect {
    /// Who signed the attestation: the certificate's SAN (GitHub: the workflow's URL at its
    /// ref), exactly or as a `^...$` regex. Or `key` instead.
    #[serde(default)]
    pub identity: Option<String>,
    /// A cosign public key (PEM, ECDSA P-256) that signed the attestation, relative to the
    /// spec file; instead of `identity`.
    #[serde(default)]
    pub key: Option<String>,
    /// With `key`: `false` accepts an attestation that has no transparency-log entry (`cosign
    /// attest --tlog-upload=false`, verified by `cosign verify-attestation
    /// --insecure-ignore-tlog`). Default `true`.
    #[serde(default)]
    pub tlog: Option<bool>,
    /// The OIDC issuer (default: GitHub Actions', `https://token.actions.githubusercontent.com`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The source repository (`buildDefinition.externalParameters.workflow.repository`).
    #[serde(default)]
    pub repository: Option<String>,
    /// The ref built (`…workflow.ref`, `refs/tags/v1.11.5`).
    #[serde(default)]
    pub r#ref: Option<String>,
    /// The commit built (`resolvedDependencies[0].digest.gitCommit`).
    #[serde(default)]
    pub commit: Option<String>,
    /// The workflow file (`…workflow.path`, `.github/workflows/release.yml`).
    #[serde(default)]
    pub workflow: Option<String>,
    /// The builder (`runDetails.builder.id`).
    #[serde(default)]
    pub builder_id: Option<String>,
}

// Validated.

/// The validated `expect.provenance`.
#[derive(Debug, Clone)]
pub struct ProvenanceExpectation {
    /// Who signed the attestation: a key, or a keyless identity (issuer default: GitHub
    /// Actions').
    pub signer: SignatureExpectation,
    /// (what, JSON pointer into the predicate, expected value).
    pub fields: Vec<(&'static str, &'static str, ValueMatch)>,
}

impl Validator<'_> {
    pub(in crate::spec) fn provenance(
        &self,
        p: &Spanned<ProvenanceExpect>,
    ) -> Result<ProvenanceExpectation, LocatedError> {
        let (v, at) = (&p.value, &p.referenced);
        let m = |what: &str, s: &str| {
            ValueMatch::parse(s).map_err(|e| self.err(at, format!("provenance.{what}: {e}")))
        };
        // Where GitHub's build type (actions.github.io/buildtypes/workflow/v1) puts each fact.
        let mut fields = Vec::new();
        for (what, pointer, value) in [
            (
                "repository",
                "/buildDefinition/externalParameters/workflow/repository",
                &v.repository,
            ),
            (
                "ref",
                "/buildDefinition/externalParameters/workflow/ref",
                &v.r#ref,
            ),
            (
                "commit",
                "/buildDefinition/resolvedDependencies/0/digest/gitCommit",
                &v.commit,
            ),
            (
                "workflow",
                "/buildDefinition/externalParameters/workflow/path",
                &v.workflow,
            ),
            ("builder_id", "/runDetails/builder/id", &v.builder_id),
        ] {
            if let Some(s) = value {
                fields.push((what, pointer, m(what, s)?));
            }
        }
        let signer = match (&v.key, &v.identity) {
            (Some(key), None) => self.signer_key(key, v.tlog, at, "provenance")?,
            (None, Some(identity)) => {
                if v.tlog.is_some() {
                    return Err(self.err(
                        at,
                        "provenance.tlog applies to a key; a keyless attestation is always logged",
                    ));
                }
                SignatureExpectation::Keyless {
                    identity: m("identity", identity)?,
                    issuer: v
                        .issuer
                        .clone()
                        .unwrap_or_else(|| super::GITHUB_ACTIONS_ISSUER.to_string()),
                }
            }
            _ => {
                return Err(self.err(
                    at,
                    "provenance needs identity (a keyless signer) or key: FILE (a cosign public key), not both",
                ))
            }
        };
        Ok(ProvenanceExpectation { signer, fields })
    }
}

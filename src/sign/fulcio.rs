//! Keyless signing certificates: a Fulcio leaf chained to a certificate authority of the
//! trusted root, valid at the time the signature was logged, for code signing, and the
//! identity and OIDC issuer it was issued to (sigstore/fulcio `docs/oid-info.md`; cosign
//! `pkg/cosign/verify.go` `TrustedCert`, `CheckExpiry`, `CheckCertificatePolicy`).

use crate::error::Reason;
use sha2::Digest as _;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::spki::ObjectIdentifier;
use x509_cert::Certificate;

use super::trusted_root::TrustedRoot;

const SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Fulcio's OIDC issuer: V2 is a DER UTF8String, V1 (deprecated) the raw string.
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// A parsed certificate and its DER.
pub struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Cert {
    pub fn from_der(der: Vec<u8>) -> Result<Self, Reason> {
        let cert =
            Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate ({e})"))?;
        Ok(Cert { der, cert })
    }

    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, Reason> {
        let der = super::rekor::pem_der(pem.as_bytes()).ok_or("not a PEM certificate")?;
        Self::from_der(der)
    }

    pub fn spki(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap_or_default()
    }

    fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Whether `t` (Unix seconds) falls within the certificate's validity.
    pub fn valid_at(&self, t: i64) -> bool {
        let v = &self.cert.tbs_certificate.validity;
        let secs = |x: &x509_cert::time::Time| x.to_unix_duration().as_secs() as i64;
        secs(&v.not_before) <= t && t <= secs(&v.not_after)
    }

    /// The SAN emails and URIs, the identities Fulcio issues to.
    pub fn identities(&self) -> Vec<String> {
        let Some(san) = self
            .extension(SAN)
            .and_then(|b| SubjectAltName::from_der(b).ok())
        else {
            return Vec::new();
        };
        san.0
            .iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The OIDC issuer: the V2 extension, else the deprecated V1.
    pub fn issuer(&self) -> Option<String> {
        if let Some(b) = self.extension(ISSUER_V2) {
            return String::from_der(b).ok();
        }
        self.extension(ISSUER_V1)
            .and_then(|b| std::str::from_utf8(b).ok().map(str::to_string))
    }

    fn is_ca(&self) -> bool {
        self.extension(BASIC_CONSTRAINTS)
            .and_then(|b| BasicConstraints::from_der(b).ok())
            .is_some_and(|c| c.ca)
    }

    fn for_code_signing(&self) -> bool {
        self.has_ext_key_usage(CODE_SIGNING)
    }

    pub fn has_ext_key_usage(&self, oid: ObjectIdentifier) -> bool {
        self.extension(EXT_KEY_USAGE)
            .and_then(|b| ExtendedKeyUsage::from_der(b).ok())
            .is_some_and(|u| u.0.contains(&oid))
    }

    /// Whether `issuer`'s key signed this certificate.
    fn signed_by(&self, issuer: &Cert) -> Result<(), Reason> {
        let tbs = self
            .cert
            .tbs_certificate
            .to_der()
            .map_err(|e| format!("re-encoding a certificate: {e}"))?;
        let sig = self.cert.signature.raw_bytes();
        let oid = self.cert.signature_algorithm.oid;
        let hash = if oid == ECDSA_SHA256 {
            sha2::Sha256::digest(&tbs).to_vec()
        } else if oid == ECDSA_SHA384 {
            sha2::Sha384::digest(&tbs).to_vec()
        } else {
            return Err(format!("signature algorithm {oid} is not ECDSA with SHA-256/384").into());
        };
        verify_prehash(&issuer.spki(), &hash, sig)
    }
}

/// Keyless policy: the certificate chains at every time in `times`, and was issued to an
/// identity `identity` accepts (`shown` in messages) through `issuer`.
pub fn check_signer(
    cert: &Cert,
    root: &TrustedRoot,
    times: &[i64],
    identity: &dyn Fn(&str) -> bool,
    shown: &str,
    issuer: &str,
) -> Result<(), Reason> {
    let mut ca = None;
    for &t in times {
        ca = Some(verify_chain(cert, root, t)?);
    }
    let ca = ca.ok_or("there is no time to check its certificate at")?;
    // Logged to a CT log of the root: the SCT signs over the issuing CA's key.
    super::sct::verify(&cert.cert, &ca.spki(), root)?;
    let ids = cert.identities();
    if !ids.iter().any(|i| identity(i)) {
        let named = if ids.is_empty() {
            "no identity".to_string()
        } else {
            ids.join(", ")
        };
        return Err(format!("its certificate is for {named}, not {shown}").into());
    }
    match cert.issuer() {
        Some(i) if i == issuer => Ok(()),
        Some(i) => Err(format!("its certificate was issued through {i}, not {issuer}").into()),
        None => Err(
            "its certificate names no OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8)".into(),
        ),
    }
}

/// An ECDSA signature (DER) over a digest, by a P-256 or P-384 key.
pub fn verify_prehash(spki: &[u8], hash: &[u8], der_sig: &[u8]) -> Result<(), Reason> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
        let s = p256::ecdsa::DerSignature::from_bytes(der_sig).map_err(|e| e.to_string())?;
        return k
            .verify_prehash(hash, &s)
            .map_err(|_| "bad signature".into());
    }
    if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(spki) {
        let s = p384::ecdsa::DerSignature::from_bytes(der_sig).map_err(|e| e.to_string())?;
        return k
            .verify_prehash(hash, &s)
            .map_err(|_| "bad signature".into());
    }
    Err("the issuer's key is not ECDSA P-256 or P-384".into())
}

/// A chain, issuer after issued, up to a self-signed root: each signed by the next, each
/// issuer a CA, every one valid at `t`.
pub fn verify_issued(chain: &[Cert], t: i64) -> Result<(), Reason> {
    for (i, c) in chain.iter().enumerate() {
        if !c.valid_at(t) {
            return Err(format!("certificate {} of its chain is not valid then", i + 1).into());
        }
        let issuer = chain.get(i + 1).unwrap_or(c);
        if i > 0 && !c.is_ca() {
            return Err(format!("certificate {} of its chain is not a CA", i + 1).into());
        }
        c.signed_by(issuer)?;
    }
    Ok(())
}

/// Chains `leaf` to a certificate authority of `root` whose period and certificates cover `t`
/// (the Rekor entry's time): `Ok` with the certificate that issued it, or why none does.
pub fn verify_chain(leaf: &Cert, root: &TrustedRoot, t: i64) -> Result<Cert, Reason> {
    if !leaf.valid_at(t) {
        return Err(format!(
            "its certificate was not valid at the signature's log time {}",
            crate::epoch::rfc3339(t)
        )
        .into());
    }
    if !leaf.for_code_signing() {
        return Err("its certificate is not for code signing (extended key usage)".into());
    }
    let accepts = |chain: &[Cert]| {
        leaf.signed_by(&chain[0])
            .and_then(|_| verify_issued(chain, t))
    };
    let (_, chain) = authority(&root.cas, t, accepts).map_err(|why| {
        format!(
            "its certificate does not chain to a certificate authority of {} valid at {}{why}",
            root.origin,
            crate::epoch::rfc3339(t),
        )
    })?;
    Ok(chain
        .into_iter()
        .next()
        .expect("accepted chains are not empty"))
}

/// The first authority valid at `t` whose (non-empty) chain `accepts`: its URI and chain, or
/// why none did (` (uri: why; …)`, empty when no authority was valid then).
pub fn authority(
    authorities: &[super::trusted_root::Authority],
    t: i64,
    accepts: impl Fn(&[Cert]) -> Result<(), Reason>,
) -> Result<(String, Vec<Cert>), Reason> {
    let mut why = Vec::new();
    for a in authorities.iter().filter(|a| a.valid_at(t)) {
        let chain: Result<Vec<Cert>, Reason> =
            a.chain.iter().map(|d| Cert::from_der(d.clone())).collect();
        match chain.and_then(|c| {
            if c.is_empty() {
                Err("an empty chain".into())
            } else {
                accepts(&c).map(|_| c)
            }
        }) {
            Ok(c) => return Ok((a.uri.clone(), c)),
            Err(e) => why.push(format!("{}: {e}", a.uri)),
        }
    }
    Err(if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join("; "))
    }
    .into())
}

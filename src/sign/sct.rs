//! Signed certificate timestamps embedded in a keyless leaf (RFC 6962 §3.3): proof that the
//! certificate was logged to a CT log of the trusted root, which cosign and sigstore-go
//! require of every Fulcio certificate. An SCT signs the precertificate's TBS (the leaf's TBS
//! without the SCT list) with the issuer's key hash (RFC 6962 §3.2, `precert_entry`).

use crate::error::Reason;
use sha2::Digest as _;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::ObjectIdentifier;

use super::trusted_root::TrustedRoot;

const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// One SCT of the list, as TLS encodes it.
struct Sct<'a> {
    log_id: &'a [u8],
    timestamp: u64,
    extensions: &'a [u8],
    signature: &'a [u8],
}

/// A TLS reader: big-endian integers and length-prefixed vectors.
struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reason> {
        if self.0.len() < n {
            return Err("its SCT list is cut short".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn uint(&mut self, n: usize) -> Result<u64, Reason> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0, |v, b| (v << 8) | u64::from(*b)))
    }
    fn vector(&mut self, len_bytes: usize) -> Result<&'a [u8], Reason> {
        let n = self.uint(len_bytes)? as usize;
        self.take(n)
    }
}

fn parse(list: &[u8]) -> Result<Vec<Sct<'_>>, Reason> {
    let mut outer = Tls(list);
    let mut all = Tls(outer.vector(2)?);
    let mut out = Vec::new();
    while !all.0.is_empty() {
        let mut s = Tls(all.vector(2)?);
        if s.uint(1)? != 0 {
            return Err("an SCT of an unknown version".into());
        }
        let log_id = s.take(32)?;
        let timestamp = s.uint(8)?;
        let extensions = s.vector(2)?;
        let (hash, sig) = (s.uint(1)?, s.uint(1)?);
        if (hash, sig) != (4, 3) {
            return Err(format!(
                "an SCT signed with hash {hash}, signature {sig}; tdg reads SHA-256 ECDSA"
            )
            .into());
        }
        let signature = s.vector(2)?;
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            signature,
        });
    }
    Ok(out)
}

/// Verifies that `leaf` (issued by the key `issuer_spki`) carries an SCT from a CT log of `root`. A root
/// that names no CT log asks for none.
pub fn verify(
    leaf: &x509_cert::Certificate,
    issuer_spki: &[u8],
    root: &TrustedRoot,
) -> Result<(), Reason> {
    if root.ctlogs.is_empty() {
        return Ok(());
    }
    let tbs = &leaf.tbs_certificate;
    let ext = tbs
        .extensions
        .as_ref()
        .and_then(|e| e.iter().find(|x| x.extn_id == SCT_LIST))
        .ok_or("its certificate has no signed certificate timestamp, which the trusted root's CT logs require")?;
    let list = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("its SCT list ({e})"))?;
    let scts = parse(list.as_bytes())?;
    let mut pre = tbs.clone();
    pre.extensions = tbs.extensions.as_ref().map(|e| {
        e.iter()
            .filter(|x| x.extn_id != SCT_LIST)
            .cloned()
            .collect()
    });
    let pre = pre
        .to_der()
        .map_err(|e| format!("re-encoding its precertificate: {e}"))?;
    let issuer_key_hash = sha2::Sha256::digest(issuer_spki);
    let mut why = Vec::new();
    for s in &scts {
        let Some(log) = root
            .ctlogs
            .iter()
            .find(|l| hex::decode(&l.log_id).ok().as_deref() == Some(s.log_id))
        else {
            why.push(format!(
                "an SCT from log {}, which {} does not trust",
                &hex::encode(s.log_id)[..12],
                root.origin
            ));
            continue;
        };
        // RFC 6962 §3.2: version, certificate_timestamp, timestamp, precert_entry, then the
        // PreCert (issuer key hash, TBS) and the extensions.
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&s.timestamp.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes());
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&(pre.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(&pre);
        signed.extend_from_slice(&(s.extensions.len() as u16).to_be_bytes());
        signed.extend_from_slice(s.extensions);
        match super::rekor::ecdsa_verify(&log.spki, &signed, s.signature) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("the SCT of {}: {e}", log.base_url)),
        }
    }
    Err(format!(
        "its certificate has no SCT that verifies: {}",
        if why.is_empty() {
            "an empty list".into()
        } else {
            why.join("; ")
        }
    )
    .into())
}

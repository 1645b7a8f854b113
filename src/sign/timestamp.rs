//! RFC 3161 timestamps in Sigstore bundles (`timestampVerificationData.rfc3161Timestamps`):
//! protobuf-specs' `RFC3161SignedTimestamp.signed_timestamp` is the DER `TimeStampResp` (RFC 3161
//! §2.4.2), read as sigstore-go reads it through digitorus/timestamp `ParseResponse`: no
//! trailing bytes, status granted (0; anything else, `grantedWithMods` included, is refused),
//! a token inside. The token (CMS SignedData over a TSTInfo) is from a timestamp authority of
//! the trusted root, vouching that the signature existed at its `genTime`. Checked as sigstore-go's
//! `VerifyTimestampAuthority` checks one: the TSTInfo's message imprint is the SHA-256 of the
//! signature, the signer's signed attributes carry the TSTInfo's digest and are signed by the
//! authority's leaf, and the authority's chain is valid at `genTime`.

use crate::error::Reason;
use sha2::Digest as _;
use x509_cert::der::asn1::{OctetString, SetOfVec};
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::ObjectIdentifier;

use super::fulcio::{verify_prehash, Cert};
use super::trusted_root::TrustedRoot;

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

fn hash(alg: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>, Reason> {
    if *alg == SHA256 {
        Ok(sha2::Sha256::digest(data).to_vec())
    } else if *alg == SHA384 {
        Ok(sha2::Sha384::digest(data).to_vec())
    } else {
        Err(format!("digest algorithm {alg} is not SHA-256/384").into())
    }
}

/// Verifies a DER `TimeStampResp` over `signature`; returns its time (Unix seconds) and the
/// authority that vouched for it.
pub fn verify(
    response: &[u8],
    signature: &[u8],
    root: &TrustedRoot,
) -> Result<(i64, String), Reason> {
    let resp = x509_tsp::TimeStampResp::from_der(response)
        .map_err(|e| format!("its timestamp is not an RFC 3161 TimeStampResp ({e})"))?;
    let status = resp.status.status as u8;
    if status != 0 {
        return Err(format!("its timestamp response has status {status}, not granted (0)").into());
    }
    let info = resp
        .time_stamp_token
        .ok_or("its timestamp response holds no token")?;
    verify_token(&info, signature, root)
}

/// The time-stamp token inside a response.
fn verify_token(
    info: &cms::content_info::ContentInfo,
    signature: &[u8],
    root: &TrustedRoot,
) -> Result<(i64, String), Reason> {
    if info.content_type != SIGNED_DATA {
        return Err("its timestamp is not CMS SignedData".into());
    }
    let sd: cms::signed_data::SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("its timestamp's SignedData ({e})"))?;
    if sd.encap_content_info.econtent_type != TST_INFO {
        return Err("its timestamp holds no TSTInfo".into());
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("its timestamp's TSTInfo is empty")?;
    let tst_der = econtent
        .decode_as::<OctetString>()
        .map_err(|e| format!("its timestamp's content ({e})"))?;
    let tst = x509_tsp::TstInfo::from_der(tst_der.as_bytes())
        .map_err(|e| format!("its timestamp's TSTInfo ({e})"))?;
    let imprint = &tst.message_imprint;
    let want = hash(&imprint.hash_algorithm.oid, signature)?;
    if imprint.hashed_message.as_bytes() != want.as_slice() {
        return Err("its timestamp is for other bytes than the signature".into());
    }
    let gen_time = tst.gen_time.to_unix_duration().as_secs() as i64;

    let [signer] = sd.signer_infos.0.as_slice() else {
        return Err("its timestamp has not exactly one signer".into());
    };
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("its timestamp's signer has no signed attributes")?;
    let digest = attrs
        .iter()
        .find(|a| a.oid == MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or("its timestamp's signer has no message digest")?;
    if digest.as_bytes() != hash(&signer.digest_alg.oid, tst_der.as_bytes())?.as_slice() {
        return Err("its timestamp's signed attributes are for another TSTInfo".into());
    }
    // The signature is over the attributes' DER as a SET OF (RFC 5652 §5.4).
    let signed: SetOfVec<_> = attrs.clone();
    let signed_der = signed
        .to_der()
        .map_err(|e| format!("re-encoding the signed attributes: {e}"))?;
    let signed_hash = hash(&signer.digest_alg.oid, &signed_der)?;

    let accepts = |chain: &[Cert]| {
        let leaf = &chain[0];
        verify_prehash(&leaf.spki(), &signed_hash, signer.signature.as_bytes())?;
        if !leaf.has_ext_key_usage(TIME_STAMPING) {
            return Err("its leaf is not for time stamping".into());
        }
        super::fulcio::verify_issued(chain, gen_time)
    };
    let (uri, _) = super::fulcio::authority(&root.tsas, gen_time, accepts).map_err(|why| {
        format!(
            "its timestamp is not signed by a timestamp authority of {} valid at {}{why}",
            root.origin,
            crate::epoch::rfc3339(gen_time),
        )
    })?;
    Ok((gen_time, uri))
}

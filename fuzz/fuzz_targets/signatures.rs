//! What a registry may hand tdg as signature material: Sigstore bundles, cosign signature
//! layers (payload and annotations) and trusted roots. Nothing here may panic, and nothing
//! made of these bytes alone may verify: the fuzzer holds no key the embedded root trusts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::digest::Digest;
use tdg::sign::{bundle, cosign, TrustedRoot};

fuzz_target!(|data: &[u8]| {
    let root = TrustedRoot::production();
    let subject = Digest::of(b"image");
    let any = |_: &str| true;
    let policy = bundle::Signer::Keyless {
        identity: &any,
        shown: "anyone".into(),
        issuer: "https://token.actions.githubusercontent.com",
    };
    assert!(bundle::verify(data, &subject, &policy, &root).is_err());
    let _ = TrustedRoot::parse(data, "fuzz");
    // The same bytes as a `.sig` layer: half payload, half annotations (JSON object).
    let (payload, rest) = data.split_at(data.len() / 2);
    let annotations = serde_json::from_slice(rest).unwrap_or_default();
    let found = cosign::Found {
        layer: tdg::oci::manifest::Descriptor {
            media_type: cosign::SIMPLE_SIGNING.into(),
            digest: Digest::of(payload),
            size: payload.len() as u64,
            platform: None,
            annotations,
        },
        payload: payload.to_vec(),
    };
    let signer = cosign::Signer::Keyless {
        identity: &any,
        shown: "anyone".into(),
        issuer: "https://accounts.google.com",
    };
    assert!(cosign::verify(&found, &signer, &subject, &root).is_err());
    if let Ok(pem) = std::str::from_utf8(data) {
        let _ = cosign::public_key(pem);
    }
});

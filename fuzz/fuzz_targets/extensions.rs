//! `extensions.yaml` from an initramfs, an extension image's `manifest.yaml`, and the
//! versions and ranges they carry, judged as Talos judges them (blang/semver).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::talos::extensions::{self, Requirement};
use tdg::talos::version::{Range, SemVer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = extensions::parse_config(text);
    if let Ok(m) = extensions::parse_manifest(text) {
        let _ = extensions::is_machinery(&m.metadata);
        for v in ["v1.12.0", "v1.7.0-alpha.1", "1.11.5"] {
            let _ = extensions::compatible(&m.metadata, v);
        }
    }
    // The text as a version, a range and a requirement, each also as a line of it.
    for t in std::iter::once(text).chain(text.lines().take(4)) {
        let strict = SemVer::parse(t);
        let tolerant = SemVer::parse_tolerant(t);
        if let Ok(v) = &strict {
            // What the strict parser takes, the tolerant one takes the same.
            assert_eq!(tolerant.as_ref().ok(), Some(v), "{t:?}");
            assert_eq!(
                SemVer::parse(&v.to_string()).as_ref().ok(),
                Some(v),
                "{t:?}"
            );
        }
        if let Ok(r) = Range::parse(t) {
            let _ = r.matches(&SemVer::new(1, 12, 0));
        }
        if let Ok(req) = Requirement::parse(t) {
            let m = extensions::Metadata {
                name: req.name.clone(),
                version: "v1.2.3".into(),
                ..Default::default()
            };
            let _ = req.check(&m);
        }
    }
});

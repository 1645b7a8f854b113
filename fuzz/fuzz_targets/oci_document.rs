//! OCI manifests, indexes and image configs as a registry serves them. The first byte picks
//! the Content-Type the registry claims.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::oci::manifest;

const TYPES: [Option<&str>; 5] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, doc)) = data.split_first() else {
        return;
    };
    if let Ok(m) = manifest::parse(doc, TYPES[pick as usize % TYPES.len()]) {
        if let manifest::Manifest::Image(img) = &m {
            for l in &img.layers {
                let _ = manifest::layer_compression(&l.media_type);
            }
        }
    }
    if let Ok(c) = serde_json::from_slice::<manifest::ImageConfig>(doc) {
        let _ = (c.platform(), c.labels());
    }
});

//! Round trip: an initramfs tdg assembles (a base, then the extensions segment the imager
//! appends) is read back with exactly the extensions it was given.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tdg::imager::assemble::{ExtensionInput, FileSpec};
use tdg::talos::extensions::Metadata;
use tdg::talos::initramfs::{self, Compression, Limits};

#[derive(Arbitrary, Debug)]
struct Ext {
    name: u8,
    version: (u8, u8, u8),
    files: Vec<(u8, Vec<u8>)>,
}

const DIRS: [&str; 4] = [
    "usr/local/lib/containers/ext",
    "usr/lib/firmware/vendor",
    "usr/local/etc/containers",
    "usr/lib/firmware/intel-ucode",
];

fuzz_target!(|input: (Vec<Ext>, u8)| {
    let (exts, c) = input;
    let compression = [
        Compression::Zstd,
        Compression::Xz,
        Compression::Gzip,
        Compression::None,
    ][c as usize % 4];
    let inputs: Vec<ExtensionInput> = exts
        .iter()
        .take(6)
        .map(|e| ExtensionInput {
            metadata: Metadata {
                name: format!("ext-{}", e.name),
                version: format!("v{}.{}.{}", e.version.0, e.version.1, e.version.2),
                ..Default::default()
            },
            rootfs: e
                .files
                .iter()
                .take(8)
                .enumerate()
                .map(|(i, (d, data))| {
                    FileSpec::file(
                        &format!("{}/f{i}", DIRS[*d as usize % DIRS.len()]),
                        data.clone(),
                        0o644,
                    )
                })
                .collect(),
        })
        .collect();
    // The appended segment, behind a small base cpio: what `tdg build` appends to the
    // imager's initramfs (the demo's full base costs a squashfs per run and adds no rule).
    let Ok(segment) = tdg::imager::bake::extensions_segment(&inputs, compression) else {
        return;
    };
    let mut image =
        tdg::imager::assemble::newc(&[FileSpec::file("init", b"#!/init".to_vec(), 0o755)])
            .expect("a base cpio");
    image.extend(segment);
    let walked =
        initramfs::walk_bytes(&image, Limits::default()).expect("tdg reads what it assembles");
    let mut got: Vec<Metadata> = walked
        .extensions
        .map(|c| c.layers.into_iter().map(|l| l.metadata).collect())
        .unwrap_or_default();
    let mut want: Vec<Metadata> = inputs.into_iter().map(|e| e.metadata).collect();
    got.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    want.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    assert_eq!(got, want);
});

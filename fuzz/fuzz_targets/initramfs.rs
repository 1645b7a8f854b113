//! The initramfs walker: concatenated newc cpio segments, raw or zstd/xz/gzip compressed,
//! with NUL padding between, as the kernel reads them. Small caps keep bombs cheap here; the
//! real ones are tested in `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::talos::initramfs::{self, Limits};

const LIMITS: Limits = Limits {
    max_segment_bytes: 64 << 20,
    max_entries: 100_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = initramfs::walk_bytes(data, LIMITS) {
        if i.stopped.is_none() {
            assert_eq!(i.size, data.len() as u64, "the walk stopped before the end");
        }
        let mut at = 0;
        for s in &i.segments {
            assert!(
                s.offset >= at && s.offset + s.size <= i.size,
                "segments overlap"
            );
            assert!(s.uncompressed_size <= LIMITS.max_segment_bytes);
            at = s.offset + s.size;
        }
        let entries: usize = i.segments.iter().map(|s| s.entries.len()).sum();
        assert!(entries as u64 <= LIMITS.max_entries);
    }
    // Extraction reads the same bytes the same way, writing only into its directory.
    let dir = tempfile::tempdir().unwrap();
    let names = ["init".to_string(), "rootfs.sqsh".to_string()];
    if let Ok(found) = initramfs::extract(|| Ok(data), LIMITS, &names, dir.path()) {
        for p in found.values() {
            assert!(p.starts_with(dir.path()), "{}", p.display());
        }
    }
});

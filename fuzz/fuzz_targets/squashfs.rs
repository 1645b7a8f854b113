//! Squashfs images out of an initramfs (`rootfs.sqsh`, extension layers): the superblock
//! sniff, and the module tree taken out of a base rootfs, which must land inside its
//! destination whatever the image says.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tdg::talos::initramfs::squashfs_compression(data);
    let dir = tempfile::tempdir().unwrap();
    let sqsh = dir.path().join("rootfs.sqsh");
    std::fs::write(&sqsh, data).unwrap();
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    if tdg::imager::modules::extract_squashfs(&sqsh, "usr/lib/modules", &dest).is_ok() {
        // Nothing but the squashfs and the destination may exist in the work directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
});

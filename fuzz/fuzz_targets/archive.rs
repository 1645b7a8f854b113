//! `oci-archive:` and `docker-archive:` files: a tar unpacked into a temporary layout (regular
//! files and symlinks between them only), and for a docker archive its `manifest.json` turned
//! into a layout. Whatever the archive says, nothing is written outside the temporary
//! directory, and an archive that unpacks opens as a layout.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::oci::archive::{self, Kind};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, tar)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image.tar");
    std::fs::write(&file, tar).unwrap();
    let kind = if pick % 2 == 0 {
        Kind::Oci
    } else {
        Kind::Docker
    };
    if let Ok(u) = archive::unpack(kind, &file) {
        assert!(u.layout().starts_with(std::env::temp_dir()));
        if kind == Kind::Docker {
            tdg::oci::layout::LayoutSource::open(&u.layout())
                .expect("a converted archive is a layout");
        }
    }
    // Only the archive itself is in the work directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
});

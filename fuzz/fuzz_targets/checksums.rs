//! `checksums.sha256` as an image ships it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lines) = tdg::talos::checksums::parse(text) {
        assert!(lines.len() <= text.lines().count());
    }
});

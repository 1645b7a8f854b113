//! Image references as users and specs write them; a parsed one prints back to one that
//! parses to the same thing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::reference::ImageRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = text.parse::<ImageRef>() {
        let printed = r.to_string();
        let again: ImageRef = printed.parse().unwrap_or_else(|e| {
            panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
        });
        assert_eq!(again.to_string(), printed);
    }
});

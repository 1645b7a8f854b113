//! Schematics (YAML and JSON, which YAML reads): parse, and when one parses, its canonical
//! bytes read back give the same canonical bytes and so the same ID.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::talos::schematic::Schematic;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.yaml");
    let Ok(s) = Schematic::parse(path, text) else {
        return;
    };
    let canonical = s.canonical();
    let again = Schematic::parse(path, &canonical)
        .unwrap_or_else(|e| panic!("canonical form does not re-read: {e}\n{canonical}"));
    assert_eq!(again.canonical(), canonical);
    assert_eq!(again.id(), s.id());
});

//! Schematics (YAML and JSON, which YAML reads): parse, and when one parses, its canonical
//! bytes read back give the same canonical bytes and so the same ID, but where yaml.v3's
//! literal blocks do not round-trip (see below).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tdg::factory::schematic::Schematic;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.yaml");
    let Ok(s) = Schematic::parse(path, text) else {
        return;
    };
    let canonical = s.canonical();
    // yaml.v3's literal block scalars do not round-trip: a string of line breaks loses one,
    // and CRs come back as breaks (the fuzzer found both; yaml.v3 itself gives the same bytes
    // on both passes, which the harness checks against Go). Everywhere else the canonical
    // form reads back to the same bytes and ID.
    if canonical.lines().any(literal_block) {
        return;
    }
    // tdg refuses U+2028, U+2029 and U+0085 outside double quotes, where yaml.v3 keeps them
    // (a known strictness, which the harness allows for against Go); yaml.v3 writes them raw
    // into single-quoted scalars, so such a canonical form is not re-read here.
    if canonical.contains(['\u{2028}', '\u{2029}', '\u{85}']) {
        return;
    }
    let again = Schematic::parse(path, &canonical)
        .unwrap_or_else(|e| panic!("canonical form does not re-read: {e}\n{canonical}"));
    assert_eq!(again.canonical(), canonical);
    assert_eq!(again.id(), s.id());
});

/// A line that opens a literal block scalar: `key: |`, `- |4+`, ...
fn literal_block(line: &str) -> bool {
    let Some((_, rest)) = line.rsplit_once(" |") else {
        return false;
    };
    rest.chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
}

//! Spec YAML, as a PR brings it: any bytes must give a spec or a located error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = tdg::spec::load::load_str(std::path::Path::new("fuzz.yaml"), text) {
        // A located error points inside the text (or at 1:1 for an empty one).
        assert!(e.line >= 1 && e.column >= 1, "{e}");
        // YAML counts CR, LF and CRLF as line breaks.
        let lines = tdg::located::yaml_lines(text).len().max(1) as u64;
        assert!(e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
    }
});

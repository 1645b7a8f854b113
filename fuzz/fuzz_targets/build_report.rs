//! `validation/build-report.txt`: the key/value text form and the JSON form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fields = tdg::talos::report::fields(text);
    assert!(fields.len() <= text.lines().count());
    let _ = tdg::talos::report::json_fields(text);
    if let (Some(a), Some(b)) = (fields.values().next(), fields.values().last()) {
        let _ = tdg::talos::report::same_commit(a, b);
    }
});

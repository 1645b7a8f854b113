//! Kernel, PE and UKI sniffing of a file from an image.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = tdg::talos::kernel::sniff(&mut std::io::Cursor::new(data)) {
        assert_eq!(k.size, data.len() as u64);
        if let Some(u) = &k.uki {
            assert!(u.kernel.uki.is_none(), "a UKI nested in a UKI was accepted");
            for s in &u.sections {
                assert!(
                    s.offset + s.size <= data.len() as u64,
                    "section past the end"
                );
            }
        }
    }
});

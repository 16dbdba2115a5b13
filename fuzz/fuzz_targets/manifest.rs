#![no_main]
// The strict CBOR decoder must never panic, and what it accepts re-encodes to
// the same bytes (it only accepts the deterministic encoding).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = jobseal_core::manifest::Manifest::from_cbor(data) {
        assert_eq!(m.to_cbor(), data);
    }
});

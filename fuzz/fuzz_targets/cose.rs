#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jobseal_core::cose::parse(data);
});

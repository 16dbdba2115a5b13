#![no_main]
// Bundle layout and certificate parsing must never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jobseal_verify::parse::parse(data);
});

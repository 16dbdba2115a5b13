#![no_main]
// Job descriptions are user input on the signing side.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jobseal_issue::JobSpec::from_toml(text, std::path::Path::new("job.toml"), std::path::Path::new("/nonexistent"));
    }
});

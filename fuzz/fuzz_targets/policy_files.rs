#![no_main]
// IGTF .namespaces and .signing_policy files and their patterns: parsing and
// matching must never panic nor take long (pathological patterns).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = jobseal_verify::namespaces::parse_namespaces(data);
    let _ = jobseal_verify::namespaces::parse_signing_policy(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let (pattern, subject) = text.split_once('\n').unwrap_or((text, "/DC=org/DC=example/CN=Jane Doe"));
        for p in [jobseal_verify::namespaces::Pattern::regex(pattern), jobseal_verify::namespaces::Pattern::glob(pattern)]
            .into_iter()
            .flatten()
        {
            let _ = p.matches(subject);
        }
    }
});

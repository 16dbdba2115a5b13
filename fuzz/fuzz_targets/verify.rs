#![no_main]
// The whole verifier over arbitrary bundles, with the test-vector CA trusted.
use std::sync::OnceLock;

struct Setup {
    _dir: tempfile::TempDir,
    verifier: jobseal_verify::Verifier,
    invocation: jobseal_verify::Invocation,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture = jobseal_testkit::generate().expect("vectors");
        jobseal_testkit::write_dir(&fixture, dir.path()).expect("write vectors");
        let verifier = jobseal_verify::Verifier::new(jobseal_verify::Config {
            ca_dir: dir.path().join("ca"),
            // With the vectors' LSC files, VOMS ACs are checked to the end.
            voms_dir: dir.path().join("vomsdir"),
            ..Default::default()
        })
        .expect("verifier");
        let job = dir.path().join("permit-direct-from-user-certificate/job");
        let invocation = jobseal_verify::Invocation {
            executable: job.join("run.sh"),
            arguments: vec!["--events".into(), "1000".into()],
            job_dir: job,
        };
        Setup { _dir: dir, verifier, invocation }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = setup();
    let d = s.verifier.check(data, &s.invocation, jobseal_testkit::VECTOR_TIME);
    assert_ne!(d.code(), "internal.error", "{}", d.message);
});

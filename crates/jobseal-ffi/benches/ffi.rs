//! Benchmarks of the C API (issue 7: "the verifier context in the C/Python
//! APIs is reused across calls so a long-lived pilot or plugin pays setup
//! once"). Run with `cargo bench -p jobseal-ffi --bench ffi`; the Python
//! counterpart is `crates/jobseal-python/bench/bench_reuse.py`.
//!
//! The `extern "C"` functions of the library are called from Rust exactly as
//! a C caller would call them: NUL-terminated paths, a pointer array for
//! `argv`, out-pointers, and every object freed with its free function. The
//! workload is that of `full_verify_voms` in
//! `crates/jobseal-verify/benches/verify.rs`: the `permit-voms-verified` test
//! vector (CA → user → VOMS proxy → job-bound proxy, COSE manifest, small
//! executable and input), bundle from bytes, with the vectors' CA directory
//! and VOMS directory (here the checked-in `test-vectors/`, byte for byte
//! what the Rust bench generates), checked at the vectors' `verify_at`.
//!
//! * `check_reused`: `jobseal_check` + `jobseal_decision_free` on one
//!   long-lived verifier: what a pilot or plugin that keeps its verifier
//!   pays per job. Compare with `full_verify_voms` (the difference is the
//!   boundary, the site policy step and the C decision's strings).
//! * `new_check_free`: `jobseal_verifier_new` + `jobseal_check` +
//!   `jobseal_decision_free` + `jobseal_verifier_free`: what a caller that
//!   builds a verifier for every job pays (its check is a first check:
//!   nothing cached, as `full_verify_voms_cold`).
//! * `verifier_new`: `jobseal_verifier_new` alone (the verifier is freed
//!   outside the timing).
//!
//! The verifier is built as the C tests build theirs: the vectors' CA and
//! VOMS directories, a policy file naming the vectors' site
//! (`site = "NIKHEF-ELPROD"`), and an explicit state directory (so that no
//! default is read from the environment; `jobseal_check` never opens it).

// The C boundary is `unsafe` by nature: calling it is what is measured. The
// crate denies `unsafe_code`; each block below says why its call is sound.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::ffi::{CStr, CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use divan::Bencher;
use jobseal_core::time::UnixTime;
use jobseal_ffi::{
    JobsealDecision, JobsealStatus, JobsealVerifier, jobseal_check, jobseal_decision_code,
    jobseal_decision_fqan_count, jobseal_decision_free, jobseal_decision_permitted,
    jobseal_string_free, jobseal_verifier_free, jobseal_verifier_new,
};

fn main() {
    divan::main();
}

const VECTOR: &str = "permit-voms-verified";

/// The C arguments, built once; `tmp` holds the policy file and the state
/// directory.
struct Setup {
    _tmp: tempfile::TempDir,
    ca_dir: CString,
    voms_dir: CString,
    policy: CString,
    state_dir: CString,
    bundle: Vec<u8>,
    executable: CString,
    arguments: Vec<CString>,
    job_dir: CString,
    at: i64,
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-vectors")
        .canonicalize()
        .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors.join("vectors.json")).unwrap()).unwrap();
    let v = index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == VECTOR)
        .unwrap();
    let field = |value: &serde_json::Value, key: &str| -> PathBuf {
        vectors.join(value[key].as_str().unwrap())
    };
    let at = UnixTime::parse_rfc3339(index["verify_at"].as_str().unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(&policy, "site = \"NIKHEF-ELPROD\"\n").unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state_dir = tmp.path().join("state");
    Setup {
        ca_dir: c_path(&field(&index, "ca_dir")),
        voms_dir: c_path(&field(&index, "voms_dir")),
        policy: c_path(&policy),
        state_dir: c_path(&state_dir),
        bundle: std::fs::read(field(v, "bundle")).unwrap(),
        executable: c_path(&field(v, "executable")),
        arguments: v["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| CString::new(a.as_str().unwrap()).unwrap())
            .collect(),
        job_dir: c_path(&field(v, "job_dir")),
        at: i64::try_from(at.0).unwrap(),
        _tmp: tmp,
    }
});

/// A verifier, freed with `jobseal_verifier_free` when dropped (divan drops
/// a benchmark's outputs outside the timing).
struct Verifier(*mut JobsealVerifier);

impl Drop for Verifier {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `jobseal_verifier_new`, is freed only
        // here, and no decision refers to it.
        unsafe { jobseal_verifier_free(self.0) };
    }
}

fn new_verifier() -> Verifier {
    let s = &*SETUP;
    let mut v: *mut JobsealVerifier = std::ptr::null_mut();
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and live for the call; `v` and
    // `err` are valid for writing one pointer.
    let status = unsafe {
        jobseal_verifier_new(
            s.ca_dir.as_ptr(),
            s.voms_dir.as_ptr(),
            s.policy.as_ptr(),
            s.state_dir.as_ptr(),
            &raw mut v,
            &raw mut err,
        )
    };
    if status != JobsealStatus::JobsealOk {
        // SAFETY: on failure `err` is NULL or an owned NUL-terminated string.
        let message = (!err.is_null()).then(|| unsafe { CStr::from_ptr(err) }.to_owned());
        // SAFETY: NULL or the owned string of this call, freed once.
        unsafe { jobseal_string_free(err) };
        panic!("jobseal_verifier_new: {status:?} {message:?}");
    }
    Verifier(v)
}

/// `argv` as C has it: pointers to the NUL-terminated arguments (valid as
/// long as `SETUP`, i.e. for the whole run).
fn argv() -> Vec<*const c_char> {
    SETUP.arguments.iter().map(|a| a.as_ptr()).collect()
}

/// `jobseal_check` of the vector on `v`; the decision (to be freed).
fn check(v: &Verifier, argv: &[*const c_char]) -> *mut JobsealDecision {
    let s = &*SETUP;
    let mut d: *mut JobsealDecision = std::ptr::null_mut();
    // SAFETY: `v.0` is a live verifier; the bundle slice, the strings and
    // the `argc` pointers of `argv` live and are unchanged for the call; `d`
    // is valid for writing one pointer.
    let status = unsafe {
        jobseal_check(
            v.0,
            divan::black_box(s.bundle.as_ptr()),
            s.bundle.len(),
            s.executable.as_ptr(),
            argv.as_ptr(),
            argv.len(),
            s.job_dir.as_ptr(),
            s.at,
            &raw mut d,
        )
    };
    assert_eq!(status, JobsealStatus::JobsealOk);
    d
}

/// The check is the full path: a permit with verified VOMS FQANs.
fn assert_full_permit(v: &Verifier) {
    let d = check(v, &argv());
    // SAFETY: `d` is a live decision; its code is a NUL-terminated string
    // borrowed from it, copied before it is freed.
    let (permit, code, fqans) = unsafe {
        (
            jobseal_decision_permitted(d),
            CStr::from_ptr(jobseal_decision_code(d)).to_owned(),
            jobseal_decision_fqan_count(d),
        )
    };
    // SAFETY: `d` came from `jobseal_check` and is freed once.
    unsafe { jobseal_decision_free(d) };
    assert!(permit, "{code:?}");
    assert!(fqans > 0, "no verified FQAN");
}

/// One check on a long-lived verifier, the decision freed (as a C caller
/// does after reading it).
#[divan::bench]
fn check_reused(b: Bencher<'_, '_>) {
    let v = new_verifier();
    assert_full_permit(&v);
    let argv = argv();
    b.bench_local(|| {
        let d = check(&v, &argv);
        // SAFETY: `d` is a live decision, read then freed once.
        let permitted = unsafe { jobseal_decision_permitted(d) };
        // SAFETY: `d` came from `jobseal_check` and is freed once.
        unsafe { jobseal_decision_free(d) };
        assert!(permitted);
    });
}

/// A verifier built for one check and freed: what a caller that does not
/// keep its verifier pays per job.
#[divan::bench(sample_count = 200)]
fn new_check_free(b: Bencher<'_, '_>) {
    assert_full_permit(&new_verifier());
    let argv = argv();
    b.bench_local(|| {
        let v = new_verifier();
        let d = check(&v, &argv);
        // SAFETY: `d` is a live decision, read then freed once.
        let permitted = unsafe { jobseal_decision_permitted(d) };
        // SAFETY: `d` came from `jobseal_check` and is freed once.
        unsafe { jobseal_decision_free(d) };
        drop(v);
        assert!(permitted);
    });
}

/// Building a verifier alone (it is freed after the timing).
#[divan::bench(sample_count = 200)]
fn verifier_new(b: Bencher<'_, '_>) {
    b.bench_local(new_verifier);
}

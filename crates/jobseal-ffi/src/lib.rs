//! The jobseal C API: `include/jobseal.h`, generated from this file by
//! cbindgen (`tests/header.rs` fails when the checked-in header is stale).
//!
//! Two opaque objects cross the boundary: a **verifier** (CA directory,
//! VOMS directory, site policy; built once, shared by threads) and a
//! **decision** (permit or deny, with its reason code and who and what it
//! is about). Three operations: [`jobseal_check`] (steps 1–6 of
//! `spec/jobseal.md`, no side effects), [`jobseal_check_credential`] (steps
//! 1–4 and 6: the credential without its payload, for the LCMAPS plugin)
//! and [`jobseal_admit`] (steps 1–8, now: the replay record and the audit
//! record).
//!
//! Rules of the boundary:
//! - A deny is a decision, never an error status. A status other than
//!   `JOBSEAL_OK` means that no decision was made (misuse or an internal
//!   fault): the caller denies.
//! - Every pointer argument is checked for NULL; optional ones are
//!   documented as such.
//! - No panic crosses the boundary: one is caught and reported as
//!   `JOBSEAL_ERR_INTERNAL`.
//! - Every object has a free function; strings a decision returns are
//!   borrowed from it and valid until it is freed. The one owned string
//!   (the error of `jobseal_verifier_new`) is allocated with `malloc`.
//! - Paths are made absolute when the verifier is built; no trust setting
//!   is taken from the environment.
#![deny(unsafe_code)]

use std::ffi::{CStr, CString, OsStr, OsString, c_char, c_void};
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use jobseal_admit::audit::RecordContext;
use jobseal_admit::{AdmissionHost, HostPaths};
use jobseal_core::Error;
use jobseal_verify::{Decision, Invocation, UnixTime};

/// Status of a call. `JOBSEAL_OK` means the call did what it says (for the
/// deciding functions: a decision was made, which may be a deny). Any other
/// status means nothing was decided and the output pointer was set to NULL:
/// the caller must deny.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// The variants carry the C names (`JOBSEAL_OK`, …) in Rust's case.
#[allow(clippy::enum_variant_names)]
pub enum JobsealStatus {
    /// Success.
    JobsealOk = 0,
    /// A required pointer argument was NULL.
    JobsealErrNullPointer = 1,
    /// An argument was out of range (a time before -1, a length above
    /// `PTRDIFF_MAX`).
    JobsealErrInvalidArgument = 2,
    /// The verifier could not be built: the CA directory is unusable
    /// (`config.invalid`) or the policy is invalid (`policy.invalid`). The
    /// error string says which.
    JobsealErrConfig = 3,
    /// An internal fault (a panic, caught at the boundary).
    JobsealErrInternal = 4,
}

/// The `at` argument of `jobseal_check` and `jobseal_check_credential`
/// that means "the current time of the system clock".
pub const JOBSEAL_NOW: i64 = -1;

/// A verifier: trust anchors, VOMS directory and site policy, and, opened
/// on the first `jobseal_admit`, the replay store and audit log. Built by
/// `jobseal_verifier_new`, freed by `jobseal_verifier_free`. Thread-safe:
/// one verifier may be used by any number of threads at once. Not across
/// `fork`: admission opened in one process denies in another.
#[derive(Debug)]
pub struct JobsealVerifier {
    /// The checker, and admission opened on first use, guarded across
    /// `fork` (its directories chosen when the verifier is built).
    host: AdmissionHost,
}

/// A decision. Made by `jobseal_check`, `jobseal_check_credential` or
/// `jobseal_admit`, freed by `jobseal_decision_free`. Immutable; the
/// strings its accessors return belong to it.
#[derive(Debug)]
pub struct JobsealDecision {
    permit: bool,
    code: CString,
    message: CString,
    subject: Option<CString>,
    issued_by_end_entity: bool,
    fqans: Vec<CString>,
    job_id: Option<CString>,
    manifest_sha256: Option<CString>,
}

/// A C string of `s`. The strings of a decision never hold NUL: one inside
/// a value (an FQAN may carry any UTF-8) is written `\x00`, so that a C
/// caller never sees a shortened value.
fn c_string(s: &str) -> CString {
    let bytes = if s.contains('\0') {
        s.replace('\0', "\\x00").into_bytes()
    } else {
        s.as_bytes().to_vec()
    };
    CString::new(bytes).unwrap_or_default()
}

impl JobsealDecision {
    fn new(d: &Decision) -> Self {
        let identity = d.identity.as_ref();
        Self {
            permit: d.is_permit(),
            code: c_string(d.code()),
            message: c_string(&d.message),
            subject: identity.map(|i| c_string(&i.end_entity)),
            issued_by_end_entity: identity.is_some_and(|i| i.issued_by_end_entity),
            // Only verified attributes: an untrusted AC has none.
            fqans: identity
                .map(|i| {
                    i.voms
                        .iter()
                        .filter(|v| v.verified)
                        .flat_map(|v| v.fqans.iter().map(|f| c_string(f)))
                        .collect()
                })
                .unwrap_or_default(),
            job_id: d.job.as_ref().map(|j| c_string(&j.job_id)),
            manifest_sha256: d.manifest_sha256.as_deref().map(c_string),
        }
    }
}

/// Run `f`, turning a panic into `ErrInternal`.
fn guard(f: impl FnOnce() -> Result<(), JobsealStatus>) -> JobsealStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => JobsealStatus::JobsealOk,
        Ok(Err(status)) => status,
        Err(_) => JobsealStatus::JobsealErrInternal,
    }
}

/// Run `f`, turning a panic into `fallback`.
fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The bytes of a NUL-terminated string (a path or an argument: any bytes
/// but NUL, as on Unix).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
#[allow(unsafe_code)]
unsafe fn c_bytes<'a>(p: *const c_char) -> Result<&'a [u8], JobsealStatus> {
    if p.is_null() {
        return Err(JobsealStatus::JobsealErrNullPointer);
    }
    // SAFETY: not NULL, and the caller guarantees a NUL-terminated string
    // valid for 'a.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A path argument; NULL is `ErrNullPointer`.
///
/// # Safety
/// As `c_bytes`.
#[allow(unsafe_code)]
unsafe fn path_arg(p: *const c_char) -> Result<PathBuf, JobsealStatus> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { c_bytes(p) }?;
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// An optional path argument; NULL is `None`.
///
/// # Safety
/// As `c_bytes`.
#[allow(unsafe_code)]
unsafe fn opt_path_arg(p: *const c_char) -> Option<PathBuf> {
    // SAFETY: forwarded from the caller; NULL is handled by c_bytes.
    unsafe { path_arg(p) }.ok()
}

/// A byte buffer argument.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid and
/// unchanged for `'a`.
#[allow(unsafe_code)]
unsafe fn bytes_arg<'a>(p: *const u8, len: usize) -> Result<&'a [u8], JobsealStatus> {
    if p.is_null() {
        return Err(JobsealStatus::JobsealErrNullPointer);
    }
    if isize::try_from(len).is_err() {
        return Err(JobsealStatus::JobsealErrInvalidArgument);
    }
    // SAFETY: not NULL, len ≤ isize::MAX, and the caller guarantees `len`
    // readable bytes valid for 'a (u8 has alignment 1).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An argument vector `argv[0..argc]`; NULL with `argc` 0 is empty.
///
/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or a
/// NUL-terminated string, all valid for the call.
#[allow(unsafe_code)]
unsafe fn args_arg(
    argv: *const *const c_char,
    argc: usize,
) -> Result<Vec<OsString>, JobsealStatus> {
    if argc == 0 {
        return Ok(Vec::new());
    }
    if argv.is_null() {
        return Err(JobsealStatus::JobsealErrNullPointer);
    }
    if argc > isize::MAX as usize / size_of::<*const c_char>() {
        return Err(JobsealStatus::JobsealErrInvalidArgument);
    }
    // SAFETY: not NULL, the size fits isize, and the caller guarantees argc
    // readable, aligned pointers.
    let ptrs = unsafe { std::slice::from_raw_parts(argv, argc) };
    ptrs.iter()
        .map(|&p| {
            // SAFETY: each pointer is NULL (rejected) or a string valid for
            // the call, as the caller guarantees.
            let bytes = unsafe { c_bytes(p) }?;
            Ok(OsStr::from_bytes(bytes).to_os_string())
        })
        .collect()
}

/// The time argument: `JOBSEAL_NOW` or seconds since the epoch.
fn time_arg(at: i64) -> Result<UnixTime, JobsealStatus> {
    if at == JOBSEAL_NOW {
        return Ok(UnixTime::now());
    }
    u64::try_from(at)
        .map(UnixTime)
        .map_err(|_| JobsealStatus::JobsealErrInvalidArgument)
}

/// Store `value` in `*out` (checked non-NULL by the caller).
///
/// # Safety
/// `out` is a valid, aligned pointer to writable storage for a `T`.
#[allow(unsafe_code)]
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: guaranteed by the caller.
    unsafe { out.write(value) }
}

/// Hand a decision to the caller.
///
/// # Safety
/// As `put`.
#[allow(unsafe_code)]
unsafe fn put_decision(out: *mut *mut JobsealDecision, d: &Decision) {
    let boxed = Box::into_raw(Box::new(JobsealDecision::new(d)));
    // SAFETY: forwarded from the caller.
    unsafe { put(out, boxed) }
}

/// A verifier from the paths given (`None`: the system default), each made
/// absolute now; the state directory named, else the process default
/// (read here, once: `AdmissionHost`'s rule, which takes nothing from the
/// environment of a setuid or setgid process).
fn build_verifier(paths: HostPaths) -> Result<JobsealVerifier, Error> {
    let paths = paths.absolute()?;
    let state = paths.state_dirs();
    Ok(JobsealVerifier {
        host: AdmissionHost::load(&paths, state)?,
    })
}

impl JobsealVerifier {
    /// Steps 1–8, now. A failure to set admission up is a deny with its
    /// reason, recorded where it still can be (fail closed).
    fn admit(&self, bundle: &[u8], invocation: &Invocation) -> Decision {
        let context = RecordContext {
            executable: Some(invocation.executable.display().to_string()),
            arguments: Some(
                invocation
                    .arguments
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            ),
            ..RecordContext::default()
        };
        self.host.admit(bundle, invocation, &context)
    }
}

// The C library's allocator: the owned string this library returns is the
// caller's to free with `free()`, whatever it did to the string first.
#[allow(unsafe_code)]
unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// A `malloc`ed copy of `s` (NUL included), or NULL if out of memory.
#[allow(unsafe_code)]
fn malloc_string(s: &CStr) -> *mut c_char {
    let bytes = s.to_bytes_with_nul();
    // SAFETY: malloc takes any size; the result is checked for NULL.
    let p = unsafe { malloc(bytes.len()) }.cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` points to `bytes.len()` freshly allocated bytes, which
        // cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    }
    p.cast()
}

/// Build a verifier.
///
/// - `ca_dir`: the IGTF-style CA directory; NULL for
///   `/etc/grid-security/certificates`.
/// - `voms_dir`: the VOMS directory of LSC files; NULL for
///   `/etc/grid-security/vomsdir`.
/// - `policy_file`: the site policy (TOML, `spec/jobseal.md` §13); NULL for
///   `/etc/jobseal/policy.toml` if it exists, else the built-in policy.
/// - `state_dir`: where `jobseal_admit` keeps the replay database and the
///   audit log (it wins over the policy's `state_dir`/`log_dir`); NULL for
///   the defaults of `jobseal admit`: `/var/lib/jobseal` and
///   `/var/log/jobseal` for root, else `$XDG_STATE_HOME/jobseal` or
///   `$HOME/.local/state/jobseal`. Nothing is opened or created here:
///   admission is opened by the first `jobseal_admit`, so a verifier used
///   only to check needs no writable directory.
/// - `out`: receives the verifier, or NULL on failure. Required.
/// - `error`: if not NULL, receives NULL on success, or on failure an
///   owned string `reason.code: message` when one is known. It is
///   allocated with `malloc`: free it with `jobseal_string_free` or
///   `free()`; the caller may modify it (truncate it, say) first.
///
/// Relative paths are made absolute here, against the current directory
/// at this call: a host that later changes directory (into a job's) keeps
/// the CA directory, VOMS directory and state directory it named.
///
/// Environment: no trust setting is read from it (not `X509_CERT_DIR`,
/// `X509_VOMS_DIR` nor `JOBSEAL_POLICY`). Only when `state_dir` is NULL are
/// `HOME` and `XDG_STATE_HOME` read, once, during this call (never by a
/// setuid or setgid process, which then has no default state directory). A
/// host whose other threads may call `setenv` meanwhile must pass
/// `state_dir`.
///
/// Returns `JOBSEAL_OK`, `JOBSEAL_ERR_NULL_POINTER` (`out` is NULL),
/// `JOBSEAL_ERR_CONFIG` (unusable CA directory, a path that cannot be made
/// absolute, or an invalid policy: the error string says which) or
/// `JOBSEAL_ERR_INTERNAL`. A failure here is not recorded in any audit log.
///
/// # Safety
/// Each string argument is NULL or a NUL-terminated string, unchanged
/// during the call; `out` and `error` are NULL or valid for writing one
/// pointer.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_verifier_new(
    ca_dir: *const c_char,
    voms_dir: *const c_char,
    policy_file: *const c_char,
    state_dir: *const c_char,
    out: *mut *mut JobsealVerifier,
    error: *mut *mut c_char,
) -> JobsealStatus {
    guard(|| {
        if !error.is_null() {
            // SAFETY: not NULL, valid for writing as the caller guarantees.
            unsafe { put(error, std::ptr::null_mut()) };
        }
        if out.is_null() {
            return Err(JobsealStatus::JobsealErrNullPointer);
        }
        // SAFETY: not NULL, valid for writing as the caller guarantees.
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: each is NULL or a NUL-terminated string (the contract).
        let (ca, voms, policy, state) = unsafe {
            (
                opt_path_arg(ca_dir),
                opt_path_arg(voms_dir),
                opt_path_arg(policy_file),
                opt_path_arg(state_dir),
            )
        };
        let paths = HostPaths {
            ca_dir: ca,
            voms_dir: voms,
            policy,
            state_dir: state,
        };
        match build_verifier(paths) {
            Ok(v) => {
                let raw = Box::into_raw(Box::new(v));
                // SAFETY: checked above.
                unsafe { put(out, raw) };
                Ok(())
            }
            Err(e) => {
                if !error.is_null() {
                    let text = c_string(&format!("{}: {}", e.reason.code(), e.message));
                    // SAFETY: not NULL, valid for writing.
                    unsafe { put(error, malloc_string(&text)) };
                }
                Err(JobsealStatus::JobsealErrConfig)
            }
        }
    })
}

/// Free a verifier. NULL is a no-op. No decision refers to it: decisions
/// stay valid after it is freed. It must not be in use by another thread.
/// In a child after `fork`, the admission its parent opened is left open
/// (never closed from the child), the rest freed.
///
/// # Safety
/// `verifier` is NULL or a pointer from `jobseal_verifier_new` not yet
/// freed.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_verifier_free(verifier: *mut JobsealVerifier) {
    if verifier.is_null() {
        return;
    }
    guard_value((), || {
        // SAFETY: made by Box::into_raw in jobseal_verifier_new and not yet
        // freed, as the caller guarantees.
        drop(unsafe { Box::from_raw(verifier) });
    });
}

/// Check a bundle against what is about to run, at time `at`: steps 1–6
/// (verifier and site policy). No side effects: nothing is recorded, no use
/// of the job is spent.
///
/// - `bundle`, `bundle_len`: the bundle bytes (PEM). Required (not NULL,
///   even when `bundle_len` is 0).
/// - `executable`: the path of the executable; `argv[0..argc]` its
///   arguments (without the program name); `argv` may be NULL when `argc`
///   is 0. Paths and arguments are bytes, as on Unix; an argument that is
///   not UTF-8 never equals a signed one (`payload.arguments-mismatch`).
/// - `job_dir`: the directory inputs are resolved against; NULL for the
///   current directory.
/// - `at`: seconds since the epoch, or `JOBSEAL_NOW`.
/// - `out`: receives the decision (free it with `jobseal_decision_free`),
///   or NULL when the status is not `JOBSEAL_OK`. Required.
///
/// The library reads `bundle`, `argv` and the strings during the call and
/// keeps no pointer to them; they must not be modified (by another thread)
/// until it returns.
///
/// The executable and the inputs are checked as they are on disk during
/// the call: whoever then runs the job must run that same file (by the
/// same absolute path, in a directory nobody else can change) or a sealed
/// copy of it, as `jobseal-exec` does.
///
/// Returns `JOBSEAL_OK` (a decision was made: permit or deny),
/// `JOBSEAL_ERR_NULL_POINTER`, `JOBSEAL_ERR_INVALID_ARGUMENT` or
/// `JOBSEAL_ERR_INTERNAL`.
///
/// # Safety
/// `verifier` is NULL or a live verifier; `bundle` is NULL or points to
/// `bundle_len` readable bytes; the strings are NULL or NUL-terminated;
/// `argv` is NULL or points to `argc` string pointers; all of them stay
/// valid and unmodified during the call; `out` is NULL or valid for
/// writing one pointer.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_check(
    verifier: *const JobsealVerifier,
    bundle: *const u8,
    bundle_len: usize,
    executable: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    job_dir: *const c_char,
    at: i64,
    out: *mut *mut JobsealDecision,
) -> JobsealStatus {
    guard(|| {
        if out.is_null() {
            return Err(JobsealStatus::JobsealErrNullPointer);
        }
        // SAFETY: not NULL, valid for writing (the contract).
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: NULL or a live verifier (the contract).
        let v = unsafe { verifier.as_ref() }.ok_or(JobsealStatus::JobsealErrNullPointer)?;
        // SAFETY: the arguments are as the contract says.
        let (bundle, invocation) =
            unsafe { invocation_args(bundle, bundle_len, executable, argv, argc, job_dir) }?;
        let at = time_arg(at)?;
        let d = v.host.checker().check_at(bundle, &invocation, at);
        // SAFETY: checked above.
        unsafe { put_decision(out, &d) };
        Ok(())
    })
}

/// The bundle and invocation arguments of check and admit.
///
/// # Safety
/// As `jobseal_check`.
#[allow(unsafe_code)]
unsafe fn invocation_args<'a>(
    bundle: *const u8,
    bundle_len: usize,
    executable: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    job_dir: *const c_char,
) -> Result<(&'a [u8], Invocation), JobsealStatus> {
    // SAFETY: forwarded from the caller's contract.
    let bundle = unsafe { bytes_arg(bundle, bundle_len) }?;
    // SAFETY: as above.
    let executable = unsafe { path_arg(executable) }?;
    // SAFETY: as above.
    let arguments = unsafe { args_arg(argv, argc) }?;
    // SAFETY: as above.
    let job_dir = unsafe { opt_path_arg(job_dir) }.unwrap_or_else(|| PathBuf::from("."));
    Ok((
        bundle,
        Invocation {
            executable,
            arguments,
            job_dir,
        },
    ))
}

/// Check the credential alone at time `at`: steps 1–4 (chain, binding,
/// manifest) and 6 (site policy), without the payload (step 5). For a
/// relying party that is handed the credential but not the command, such
/// as the LCMAPS plugin. A permit here says nothing about what will run:
/// whoever runs the job MUST still check the payload before it starts. No
/// side effects.
///
/// Arguments, `out` and return values as for `jobseal_check`.
///
/// # Safety
/// As `jobseal_check`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_check_credential(
    verifier: *const JobsealVerifier,
    bundle: *const u8,
    bundle_len: usize,
    at: i64,
    out: *mut *mut JobsealDecision,
) -> JobsealStatus {
    guard(|| {
        if out.is_null() {
            return Err(JobsealStatus::JobsealErrNullPointer);
        }
        // SAFETY: not NULL, valid for writing (the contract).
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: NULL or a live verifier (the contract).
        let v = unsafe { verifier.as_ref() }.ok_or(JobsealStatus::JobsealErrNullPointer)?;
        // SAFETY: NULL or bundle_len readable bytes (the contract).
        let bundle = unsafe { bytes_arg(bundle, bundle_len) }?;
        let at = time_arg(at)?;
        let d = v.host.checker().check_credential_at(bundle, at);
        // SAFETY: checked above.
        unsafe { put_decision(out, &d) };
        Ok(())
    })
}

/// Admit the job about to run, now: steps 1–6, then the replay record
/// (step 7: the job's use is spent only on a permit of steps 1–6) and the
/// audit record (step 8: every decision, permit or deny, is recorded). The
/// time is always the current time.
///
/// The replay store and audit log are opened on the first call (under the
/// verifier's state directory, or where the policy says). If they cannot
/// be opened, or the state directory is unknown, the decision is a deny
/// with that reason (`replay.store-unavailable`, `audit.unavailable`,
/// `config.invalid`, …), recorded where it still can be: never an error
/// status. Opening is tried again on the next call.
///
/// Arguments (but `at`), `out` and return values as for `jobseal_check`.
/// The audit record names the executable and arguments given; the C API
/// records no environment variable names.
///
/// A permit is for the payload's bytes as they are during this call: the
/// launcher must run that same file, unchanged, or a sealed copy (as
/// `jobseal-exec` does); `admit` cannot see what happens after it returns.
///
/// Fork: admission belongs to the process that opened it. Called in
/// another process (a child after `fork`) on a verifier whose admission
/// was opened before the fork, this denies (`internal.error`, "used across
/// fork"), recorded in the audit log by path; build a new verifier in the
/// child.
///
/// # Safety
/// As `jobseal_check`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_admit(
    verifier: *const JobsealVerifier,
    bundle: *const u8,
    bundle_len: usize,
    executable: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    job_dir: *const c_char,
    out: *mut *mut JobsealDecision,
) -> JobsealStatus {
    guard(|| {
        if out.is_null() {
            return Err(JobsealStatus::JobsealErrNullPointer);
        }
        // SAFETY: not NULL, valid for writing (the contract).
        unsafe { put(out, std::ptr::null_mut()) };
        // SAFETY: NULL or a live verifier (the contract).
        let v = unsafe { verifier.as_ref() }.ok_or(JobsealStatus::JobsealErrNullPointer)?;
        // SAFETY: the arguments are as the contract says.
        let (bundle, invocation) =
            unsafe { invocation_args(bundle, bundle_len, executable, argv, argc, job_dir) }?;
        let d = v.admit(bundle, &invocation);
        // SAFETY: checked above.
        unsafe { put_decision(out, &d) };
        Ok(())
    })
}

/// Free a decision. NULL is a no-op. The strings it returned become invalid.
///
/// # Safety
/// `decision` is NULL or a pointer from a deciding function not yet freed.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_free(decision: *mut JobsealDecision) {
    if decision.is_null() {
        return;
    }
    guard_value((), || {
        // SAFETY: made by Box::into_raw in put_decision and not yet freed,
        // as the caller guarantees.
        drop(unsafe { Box::from_raw(decision) });
    });
}

/// `f` of the decision `d`, or `fallback` if `d` is NULL or `f` panics.
///
/// # Safety
/// `d` is NULL or a live decision.
#[allow(unsafe_code)]
unsafe fn with_decision<T>(
    d: *const JobsealDecision,
    fallback: T,
    f: impl FnOnce(&JobsealDecision) -> T,
) -> T {
    // SAFETY: NULL or a live decision (the caller's contract).
    match unsafe { d.as_ref() } {
        Some(d) => guard_value(fallback, || f(d)),
        None => fallback,
    }
}

/// A borrowed C string of a decision, or NULL.
fn borrowed(s: Option<&CString>) -> *const c_char {
    s.map_or(std::ptr::null(), |c| c.as_ptr())
}

/// Whether the job may run: true only for a permit. False for a deny and
/// for NULL.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_permitted(decision: *const JobsealDecision) -> bool {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, false, |d| d.permit) }
}

/// `"permit"`, or the reason code of the deny (`spec/jobseal.md` §9, e.g.
/// `"chain.untrusted"`). A code the caller does not know MUST be treated as
/// a deny. Borrowed from the decision; NULL if `decision` is NULL.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_code(decision: *const JobsealDecision) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, std::ptr::null(), |d| borrowed(Some(&d.code))) }
}

/// One line for people, saying why. Borrowed from the decision; NULL if
/// `decision` is NULL.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_message(
    decision: *const JobsealDecision,
) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, std::ptr::null(), |d| borrowed(Some(&d.message))) }
}

/// The user: the end-entity certificate's subject in the one-line form
/// (`/DC=org/O=Example/CN=Jane Doe`, `spec/jobseal.md` §6.8). Set once path
/// validation succeeded (also on some denies); NULL otherwise, or if
/// `decision` is NULL. Borrowed from the decision.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_subject(
    decision: *const JobsealDecision,
) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, std::ptr::null(), |d| borrowed(d.subject.as_ref())) }
}

/// Whether the user's end-entity certificate issued the job-bound proxy
/// directly: no proxy sealed the job, what site policy `issuer =
/// "end-entity"` requires (`spec/jobseal.md` §6.8, §13.4 6f). False when a
/// proxy issued it, when path validation did not get that far (the subject
/// is then NULL), and if `decision` is NULL.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_issued_by_end_entity(
    decision: *const JobsealDecision,
) -> bool {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, false, |d| d.issued_by_end_entity) }
}

/// The number of verified VOMS FQANs (0 if `decision` is NULL). Only
/// attributes of verified attribute certificates are counted: an untrusted
/// one gives none (`spec/jobseal.md` §6.3a).
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_fqan_count(decision: *const JobsealDecision) -> usize {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, 0, |d| d.fqans.len()) }
}

/// The verified FQAN number `index`, in chain order and within one
/// attribute certificate in the AA's order (the first is the primary
/// FQAN). NULL if `index` is out of range or `decision` is NULL. Borrowed
/// from the decision.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_fqan(
    decision: *const JobsealDecision,
    index: usize,
) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, std::ptr::null(), |d| borrowed(d.fqans.get(index))) }
}

/// The job id (32 lowercase hex digits), once the manifest was verified;
/// NULL otherwise, or if `decision` is NULL. Borrowed from the decision.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_job_id(
    decision: *const JobsealDecision,
) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe { with_decision(decision, std::ptr::null(), |d| borrowed(d.job_id.as_ref())) }
}

/// The manifest SHA-256 bound by the proxy (64 lowercase hex digits), once
/// the binding was read; NULL otherwise, or if `decision` is NULL. Borrowed
/// from the decision.
///
/// # Safety
/// `decision` is NULL or a live decision.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_decision_manifest_sha256(
    decision: *const JobsealDecision,
) -> *const c_char {
    // SAFETY: `decision` is NULL or a live decision (this function's
    // contract).
    unsafe {
        with_decision(decision, std::ptr::null(), |d| {
            borrowed(d.manifest_sha256.as_ref())
        })
    }
}

/// Free a string this library returned as owned (the error string of
/// `jobseal_verifier_new`): it was allocated with `malloc`, and this is
/// `free()`, which the caller may call instead. NULL is a no-op. Never pass
/// a string borrowed from a decision.
///
/// # Safety
/// `s` is NULL or an owned string from this library, not yet freed (its
/// contents may have been changed).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn jobseal_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: allocated by malloc in malloc_string and not yet freed, as
    // the caller guarantees.
    unsafe { free(s.cast()) };
}

/// A static name for a status value (`"JOBSEAL_OK"`, …), or `"unknown"`.
#[unsafe(no_mangle)]
#[allow(unsafe_code)]
pub extern "C" fn jobseal_status_name(status: i32) -> *const c_char {
    let name: &'static CStr = match status {
        0 => c"JOBSEAL_OK",
        1 => c"JOBSEAL_ERR_NULL_POINTER",
        2 => c"JOBSEAL_ERR_INVALID_ARGUMENT",
        3 => c"JOBSEAL_ERR_CONFIG",
        4 => c"JOBSEAL_ERR_INTERNAL",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// The library version (static string).
#[unsafe(no_mangle)]
#[allow(unsafe_code)]
pub extern "C" fn jobseal_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The git commit the library was built from (40 hex digits), or
/// `"unknown"` when it was built outside a git tree (static string).
/// `jobseal --version` and `jobseal-exec --version` print the same.
#[unsafe(no_mangle)]
#[allow(unsafe_code)]
pub extern "C" fn jobseal_commit() -> *const c_char {
    static COMMIT: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("JOBSEAL_BUILD_COMMIT"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    COMMIT.as_ptr()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_verifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<JobsealVerifier>();
        assert_send_sync::<JobsealDecision>();
    }

    #[test]
    fn a_panic_is_an_internal_error() {
        assert_eq!(
            guard(|| panic!("boom")),
            JobsealStatus::JobsealErrInternal,
            "a panic must not cross the boundary"
        );
        assert!(!guard_value(false, || -> bool { panic!("boom") }));
        assert_eq!(guard(|| Ok(())), JobsealStatus::JobsealOk);
    }

    #[test]
    fn nul_inside_a_value_is_escaped_not_cut() {
        assert_eq!(c_string("/atlas/x\0y").to_bytes(), b"/atlas/x\\x00y");
        assert_eq!(c_string("permit").to_bytes(), b"permit");
    }

    #[test]
    fn status_names_match_the_enum() {
        for (s, name) in [
            (JobsealStatus::JobsealOk, "JOBSEAL_OK"),
            (
                JobsealStatus::JobsealErrNullPointer,
                "JOBSEAL_ERR_NULL_POINTER",
            ),
            (
                JobsealStatus::JobsealErrInvalidArgument,
                "JOBSEAL_ERR_INVALID_ARGUMENT",
            ),
            (JobsealStatus::JobsealErrConfig, "JOBSEAL_ERR_CONFIG"),
            (JobsealStatus::JobsealErrInternal, "JOBSEAL_ERR_INTERNAL"),
        ] {
            // SAFETY: jobseal_status_name returns a static C string.
            #[allow(unsafe_code)]
            let got = unsafe { CStr::from_ptr(jobseal_status_name(s as i32)) };
            assert_eq!(got.to_str().unwrap(), name);
        }
    }

    #[test]
    fn time_argument() {
        assert_eq!(time_arg(5).unwrap(), UnixTime(5));
        assert!(time_arg(JOBSEAL_NOW).unwrap().0 > 1_700_000_000);
        assert_eq!(time_arg(-2), Err(JobsealStatus::JobsealErrInvalidArgument));
    }

    #[test]
    fn the_error_string_is_mallocd() {
        let p = malloc_string(c"config.invalid: x");
        assert!(!p.is_null());
        // SAFETY: a live, NUL-terminated string from malloc_string; freed
        // once, after truncation (which CString::from_raw would not allow).
        #[allow(unsafe_code)]
        unsafe {
            assert_eq!(CStr::from_ptr(p).to_bytes(), b"config.invalid: x");
            *p.add(6) = 0;
            jobseal_string_free(p);
        }
    }

    #[test]
    fn a_path_of_any_bytes_is_accepted() {
        let p = c"/tmp/\xff\xfe";
        // SAFETY: a static C string.
        #[allow(unsafe_code)]
        let path = unsafe { path_arg(p.as_ptr()) }.unwrap();
        assert_eq!(path.as_os_str().as_bytes(), b"/tmp/\xff\xfe");
    }
}

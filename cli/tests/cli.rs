//! The `jobseal` command line: exit codes, messages, and that a failure
//! leaves no output file behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use jobseal_issue::throwaway;

#[allow(dead_code)]
#[path = "../../crates/jobseal-testkit/src/peers.rs"]
mod peers;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A CA dir, a user (cert + unencrypted PKCS#8 key), a job.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[1; 32],
            "CN=CLI Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let user = throwaway::user(
            &ca,
            &[2; 32],
            "CN=Jane Doe,O=jobseal",
            2,
            now.minus(86_400),
            now.plus(30 * 86_400),
        )
        .unwrap();
        let expired = throwaway::user(
            &ca,
            &[2; 32],
            "CN=Jane Doe,O=jobseal",
            3,
            now.minus(86_400),
            now.minus(60),
        )
        .unwrap();
        let other = throwaway::user(
            &ca,
            &[3; 32],
            "CN=Other,O=jobseal",
            4,
            now.minus(86_400),
            now.plus(86_400),
        )
        .unwrap();
        throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        let w = |name: &str, data: &[u8]| std::fs::write(dir.path().join(name), data).unwrap();
        w(
            "usercert.pem",
            encode_block("CERTIFICATE", &user.cert).as_bytes(),
        );
        w(
            "expiredcert.pem",
            encode_block("CERTIFICATE", &expired.cert).as_bytes(),
        );
        w(
            "othercert.pem",
            encode_block("CERTIFICATE", &other.cert).as_bytes(),
        );
        w(
            "userkey.pem",
            encode_block("PRIVATE KEY", &user.pkcs8).as_bytes(),
        );
        // As grid-proxy-init, jobseal refuses a key others can read.
        std::fs::set_permissions(
            dir.path().join("userkey.pem"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        w("run.sh", b"#!/bin/sh\necho hi\n");
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        w(
            "job.toml",
            b"executable = \"run.sh\"\narguments = [\"a\", \"b c\"]\nvalid = \"1h\"\n",
        );
        w("job2.toml", b"executable = \"run.sh\"\n");
        Self { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// `jobseal sign JOB --out OUT` with the fixture's user certificate.
    fn sign(&self, job: &str, out: &str) -> Output {
        run(self.jobseal().args([
            "sign",
            job,
            "--out",
            out,
            "--cert",
            "usercert.pem",
            "--key",
            "userkey.pem",
        ]))
    }
    /// [`Self::sign`], which must succeed.
    fn sealed(&self, job: &str, out: &str) {
        let o = self.sign(job, out);
        assert!(o.status.success(), "{job}: {}", stderr(&o));
    }
    fn jobseal(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobseal"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", "/usr/bin:/bin");
        c
    }
    fn encrypt_key(&self, pass: &str) -> PathBuf {
        let out = self.path("userkey.enc.pem");
        let st = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout"])
            .arg(format!("pass:{pass}"))
            .arg("-in")
            .arg(self.path("userkey.pem"))
            .arg("-out")
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("missing openssl ({e}): apt-get install openssl"));
        assert!(st.success());
        out
    }
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn run_with_stdin(c: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn no_stray_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name();
        assert!(
            !n.to_string_lossy().starts_with(".jobseal-"),
            "temporary file {n:?} left behind"
        );
    }
}

#[test]
fn sign_then_verify_permits_and_exit_codes_follow_the_spec() {
    let f = Fixture::new();
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(f.path("b.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    let o = run(f.jobseal().args([
        "verify", "b.pem", "--ca-dir", "ca", "--json", "--", "./run.sh", "a", "b c",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["decision"], "permit");
    assert_eq!(j["end_entity"], "/O=jobseal/CN=Jane Doe");
    assert_eq!(j["arguments"], serde_json::json!(["a", "b c"]));
    assert_eq!(j["job_id"].as_str().unwrap().len(), 32);
    assert_eq!(j["manifest_sha256"].as_str().unwrap().len(), 64);
    // Deny: exit 1, one line `code: message` on stderr.
    let o = run(f.jobseal().args([
        "verify", "b.pem", "--ca-dir", "ca", "--", "./run.sh", "a", "b", "c",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("payload.arguments-mismatch: "), "{e}");
    // Usage error: exit 2.
    let o = run(f.jobseal().args([
        "verify",
        "b.pem",
        "--ca-dir",
        "ca",
        "--at",
        "yesterday",
        "--",
        "./run.sh",
    ]));
    assert_eq!(o.status.code(), Some(2));
    // --at in the past of the job: not yet valid.
    let o = run(f.jobseal().args([
        "verify",
        "b.pem",
        "--ca-dir",
        "ca",
        "--at",
        "2001-01-01T00:00:00Z",
        "--",
        "./run.sh",
        "a",
        "b c",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("time.not-yet-valid"),
        "{}",
        stderr(&o)
    );
    // A missing CA directory is a deny with config.invalid.
    let o = run(f.jobseal().args([
        "verify", "b.pem", "--ca-dir", "nope", "--", "./run.sh", "a", "b c",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("config.invalid"), "{}", stderr(&o));
}

#[test]
fn wrong_passphrase_says_so_and_writes_nothing() {
    if !peers::require_all(&[("openssl", "openssl")]) {
        return;
    }
    let f = Fixture::new();
    f.encrypt_key("right horse battery");
    let o = run_with_stdin(
        f.jobseal().args([
            "sign",
            "job.toml",
            "--out",
            "b.pem",
            "--cert",
            "usercert.pem",
            "--key",
            "userkey.enc.pem",
            "--pwstdin",
        ]),
        "wrong\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("wrong passphrase for userkey.enc.pem"),
        "{}",
        stderr(&o)
    );
    assert!(!f.path("b.pem").exists());
    no_stray_files(f.dir.path());
    let o = run_with_stdin(
        f.jobseal().args([
            "sign",
            "job.toml",
            "--out",
            "b.pem",
            "--cert",
            "usercert.pem",
            "--key",
            "userkey.enc.pem",
            "--pwstdin",
        ]),
        "right horse battery\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn many_jobs_take_one_passphrase() {
    if !peers::require_all(&[("openssl", "openssl")]) {
        return;
    }
    let f = Fixture::new();
    f.encrypt_key("pw");
    // Only one line on stdin: a second prompt would read EOF and fail.
    let o = run_with_stdin(
        f.jobseal().args([
            "sign",
            "job.toml",
            "job2.toml",
            "--out-dir",
            "out",
            "--cert",
            "usercert.pem",
            "--key",
            "userkey.enc.pem",
            "--pwstdin",
        ]),
        "pw\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.path("out/job.bundle.pem").is_file() && f.path("out/job2.bundle.pem").is_file());
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "job2.toml",
        "--out",
        "x.pem",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--out-dir"), "{}", stderr(&o));
}

/// `n` jobs `w00.toml`… with one argument each (their number); job `k`'s
/// input is `in<k>.txt`, written unless `missing` is `k`.
fn many_jobs(f: &Fixture, n: usize, missing: Option<usize>) -> Vec<String> {
    (0..n)
        .map(|k| {
            if missing != Some(k) {
                std::fs::write(f.path(&format!("in{k}.txt")), format!("input {k}\n")).unwrap();
            }
            let name = format!("w{k:02}.toml");
            std::fs::write(
                f.path(&name),
                format!(
                    "executable = \"run.sh\"\narguments = [\"{k}\"]\ninputs = [\"in{k}.txt\"]\n"
                ),
            )
            .unwrap();
            name
        })
        .collect()
}

fn sign_many(f: &Fixture, jobs: &[String]) -> Output {
    run(f
        .jobseal()
        .args(["sign", "--out-dir", "out", "--cert", "usercert.pem"])
        .args(["--key", "userkey.pem"])
        .args(jobs))
}

/// The jobs `sign` reported sealed, by number, in the order reported.
fn reported(o: &Output) -> Vec<usize> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("sealed job "))
        .map(|l| {
            let (_, file) = l.split_once("-> out/w").unwrap();
            file.get(..2).unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn many_jobs_are_all_written_complete_and_reported_in_order() {
    let f = Fixture::new();
    let jobs = many_jobs(&f, 40, None);
    let o = sign_many(&f, &jobs);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reported(&o), (0..40).collect::<Vec<_>>());
    // Issue 15 §3: a summary line ends the batch.
    assert_eq!(
        stderr(&o).trim_end().lines().last(),
        Some("jobseal: 40 of 40 job(s) sealed into out")
    );
    no_stray_files(&f.path("out"));
    for k in [0, 17, 39] {
        let o = run(f.jobseal().args([
            "verify",
            &format!("out/w{k:02}.bundle.pem"),
            "--ca-dir",
            "ca",
            "--",
            "./run.sh",
            &k.to_string(),
        ]));
        assert_eq!(o.status.code(), Some(0), "job {k}: {}", stderr(&o));
    }
}

/// The files in `out/` (none when it does not exist).
fn written(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(f.path("out"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Issue 15 §3: a batch with bad jobs (a missing input, a TOML typo, a
/// missing executable) reports every problem at once, each naming its job
/// file and field, and writes nothing; no passphrase is asked for.
#[test]
fn a_batch_with_bad_jobs_names_every_problem_and_writes_nothing() {
    let f = Fixture::new();
    let jobs = many_jobs(&f, 40, Some(20));
    std::fs::write(f.path("w31.toml"), "executable = \"run.sh\"\nargs = [1]\n").unwrap();
    std::fs::write(f.path("w07.toml"), "executable = \"gone.sh\"\n").unwrap();
    let key = f.encrypt_key("secret");
    let o = run(f
        .jobseal()
        .args([
            "sign",
            "--out-dir",
            "out",
            "--cert",
            "usercert.pem",
            "--key",
        ])
        .arg(&key)
        .args(&jobs)
        .stdin(Stdio::null()));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("w20.toml: the input \"in20.txt\""), "{e}");
    assert!(e.contains("w31.toml:2:"), "{e}");
    assert!(e.contains("w07.toml: the executable"), "{e}");
    assert!(e.contains("gone.sh cannot be read"), "{e}");
    assert!(!e.contains("pass phrase"), "{e}");
    let last = e.trim_end().lines().last().unwrap();
    assert!(
        last.contains("nothing sealed: 3 of 40") && last.contains("--keep-going"),
        "{last}"
    );
    assert_eq!(written(&f), Vec::<String>::new());
}

/// Issue 15 §3: `--keep-going` seals every good job and ends with a
/// summary naming the jobs left out; the exit code says not all were.
#[test]
fn keep_going_seals_the_good_jobs_and_ends_with_a_summary() {
    let f = Fixture::new();
    let jobs = many_jobs(&f, 40, Some(20));
    std::fs::write(f.path("w31.toml"), "executable = \"run.sh\"\nargs = [1]\n").unwrap();
    let o = run(f
        .jobseal()
        .args([
            "sign",
            "--keep-going",
            "--out-dir",
            "out",
            "--cert",
            "usercert.pem",
        ])
        .args(["--key", "userkey.pem"])
        .args(&jobs));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want: Vec<usize> = (0..40).filter(|k| ![20, 31].contains(k)).collect();
    assert_eq!(reported(&o), want);
    let names: Vec<String> = want.iter().map(|k| format!("w{k:02}.bundle.pem")).collect();
    assert_eq!(written(&f), names);
    let e = stderr(&o);
    let last = e.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        "jobseal: 38 of 40 job(s) sealed into out; not sealed: w20.toml, w31.toml"
    );
}

#[test]
fn a_bundle_that_cannot_be_written_is_reported_by_name_and_leaves_nothing_behind() {
    let f = Fixture::new();
    let jobs = many_jobs(&f, 12, None);
    // A directory where job 7's bundle should go: the rename fails.
    std::fs::create_dir_all(f.path("out/w07.bundle.pem/x")).unwrap();
    let o = sign_many(&f, &jobs);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("out/w07.bundle.pem"), "{}", stderr(&o));
    assert!(stderr(&o).contains("w07.toml"), "{}", stderr(&o));
    // Seen before anything is signed: nothing is written (issue 15 §3).
    assert_eq!(reported(&o), Vec::<usize>::new());
    no_stray_files(&f.path("out"));
    assert_eq!(written(&f), vec!["w07.bundle.pem".to_string()]);
}

#[test]
fn a_key_that_does_not_match_and_an_expired_certificate_are_refused() {
    let f = Fixture::new();
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "othercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not match the certificate"),
        "{}",
        stderr(&o)
    );
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "expiredcert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expired at"), "{}", stderr(&o));
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "missing.pem",
        "--key",
        "userkey.pem",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.pem"), "{}", stderr(&o));
    assert!(!f.path("b.pem").exists());
    no_stray_files(f.dir.path());
}

#[test]
fn credential_from_home_globus_and_proxy_mode() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path(".globus")).unwrap();
    std::fs::copy(f.path("usercert.pem"), f.path(".globus/usercert.pem")).unwrap();
    std::fs::copy(f.path("userkey.pem"), f.path(".globus/userkey.pem")).unwrap();
    let o = run(f
        .jobseal()
        .args(["proxy", "--out", "x509up", "--valid", "2h"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::metadata(f.path("x509up"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The proxy signs jobs in turn (found through X509_USER_PROXY).
    let o = run(f
        .jobseal()
        .env("X509_USER_PROXY", f.path("x509up"))
        .args(["sign", "job.toml", "--out", "b.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(f.jobseal().args(["inspect", "--json", "b.pem"]));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["identity"], "/O=jobseal/CN=Jane Doe");
    assert_eq!(j["private_key"], false);
    assert_eq!(j["job"]["binding_matches"], true);
    assert_eq!(j["certificates"].as_array().unwrap().len(), 3);
    let o = run(f.jobseal().args([
        "verify", "b.pem", "--ca-dir", "ca", "--", "./run.sh", "a", "b c",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn demo_runs() {
    let o = Command::new(env!("CARGO_BIN_EXE_jobseal"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("PERMIT permit") && out.contains("binding.digest-mismatch"),
        "{out}"
    );
}

#[test]
fn crl_policy_flag_requires_a_crl() {
    // The checked-in vectors' main CA publishes no CRL: fine by default,
    // a deny with --crl require.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let v = "permit-direct-from-user-certificate";
    let run_with = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jobseal"))
            .current_dir(&dir)
            .args([
                "verify",
                &format!("{v}/bundle.pem"),
                "--ca-dir",
                "ca",
                "--at",
                "2026-01-01T00:00:00Z",
                "--job-dir",
                &format!("{v}/job"),
            ])
            .args(extra)
            .args(["--", &format!("{v}/job/run.sh"), "--events", "1000"])
            .output()
            .unwrap()
    };
    let o = run_with(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run_with(&["--crl", "require"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("chain.crl-missing: "),
        "{}",
        stderr(&o)
    );
    let o = run_with(&["--legacy-ca-rsa-bits", "512"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an RSA floor below 1024 is a usage error"
    );
}

#[test]
fn admission_uses_a_job_once_after_policy_and_leaves_an_audit_trail() {
    let f = Fixture::new();
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let admit = |f: &Fixture, policy: Option<&str>, args: &[&str]| {
        let mut c = f.jobseal();
        c.args(["admit", "b.pem", "--ca-dir", "ca", "--state-dir", "state"]);
        if let Some(p) = policy {
            c.args(["--policy", p]);
        }
        c.arg("--").args(args);
        run(&mut c)
    };
    // A banned user is refused and does not use up the job.
    std::fs::write(f.path("banned.txt"), "").unwrap();
    std::fs::write(f.path("policy.toml"), "[ban]\nfiles = [\"banned.txt\"]\n").unwrap();
    std::fs::write(f.path("banned.txt"), "subject /O=jobseal/CN=Jane Doe\n").unwrap();
    let o = admit(&f, Some("policy.toml"), &["./run.sh", "a", "b c"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("policy.banned-subject: "),
        "{}",
        stderr(&o)
    );
    // The ban is lifted: the next admission sees it at once.
    std::fs::write(f.path("banned.txt"), "# nobody\n").unwrap();
    // A wrong executable is refused and does not use up the job either.
    let o = admit(&f, Some("policy.toml"), &["./job.toml", "a", "b c"]);
    assert!(
        stderr(&o).starts_with("payload.executable-mismatch: "),
        "{}",
        stderr(&o)
    );
    // The real one is admitted once, and only once.
    let o = admit(&f, Some("policy.toml"), &["./run.sh", "a", "b c"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = admit(&f, Some("policy.toml"), &["./run.sh", "a", "b c"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("replay.job-id-used: "),
        "{}",
        stderr(&o)
    );
    // Every decision is in the audit log, and the chain is intact.
    let o = run(f.jobseal().args(["audit", "verify", "state/audit.jsonl"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("4 record(s)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run(f
        .jobseal()
        .args(["audit", "show", "state/audit.jsonl", "--outcome", "permit"]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    // Admission never takes --at.
    let o = run(f.jobseal().args([
        "admit",
        "b.pem",
        "--at",
        "2026-01-01T00:00:00Z",
        "--",
        "./run.sh",
    ]));
    assert_eq!(o.status.code(), Some(2));
    // A broken policy is a deny with file:line:column.
    std::fs::write(f.path("bad.toml"), "site = 3\n").unwrap();
    let o = admit(&f, Some("bad.toml"), &["./run.sh", "a", "b c"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("policy.invalid: ") && stderr(&o).contains("bad.toml:1:"),
        "{}",
        stderr(&o)
    );
    // ... and even that deny leaves a record.
    let o = run(f.jobseal().args(["audit", "verify", "state/audit.jsonl"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("5 record(s)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run(f
        .jobseal()
        .args(["audit", "show", "state/audit.jsonl", "--outcome", "deny"]));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .contains("policy.invalid")
    );
}

/// What the verifier's path check refuses in the credential alone, `sign`
/// refuses before signing (issue 18 §3): a user certificate file whose CA
/// certificates skip a level (the bundle would be `chain.broken`), and a
/// proxy whose subject is not its issuer's plus one CN
/// (`proxy.bad-subject`). Nothing is written.
#[test]
fn sign_refuses_what_every_site_refuses() {
    use jobseal_issue::proxy::{CertTemplate, ProxyKind};
    let f = Fixture::new();
    let now = UnixTime::now();
    // The user certificate followed by a CA that did not issue it.
    let stranger = throwaway::ca(
        &[9; 32],
        "CN=Unrelated CA,O=jobseal",
        now.minus(86_400),
        now.plus(86_400),
    )
    .unwrap();
    let mut gap = std::fs::read(f.path("usercert.pem")).unwrap();
    gap.extend_from_slice(encode_block("CERTIFICATE", &stranger.cert).as_bytes());
    std::fs::write(f.path("gapcert.pem"), gap).unwrap();
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--cert",
        "gapcert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("chain.broken"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("every site would refuse"),
        "{}",
        stderr(&o)
    );

    // A proxy of the user whose subject drops the user's name.
    let user_cert =
        jobseal_core::pem::parse_blocks(&std::fs::read(f.path("usercert.pem")).unwrap())
            .unwrap()
            .remove(0)
            .der;
    let user_key = jobseal_issue::signer::SigningKey::from_key_der(
        &jobseal_issue::keys::KeyDer::Pkcs8(zeroize::Zeroizing::new(
            jobseal_core::pem::parse_blocks(&std::fs::read(f.path("userkey.pem")).unwrap())
                .unwrap()
                .remove(0)
                .der,
        )),
    )
    .unwrap();
    let (_, pkcs8, spki) = throwaway::ed25519_from_seed(&[8; 32]).unwrap();
    let mut t = CertTemplate::proxy(
        &user_cert,
        spki,
        77,
        now.minus(60),
        now.plus(3600),
        &ProxyKind::InheritAll { path_len: None },
    )
    .unwrap();
    t.subject = throwaway::name_der("CN=77,O=elsewhere").unwrap();
    let proxy = t.sign(&user_key).unwrap();
    let file = [
        encode_block("CERTIFICATE", &proxy),
        encode_block("PRIVATE KEY", &pkcs8),
        encode_block("CERTIFICATE", &user_cert),
    ]
    .concat();
    std::fs::write(f.path("badproxy.pem"), file).unwrap();
    std::fs::set_permissions(
        f.path("badproxy.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--proxy",
        "badproxy.pem",
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("proxy.bad-subject"), "{}", stderr(&o));
    assert!(!f.path("b.pem").exists());
    no_stray_files(f.dir.path());
}

/// Run `c` to its end, or kill it and fail after a generous bound: a
/// command that opens a FIFO with a blocking read would never end.
fn run_or_hang(c: &mut Command, what: &str) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("{what}: still running after 30 s (a blocking open or an unbounded read)");
}

/// Issue 13 §3: every command reads the files a person names through one
/// reader: regular files only, opened without blocking, bounded. A FIFO,
/// `/dev/zero`, a directory, and a symbolic link to each, in place of a
/// bundle (verify, admit, inspect), a credential, a job file, an
/// executable or an input (sign): refused at once, naming the file; an
/// admission refused so is in the audit log.
#[test]
fn special_files_are_refused_by_every_command() {
    let f = Fixture::new();
    let fifo = f.path("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    std::fs::create_dir(f.path("adir")).unwrap();
    let specials = [
        ("fifo", fifo.clone()),
        ("zero", PathBuf::from("/dev/zero")),
        ("dir", f.path("adir")),
    ];
    // Names relative to the job's directory (inputs must be), and
    // /dev/zero itself.
    let mut names = vec!["fifo".to_string(), "adir".into(), "/dev/zero".into()];
    for (name, target) in &specials {
        std::os::unix::fs::symlink(target, f.path(&format!("link-{name}"))).unwrap();
        names.push(format!("link-{name}"));
    }
    for special in &names {
        let cases: Vec<(&str, Vec<String>)> = vec![
            (
                "verify",
                vec![
                    "verify".into(),
                    special.clone(),
                    "--ca-dir".into(),
                    "ca".into(),
                    "--".into(),
                    "./run.sh".into(),
                ],
            ),
            (
                "admit",
                vec![
                    "admit".into(),
                    special.clone(),
                    "--ca-dir".into(),
                    "ca".into(),
                    "--state-dir".into(),
                    "state".into(),
                    "--".into(),
                    "./run.sh".into(),
                ],
            ),
            ("inspect", vec!["inspect".into(), special.clone()]),
            (
                "sign (credential)",
                vec![
                    "sign".into(),
                    "job.toml".into(),
                    "--out".into(),
                    "x.pem".into(),
                    "--cert".into(),
                    special.clone(),
                    "--key".into(),
                    "userkey.pem".into(),
                ],
            ),
            (
                "sign (job file)",
                vec![
                    "sign".into(),
                    special.clone(),
                    "--out".into(),
                    "x.pem".into(),
                    "--cert".into(),
                    "usercert.pem".into(),
                    "--key".into(),
                    "userkey.pem".into(),
                ],
            ),
        ];
        for (what, args) in cases {
            let o = run_or_hang(f.jobseal().args(&args), &format!("{what} {special}"));
            assert_eq!(o.status.code(), Some(1), "{what} {special}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains("not a regular file") || err.contains("Is a directory"),
                "{what} {special}: {err}"
            );
        }
        // The executable and an input of a job (inputs are relative).
        if special.starts_with('/') {
            continue;
        }
        for (what, toml) in [
            ("executable", format!("executable = {special:?}\n")),
            (
                "input",
                format!("executable = \"run.sh\"\ninputs = [{special:?}]\n"),
            ),
        ] {
            std::fs::write(f.path("special.toml"), toml).unwrap();
            let o = run_or_hang(
                f.jobseal().args([
                    "sign",
                    "special.toml",
                    "--out",
                    "x.pem",
                    "--cert",
                    "usercert.pem",
                    "--key",
                    "userkey.pem",
                ]),
                &format!("sign ({what}) {special}"),
            );
            assert_eq!(o.status.code(), Some(1), "{what} {special}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("not a regular file"),
                "{what} {special}: {}",
                stderr(&o)
            );
        }
    }
    assert!(!f.path("x.pem").exists());
    // Each refused admission left its record.
    let log = std::fs::read_to_string(f.path("state/log/audit.jsonl"))
        .or_else(|_| std::fs::read_to_string(f.path("state/audit.jsonl")))
        .unwrap_or_default();
    let refusals = log
        .lines()
        .filter(|l| l.contains("bundle.malformed"))
        .count();
    assert_eq!(refusals, names.len(), "{log}");
}

/// Issue 13 §4: sign's messages name what a person must fix, on one line:
/// the job file and "executable" or "input" for a file that cannot be read,
/// and `FILE:LINE:COLUMN` with control characters escaped for TOML.
#[test]
fn sign_errors_name_the_job_file_and_what_is_missing() {
    let f = Fixture::new();
    let sign = |job: &str| f.sign(job, "x.pem");
    std::fs::write(f.path("noexe.toml"), "executable = \"nothere.sh\"\n").unwrap();
    let o = sign("noexe.toml");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("noexe.toml: the executable"), "{e}");
    assert!(e.contains("nothere.sh cannot be read"), "{e}");
    std::fs::write(
        f.path("noinput.toml"),
        "executable = \"run.sh\"\ninputs = [\"data/missing.txt\"]\n",
    )
    .unwrap();
    let e = stderr(&sign("noinput.toml"));
    assert!(
        e.contains("noinput.toml: the input \"data/missing.txt\""),
        "{e}"
    );
    std::fs::write(
        f.path("typo.toml"),
        "executable = \"run.sh\"\nargs\u{1b}[31m = 1\n",
    )
    .unwrap();
    let o = sign("typo.toml");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("typo.toml:2:"), "{e}");
    assert!(!e.contains('\u{1b}'), "{e:?}");
    assert!(!f.path("x.pem").exists());
}

/// Issue 13 §4: when the audit record cannot be written, the deny says the
/// decision that was reached and whether the job's use was spent (else two
/// such jobs look alike while only one can still run).
#[test]
fn an_unwritable_audit_record_says_the_decision_and_the_use() {
    let f = Fixture::new();
    f.sealed("job.toml", "a.pem");
    f.sealed("job2.toml", "b.pem");
    let admit = |bundle: &str, args: &[&str]| {
        run(f
            .jobseal()
            .args([
                "admit",
                bundle,
                "--ca-dir",
                "ca",
                "--state-dir",
                "state",
                "--",
            ])
            .args(args))
    };
    let o = admit("a.pem", &["./run.sh", "a", "b c"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A torn last line: the log fails closed from now on.
    let log = ["state/log/audit.jsonl", "state/audit.jsonl"]
        .into_iter()
        .map(|p| f.path(p))
        .find(|p| p.exists())
        .expect("the audit log");
    let mut f_log = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f_log, b"{\"torn\":").unwrap();
    let o = admit("b.pem", &["./run.sh"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.starts_with("audit.unavailable: "), "{e}");
    assert!(
        e.contains("the decision reached was permit") && e.contains("its use was spent"),
        "{e}"
    );
    // A job refused before its use: the deny says no use was spent.
    let o = admit("b.pem", &["./job.toml"]);
    let e = stderr(&o);
    assert!(e.starts_with("audit.unavailable: "), "{e}");
    assert!(e.contains("no use was spent"), "{e}");
    assert!(!e.contains("decision reached was permit"), "{e}");
}

/// Issue 13 §7: `kill -9` at any point of an admission never admits a job
/// twice, and a permit is never returned without its record. Admissions of
/// one job (one use) are killed after delays that fall anywhere from start
/// to finish; then the log is checked and one last admission runs to its
/// end.
#[test]
fn kill_9_during_admission_never_admits_twice() {
    let f = Fixture::new();
    f.sealed("job.toml", "a.pem");
    let admit_in = |state: &str| {
        let mut c = f.jobseal();
        c.args([
            "admit",
            "a.pem",
            "--ca-dir",
            "ca",
            "--state-dir",
            state,
            "--",
            "./run.sh",
            "a",
            "b c",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    // How long one admission takes here (in a state directory of its own).
    let started = std::time::Instant::now();
    let o = run(&mut admit_in("calibration"));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (mut returned_permits, mut finished_denies, mut killed) = (0, 0, 0);
    for i in 0..48u32 {
        let mut child = admit_in("state").spawn().unwrap();
        // From 0 to 1.5 times an admission: before, during and after the
        // replay and audit writes.
        std::thread::sleep(took * i / 32);
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => returned_permits += 1,
            Some(_) => finished_denies += 1,
            None => killed += 1,
        }
    }
    // The delays cover the whole admission: some were killed, some ran out.
    assert!(
        killed > 0 && returned_permits + finished_denies > 0,
        "killed {killed}, finished {}",
        returned_permits + finished_denies
    );
    let log_path = ["state/log/audit.jsonl", "state/audit.jsonl"]
        .into_iter()
        .map(|p| f.path(p))
        .find(|p| p.exists());
    let mut log = log_path
        .as_ref()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    // A record torn by a kill is what an operator truncates (spec §6.7.3):
    // the admission writing it never returned.
    if !log.is_empty() && !log.ends_with('\n') {
        log.truncate(log.rfind('\n').map_or(0, |i| i + 1));
        std::fs::write(log_path.as_ref().unwrap(), &log).unwrap();
    }
    let logged_permits = log
        .lines()
        .filter(|l| l.contains("\"outcome\":\"permit\""))
        .count();
    // Every permit returned has its record.
    assert!(
        returned_permits <= logged_permits,
        "{returned_permits} permits returned, {logged_permits} recorded"
    );
    // One more admission, to its end.
    let last = admit_in("state").output().unwrap();
    let last_permit = usize::from(last.status.code() == Some(0));
    assert!(
        logged_permits + last_permit <= 1,
        "admitted {} times: {log}",
        logged_permits + last_permit
    );
    if last_permit == 0 {
        assert!(
            stderr(&last).starts_with("replay.job-id-used"),
            "{}",
            stderr(&last)
        );
    }
    if let Some(p) = &log_path {
        let o = run(f.jobseal().args(["audit", "verify"]).arg(p));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

/// Issue 13 §1, end to end: an admission on a clock 25 h ahead raises the
/// replay store's high-water mark; back on the real clock, the next
/// admission is refused `replay.clock-went-back`, and the jump is in the
/// audit log.
#[test]
fn a_clock_that_went_back_is_refused_and_recorded() {
    if !peers::require_all(&[("faketime", "faketime")]) {
        return;
    }
    let f = Fixture::new();
    std::fs::write(
        f.path("long.toml"),
        "executable = \"run.sh\"\nvalid = \"48h\"\n",
    )
    .unwrap();
    f.sealed("long.toml", "ahead.pem");
    f.sealed("job2.toml", "now.pem");
    let admit_args = |bundle: &str| {
        [
            "admit",
            bundle,
            "--ca-dir",
            "ca",
            "--state-dir",
            "state",
            "--",
            "./run.sh",
        ]
        .map(String::from)
    };
    let o = run(Command::new("faketime")
        .current_dir(f.dir.path())
        .env_clear()
        .env("HOME", f.dir.path())
        .env("PATH", "/usr/bin:/bin")
        .args(["-f", "+25h", env!("CARGO_BIN_EXE_jobseal")])
        .args(admit_args("ahead.pem")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(f.jobseal().args(admit_args("now.pem")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("replay.clock-went-back: "),
        "{}",
        stderr(&o)
    );
    let log = ["state/log/audit.jsonl", "state/audit.jsonl"]
        .into_iter()
        .map(|p| f.path(p))
        .find(|p| p.exists())
        .expect("the audit log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("replay.clock-went-back"), "{text}");
}

/// Issue 15 §1: a private key others can read is refused as
/// grid-proxy-init refuses it, naming the fix; so is a proxy file.
#[test]
fn a_private_key_readable_by_others_is_refused_with_the_fix() {
    let f = Fixture::new();
    std::fs::set_permissions(
        f.path("userkey.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = f.sign("job.toml", "b.pem");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("readable by others (mode 0644)"), "{e}");
    assert!(e.contains("chmod 600 userkey.pem"), "{e}");
    assert!(!f.path("b.pem").exists());
    std::fs::set_permissions(
        f.path("userkey.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let o = run(f.jobseal().args([
        "proxy",
        "--out",
        "x509up",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::set_permissions(f.path("x509up"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = run(f
        .jobseal()
        .args(["sign", "job.toml", "--out", "b.pem", "--proxy", "x509up"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600 x509up"), "{}", stderr(&o));
}

/// `~/.globus/usercert.pem` and `userkey.pem` in the fixture's home.
fn install_globus(f: &Fixture) {
    std::fs::create_dir_all(f.path(".globus")).unwrap();
    std::fs::copy(f.path("usercert.pem"), f.path(".globus/usercert.pem")).unwrap();
    std::fs::copy(f.path("userkey.pem"), f.path(".globus/userkey.pem")).unwrap();
}

/// Issue 15 §1: X509_USER_CERT or X509_USER_KEY set to a file that is not
/// there is an error naming the variable, never a silent fall back to
/// `~/.globus`; either one alone takes the other from `~/.globus`.
#[test]
fn x509_user_cert_or_key_that_cannot_be_used_is_an_error() {
    let f = Fixture::new();
    install_globus(&f);
    for var in ["X509_USER_CERT", "X509_USER_KEY", "X509_USER_PROXY"] {
        let o = run(f
            .jobseal()
            .env(var, "/nonexistent")
            .args(["sign", "job.toml", "--out", "b.pem"]));
        assert_eq!(o.status.code(), Some(1), "{var}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("{var}=/nonexistent cannot be used")),
            "{e}"
        );
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(!f.path("b.pem").exists());
    }
    // The key alone, set and usable: the certificate from ~/.globus.
    let o = run(f
        .jobseal()
        .env("X509_USER_KEY", f.path("userkey.pem"))
        .args(["sign", "job.toml", "--out", "b.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Issue 15 §1: sign says on stderr which credential signed, with the
/// identity, as voms-proxy-init prints it.
#[test]
fn sign_says_which_credential_it_used() {
    let f = Fixture::new();
    install_globus(&f);
    let o = run(f.jobseal().args(["sign", "job.toml", "--out", "b.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let globus = f.path(".globus");
    let want = format!(
        "jobseal: signing as /O=jobseal/CN=Jane Doe with certificate {} with key {}",
        globus.join("usercert.pem").display(),
        globus.join("userkey.pem").display()
    );
    assert!(stderr(&o).lines().any(|l| l == want), "{}", stderr(&o));
}

/// An RSA key of `bits` in `form` (`-traditional` for PKCS#1), mode 0600.
fn rsa_key(f: &Fixture, bits: u32, traditional: bool) -> PathBuf {
    let out = f.path(&format!("rsa{bits}-{traditional}.pem"));
    let mut c = Command::new("openssl");
    c.args(["genrsa", "-out"]).arg(&out);
    if traditional {
        c.arg("-traditional");
    }
    c.arg(bits.to_string());
    assert!(run(&mut c).status.success(), "openssl genrsa {bits}");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
    out
}

/// Issue 15 §1: a 1024-bit key is refused with what is wrong and how to
/// make a usable proxy, not ring's `TooSmall`, in PKCS#1 and PKCS#8.
#[test]
fn a_1024_bit_key_is_refused_with_a_message_a_person_can_act_on() {
    if !peers::require_all(&[("openssl", "openssl")]) {
        return;
    }
    let f = Fixture::new();
    for traditional in [true, false] {
        let key = rsa_key(&f, 1024, traditional);
        let o = run(f
            .jobseal()
            .args([
                "sign",
                "job.toml",
                "--out",
                "b.pem",
                "--cert",
                "usercert.pem",
                "--key",
            ])
            .arg(&key));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(!e.contains("TooSmall"), "{e}");
        assert!(e.contains("fewer than 2048 bits"), "{e}");
        assert!(e.contains("voms-proxy-init -rfc -bits 2048"), "{e}");
    }
}

/// Issue 15 §1: a job whose VO the credential does not carry is sealed
/// with a warning naming the fix (sites that check VOs refuse it, others
/// run it); an executable without an execute bit, which every site fails
/// with 126, is refused unless `--force`.
#[test]
fn a_vo_not_carried_warns_and_a_non_executable_is_refused_unless_forced() {
    let f = Fixture::new();
    std::fs::write(
        f.path("vo.toml"),
        "executable = \"run.sh\"\nvo = \"atlas\"\n",
    )
    .unwrap();
    let o = f.sign("vo.toml", "b.pem");
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let warning = e
        .lines()
        .find(|l| l.starts_with("jobseal: warning: "))
        .unwrap_or_else(|| panic!("no warning: {e}"));
    assert!(warning.contains("vo = \"atlas\""), "{warning}");
    assert!(warning.contains("no VOMS attributes"), "{warning}");
    assert!(warning.contains("policy.vo-not-accepted"), "{warning}");
    assert!(warning.contains("voms-proxy-init -voms atlas"), "{warning}");
    std::fs::remove_file(f.path("b.pem")).unwrap();

    std::fs::set_permissions(f.path("run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = f.sign("job.toml", "b.pem");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("is not executable (mode 0644)"), "{e}");
    assert!(e.contains("chmod +x"), "{e}");
    assert!(!f.path("b.pem").exists());
    let o = run(f.jobseal().args([
        "sign",
        "job.toml",
        "--out",
        "b.pem",
        "--force",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Issue 15 §2: `jobseal proxy` makes a proxy from the end-entity
/// credential even when a proxy sits in the standard place (which it
/// then replaces, as grid-proxy-init does), unless named `--proxy`.
#[test]
fn proxy_signs_from_the_end_entity_credential_and_writes_the_standard_place() {
    let f = Fixture::new();
    install_globus(&f);
    let proxy = f.path("x509up_test");
    let o = run(f
        .jobseal()
        .env("X509_USER_PROXY", &proxy)
        .args(["proxy", "-valid", "2:00"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(proxy.is_file());
    // Again, with that proxy in the standard place: still one level.
    let o = run(f
        .jobseal()
        .env("X509_USER_PROXY", &proxy)
        .args(["proxy", "-hours", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(f
        .jobseal()
        .env("X509_USER_PROXY", &proxy)
        .args(["inspect", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["certificates"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["file"], proxy.display().to_string());
    let left = j["certificates"][0]["seconds_left"].as_u64().unwrap();
    assert!((3300..=3600).contains(&left), "{left}");
    // Named with --proxy, it signs from that proxy: two levels.
    let o = run(f
        .jobseal()
        .args(["proxy", "--out", "p2"])
        .arg("--proxy")
        .arg(&proxy));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(f.jobseal().args(["inspect", "--json", "p2"]));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["certificates"].as_array().unwrap().len(), 3, "{j}");
}

/// Issue 15 §2: voms-proxy-init's spellings: `-pwstdin`, `-valid HH:MM`,
/// `-hours`, and `--valid HH:MM`, for `sign` and `proxy`.
#[test]
fn voms_proxy_init_spellings_are_accepted() {
    let f = Fixture::new();
    let key = f.encrypt_key("secret");
    let o = run_with_stdin(
        f.jobseal()
            .args([
                "sign",
                "job.toml",
                "-out",
                "b.pem",
                "-cert",
                "usercert.pem",
                "-key",
            ])
            .arg(&key)
            .args(["-pwstdin", "-valid", "0:30"]),
        "secret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(valid 30m"), "{}", stderr(&o));
    let o = run_with_stdin(
        f.jobseal()
            .args([
                "sign",
                "job.toml",
                "--out",
                "c.pem",
                "--cert",
                "usercert.pem",
                "--key",
            ])
            .arg(&key)
            .args(["--pwstdin", "-hours", "2"]),
        "secret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(valid 2h"), "{}", stderr(&o));
    let o = run_with_stdin(
        f.jobseal()
            .args(["proxy", "--out", "p", "--cert", "usercert.pem", "--key"])
            .arg(&key)
            .args(["-pwstdin", "--valid", "3:15"]),
        "secret\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(f.jobseal().args(["inspect", "p", "-timeleft"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let left: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(
        (3 * 3600 + 14 * 60..=3 * 3600 + 15 * 60).contains(&left),
        "{left}"
    );
    // After `--`, a payload's own `-valid` is its own (verify's argv).
    let args = jobseal_cli::normalize_args(
        ["jobseal", "verify", "b.pem", "--", "./run.sh", "-valid"]
            .map(std::ffi::OsString::from)
            .to_vec(),
    );
    assert_eq!(args.last().unwrap(), "-valid");
}

/// Issue 15 §2: `inspect -exists [-valid H:M | -hours H]` answers with
/// voms-proxy-info's exit codes, silently; time left prints as HH:MM:SS;
/// an expired credential says so and exits 1.
#[test]
fn inspect_exists_timeleft_and_expiry_as_voms_proxy_info() {
    let f = Fixture::new();
    let o = run(f.jobseal().args([
        "proxy",
        "--out",
        "p",
        "--valid",
        "1:30",
        "--cert",
        "usercert.pem",
        "--key",
        "userkey.pem",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let exists = |extra: &[&str]| {
        let o = run(f.jobseal().args(["inspect", "p", "-exists"]).args(extra));
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "{extra:?}: {}",
            stderr(&o)
        );
        o.status.code()
    };
    assert_eq!(exists(&[]), Some(0));
    assert_eq!(exists(&["-valid", "1:00"]), Some(0));
    assert_eq!(exists(&["-valid", "2:00"]), Some(1));
    assert_eq!(exists(&["-hours", "2"]), Some(1));
    let o = run(f.jobseal().args(["inspect", "absent.pem", "-exists"]));
    assert_eq!(o.status.code(), Some(1));
    let o = run(f.jobseal().args(["inspect", "p"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("timeleft  : "))
        .unwrap();
    assert!(
        line.starts_with("timeleft  : 01:29:") || line.starts_with("timeleft  : 01:30:00"),
        "{line}"
    );
    // Expired.
    let o = run(f.jobseal().args(["inspect", "expiredcert.pem"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("timeleft  : 00:00:00 (expired)"));
    assert!(stderr(&o).contains("has expired"), "{}", stderr(&o));
    let o = run(f.jobseal().args(["inspect", "-exists", "expiredcert.pem"]));
    assert_eq!(o.status.code(), Some(1));
    let o = run(f
        .jobseal()
        .args(["inspect", "-timeleft", "expiredcert.pem"]));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0");
}

/// Every string (and number) the JSON holds, but times left (shown as
/// HH:MM:SS) and booleans.
fn json_leaves(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) if key != "seconds_left" => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| json_leaves(i, key, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                // Environment names are shown with their values.
                if key == "environment" {
                    out.push(k.clone());
                }
                json_leaves(v, k, out);
            }
        }
        _ => {}
    }
}

/// Issue 15 §2: inspect's text shows everything its JSON shows: the
/// environment, every input's name, the sites, every certificate.
#[test]
fn inspect_text_shows_everything_the_json_shows() {
    let f = Fixture::new();
    std::fs::write(f.path("in.dat"), "x").unwrap();
    std::fs::write(
        f.path("full.toml"),
        "executable = \"run.sh\"\narguments = [\"-n\", \"5\"]\ninputs = [\"in.dat\"]\n\
         sites = [\"NIKHEF-ELPROD\", \"CERN-PROD\"]\n[environment]\nATHENA_CORES = \"8\"\n",
    )
    .unwrap();
    f.sealed("full.toml", "b.pem");
    let o = run(f.jobseal().args(["inspect", "--json", "b.pem"]));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(f.jobseal().args(["inspect", "b.pem"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut leaves = Vec::new();
    json_leaves(&j, "", &mut leaves);
    for leaf in ["ATHENA_CORES", "in.dat", "CERN-PROD", "NIKHEF-ELPROD"] {
        assert!(leaves.iter().any(|l| l == leaf), "{leaf} not in the JSON");
    }
    for leaf in &leaves {
        assert!(
            text.contains(leaf.as_str()),
            "{leaf:?} missing from:\n{text}"
        );
    }
}

/// Issue 15 §2: `jobseal help --help` is help, not an error.
#[test]
fn help_help_is_not_an_error() {
    let f = Fixture::new();
    let o = run(f.jobseal().args(["help", "--help"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: jobseal"));
}

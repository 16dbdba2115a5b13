//! gLExec's contract, replayed with the call patterns of real pilots (DIRAC,
//! PanDA) against a really sealed bundle, in logging-only mode. Account
//! mapping through the launch service, with real accounts, is in
//! `service.rs` and `service_mapping.rs`; the setuid launcher is retired.
//!
//! When the tests run as root (CI), the launcher is run as `nobody` through
//! `setpriv`: in logging-only mode it must not be privileged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::{JobSpec, SealParams, seal, throwaway};

/// `nobody` on Debian.
const NOBODY: u32 = 65534;

struct Fixture {
    dir: tempfile::TempDir,
    cred: Credential,
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[7; 32],
            "CN=Exec Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let user = throwaway::user(
            &ca,
            &[8; 32],
            "CN=Jane Doe,O=jobseal",
            2,
            now.minus(86_400),
            now.plus(30 * 86_400),
        )
        .unwrap();
        throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        let cred = Credential::from_parts(
            Source::Proxy(dir.path().join("user")),
            &KeyDer::Pkcs8(user.pkcs8.clone()),
            vec![user.cert.clone()],
        )
        .unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        std::fs::write(
            dir.path().join("exec.toml"),
            format!(
                "mode = \"logging-only\"\npolicy = \"{0}/policy.toml\"\nca_dir = \"{0}/ca\"\nstate_dir = \"{0}/state\"\nenv_whitelist = [\"ATHENA_CORES\"]\n",
                dir.path().display()
            ),
        )
        .unwrap();
        // The signed payload: says who and where it runs, exits with $1.
        let f = Self { dir, cred };
        f.script(
            "job/run.sh",
            "#!/bin/sh\necho \"ran $* as $(id -u)\"\nenv | sort > env.out\nexit \"$1\"\n",
        );
        // The launcher binary, where `nobody` can run it.
        let bin = f.path("jobseal-exec");
        std::fs::copy(env!("CARGO_BIN_EXE_jobseal-exec"), &bin).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// Seal `executable` (relative to job/) with `args`; the bundle's path.
    fn seal(&self, name: &str, executable: &str, args: &[&str]) -> PathBuf {
        let now = UnixTime::now();
        let toml = self.path(&format!("job/{name}.toml"));
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &toml,
            format!(
                "executable = {executable:?}\narguments = [{}]\nvalid = \"1h\"\n",
                quoted.join(", ")
            ),
        )
        .unwrap();
        let issuer = credential::check_issuer(&self.cred, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let sealed = seal(&self.cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = self.path(&format!("{name}.bundle.pem"));
        std::fs::write(&out, sealed.bundle.to_pem()).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        out
    }

    /// The launcher, as the pilot would call it, with `bundle` as
    /// GLEXEC_CLIENT_CERT, in the job directory.
    fn exec(&self, bundle: Option<&Path>, args: &[&str]) -> Command {
        let bin = self.path("jobseal-exec");
        let mut c = if is_root() {
            chown_tree(self.dir.path(), NOBODY);
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.args(args)
            .current_dir(self.path("job"))
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", "/usr/bin:/bin")
            .env("JOBSEAL_EXEC_CONFIG", self.path("exec.toml"));
        if let Some(b) = bundle {
            c.env("GLEXEC_CLIENT_CERT", b);
        }
        c
    }

    fn audit_lines(&self) -> usize {
        std::fs::read_to_string(self.path("state/audit.jsonl")).map_or(0, |t| t.lines().count())
    }
}

fn run(c: &mut Command) -> Output {
    let mut o = c.output().unwrap();
    // The launcher copy may still be open for writing in a child another
    // test thread forked meanwhile (until that child's exec closes it).
    for _ in 0..50 {
        if !String::from_utf8_lossy(&o.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        o = c.output().unwrap();
    }
    eprintln!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_signed_executable_runs_and_its_exit_code_is_propagated() {
    let f = Fixture::new();
    let b = f.seal("ok", "run.sh", &["0"]);
    let o = run(&mut f.exec(Some(&b), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(0));
    let expected_uid = if is_root() { NOBODY } else { rustix_uid() };
    assert_eq!(stdout(&o), format!("ran 0 as {expected_uid}\n"));
    assert_eq!(f.audit_lines(), 1);

    let b = f.seal("seven", "run.sh", &["7"]);
    assert_eq!(
        run(&mut f.exec(Some(&b), &["./run.sh", "7"])).status.code(),
        Some(7)
    );
    // The payload's own 201–204 would read as the launcher's: 204.
    let b = f.seal("own202", "run.sh", &["202"]);
    assert_eq!(
        run(&mut f.exec(Some(&b), &["./run.sh", "202"]))
            .status
            .code(),
        Some(204)
    );
}

fn rustix_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn a_replay_is_denied_and_does_not_run() {
    let f = Fixture::new();
    let b = f.seal("once", "run.sh", &["0"]);
    assert_eq!(
        run(&mut f.exec(Some(&b), &["./run.sh", "0"])).status.code(),
        Some(0)
    );
    std::fs::remove_file(f.path("job/env.out")).unwrap();
    let o = run(&mut f.exec(Some(&b), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(203));
    assert!(
        stderr(&o).starts_with("replay.job-id-used: "),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    assert!(!f.path("job/env.out").exists(), "a replayed job ran");
    assert_eq!(f.audit_lines(), 2);
}

#[test]
fn dirac_bash_wrapper_is_denied_with_the_reason() {
    let f = Fixture::new();
    let b = f.seal("dirac", "run.sh", &["0"]);
    // DIRAC: glexec /bin/bash -lc '<generated wrapper>'.
    let o = run(&mut f.exec(
        Some(&b),
        &["/bin/bash", "-lc", "touch wrapper-ran; ./run.sh 0"],
    ));
    assert_eq!(o.status.code(), Some(203));
    assert!(
        stderr(&o).starts_with("payload.executable-mismatch: "),
        "{}",
        stderr(&o)
    );
    assert!(
        !f.path("job/wrapper-ran").exists(),
        "silent fallback: the wrapper ran"
    );
    // The deny is in the audit log, and the job's one use is not spent.
    assert_eq!(f.audit_lines(), 1);
    assert_eq!(
        run(&mut f.exec(Some(&b), &["./run.sh", "0"])).status.code(),
        Some(0)
    );
}

#[test]
fn dirac_test_script_of_its_own_is_denied() {
    let f = Fixture::new();
    let b = f.seal("dirac", "run.sh", &["0"]);
    f.script("job/glexec-test.sh", "#!/bin/sh\ntouch test-ran\nid\n");
    let o = run(&mut f.exec(Some(&b), &["./glexec-test.sh"]));
    assert_eq!(o.status.code(), Some(203));
    assert!(
        stderr(&o).starts_with("payload.executable-mismatch: "),
        "{}",
        stderr(&o)
    );
    assert!(!f.path("job/test-ran").exists());
}

#[test]
fn bare_glexec_for_proxy_renewal_is_a_client_error() {
    let f = Fixture::new();
    let b = f.seal("renew", "run.sh", &["0"]);
    let o = run(&mut f.exec(Some(&b), &[]));
    assert_eq!(o.status.code(), Some(201));
    assert!(stderr(&o).starts_with("exec.usage: "));
}

#[test]
fn panda_environment_wrapping_is_denied_unless_it_launches_the_signed_executable() {
    let f = Fixture::new();
    let b = f.seal("panda", "run.sh", &["0"]);
    // PanDA wraps the environment around the payload.
    let o = run(&mut f.exec(
        Some(&b),
        &["/usr/bin/env", "ATHENA_CORES=8", "./run.sh", "0"],
    ));
    assert_eq!(o.status.code(), Some(203));
    assert!(
        stderr(&o).starts_with("payload.executable-mismatch: "),
        "{}",
        stderr(&o)
    );
    assert!(!f.path("job/env.out").exists());
    // The same environment passed in the environment, the signed executable
    // launched itself: it runs, with the whitelisted names and none of the
    // injection vectors.
    let o = run(f
        .exec(Some(&b), &["./run.sh", "0"])
        .env("ATHENA_CORES", "8")
        .env("LD_PRELOAD", "/tmp/evil.so")
        .env("BASH_ENV", "/tmp/evil")
        .env("PYTHONPATH", "/tmp")
        .env("TZ", "UTC")
        .env("PATH", "/tmp/evil:/usr/bin:/bin"));
    assert_eq!(o.status.code(), Some(0));
    let env = std::fs::read_to_string(f.path("job/env.out")).unwrap();
    assert!(env.contains("ATHENA_CORES=8\n"), "{env}");
    assert!(env.contains("TZ=UTC\n"), "{env}");
    assert!(env.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), "{env}");
    assert!(env.contains("GLEXEC_CLIENT_CERT="), "{env}");
    for bad in [
        "LD_PRELOAD",
        "BASH_ENV",
        "PYTHONPATH",
        "JOBSEAL_EXEC_CONFIG",
        "/tmp/evil",
    ] {
        assert!(!env.contains(bad), "{bad} reached the payload: {env}");
    }
}

#[test]
fn a_non_executable_signed_file_gives_126() {
    let f = Fixture::new();
    std::fs::write(f.path("job/data.sh"), "#!/bin/sh\ntouch data-ran\n").unwrap();
    std::fs::set_permissions(
        f.path("job/data.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let b = f.seal("data", "data.sh", &[]);
    let o = run(&mut f.exec(Some(&b), &["./data.sh"]));
    assert_eq!(o.status.code(), Some(126));
    assert!(!f.path("job/data-ran").exists());
    let o = run(&mut f.exec(Some(&b), &["./no-such-file"]));
    assert_eq!(o.status.code(), Some(126));
}

#[test]
fn credential_problems_are_client_errors() {
    let f = Fixture::new();
    let b = f.seal("cred", "run.sh", &["0"]);
    let o = run(&mut f.exec(None, &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(201));
    assert!(stderr(&o).contains("GLEXEC_CLIENT_CERT is not set"));
    let o = run(&mut f.exec(Some(&f.path("missing.pem")), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(201));
    // Writable by others: anyone could have swapped it.
    let mut c = f.exec(Some(&b), &["./run.sh", "0"]);
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(201));
    assert!(
        stderr(&o).contains("writable by group or others"),
        "{}",
        stderr(&o)
    );
    assert!(!f.path("job/env.out").exists());
}

#[test]
fn trust_changing_options_and_environment_are_refused_or_ignored() {
    let f = Fixture::new();
    let b = f.seal("opts", "run.sh", &["0"]);
    for opt in ["--policy", "--ca-dir", "--at", "-x"] {
        let o = run(&mut f.exec(Some(&b), &[opt, "/tmp", "./run.sh", "0"]));
        assert_eq!(o.status.code(), Some(201), "{opt}");
    }
    // X509_CERT_DIR naming an empty CA directory changes nothing.
    std::fs::create_dir(f.path("empty-ca")).unwrap();
    let o = run(f
        .exec(Some(&b), &["./run.sh", "0"])
        .env("X509_CERT_DIR", f.path("empty-ca"))
        .env("JOBSEAL_POLICY", f.path("nonexistent.toml")));
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_configuration_error_is_202_and_runs_nothing() {
    let f = Fixture::new();
    let b = f.seal("cfg", "run.sh", &["0"]);
    std::fs::write(
        f.path("exec.toml"),
        "mode = \"logging-only\"\npolicy = \"/nonexistent/policy.toml\"\n",
    )
    .unwrap();
    let o = run(&mut f.exec(Some(&b), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(202));
    assert!(stderr(&o).starts_with("policy.invalid: "), "{}", stderr(&o));
    std::fs::write(f.path("exec.toml"), "mode = \"identity-switching\"\n").unwrap();
    let o = run(&mut f.exec(Some(&b), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(202));
    assert!(!f.path("job/env.out").exists());
}

#[test]
fn the_setuid_launcher_is_retired_and_says_how_to_move_over() {
    let f = Fixture::new();
    let b = f.seal("retired", "run.sh", &["0"]);
    // Configured for identity switching: one line naming service mode.
    std::fs::write(f.path("exec.toml"), "mode = \"identity-switching\"\n").unwrap();
    let o = run(&mut f.exec(Some(&b), &["./run.sh", "0"]));
    assert_eq!(o.status.code(), Some(202));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("config.invalid: ") && e.contains("mode = \"service\""),
        "{e}"
    );
    assert!(stdout(&o).is_empty() && !f.path("job/env.out").exists());
    if !is_root() {
        eprintln!("note: the setuid refusal needs root to make a setuid binary");
        return;
    }
    let nosuid = rustix::fs::statvfs(f.path(""))
        .is_ok_and(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::NOSUID));
    let no_new_privs = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'));
    if nosuid || no_new_privs {
        eprintln!("note: setuid does not take effect here; the setuid refusal is not checked");
        return;
    }
    // Installed setuid root and called by a pilot (with a configuration
    // it could use in logging-only mode): refused before anything is read,
    // with one line naming the fix.
    std::fs::write(
        f.path("exec.toml"),
        format!(
            "mode = \"logging-only\"\npolicy = \"{0}/policy.toml\"\nca_dir = \"{0}/ca\"\nstate_dir = \"{0}/state\"\n",
            f.dir.path().display()
        ),
    )
    .unwrap();
    let mut c = f.exec(Some(&b), &["./run.sh", "0"]);
    let bin = f.path("jobseal-exec");
    std::os::unix::fs::lchown(&bin, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(202), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("config.invalid: "), "{e}");
    for fix in [
        "setuid",
        "mode = \"service\"",
        "jobseal-launchd",
        "chmod u-s",
    ] {
        assert!(e.contains(fix), "{fix} not named: {e}");
    }
    assert!(stdout(&o).is_empty() && !f.path("job/env.out").exists());
    assert_eq!(f.audit_lines(), 0);
}

#[test]
fn what_runs_is_the_sealed_copy_even_if_the_original_is_rewritten() {
    let f = Fixture::new();
    // The payload rewrites its own original file in place (same inode, as
    // anyone with write access could between admission and exec), then
    // prints the script it is running from: still the signed bytes.
    let original = f.path("job/selfmod.sh");
    let text = "#!/bin/sh\nprintf '#!/bin/sh\\necho tampered\\n' 1<> \"$1\"\ncat \"$0\"\n";
    f.script("job/selfmod.sh", text);
    let b = f.seal("selfmod", "selfmod.sh", &[original.to_str().unwrap()]);
    let o = run(&mut f.exec(Some(&b), &["./selfmod.sh", original.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), text);
    assert!(
        std::fs::read_to_string(&original)
            .unwrap()
            .contains("tampered")
    );
}

#[test]
fn the_source_proxy_is_copied_0600_and_named_in_x509_user_proxy() {
    let f = Fixture::new();
    let b = f.seal("proxy", "run.sh", &["0"]);
    let source = f.path("source-proxy.pem");
    std::fs::write(&source, "PROXY\n").unwrap();
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = f.path("target-proxy.pem");
    let o = run(f
        .exec(Some(&b), &["./run.sh", "0"])
        .env("GLEXEC_SOURCE_PROXY", &source)
        .env("GLEXEC_TARGET_PROXY", &target));
    assert_eq!(o.status.code(), Some(0));
    let meta = std::fs::symlink_metadata(&target).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "PROXY\n");
    let env = std::fs::read_to_string(f.path("job/env.out")).unwrap();
    assert!(
        env.contains(&format!("X509_USER_PROXY={}\n", target.display())),
        "{env}"
    );
}

#[test]
fn a_signal_sent_to_the_launcher_alone_is_forwarded_to_the_payload() {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let f = Fixture::new();
    // Traps TERM, says so, exits 42; without the signal it would exit 3.
    f.script(
        "job/trap.sh",
        "#!/bin/sh\ntrap 'kill $p 2>/dev/null; echo term > got-term; exit 42' TERM\n\
         sleep 60 >/dev/null 2>&1 &\np=$!\ntouch ready\nwait $p\nexit 3\n",
    );
    let b = f.seal("trap", "trap.sh", &[]);
    let mut c = f.exec(Some(&b), &["./trap.sh"]);
    // Its own process group: only a signal to its pid can reach the payload.
    c.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ready = f.path("job/ready");
    let mut launched = None;
    // Retry a "Text file busy" launch (see `run`), which never gets ready.
    'launch: for _ in 0..50 {
        let mut child = c.spawn().unwrap();
        for _ in 0..500 {
            if ready.exists() {
                launched = Some(child);
                break 'launch;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut child = launched.expect("the payload never started");
    // setpriv (as root) execs the launcher: this pid is the launcher's.
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42), "{status:?}");
    assert_eq!(
        std::fs::read_to_string(f.path("job/got-term")).unwrap(),
        "term\n"
    );
}

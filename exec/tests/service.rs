//! The launch service as a site runs it: `jobseal-launchd` started here in
//! the foreground as root, pilot and target accounts made with `useradd`
//! (removed afterwards), and `jobseal-exec` in `mode = "service"` called as
//! the pilot through `setpriv`, an ordinary program with no setuid bit.
//!
//! These tests need root: CI runs as root and fails if they cannot run; a
//! non-root developer run says that it skipped them. They make accounts,
//! so they run one at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobseal_core::time::UnixTime;
use jobseal_exec::proto::{self, Reply, Request};
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::throwaway;
use jobseal_issue::{JobSpec, SealParams, seal};

mod common;
use common::{
    Account, assert_refused, launchd, launchd_via, sh, socket_activate, stderr, stdout, useradd,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const USER: &str = "CN=Jane Doe,O=jobseal";
const USER_SLASH: &str = "/O=jobseal/CN=Jane Doe";

fn root_or_skip() -> bool {
    common::root_or_skip("launch service tests")
}

/// Accounts, a CA, a user, the pilot's job directory, the configuration
/// and the running service; all removed on drop.
struct World {
    dir: tempfile::TempDir,
    pilot: Account,
    target: Account,
    /// The service account its verifier processes run as (`service_user`).
    records: Account,
    user: Credential,
    service: Option<Child>,
    cgroup: Option<PathBuf>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl World {
    fn new(extra_config: &str) -> Self {
        let mut w = Self::unstarted(extra_config);
        w.start();
        w
    }

    /// [`World::new`], the service not yet started.
    fn unstarted(extra_config: &str) -> Self {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let tag = format!("{:04x}", std::process::id() % 0x10000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pilot = useradd(&format!("jsp{tag}"));
        let target = useradd(&format!("jst{tag}"));
        let records = useradd(&format!("jsr{tag}"));
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[31; 32],
            "CN=Service Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let anchor = throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        std::fs::write(
            anchor.with_extension("namespaces"),
            "TO Issuer SELF PERMIT Subject \"/O=jobseal/.*\"\n",
        )
        .unwrap();
        let u = throwaway::user(
            &ca,
            &[32; 32],
            USER,
            10,
            now.minus(86_400),
            now.plus(30 * 86_400),
        )
        .unwrap();
        let user = Credential::from_parts(
            Source::Proxy(dir.path().join("user")),
            &KeyDer::Pkcs8(u.pkcs8.clone()),
            vec![u.cert.clone()],
        )
        .unwrap();
        let w = Self {
            dir,
            pilot,
            target,
            records,
            user,
            service: None,
            cgroup: None,
            _lock: lock,
        };
        std::fs::write(w.path("policy.toml"), "").unwrap();
        std::fs::write(
            w.path("grid-mapfile"),
            format!("\"{USER_SLASH}\" {}\n", w.target.name),
        )
        .unwrap();
        let job = w.path("pilot/job");
        std::fs::create_dir_all(&job).unwrap();
        w.payload(
            "run.sh",
            "#!/bin/sh\necho \"uid=$(id -u) pwd=$(pwd) nofile=$(ulimit -n)\"\n\
             grep '^0::' /proc/self/cgroup\ncat input.txt\necho '--env'\nenv | sort\n\
             [ -n \"$X509_USER_PROXY\" ] && echo \"proxy-sha=$(sha256sum < \"$X509_USER_PROXY\" | cut -c1-16)\"\n\
             exit 0\n",
        );
        w.payload(
            "code.sh",
            "#!/bin/sh\n[ \"$1\" = signal ] && kill -KILL $$\nexit \"$1\"\n",
        );
        w.payload(
            "wait.sh",
            "#!/bin/sh\ntrap 'echo got-term; exit 42' TERM\necho $$ > \"$JOBSEAL_WORKDIR/pid\"\n\
             echo started\nwhile :; do sleep 0.1; done\n",
        );
        std::fs::write(job.join("input.txt"), "the signed input\n").unwrap();
        sh(Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", w.pilot.uid, w.pilot.gid))
            .arg(w.path("pilot")));
        w.configure(extra_config);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("run/launch.sock")
    }

    fn payload(&self, name: &str, text: &str) {
        let p = self.path(&format!("pilot/job/{name}"));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn configure(&self, extra: &str) {
        std::fs::write(
            self.path("exec.toml"),
            format!(
                "mode = \"service\"\nsocket = \"{0}/run/launch.sock\"\npolicy = \"{0}/policy.toml\"\n\
                 ca_dir = \"{0}/ca\"\nstate_dir = \"{0}/state\"\nwork_root = \"{0}/work\"\n\
                 gridmapfile = \"{0}/grid-mapfile\"\nusers = [\"{1}\"]\n\
                 env_whitelist = [\"ATHENA_CORES\"]\nservice_user = \"{3}\"\n{2}",
                self.dir.path().display(),
                self.pilot.name,
                extra,
                self.records.name
            ),
        )
        .unwrap();
    }

    fn start(&mut self) {
        self.start_by(&[]);
    }

    /// Started as a site starts it, nothing open but 0-2, exec'ed by
    /// `wrapper` if any.
    fn start_by(&mut self, wrapper: &[&std::ffi::OsStr]) {
        let child = launchd_via(wrapper)
            .arg("--config")
            .arg(self.path("exec.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.service = Some(child);
        let t = Instant::now();
        while UnixStream::connect(self.socket()).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the service did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn service_pid(&self) -> u32 {
        self.service.as_ref().unwrap().id()
    }

    /// Seal `executable` with `args` and extra TOML lines for the user; the
    /// bundle's path, owned by the pilot.
    fn seal(&self, name: &str, executable: &str, args: &[&str], extra: &str) -> PathBuf {
        let now = UnixTime::now();
        let toml = self.path(&format!("pilot/job/{name}.toml"));
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &toml,
            format!(
                "executable = \"{executable}\"\narguments = [{}]\nvalid = \"1h\"\n{extra}",
                quoted.join(", ")
            ),
        )
        .unwrap();
        let issuer = credential::check_issuer(&self.user, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let sealed = seal(&self.user, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = self.path(&format!("pilot/{name}.bundle.pem"));
        std::fs::write(&out, sealed.bundle.to_pem()).unwrap();
        std::os::unix::fs::lchown(&out, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        out
    }

    /// The client as the pilot runs it: with a leaky environment, in the
    /// job directory (in `cgroup` if given), `prefix` shell text first.
    fn client(&self, who: &Account, bundle: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.client_with(who, bundle, args, env, "")
    }

    fn client_with(
        &self,
        who: &Account,
        bundle: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        pre: &str,
    ) -> Command {
        let mut script = pre.to_string();
        if let Some(cg) = &self.cgroup {
            script.push_str(&format!("echo $$ > {}/cgroup.procs; ", cg.display()));
        }
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("{script}exec \"$@\""))
            .arg("bash")
            .args([
                "setpriv".to_string(),
                format!("--reuid={}", who.uid),
                format!("--regid={}", who.gid),
                "--init-groups".into(),
                "--".into(),
            ])
            .arg(env!("CARGO_BIN_EXE_jobseal-exec"))
            .args(args)
            .current_dir(self.path("pilot/job"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("JOBSEAL_EXEC_CONFIG", self.path("exec.toml"))
            .env("GLEXEC_CLIENT_CERT", bundle)
            .env("ATHENA_CORES", "8")
            .env("LD_PRELOAD", "/nonexistent/evil.so")
            .env("RUST_MIN_STACK", "99999999999999")
            .env("MALLOC_CHECK_", "3")
            .env("X509_USER_PROXY", "/pilot/own/proxy");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn launch(&self, bundle: &Path, args: &[&str]) -> Output {
        self.launch_env(bundle, args, &[])
    }

    fn launch_env(&self, bundle: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let o = self
            .client(&self.pilot, bundle, args, env)
            .output()
            .unwrap();
        eprintln!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `wait.sh` launched by the pilot, running: its client and the rest of
    /// its output after `started`.
    fn start_waiting(&self, name: &str) -> (Child, std::process::ChildStdout) {
        let bundle = self.seal(name, "wait.sh", &[], "");
        let mut child = self
            .client(&self.pilot, &bundle, &["./wait.sh"], &[])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 8];
        out.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"started\n");
        (child, out)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("state/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A child cgroup v2 for the pilot's "batch job", where the hierarchy
    /// is writable.
    fn batch_cgroup(&mut self) -> Option<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = info.lines().find_map(|l| {
            let (fields, rest) = l.split_once(" - ")?;
            (rest.starts_with("cgroup2 ")).then(|| fields.split(' ').nth(4).map(PathBuf::from))?
        })?;
        let name = format!("jobseal-test-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir(&dir).ok()?;
        self.cgroup = Some(dir);
        Some(format!("/{name}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut s) = self.service.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let names = [&self.pilot.name, &self.target.name, &self.records.name];
        for n in names {
            let _ = Command::new("pkill").args(["-KILL", "-u", n]).output();
        }
        std::thread::sleep(Duration::from_millis(100));
        for n in names {
            let _ = Command::new("userdel").args(["-f", n]).output();
        }
        if let Some(cg) = &self.cgroup {
            let _ = std::fs::remove_dir(cg);
        }
    }
}

/// The service refuses to start with a descriptor that would reach every
/// payload.
#[test]
fn the_service_refuses_to_start_with_an_inherited_descriptor() {
    if !root_or_skip() {
        return;
    }
    let o = Command::new("bash")
        .arg("-c")
        .arg("exec 7</dev/null; exec \"$@\"")
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_jobseal-launchd"))
        .args(["--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("descriptors [") && err.contains("7"), "{err}");
}

/// Socket activation (`jobseal-launchd.socket`): the service takes the
/// socket systemd bound only if it is the configured one, gives it the
/// configured mode, and launches through it; two sockets stop it too.
#[test]
fn a_socket_activated_service_takes_the_configured_socket_only() {
    if !root_or_skip() {
        return;
    }
    let Some(activate) = socket_activate() else {
        return;
    };
    let mut w = World::unstarted("");
    std::fs::create_dir(w.path("run")).unwrap();
    let config = w.path("exec.toml");
    let refused = |sockets: &[PathBuf]| {
        let mut wrapper = vec![activate.as_os_str()];
        for s in sockets {
            wrapper.extend([std::ffi::OsStr::new("-l"), s.as_os_str()]);
        }
        let child = launchd_via(&wrapper)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Started, as by systemd, at the first connection.
        let t = Instant::now();
        while UnixStream::connect(&sockets[0]).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "no socket bound");
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        stderr(&o)
    };
    let err = refused(&[w.path("run/other.sock")]);
    assert!(
        err.contains("make ListenStream= in jobseal-launchd.socket and `socket` agree"),
        "{err}"
    );
    let err = refused(&[w.socket(), w.path("run/second.sock")]);
    assert!(err.contains("must have exactly one ListenStream="), "{err}");

    w.start_by(&[activate.as_os_str(), "-l".as_ref(), w.socket().as_os_str()]);
    // Bound by systemd-socket-activate under this test's umask (0755):
    // the service gives it the configured mode (default 0666).
    let t = Instant::now();
    while std::fs::metadata(w.socket()).unwrap().permissions().mode() & 0o7777 != 0o666 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the socket's mode was not set"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let bundle = w.seal("a", "run.sh", &["x"], "inputs = [\"input.txt\"]\n");
    let o = w.launch(&bundle, &["./run.sh", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("uid={} ", w.target.uid)));
}

/// A pilot whose launches keep being refused cannot fill the site's log:
/// after `refusals_per_minute` recorded refusals its launches are refused
/// up front, unrecorded, and nothing runs.
#[test]
fn a_pilot_refused_too_often_is_throttled_without_filling_the_log() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("refusals_per_minute = 3\n");
    let bundle = w.seal("once", "code.sh", &["0"], "");
    let o = w.launch(&bundle, &["./code.sh", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for _ in 0..3 {
        let o = w.launch(&bundle, &["./code.sh", "0"]);
        assert_refused(&o, 203, "replay.job-id-used");
    }
    assert_eq!(w.audit().len(), 4, "the permit and three recorded refusals");
    for _ in 0..5 {
        let o = w.launch(&bundle, &["./code.sh", "0"]);
        assert_refused(&o, 202, "exec.caller-throttled");
    }
    // A fresh job of the same pilot is refused too, until the minute passes.
    let fresh = w.seal("fresh", "code.sh", &["0"], "");
    let o = w.launch(&fresh, &["./code.sh", "0"]);
    assert_refused(&o, 202, "exec.caller-throttled");
    assert_eq!(w.audit().len(), 4, "throttled launches are not recorded");
}

/// Privilege separation (§14.14.7): the bundle is verified and the records
/// written by a process of the service account's, with no other group and
/// no capability, alive while its launch is; the records are that
/// account's alone. Without the account the service does not start.
#[test]
fn verification_runs_as_the_service_account_which_alone_owns_the_records() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let (mut child, _out) = w.start_waiting("p");
    let o = Command::new("pgrep")
        .args(["-u", &w.records.uid.to_string()])
        .output()
        .unwrap();
    let pids: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        pids.len(),
        1,
        "one verifier process for the one launch: {pids:?}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let uid = w.records.uid.to_string();
    let gid = w.records.gid.to_string();
    assert_eq!(
        field("Uid:"),
        [uid.clone(), uid.clone(), uid.clone(), uid],
        "{status}"
    );
    assert_eq!(
        field("Gid:"),
        [gid.clone(), gid.clone(), gid.clone(), gid],
        "{status}"
    );
    assert!(field("Groups:").is_empty(), "{status}");
    assert_eq!(field("CapEff:"), ["0000000000000000"], "{status}");
    // It cannot start a process (none to outlive its launch).
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", pids[0])).unwrap();
    let nproc = limits
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap()
        .split_whitespace()
        .skip(2)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(nproc, ["0", "0"], "{limits}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[0])).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--jobseal-verify"),
        "{cmdline:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    for name in ["state", "state/audit.jsonl", "state/replay.sqlite"] {
        let meta = std::fs::metadata(w.path(name)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (w.records.uid, w.records.gid),
            "{name}"
        );
        assert_eq!(meta.mode() & 0o027, 0, "{name}: mode {:o}", meta.mode());
    }
    // No service account, no service.
    let config = std::fs::read_to_string(w.path("exec.toml")).unwrap();
    let ours = format!("service_user = \"{}\"", w.records.name);
    assert!(config.contains(&ours));
    std::fs::write(
        w.path("exec.toml"),
        config.replace(&ours, "service_user = \"jobseal-no-such-account\""),
    )
    .unwrap();
    let o = launchd()
        .arg("--config")
        .arg(w.path("exec.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("service_user jobseal-no-such-account: no such account; create it"),
        "{}",
        stderr(&o)
    );
}

fn last_record(w: &World) -> serde_json::Value {
    w.audit().pop().expect("an audit record")
}

#[test]
fn the_payload_runs_as_the_mapped_account_in_the_pilot_s_batch_cgroup() {
    if !root_or_skip() {
        return;
    }
    let mut w = World::new("[limits]\nnofile = 1234\n");
    let cgroup = w.batch_cgroup();
    let bundle = w.seal("a", "run.sh", &["x"], "inputs = [\"input.txt\"]\n");
    let o = w.launch(&bundle, &["./run.sh", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let workdir = w.path("work").canonicalize().unwrap();
    assert!(
        out.starts_with(&format!("uid={} pwd={}/", w.target.uid, workdir.display())),
        "{out}"
    );
    // The site's limit, not the pilot's or the service's.
    assert!(out.contains("nofile=1234"), "{out}");
    assert!(out.contains("the signed input"), "{out}");
    // Nothing of the pilot's environment but the whitelist.
    assert!(out.contains("ATHENA_CORES=8"), "{out}");
    for leaked in [
        "LD_PRELOAD",
        "RUST_MIN_STACK",
        "MALLOC_CHECK_",
        "X509_USER_PROXY",
    ] {
        assert!(!out.contains(leaked), "{leaked} reached the payload: {out}");
    }
    if let Some(cg) = &cgroup {
        assert!(out.contains(&format!("0::{cg}\n")), "not in {cg}: {out}");
    } else {
        eprintln!("note: no writable cgroup v2 hierarchy: the cgroup placement is not checked");
    }
    let r = last_record(&w);
    assert_eq!(r["outcome"], "permit");
    let launch = &r["launch"];
    assert_eq!(launch["mode"], "service");
    assert_eq!(launch["source_uid"], w.pilot.uid);
    assert!(launch["source_pid"].as_u64().unwrap() > 1);
    assert_eq!(launch["target_uid"], w.target.uid);
    assert_eq!(launch["account"], w.target.name.as_str());
    assert_eq!(launch["mapped_by"], "grid-mapfile");
    if let Some(cg) = &cgroup {
        assert!(
            launch["batch_job"].as_str().unwrap().ends_with(cg.as_str()),
            "{launch}"
        );
    }
}

#[test]
fn a_replay_a_tampered_call_and_an_unlisted_caller_run_nothing() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let bundle = w.seal("b", "run.sh", &["1"], "");
    // Other arguments: denied, the use is kept.
    let o = w.launch(&bundle, &["./run.sh", "2"]);
    assert_refused(&o, 203, "payload.arguments-mismatch");
    // A caller not in `users` (the target account itself, with its own
    // copy of the bundle: the client takes only the caller's own file).
    let o = w
        .client(&w.target, &bundle, &["./run.sh", "1"], &[])
        .output()
        .unwrap();
    assert_refused(&o, 201, "exec.credential");
    let theirs = w.path("theirs.bundle.pem");
    std::fs::copy(&bundle, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(w.target.uid), Some(w.target.gid)).unwrap();
    let o = w
        .client(&w.target, &theirs, &["./run.sh", "1"], &[])
        .output()
        .unwrap();
    assert_refused(&o, 203, "exec.caller-not-allowed");
    // The real call runs once, and once only.
    let o = w.launch(&bundle, &["./run.sh", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = w.launch(&bundle, &["./run.sh", "1"]);
    assert_refused(&o, 203, "replay.job-id-used");
    let records = w.audit();
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("deny", "payload.arguments-mismatch"),
            ("permit", ""),
            ("deny", "replay.job-id-used")
        ],
        "{records:?}"
    );
    // A refusal before mapping names who asked and no target.
    assert_eq!(records[0]["launch"]["mode"], "service");
    assert_eq!(records[0]["launch"]["source_uid"], w.pilot.uid);
    assert!(records[0]["launch"].get("target_uid").is_none());
}

#[test]
fn a_forged_source_proxy_is_refused_before_the_use_is_spent() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let now = UnixTime::now();
    let proxy = |n: u64| {
        jobseal_issue::plain::issue_plain_proxy(&w.user, now.minus(60), now.plus(3600 * n), None)
            .unwrap()
    };
    let (a, b) = (proxy(1), proxy(2));
    // Proxy A's certificate with proxy B's key: the user's chain, another key.
    let key_of = |pem: &str| {
        let start = pem.find("-----BEGIN RSA PRIVATE KEY-----").unwrap();
        let end = pem.find("-----END RSA PRIVATE KEY-----").unwrap() + 29;
        pem[start..end].to_string()
    };
    let forged = a.pem.replace(&key_of(&a.pem), &key_of(&b.pem));
    let write = |name: &str, text: &str| {
        let p = w.path(&format!("pilot/{name}"));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::lchown(&p, Some(w.pilot.uid), Some(w.pilot.gid)).unwrap();
        p
    };
    let forged_path = write("forged.pem", &forged);
    let genuine_path = write("genuine.pem", &a.pem);
    let bundle = w.seal("c", "run.sh", &[], "");
    let o = w.launch_env(
        &bundle,
        &["./run.sh"],
        &[("GLEXEC_SOURCE_PROXY", forged_path.to_str().unwrap())],
    );
    assert_refused(&o, 201, "exec.proxy");
    assert!(
        stderr(&o).contains("not the key of the proxy"),
        "{}",
        stderr(&o)
    );
    let r = last_record(&w);
    assert_eq!(r["reason"], "exec.proxy");
    assert_eq!(r["launch"]["target_uid"], w.target.uid);
    // The job was not used up: with the genuine proxy it runs, and the
    // payload's X509_USER_PROXY is the service's copy of it.
    let o = w.launch_env(
        &bundle,
        &["./run.sh"],
        &[("GLEXEC_SOURCE_PROXY", genuine_path.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let digest = ring::digest::digest(&ring::digest::SHA256, a.pem.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(out.contains(&format!("proxy-sha={hex}")), "{out}");
    let workdir = w.path("work").canonicalize().unwrap();
    assert!(
        out.contains(&format!("X509_USER_PROXY={}/", workdir.display()))
            && out.contains("/x509up\n"),
        "{out}"
    );
}

#[test]
fn exit_codes_are_glexec_s_and_signals_are_forwarded() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    for (arg, want) in [
        ("0", 0),
        ("1", 1),
        ("202", 204),
        ("255", 255),
        ("signal", 137),
    ] {
        let bundle = w.seal(&format!("x{arg}"), "code.sh", &[arg], "");
        let o = w.launch(&bundle, &["./code.sh", arg]);
        assert_eq!(o.status.code(), Some(want), "exit {arg}: {}", stderr(&o));
    }
    let (mut child, mut out) = w.start_waiting("t");
    // The client is the pilot's own process: the pilot signals it.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(42), "{rest}");
    assert_eq!(rest, "got-term\n");
}

#[test]
fn a_client_that_dies_takes_its_payload_with_it_and_that_is_recorded() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let (mut child, _out) = w.start_waiting("k");
    let workdir = std::fs::read_dir(w.path("work"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pid: i32 = std::fs::read_to_string(workdir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the payload outlived its client"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    loop {
        let r = last_record(&w);
        if r["reason"] == "exec.client-gone" {
            assert_eq!(r["launch"]["target_uid"], w.target.uid);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "not recorded: {r}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_pilot_cannot_limit_the_service_and_an_unreachable_work_root_spends_nothing() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    // prlimit on the service, as the pilot: refused by the kernel.
    let o = Command::new("setpriv")
        .args([
            &format!("--reuid={}", w.pilot.uid),
            &format!("--regid={}", w.pilot.gid),
            "--clear-groups",
            "prlimit",
            "--cpu=1",
            "--nofile=4",
            "--pid",
            &w.service_pid().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the pilot limited the service");
    // A client under tiny limits still launches (its limits are its own).
    let bundle = w.seal("l", "run.sh", &[], "");
    std::fs::create_dir(w.path("work")).unwrap();
    std::fs::set_permissions(w.path("work"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = w.launch(&bundle, &["./run.sh"]);
    assert_refused(&o, 202, "exec.workdir");
    assert!(stderr(&o).contains("cannot enter it"), "{}", stderr(&o));
    std::fs::set_permissions(w.path("work"), std::fs::Permissions::from_mode(0o711)).unwrap();
    // The same job, kept: from a client under tiny limits of the pilot's
    // choosing, which bind the client alone.
    let o = w
        .client_with(
            &w.pilot,
            &bundle,
            &["./run.sh"],
            &[],
            "ulimit -n 16; ulimit -t 5; ",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("nofile=16"), "{}", stdout(&o));
}

/// A sealed memfd copy of `path`, as the client makes it.
fn sealed_copy(path: &Path) -> std::os::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
    let mut f = std::fs::File::from(fd.try_clone().unwrap());
    f.write_all(&std::fs::read(path).unwrap()).unwrap();
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
    rustix::fs::fcntl_add_seals(&fd, jobseal_exec::payload::FINAL_SEALS).unwrap();
    fd
}

/// What a hand-written client sends.
fn raw_request(bundle: &[u8]) -> Request {
    Request {
        argv0: b"./run.sh".to_vec(),
        bundle: bundle.to_vec(),
        ..Request::default()
    }
}

fn reply(stream: &mut UnixStream) -> Reply {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Reply::decode(&proto::receive(stream, proto::MAX_MESSAGE_BYTES).unwrap()).unwrap()
}

/// Connect as the pilot: a thread whose ids are the pilot's (the peer
/// credentials are taken at connect).
fn connect_as(who: &Account, socket: &Path) -> UnixStream {
    let (uid, gid) = (who.uid, who.gid);
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        rustix::thread::set_thread_res_gid(
            rustix::process::Gid::from_raw(gid),
            rustix::process::Gid::from_raw(gid),
            rustix::process::Gid::from_raw(gid),
        )
        .unwrap();
        rustix::thread::set_thread_res_uid(
            rustix::process::Uid::from_raw(uid),
            rustix::process::Uid::from_raw(uid),
            rustix::process::Uid::from_raw(uid),
        )
        .unwrap();
        UnixStream::connect(socket).unwrap()
    })
    .join()
    .unwrap()
}

#[test]
fn protocol_abuse_is_refused_while_a_good_pilot_launches() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let bundle = w.seal("p", "run.sh", &[], "");
    let bytes = std::fs::read(&bundle).unwrap();
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let script = std::fs::File::open(w.path("pilot/job/run.sh")).unwrap();
    // An unsealed executable: a plain file descriptor.
    let mut s = connect_as(&w.pilot, &w.socket());
    let fds = [
        devnull.as_fd(),
        devnull.as_fd(),
        devnull.as_fd(),
        script.as_fd(),
    ];
    proto::send_request(&mut s, &raw_request(&bytes), &fds).unwrap();
    match reply(&mut s) {
        Reply::Refused { exit, reason, .. } => {
            assert_eq!((exit, reason.as_str()), (201, "exec.payload-unsealed"));
        }
        r => panic!("{r:?}"),
    }
    // A NUL byte in argv0 (it would fail the exec after the use is spent):
    // refused before anything is looked at.
    let mut s = connect_as(&w.pilot, &w.socket());
    let memfd = sealed_copy(&w.path("pilot/job/run.sh"));
    let fds = [
        devnull.as_fd(),
        devnull.as_fd(),
        devnull.as_fd(),
        memfd.as_fd(),
    ];
    let mut nul = raw_request(&bytes);
    nul.argv0 = b"./run.sh\0evil".to_vec();
    proto::send_request(&mut s, &nul, &fds).unwrap();
    match reply(&mut s) {
        Reply::Refused {
            exit,
            reason,
            message,
        } => {
            assert_eq!((exit, reason.as_str()), (201, "exec.request"));
            assert!(message.contains("NUL"), "{message}");
        }
        r => panic!("{r:?}"),
    }
    // Garbage, an oversized frame, too few descriptors.
    for junk in [
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        [0xff, 0xff, 0xff, 0xff, 0].to_vec(),
    ] {
        let mut s = connect_as(&w.pilot, &w.socket());
        s.write_all(&junk).unwrap();
        match reply(&mut s) {
            Reply::Refused { exit, reason, .. } => {
                assert_eq!((exit, reason.as_str()), (201, "exec.request"));
            }
            r => panic!("{r:?}"),
        }
    }
    // 1,000 descriptors, beyond the bound (the kernel passes at most 253
    // in one message, so 4 messages of 250): refused, and none of them
    // kept by the service.
    let fds_before = std::fs::read_dir(format!("/proc/{}/fd", w.service_pid()))
        .unwrap()
        .count();
    let many: Vec<_> = (0..250).map(|_| devnull.as_fd()).collect();
    let mut s = connect_as(&w.pilot, &w.socket());
    // The first byte of a frame, with the descriptors: the service refuses
    // at once; the later messages may find it closed (EPIPE: ignored).
    send_with_descriptors(&s, &[0], &many);
    for _ in 0..3 {
        let _ = try_send_with_descriptors(&s, &[0], &many);
    }
    match reply(&mut s) {
        Reply::Refused {
            exit,
            reason,
            message,
        } => {
            assert_eq!((exit, reason.as_str()), (201, "exec.request"));
            assert!(message.contains("descriptors"), "{message}");
        }
        r => panic!("{r:?}"),
    }
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    let fds_after = std::fs::read_dir(format!("/proc/{}/fd", w.service_pid()))
        .unwrap()
        .count();
    assert!(
        fds_after <= fds_before,
        "{fds_before} -> {fds_after} descriptors"
    );
    // 500 connections of another local account held open, and one
    // half-sent request of the pilot's, while a good pilot launches.
    let other = useradd(&format!("jso{:04x}", std::process::id() % 0x10000));
    let idle: Vec<UnixStream> = (0..500).map(|_| connect_as(&other, &w.socket())).collect();
    let mut half = connect_as(&w.pilot, &w.socket());
    half.write_all(&[0, 0, 1]).unwrap();
    let t = Instant::now();
    let o = w.launch(&bundle, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the good launch waited"
    );
    // The half-sent request times out.
    match reply(&mut half) {
        Reply::Refused {
            exit,
            reason,
            message,
        } => {
            assert_eq!((exit, reason.as_str()), (201, "exec.request"));
            assert!(message.contains("did not arrive"), "{message}");
        }
        r => panic!("{r:?}"),
    }
    // Each of the 500 was refused, none left waiting.
    for mut s in idle {
        match reply(&mut s) {
            Reply::Refused { exit, reason, .. } => {
                assert_eq!((exit, reason.as_str()), (203, "exec.caller-not-allowed"));
            }
            r => panic!("{r:?}"),
        }
    }
    let _ = Command::new("userdel").args(["-f", &other.name]).output();
}

/// `bytes` with `fds` in one message, however many (no bound of ours).
fn send_with_descriptors(s: &UnixStream, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    try_send_with_descriptors(s, bytes, fds).unwrap();
}

fn try_send_with_descriptors(
    s: &UnixStream,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> rustix::io::Result<usize> {
    use std::mem::MaybeUninit;
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(fds)));
    rustix::net::sendmsg(
        s.as_fd(),
        &[std::io::IoSlice::new(bytes)],
        &mut control,
        rustix::net::SendFlags::NOSIGNAL,
    )
}

#[test]
fn sixty_four_pilots_at_once_each_job_runs_once_and_every_launch_is_recorded() {
    if !root_or_skip() {
        return;
    }
    // 63 recorded refusals of one pilot account within the minute: above
    // the default budget of §14.14.6, which is not what this measures.
    let w = World::new("refusals_per_minute = 1000\n");
    let distinct: Vec<PathBuf> = (0..64)
        .map(|i| w.seal(&format!("d{i}"), "code.sh", &["0"], ""))
        .collect();
    let same = w.seal("same", "code.sh", &["0"], "");
    let spawn_all = |bundles: &[&PathBuf]| -> Vec<Output> {
        let children: Vec<Child> = bundles
            .iter()
            .map(|b| {
                w.client(&w.pilot, b, &["./code.sh", "0"], &[])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    };
    let outs = spawn_all(&distinct.iter().collect::<Vec<_>>());
    for o in &outs {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    }
    let outs = spawn_all(&vec![&same; 64]);
    let ran = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    assert_eq!(ran, 1, "the same job ran {ran} times");
    for o in outs.iter().filter(|o| o.status.code() != Some(0)) {
        assert_refused(o, 203, "replay.job-id-used");
    }
    let records = w.audit();
    assert_eq!(records.len(), 128, "every launch has its record");
    let permits = records.iter().filter(|r| r["outcome"] == "permit").count();
    assert_eq!(permits, 65);
    let report = jobseal_admit::audit::verify_file(&[w.path("state/audit.jsonl")], None);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 128);
}

/// DIRAC's and PanDA's call patterns (`contract.rs`, logging-only) give
/// the same results through the service: a wrapper around the signed
/// executable is denied and spends nothing; the signed executable called
/// itself runs with the whitelisted environment only.
#[test]
fn dirac_and_panda_call_patterns_give_the_same_results_through_the_service() {
    if !root_or_skip() {
        return;
    }
    let w = World::new("");
    let bundle = w.seal("dirac", "code.sh", &["0"], "");
    // DIRAC: glexec /bin/bash -lc '<generated wrapper>'.
    let o = w.launch(
        &bundle,
        &[
            "/bin/bash",
            "-lc",
            "touch /tmp/jobseal-wrapper-ran; ./code.sh 0",
        ],
    );
    assert_refused(&o, 203, "payload.executable-mismatch");
    assert!(!Path::new("/tmp/jobseal-wrapper-ran").exists());
    // PanDA wraps the environment around the payload.
    let o = w.launch(
        &bundle,
        &["/usr/bin/env", "ATHENA_CORES=8", "./code.sh", "0"],
    );
    assert_refused(&o, 203, "payload.executable-mismatch");
    // Bare glexec (proxy renewal): the client's usage error.
    let o = w.launch(&bundle, &[]);
    assert_refused(&o, 201, "exec.usage");
    // Both denies recorded; the use is still there.
    let reasons: Vec<String> = w
        .audit()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        reasons,
        ["payload.executable-mismatch", "payload.executable-mismatch"]
    );
    let env_bundle = w.seal("panda", "run.sh", &[], "");
    let o = w.launch_env(
        &env_bundle,
        &["./run.sh"],
        &[
            ("TZ", "UTC"),
            ("BASH_ENV", "/tmp/evil"),
            ("PYTHONPATH", "/tmp"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("ATHENA_CORES=8\n") && out.contains("TZ=UTC\n"),
        "{out}"
    );
    for bad in [
        "BASH_ENV",
        "PYTHONPATH",
        "LD_PRELOAD",
        "JOBSEAL_EXEC_CONFIG",
    ] {
        assert!(!out.contains(bad), "{bad} reached the payload: {out}");
    }
    let o = w.launch(&bundle, &["./code.sh", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

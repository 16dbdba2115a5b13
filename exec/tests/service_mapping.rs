//! Account mapping through the launch service, as a site runs it: the
//! coverage the setuid identity-switching launcher had (its
//! `tests/privileged.rs`), ported to `jobseal-launchd` and its unprivileged
//! client. The service is started here in the foreground as root with
//! `--config`; the pilot, the target, a two-account pool, a group of the
//! target's and a system group are made with `useradd`/`groupadd` (removed
//! afterwards); mapping goes through a grid-mapfile, static `[[map]]`
//! entries and a gridmapdir; the client is called as the pilot through
//! `setpriv`, with a leaky environment.
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

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobseal_core::time::UnixTime;
use jobseal_core::{name, tlv};
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::throwaway;
use jobseal_issue::{JobSpec, SealParams, seal};
use jobseal_testkit::ac;

mod common;
use common::{Account, assert_refused, groupadd, last_line, launchd, sh, stderr, stdout, useradd};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const USERS: [&str; 3] = [
    "CN=Jane Doe,O=jobseal",
    "CN=John Roe,O=jobseal",
    "CN=Max Moe,O=jobseal",
];

fn root_or_skip() -> bool {
    common::root_or_skip("launch service mapping tests")
}

fn slash_dn(rfc: &str) -> String {
    let mut parts: Vec<&str> = rfc.split(',').collect();
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// Accounts, groups, a CA, three users, the gridmapdir, the pilot's job
/// directory, the configuration and the running service; all removed on
/// drop.
struct World {
    dir: tempfile::TempDir,
    tag: String,
    pilot: Account,
    target: Account,
    /// The service account its verifier processes run as (`service_user`).
    records: Account,
    pool: Vec<Account>,
    /// A group of the target's (gid ≥ `min_gid`): the payload has it.
    extra_group: (String, u32),
    /// A system group of the target's (gid < `min_gid`): never given.
    system_group: (String, u32),
    users: Vec<Credential>,
    /// The users' CA (it also certifies the test VOMS AA).
    ca: throwaway::Party,
    service: Option<Child>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl World {
    fn new() -> Self {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let tag = format!("{:04x}", std::process::id() % 0x10000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pilot = useradd(&format!("jmp{tag}"));
        let target = useradd(&format!("jmt{tag}"));
        let records = useradd(&format!("jmr{tag}"));
        let pool = vec![
            useradd(&format!("jmq{tag}01")),
            useradd(&format!("jmq{tag}02")),
        ];
        let extra = format!("jmg{tag}");
        let extra_gid = groupadd(&extra, false);
        let system = format!("jms{tag}");
        let system_gid = groupadd(&system, true);
        assert!(system_gid < 1000, "a system group has gid {system_gid}");
        for g in [&extra, &system] {
            sh(Command::new("usermod").args(["-aG", g, &target.name]));
        }
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[41; 32],
            "CN=Mapping Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let anchor = throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        // The service maps only names a CA's namespace policy covers.
        std::fs::write(
            anchor.with_extension("namespaces"),
            "TO Issuer SELF PERMIT Subject \"/O=jobseal/.*\"\n",
        )
        .unwrap();
        let users = USERS
            .iter()
            .enumerate()
            .map(|(i, dn)| {
                let u = throwaway::user(
                    &ca,
                    &[50 + u8::try_from(i).unwrap(); 32],
                    dn,
                    20 + u64::try_from(i).unwrap(),
                    now.minus(86_400),
                    now.plus(30 * 86_400),
                )
                .unwrap();
                Credential::from_parts(
                    Source::Proxy(dir.path().join("user")),
                    &KeyDer::Pkcs8(u.pkcs8.clone()),
                    vec![u.cert.clone()],
                )
                .unwrap()
            })
            .collect();
        let mut w = Self {
            dir,
            tag,
            pilot,
            target,
            records,
            pool,
            extra_group: (extra, extra_gid),
            system_group: (system, system_gid),
            users,
            ca,
            service: None,
            _lock: lock,
        };
        std::fs::write(w.path("policy.toml"), "").unwrap();
        // The gridmapdir: one empty file per pool account.
        std::fs::create_dir(w.path("gridmapdir")).unwrap();
        for a in &w.pool {
            std::fs::write(w.path("gridmapdir").join(&a.name), b"").unwrap();
        }
        w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
        let job = w.path("pilot/job");
        std::fs::create_dir_all(&job).unwrap();
        w.payload(
            "run.sh",
            "#!/bin/sh\necho \"uid=$(id -u) gid=$(id -g) groups=$(id -G) pwd=$(pwd)\"\n\
             cat input.txt 2>/dev/null\necho '--env'\nenv | sort\n",
        );
        std::fs::write(job.join("input.txt"), "the signed input\n").unwrap();
        w.give_to_pilot(&w.path("pilot"));
        w.reconfigure("");
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("run/launch.sock")
    }

    fn give_to_pilot(&self, p: &Path) {
        std::os::unix::fs::lchown(p, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(p).unwrap() {
                self.give_to_pilot(&e.unwrap().path());
            }
        }
    }

    /// A payload in the pilot's job directory, the pilot's, mode 0755.
    fn payload(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(&format!("pilot/job/{name}"));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::lchown(&p, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        p
    }

    fn gridmap(&self, lines: &str) {
        std::fs::write(self.path("grid-mapfile"), lines).unwrap();
    }

    /// The service's configuration (service mode for the pilot, plus
    /// `extra` lines), and the service restarted on it: it reads its
    /// configuration once, at start.
    fn reconfigure(&mut self, extra: &str) {
        self.stop();
        std::fs::write(
            self.path("exec.toml"),
            format!(
                "mode = \"service\"\nsocket = \"{0}/run/launch.sock\"\npolicy = \"{0}/policy.toml\"\n\
                 ca_dir = \"{0}/ca\"\nstate_dir = \"{0}/state\"\nwork_root = \"{0}/work\"\n\
                 gridmapdir = \"{0}/gridmapdir\"\ngridmapfile = \"{0}/grid-mapfile\"\n\
                 users = [\"{1}\"]\nenv_whitelist = [\"ATHENA_CORES\"]\nservice_user = \"{3}\"\n{2}",
                self.dir.path().display(),
                self.pilot.name,
                extra,
                self.records.name
            ),
        )
        .unwrap();
        let child = launchd()
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

    fn stop(&mut self) {
        if let Some(mut s) = self.service.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    /// Seal `run.sh` for user `user` (an index into [`USERS`]) with the job
    /// TOML `body` after the executable line; the bundle, the pilot's.
    fn seal_body(&self, name: &str, user: usize, body: &str) -> PathBuf {
        let now = UnixTime::now();
        let toml = self.path(&format!("pilot/job/{name}.toml"));
        std::fs::write(
            &toml,
            format!("executable = \"run.sh\"\nvalid = \"1h\"\n{body}"),
        )
        .unwrap();
        let cred = &self.users[user];
        let issuer = credential::check_issuer(cred, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let sealed = seal(cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = self.path(&format!("pilot/{name}.bundle.pem"));
        std::fs::write(&out, sealed.bundle.to_pem()).unwrap();
        std::os::unix::fs::lchown(&out, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        out
    }

    /// Seal `run.sh` with `args`, the input `input.txt` and `extra` lines.
    fn seal(&self, name: &str, user: usize, args: &[&str], extra: &str) -> PathBuf {
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        self.seal_body(
            name,
            user,
            &format!(
                "arguments = [{}]\ninputs = [\"input.txt\"]\n{extra}",
                quoted.join(", ")
            ),
        )
    }

    /// The client as a pilot calls it: as `who`, in the job directory, with
    /// the pilot's leaky environment, `pre` shell text first.
    fn client(
        &self,
        who: &Account,
        bundle: &Path,
        args: &[&str],
        env: &[(&str, &OsStr)],
        pre: &str,
    ) -> Command {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("{pre}exec \"$@\""))
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
            .env("HOME", self.path("pilot"))
            .env("JOBSEAL_EXEC_CONFIG", self.path("exec.toml"))
            .env("GLEXEC_CLIENT_CERT", bundle)
            .env("ATHENA_CORES", "8")
            .env("LD_PRELOAD", "/nonexistent/evil.so")
            .env("BASH_ENV", "/tmp/evil")
            .env("X509_CERT_DIR", "/nonexistent/attacker-cas")
            .env("RUST_MIN_STACK", "99999999999999")
            .env("X509_USER_PROXY", "/pilot/own/proxy");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn launch_full(
        &self,
        who: &Account,
        bundle: &Path,
        args: &[&str],
        env: &[(&str, &OsStr)],
        pre: &str,
    ) -> Output {
        let o = self.client(who, bundle, args, env, pre).output().unwrap();
        eprintln!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn launch(&self, bundle: &Path, args: &[&str]) -> Output {
        self.launch_full(&self.pilot, bundle, args, &[], "")
    }

    fn launch_env(&self, bundle: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Output {
        self.launch_full(&self.pilot, bundle, args, env, "")
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("state/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The working directories made so far.
    fn workdirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path("work"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
        let mut names = vec![
            self.pilot.name.clone(),
            self.target.name.clone(),
            self.records.name.clone(),
        ];
        names.extend(self.pool.iter().map(|a| a.name.clone()));
        for n in &names {
            let _ = Command::new("pkill").args(["-KILL", "-u", n]).output();
        }
        std::thread::sleep(Duration::from_millis(100));
        for n in &names {
            let _ = Command::new("userdel").args(["-f", n]).output();
        }
        for g in [&self.extra_group.0, &self.system_group.0] {
            let _ = Command::new("groupdel").arg(g).output();
        }
        let _ = std::fs::remove_file(format!("/tmp/x509up_u{}", self.target.uid));
    }
}

/// `setpriv` arguments that run what follows as the pilot.
fn as_pilot(w: &World) -> [String; 4] {
    [
        format!("--reuid={}", w.pilot.uid),
        format!("--regid={}", w.pilot.gid),
        "--init-groups".into(),
        "--".into(),
    ]
}

fn reasons(w: &World) -> Vec<String> {
    w.audit()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("permit").to_string())
        .collect()
}

#[test]
fn the_payload_runs_as_the_mapped_account_with_its_groups_in_a_fresh_directory() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let b = w.seal(
        "ok",
        0,
        &["--events", "10"],
        "[environment]\nLD_LIBRARY_PATH = \"/opt/signed/lib\"\nTMPDIR = \"/scratch\"\n",
    );
    let o = w.launch(&b, &["./run.sh", "--events", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let (head, env) = out.split_once("--env\n").unwrap();
    let first = head.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("uid={} gid={} ", w.target.uid, w.target.gid)),
        "{first}"
    );
    // The target's groups from /etc/group, except the system group (below
    // min_gid), which a payload never gets.
    let mut shown: Vec<u32> = first
        .split("groups=")
        .nth(1)
        .unwrap()
        .split(" pwd=")
        .next()
        .unwrap()
        .split(' ')
        .map(|g| g.parse().unwrap())
        .collect();
    shown.sort_unstable();
    let mut want = vec![w.target.gid, w.extra_group.1];
    want.sort_unstable();
    assert_eq!(shown, want, "supplementary groups");
    assert!(!shown.contains(&w.system_group.1));
    // A fresh directory under work_root, the target's, 0700, holding the
    // verified input.
    let workdir = first.split(" pwd=").nth(1).unwrap();
    let root = w.path("work").canonicalize().unwrap();
    assert!(
        Path::new(workdir).parent() == Some(root.as_path()),
        "{workdir}"
    );
    let meta = std::fs::metadata(workdir).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (w.target.uid, w.target.gid, 0o700)
    );
    assert!(head.contains("the signed input"), "{head}");
    let input = std::fs::metadata(Path::new(workdir).join("input.txt")).unwrap();
    assert_eq!((input.uid(), input.mode() & 0o777), (w.target.uid, 0o600));
    // The environment: the pilot's leaks are gone (its X509_USER_PROXY
    // too), the signed values and the site's whitelist are there, PATH is
    // reset, the target's own names are set.
    for gone in [
        "LD_PRELOAD=",
        "BASH_ENV=",
        "X509_CERT_DIR=",
        "RUST_MIN_STACK=",
        "JOBSEAL_EXEC_CONFIG=",
        "X509_USER_PROXY=",
    ] {
        assert!(!env.contains(gone), "{gone} reached the payload:\n{env}");
    }
    for kept in [
        "ATHENA_CORES=8\n",
        "LD_LIBRARY_PATH=/opt/signed/lib\n",
        "TMPDIR=/scratch\n",
        "PATH=/usr/local/bin:/usr/bin:/bin\n",
        &format!("USER={}\n", w.target.name),
        &format!("LOGNAME={}\n", w.target.name),
        &format!("JOBSEAL_WORKDIR={workdir}\n"),
    ] {
        assert!(env.contains(kept), "{kept:?} missing:\n{env}");
    }
    // The audit record says who ran whose job as whom, and where.
    let audit = w.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["outcome"], "permit");
    let launch = &audit[0]["launch"];
    assert_eq!(launch["mode"], "service");
    assert_eq!(launch["source_uid"], w.pilot.uid);
    assert_eq!(launch["target_uid"], w.target.uid);
    assert_eq!(launch["target_gid"], w.target.gid);
    let mut groups: Vec<u64> = launch["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_u64().unwrap())
        .collect();
    groups.sort_unstable();
    assert_eq!(
        groups,
        want.iter().map(|g| u64::from(*g)).collect::<Vec<_>>()
    );
    assert_eq!(launch["account"], w.target.name.as_str());
    assert_eq!(launch["mapped_by"], "grid-mapfile");
    let recorded = launch["workdir"].as_str().unwrap();
    assert_eq!(
        Path::new(recorded).canonicalize().unwrap(),
        Path::new(workdir)
    );
    // Replayed: 203, nothing runs, the refusal is recorded too.
    let o = w.launch(&b, &["./run.sh", "--events", "10"]);
    assert_refused(&o, 203, "replay.job-id-used");
    assert_eq!(w.audit().len(), 2);
}

#[test]
fn a_tampered_bundle_or_payload_runs_nothing_and_leaves_no_directory() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    // Tampered bundle: one byte of the manifest block changed.
    let b = w.seal("t", 0, &["a"], "");
    let text = std::fs::read_to_string(&b).unwrap();
    let at = text.find("JOBSEAL MANIFEST-----\n").unwrap() + 40;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&b, bytes).unwrap();
    let o = w.launch(&b, &["./run.sh", "a"]);
    assert_eq!(o.status.code(), Some(203), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // A payload changed after signing: the client seals the bytes it
    // finds, the service hashes exactly those.
    let b = w.seal("p", 0, &["a"], "");
    let signed = std::fs::read(w.path("pilot/job/run.sh")).unwrap();
    w.payload("run.sh", "#!/bin/sh\necho evil\n");
    let o = w.launch(&b, &["./run.sh", "a"]);
    assert_refused(&o, 203, "payload.executable-mismatch");
    std::fs::write(w.path("pilot/job/run.sh"), &signed).unwrap();
    // An input changed after signing.
    let b = w.seal("i", 0, &["a"], "");
    std::fs::write(w.path("pilot/job/input.txt"), "changed\n").unwrap();
    let o = w.launch(&b, &["./run.sh", "a"]);
    assert_refused(&o, 203, "payload.input-mismatch");
    // Each refusal is recorded, and no working directory is left behind.
    let r = reasons(&w);
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(
        &r[1..],
        ["payload.executable-mismatch", "payload.input-mismatch"]
    );
    assert!(w.workdirs().is_empty(), "{:?}", w.workdirs());
}

#[test]
fn a_payload_rewritten_or_swapped_while_it_is_launched_never_runs_changed() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.payload("run.sh", "#!/bin/sh\necho good\n");
    let bundles: Vec<PathBuf> = (0..20)
        .map(|i| w.seal_body(&format!("r{i}"), 0, ""))
        .collect();
    /// Stops the attacker even if an assertion fails first.
    struct Attacker(Child);
    impl Drop for Attacker {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // The pilot itself (its uid, its files) rewrites the payload in place
    // and swaps it by rename, as fast as it can, while the launches run.
    let attacker = Attacker(
        Command::new("setpriv")
            .args(as_pilot(&w))
            .args([
                "sh",
                "-c",
                "while :; do printf '#!/bin/sh\\necho EVIL\\n' 1<>run.sh; \
                 printf '#!/bin/sh\\necho good\\n' 1<>run.sh; \
                 printf '#!/bin/sh\\necho EVIL\\n' > new.sh; chmod 755 new.sh; mv new.sh run.sh; \
                 printf '#!/bin/sh\\necho good\\n' > new.sh; chmod 755 new.sh; mv new.sh run.sh; done",
            ])
            .current_dir(w.path("pilot/job"))
            .spawn()
            .unwrap(),
    );
    let (mut ran, mut refused) = (0, 0);
    for b in &bundles {
        let o = w.launch(b, &["./run.sh"]);
        assert!(!stdout(&o).contains("EVIL"), "a changed payload ran");
        match o.status.code() {
            Some(0) => {
                assert_eq!(stdout(&o), "good\n");
                ran += 1;
            }
            // Caught changed (or half-written, or between create and
            // rename): refused, nothing ran.
            Some(203 | 126) => {
                assert!(stdout(&o).is_empty(), "{}", stdout(&o));
                refused += 1;
            }
            other => panic!("unexpected {other:?}: {}", stderr(&o)),
        }
    }
    drop(attacker);
    eprintln!("{ran} ran the signed payload, {refused} refused");
    assert!(refused > 0, "the attacker never caught a launch");
}

#[test]
fn pool_accounts_are_leased_one_user_each_and_kept() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let prefix = format!("jmq{}", w.tag);
    w.gridmap(&format!(
        "\"{}\" .{prefix}\n\"{}\" .{prefix}\n\"{}\" .{prefix}\n",
        slash_dn(USERS[0]),
        slash_dn(USERS[1]),
        slash_dn(USERS[2])
    ));
    let who = |user: usize, name: &str| {
        let b = w.seal(name, user, &[], "");
        w.launch(&b, &["./run.sh"])
    };
    let uid_of = |o: &Output| -> u32 {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
        stdout(o)
            .split("uid=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let jane = uid_of(&who(0, "j1"));
    let john = uid_of(&who(1, "r1"));
    let pool_uids: Vec<u32> = w.pool.iter().map(|a| a.uid).collect();
    assert!(pool_uids.contains(&jane) && pool_uids.contains(&john));
    assert_ne!(jane, john, "two users share a pool account");
    // Jane keeps her lease.
    assert_eq!(uid_of(&who(0, "j2")), jane);
    // The pool has two accounts: a third user is refused, and runs nothing.
    let o = who(2, "m1");
    assert_refused(&o, 203, "exec.no-mapping");
    // The leases are in the gridmapdir, as LCMAPS names them.
    let jane_lease = "%2fo%3djobseal%2fcn%3djane%20doe";
    let lease = w.path("gridmapdir").join(jane_lease);
    assert_eq!(std::fs::metadata(&lease).unwrap().nlink(), 2);
    let leased = w
        .pool
        .iter()
        .find(|a| a.uid == jane)
        .map(|a| w.path("gridmapdir").join(&a.name))
        .unwrap();
    assert_eq!(
        std::fs::metadata(&lease).unwrap().ino(),
        std::fs::metadata(leased).unwrap().ino()
    );
    // The records name the lease; the refusal names who asked.
    let audit = w.audit();
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert_eq!(audit[0]["launch"]["lease"], jane_lease);
    assert_eq!(audit[0]["launch"]["mapped_by"], "grid-mapfile");
    assert_eq!(audit[3]["reason"], "exec.no-mapping");
    assert_eq!(audit[3]["launch"]["source_uid"], w.pilot.uid);
    // The full pool spent nothing: once a lease is free, Max's job runs.
    std::fs::remove_file(
        w.path("gridmapdir")
            .join("%2fo%3djobseal%2fcn%3djohn%20roe"),
    )
    .unwrap();
    let b = w.path("pilot/m1.bundle.pem");
    assert_eq!(uid_of(&w.launch(&b, &["./run.sh"])), john);
}

#[test]
fn a_static_fqan_or_dn_map_entry_comes_before_the_grid_mapfile() {
    if !root_or_skip() {
        return;
    }
    let mut w = World::new();
    // The grid-mapfile says pool account 1; the [[map]] entry, the target.
    // (The `fqan` entry matches nothing here: a job without attributes;
    // an_fqan_map_entry_maps_a_job_sealed_with_vo_attributes has one.)
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.pool[0].name));
    w.reconfigure(&format!(
        "[[map]]\nfqan = \"/nosuchvo\"\naccount = \"{}\"\n[[map]]\ndn = \"{}\"\naccount = \"{}\"\n",
        w.pool[1].name,
        slash_dn(USERS[0]),
        w.target.name
    ));
    let b = w.seal("s", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("uid={} ", w.target.uid)),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.audit()[0]["launch"]["mapped_by"], "map dn");
    // Without the entry, the grid-mapfile decides.
    w.reconfigure("");
    let b = w.seal("g", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert!(
        stdout(&o).starts_with(&format!("uid={} ", w.pool[0].uid)),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.audit()[1]["launch"]["mapped_by"], "grid-mapfile");
}

/// An `fqan` entry maps a job sealed with the user's VO attributes (an
/// AC in the job-bound proxy, as `jobseal sign --voms` seals it) by its
/// primary FQAN; a user sealing without attributes falls to the
/// grid-mapfile.
#[test]
fn an_fqan_map_entry_maps_a_job_sealed_with_vo_attributes() {
    if !root_or_skip() {
        return;
    }
    let mut w = World::new();
    let now = UnixTime::now();
    let aa = ac::aa(
        &w.ca,
        &[61; 32],
        61,
        "CN=voms.test,O=jobseal",
        (now.minus(86_400), now.plus(365 * 86_400)),
    )
    .unwrap();
    let subject = |cert: &[u8]| tlv::RawCert::split(cert).unwrap().subject.to_vec();
    std::fs::create_dir_all(w.path("vomsdir/testvo")).unwrap();
    std::fs::write(
        w.path("vomsdir/testvo/voms.test.lsc"),
        format!(
            "{}\n{}\n",
            name::to_slash_string(&subject(&aa.cert)),
            name::to_slash_string(&subject(&w.ca.cert))
        ),
    )
    .unwrap();
    let mut users = std::mem::take(&mut w.users);
    let user = users.remove(0);
    let spec = ac::AcSpec {
        vo: "testvo".into(),
        host: "voms.test".into(),
        fqans: vec!["/testvo/prod/Role=pilot".into(), "/testvo".into()],
        generic: Vec::new(),
        holder_name: subject(&user.chain[0]),
        holder_serial: vec![20],
        issuer: subject(&aa.cert),
        carried: vec![aa.cert.clone()],
        not_before: now.minus(60),
        not_after: now.plus(86_400),
        extra_extensions: Vec::new(),
        algorithm: None,
        flip_signature: false,
    };
    let with_ac = user.with_voms_ac(spec.sign(&aa.key).unwrap()).unwrap();
    w.gridmap(&format!(
        "\"{}\" {}\n\"{}\" {}\n",
        slash_dn(USERS[0]),
        w.pool[0].name,
        slash_dn(USERS[1]),
        w.pool[0].name
    ));
    w.reconfigure(&format!(
        "voms_dir = \"{}\"\n[[map]]\nfqan = \"/testvo/prod/Role=pilot\"\naccount = \"{}\"\n",
        w.path("vomsdir").display(),
        w.target.name
    ));
    let sealed = |name: &str, cred: &Credential| {
        let toml = w.path(&format!("pilot/job/{name}.toml"));
        std::fs::write(&toml, "executable = \"run.sh\"\nvalid = \"1h\"\n").unwrap();
        let issuer = credential::check_issuer(cred, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let s = seal(cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = w.path(&format!("pilot/{name}.bundle.pem"));
        std::fs::write(&out, s.bundle.to_pem()).unwrap();
        w.give_to_pilot(&out);
        out
    };
    let o = w.launch(&sealed("fqan", &with_ac), &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("uid={} ", w.target.uid)),
        "{}",
        stdout(&o)
    );
    let record = &w.audit()[0];
    assert_eq!(record["launch"]["mapped_by"], "map fqan");
    let voms = &record["who"]["voms"][0];
    assert_eq!(voms["verified"], true, "{record}");
    assert_eq!(voms["fqans"][0], "/testvo/prod/Role=pilot", "{record}");
    let o = w.launch(&sealed("plain", &users[0]), &["./run.sh"]);
    assert!(
        stdout(&o).starts_with(&format!("uid={} ", w.pool[0].uid)),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.audit()[1]["launch"]["mapped_by"], "grid-mapfile");
}

#[test]
fn each_built_in_control_denies_what_it_should_and_spends_nothing() {
    if !root_or_skip() {
        return;
    }
    let mut w = World::new();
    let dn = slash_dn(USERS[0]);
    let good = format!("\"{dn}\" {}\n", w.target.name);
    // A caller not on the whitelist: refused before anything is read, and
    // not recorded (anyone could flood the site's log).
    let b = w.seal("c0", 0, &[], "");
    // (The target's own copy of the bundle: the client takes only the
    // caller's own file, 201 exec.credential otherwise.)
    let theirs = w.path("theirs.bundle.pem");
    std::fs::copy(&b, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(w.target.uid), Some(w.target.gid)).unwrap();
    let o = w.launch_full(&w.target, &b, &["./run.sh"], &[], "");
    assert_refused(&o, 201, "exec.credential");
    let o = w.launch_full(&w.target, &theirs, &["./run.sh"], &[], "");
    assert_refused(&o, 203, "exec.caller-not-allowed");
    assert!(w.audit().is_empty(), "{:?}", w.audit());
    // Mapped to root, below min_uid, below min_gid, to no account, to
    // nothing: each its own code, and its own record.
    let mut refused = Vec::new();
    let mut n = 0;
    let mut attempt = |w: &mut World, gridmap: &str, config: &str, code: &str| {
        n += 1;
        w.gridmap(gridmap);
        w.reconfigure(config);
        let b = w.seal(&format!("c{n}"), 0, &[], "");
        assert_refused(&w.launch(&b, &["./run.sh"]), 203, code);
        let last = w.audit().pop().unwrap();
        assert_eq!(last["reason"], code, "{last}");
        assert_eq!(last["launch"]["source_uid"], w.pilot.uid, "{last}");
        refused.push(b);
    };
    let unknown = format!("\"{dn}\" nosuchaccount{}\n", w.tag);
    attempt(&mut w, &format!("\"{dn}\" root\n"), "", "exec.target-uid");
    attempt(&mut w, &good, "min_uid = 4000000000\n", "exec.target-uid");
    attempt(&mut w, &good, "min_gid = 4000000000\n", "exec.target-gid");
    attempt(&mut w, &unknown, "", "exec.no-account");
    attempt(
        &mut w,
        "\"/O=jobseal/CN=Someone Else\" nobody\n",
        "",
        "exec.no-mapping",
    );
    assert_eq!(refused.len(), 5);
    // Refused before the use was spent, leaving no directory: once the
    // mapping is right, each of those jobs runs.
    assert!(w.workdirs().is_empty(), "{:?}", w.workdirs());
    w.gridmap(&good);
    w.reconfigure("");
    for b in &refused {
        let o = w.launch(b, &["./run.sh"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    // By design the service has no `exec.payload-untrusted` (the setuid
    // launcher's check of the original file's owner and mode): the client
    // opens the executable with the pilot's rights and seals its bytes, and
    // the service runs exactly those bytes as the target. So a payload file
    // that is world-writable, setuid, or another account's runs if its bytes
    // are the signed ones, and a setuid bit gives it nothing.
    w.payload("run.sh", "#!/bin/sh\necho \"euid=$(id -u)\"\n");
    let run_sh = w.path("pilot/job/run.sh");
    for (i, (mode, owner)) in [
        (0o757, w.pilot.uid),
        (0o4755, w.pilot.uid),
        (0o755, w.pool[1].uid),
    ]
    .into_iter()
    .enumerate()
    {
        std::os::unix::fs::lchown(&run_sh, Some(owner), None).unwrap();
        std::fs::set_permissions(&run_sh, std::fs::Permissions::from_mode(mode)).unwrap();
        let b = w.seal_body(&format!("u{i}"), 0, "");
        let o = w.launch(&b, &["./run.sh"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("euid={}\n", w.target.uid));
    }
    // By design there is no `exec.descriptor` either: a descriptor the
    // pilot leaks into the client never reaches the payload (the service
    // passes it the standard streams and the sealed executable only).
    w.payload(
        "run.sh",
        "#!/bin/sh\nfor f in /proc/$$/fd/*; do readlink \"$f\"; done\n",
    );
    let b = w.seal_body("fd", 0, "");
    let o = w.launch_full(&w.pilot, &b, &["./run.sh"], &[], "exec 7</etc/hostname; ");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("/etc/hostname"), "{}", stdout(&o));
    assert!(!stdout(&o).is_empty());
    // A CA directory someone else can write to is not trusted: 202
    // config.invalid, recorded, nothing spent.
    let b = w.seal_body("ca", 0, "");
    std::fs::set_permissions(w.path("ca"), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&w.launch(&b, &["./run.sh"]), 202, "config.invalid");
    std::fs::set_permissions(w.path("ca"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(reasons(&w).last().unwrap(), "config.invalid");
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A configuration the pilot could have written is not trusted: the
    // service does not start on it (where the setuid launcher refused each
    // call with config.invalid).
    w.stop();
    std::os::unix::fs::lchown(w.path("exec.toml"), Some(w.pilot.uid), None).unwrap();
    let o = launchd()
        .arg("--config")
        .arg(w.path("exec.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not owned by root"), "{}", stderr(&o));
    // The records: every refusal after the caller check, with its code.
    let r = reasons(&w);
    for code in [
        "exec.target-uid",
        "exec.target-gid",
        "exec.no-account",
        "exec.no-mapping",
        "config.invalid",
    ] {
        assert!(r.iter().any(|x| x == code), "{code} not in {r:?}");
    }
    assert!(!r.iter().any(|x| x == "exec.caller-not-allowed"));
}

#[test]
fn nothing_the_user_signs_reaches_root_and_the_trampoline_is_out_of_reach() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    // A preload library, shipped as a signed input and named in the signed
    // environment: it may load into the payload (as the target), never
    // into anything that runs as root (the service, the trampoline).
    let marker = w.path("ran-as-root");
    let src = w.path("preload.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n#include <unistd.h>\n#include <fcntl.h>\n\
             __attribute__((constructor)) static void init(void) {{\n\
               if (getuid() == 0 || geteuid() == 0) close(open(\"{}\", O_CREAT|O_WRONLY, 0644));\n\
               fprintf(stderr, \"preload uid=%d\\n\", (int)getuid());\n}}\n",
            marker.display()
        ),
    )
    .unwrap();
    let so = w.path("pilot/job/preload.so");
    sh(Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src));
    w.give_to_pilot(&so);
    let b = w.seal_body(
        "pre",
        0,
        "inputs = [\"input.txt\", \"preload.so\"]\n[environment]\nLD_PRELOAD = \"./preload.so\"\n",
    );
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!marker.exists(), "the signed LD_PRELOAD ran as root");
    assert!(
        stderr(&o).contains(&format!("preload uid={}", w.target.uid)),
        "the signed LD_PRELOAD did not reach the payload: {}",
        stderr(&o)
    );
    // The pilot cannot start the trampoline itself: jobseal-launchd's
    // refuses any process that is not root in its real and effective uid,
    // and runs nothing (else it would try to switch, and fail with 202);
    // jobseal-exec has none (the argument is an option: exec.usage).
    let ran = w.path("trampoline-ran");
    for binary in [
        env!("CARGO_BIN_EXE_jobseal-launchd"),
        env!("CARGO_BIN_EXE_jobseal-exec"),
    ] {
        let o = Command::new("setpriv")
            .args(as_pilot(&w))
            .arg(binary)
            .args(["--jobseal-payload", "1"])
            .args([w.pilot.uid, w.pilot.gid, w.pilot.gid].map(|n| n.to_string()))
            .args(["/bin/sh", "/", "-", "-", "sh", "--", "-c"])
            .arg(format!("echo ran; touch {}", ran.display()))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(201), "{binary}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{binary}: {}", stdout(&o));
        assert!(!ran.exists(), "{binary} ran the pilot's trampoline");
    }
}

#[test]
fn the_proxy_copy_is_the_user_s_own_written_as_the_target_where_allowed() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.payload(
        "run.sh",
        "#!/bin/sh\nstat -c '%u %a' \"$X509_USER_PROXY\"\necho \"$X509_USER_PROXY\"\n\
         sha256sum < \"$X509_USER_PROXY\" | cut -c1-16\n",
    );
    // A user's own proxy (certificate chain and key), mode 0600, the
    // pilot's file.
    let now = UnixTime::now();
    let proxy_of = |user: usize, name: &str| {
        let p = jobseal_issue::plain::issue_plain_proxy(
            &w.users[user],
            now.minus(60),
            now.plus(3600),
            None,
        )
        .unwrap();
        let path = w.path(&format!("pilot/{name}.pem"));
        std::fs::write(&path, &p.pem).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        w.give_to_pilot(&path);
        let digest = ring::digest::digest(&ring::digest::SHA256, p.pem.as_bytes());
        let hex: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (path, hex)
    };
    let (jane, jane_sha) = proxy_of(0, "jane-proxy");
    let (john, _) = proxy_of(1, "john-proxy");
    let source = |p: &Path| ("GLEXEC_SOURCE_PROXY", p.as_os_str().to_owned());
    let run = |b: &Path, env: &[(&str, std::ffi::OsString)]| {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        w.launch_env(b, &["./run.sh"], &env)
    };
    // Jane's proxy for Jane's job: the payload's X509_USER_PROXY is a copy
    // of those very bytes, the target's own, 0600, in the working directory
    // by default.
    let b = w.seal_body("p1", 0, "");
    let o = run(&b, &[source(&jane)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let workdir = w.path("work").canonicalize().unwrap();
    assert_eq!(lines[0], format!("{} 600", w.target.uid), "{out}");
    assert!(
        Path::new(lines[1]).parent().and_then(Path::parent) == Some(workdir.as_path())
            && lines[1].ends_with("/x509up"),
        "{out}"
    );
    assert_eq!(lines[2], jane_sha, "not the user's proxy: {out}");
    // John's proxy for Jane's job: refused (201), recorded, nothing runs,
    // and the job is not used up.
    let b = w.seal_body("p2", 0, "");
    assert_refused(&run(&b, &[source(&john)]), 201, "exec.proxy");
    assert_eq!(reasons(&w).last().unwrap(), "exec.proxy");
    // A destination of the pilot's choosing outside the working directory:
    // refused before anything is written.
    let victim = w.path("pilot/victim");
    let o = run(
        &b,
        &[
            source(&jane),
            ("GLEXEC_TARGET_PROXY", victim.clone().into_os_string()),
        ],
    );
    assert_refused(&o, 201, "exec.proxy");
    assert!(!victim.exists());
    // `/tmp/x509up_u<target uid>`: refused before the use is spent, and
    // nothing written there. The service never writes as the target (a
    // thread of the root daemon with the target's ids could be signalled or
    // limited by the target's processes), and a file in the shared /tmp
    // could be blocked by anyone after the use was spent.
    let tmp = PathBuf::from(format!("/tmp/x509up_u{}", w.target.uid));
    let _ = std::fs::remove_file(&tmp);
    let o = run(
        &b,
        &[
            source(&jane),
            ("GLEXEC_TARGET_PROXY", tmp.clone().into_os_string()),
        ],
    );
    assert_refused(&o, 201, "exec.proxy");
    assert!(
        stderr(&o).contains("working directory only"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.exists());
    // The same job, which none of the refusals spent, runs with the copy
    // in its working directory.
    let o = run(&b, &[source(&jane)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&jane_sha), "{}", stdout(&o));
    // A plain file name: in the working directory.
    let b = w.seal_body("p3", 0, "");
    let o = run(
        &b,
        &[source(&jane), ("GLEXEC_TARGET_PROXY", "myproxy".into())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        Path::new(lines[1]).parent().and_then(Path::parent) == Some(workdir.as_path())
            && lines[1].ends_with("/myproxy"),
        "{out}"
    );
}

#[test]
fn an_input_the_pilot_cannot_read_is_refused_not_copied_as_root() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let b = w.seal("s", 0, &[], "");
    let input = w.path("pilot/job/input.txt");
    // The signed input replaced by a link to a root-only file, then by a
    // root-only file: the client opens inputs with the pilot's rights, so
    // it refuses (201) before the service is asked; nothing is copied.
    std::fs::remove_file(&input).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &input).unwrap();
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 201, "exec.workdir");
    std::fs::remove_file(&input).unwrap();
    std::fs::write(&input, "root's secret\n").unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 201, "exec.workdir");
    assert!(
        !stderr(&o).contains("sha256") && !stderr(&o).contains("secret"),
        "the input leaked: {}",
        stderr(&o)
    );
    // The service never saw the request: no working directory, no record
    // (the client refuses on its own, as the pilot).
    assert!(w.workdirs().is_empty(), "{:?}", w.workdirs());
    assert!(w.audit().is_empty(), "{:?}", w.audit());
    // With the signed input back, the job runs: nothing was spent.
    std::fs::write(&input, "the signed input\n").unwrap();
    w.give_to_pilot(&input);
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_ca_without_a_namespace_policy_maps_nobody() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    for e in std::fs::read_dir(w.path("ca")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "namespaces") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let b = w.seal("n", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(203), "{}", stderr(&o));
    assert!(
        last_line(&o).starts_with("chain.namespace"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    assert_eq!(reasons(&w), ["chain.namespace-violation"]);
    assert!(w.audit()[0]["launch"].get("target_uid").is_none());
    assert!(w.workdirs().is_empty(), "{:?}", w.workdirs());
}

#[test]
fn a_payload_that_cannot_be_executed_is_the_service_s_126_and_recorded() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    // Signed, admitted, but its interpreter does not exist: the exec fails
    // in the trampoline, after the identity switch and after the use was
    // spent, so the failure has its own record.
    w.payload("run.sh", "#!/nonexistent/interpreter\n");
    let b = w.seal_body("x", 0, "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 126, "exec.not-executable");
    let audit = w.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["outcome"], "permit");
    assert_eq!(audit[1]["reason"], "exec.not-executable");
    assert_eq!(audit[1]["launch"]["target_uid"], w.target.uid);
    // A command the client cannot find or execute: its own 126, nothing
    // asked of the service.
    let o = w.launch(&b, &["./nosuch.sh"]);
    assert_refused(&o, 126, "exec.not-executable");
    std::fs::set_permissions(
        w.path("pilot/job/run.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 126, "exec.not-executable");
    assert_eq!(w.audit().len(), 2);
}

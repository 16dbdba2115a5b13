//! Identity switching as a site runs it: `jobseal-exec` installed setuid
//! root, called by a non-root pilot account (through `setpriv`), mapping
//! real local accounts made here with `useradd` (and removed afterwards)
//! through a grid-mapfile, static `[[map]]` entries and a pool leased in a
//! gridmapdir.
//!
//! These tests need root: CI runs as root and fails if they cannot run; a
//! non-root developer run says that it skipped them. They share the one
//! configuration path `/etc/jobseal/exec.toml`, so they run one at a time.
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
use std::sync::{Mutex, PoisonError};

use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::throwaway;
use jobseal_issue::{JobSpec, SealParams, seal};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const CONFIG: &str = "/etc/jobseal/exec.toml";

/// Whether this test may run; fails under CI when it cannot.
fn root_or_skip() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the privileged launcher tests as root"
    );
    eprintln!("skipped: identity switching needs root");
    false
}

fn sh(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A local account made for the test.
#[derive(Clone, Debug)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

fn id_of(name: &str, flag: &str) -> u32 {
    let o = sh(Command::new("id").arg(flag).arg(name));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn useradd(name: &str) -> Account {
    sh(Command::new("useradd")
        .args([
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg(name));
    Account {
        name: name.into(),
        uid: id_of(name, "-u"),
        gid: id_of(name, "-g"),
    }
}

/// Everything one test needs: accounts, a CA, a pilot's directory, the
/// setuid launcher, and the configuration, all removed on drop.
struct World {
    dir: tempfile::TempDir,
    tag: String,
    pilot: Account,
    target: Account,
    pool: Vec<Account>,
    extra_group: (String, u32),
    users: Vec<Credential>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

const USERS: [&str; 3] = [
    "CN=Jane Doe,O=jobseal",
    "CN=John Roe,O=jobseal",
    "CN=Max Moe,O=jobseal",
];

fn slash_dn(rfc: &str) -> String {
    let mut parts: Vec<&str> = rfc.split(',').collect();
    parts.reverse();
    format!("/{}", parts.join("/"))
}

impl World {
    fn new() -> Self {
        let lock = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            !Path::new(CONFIG).exists(),
            "{CONFIG} exists: not overwriting it"
        );
        let tag = format!("{:04x}", std::process::id() % 0x10000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pilot = useradd(&format!("jxp{tag}"));
        let target = useradd(&format!("jxt{tag}"));
        let pool = vec![
            useradd(&format!("jxq{tag}01")),
            useradd(&format!("jxq{tag}02")),
        ];
        let group = format!("jxg{tag}");
        sh(Command::new("groupadd").arg(&group));
        sh(Command::new("usermod").args(["-aG", &group, &target.name]));
        let extra_gid = {
            let o = sh(Command::new("getent").args(["group", &group]));
            String::from_utf8_lossy(&o.stdout)
                .split(':')
                .nth(2)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[17; 32],
            "CN=Privileged Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let anchor = throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        // Identity switching requires a namespace policy for every CA.
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
                    &[20 + u8::try_from(i).unwrap(); 32],
                    dn,
                    10 + u64::try_from(i).unwrap(),
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
        let w = Self {
            dir,
            tag,
            pilot,
            target,
            pool,
            extra_group: (group, extra_gid),
            users,
            _lock: lock,
        };
        std::fs::write(w.path("policy.toml"), "").unwrap();
        std::fs::create_dir(w.path("state")).unwrap();
        // The gridmapdir: one empty file per pool account.
        std::fs::create_dir(w.path("gridmapdir")).unwrap();
        for a in &w.pool {
            std::fs::write(w.path("gridmapdir").join(&a.name), b"").unwrap();
        }
        // The launcher, installed setuid root.
        std::fs::create_dir(w.path("bin")).unwrap();
        std::fs::set_permissions(w.path("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_jobseal-exec"), w.launcher()).unwrap();
        std::fs::set_permissions(w.launcher(), std::fs::Permissions::from_mode(0o4755)).unwrap();
        // The pilot's directory and the signed payload in it.
        let job = w.path("pilot/job");
        std::fs::create_dir_all(&job).unwrap();
        w.payload(
            "run.sh",
            "#!/bin/sh\necho \"uid=$(id -u) gid=$(id -g) groups=$(id -G) pwd=$(pwd)\"\n\
             cat input.txt 2>/dev/null\necho '--env'\nenv | sort\n",
        );
        std::fs::write(job.join("input.txt"), "the signed input\n").unwrap();
        w.give_to_pilot();
        w.configure("");
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn launcher(&self) -> PathBuf {
        self.path("bin/jobseal-exec")
    }

    fn give_to_pilot(&self) {
        let uid = self.pilot.uid;
        let gid = self.pilot.gid;
        fn walk(p: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
            if p.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), uid, gid);
                }
            }
        }
        walk(&self.path("pilot"), uid, gid);
    }

    fn payload(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(&format!("pilot/job/{name}"));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::lchown(&p, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        p
    }

    /// `/etc/jobseal/exec.toml`: identity switching for the pilot, plus
    /// `extra` lines.
    fn configure(&self, extra: &str) {
        std::fs::create_dir_all("/etc/jobseal").unwrap();
        std::fs::write(
            CONFIG,
            format!(
                "mode = \"identity-switching\"\npolicy = \"{0}/policy.toml\"\nca_dir = \"{0}/ca\"\n\
                 state_dir = \"{0}/state\"\nwork_root = \"{0}/work\"\ngridmapdir = \"{0}/gridmapdir\"\n\
                 gridmapfile = \"{0}/grid-mapfile\"\nusers = [\"{1}\"]\nenv_whitelist = [\"ATHENA_CORES\"]\n{2}",
                self.dir.path().display(),
                self.pilot.name,
                extra
            ),
        )
        .unwrap();
    }

    fn gridmap(&self, lines: &str) {
        std::fs::write(self.path("grid-mapfile"), lines).unwrap();
    }

    /// Seal `run.sh` for user `user` (an index into [`USERS`]), with `args`
    /// and `extra` job TOML lines; the bundle's path, owned by the pilot.
    fn seal(&self, name: &str, user: usize, args: &[&str], extra: &str) -> PathBuf {
        let now = UnixTime::now();
        let toml = self.path(&format!("pilot/job/{name}.toml"));
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &toml,
            format!(
                "executable = \"run.sh\"\narguments = [{}]\ninputs = [\"input.txt\"]\nvalid = \"1h\"\n{extra}",
                quoted.join(", ")
            ),
        )
        .unwrap();
        let cred = &self.users[user];
        let issuer = credential::check_issuer(cred, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let sealed = seal(cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = self.path(&format!("pilot/{name}.bundle.pem"));
        std::fs::write(&out, sealed.bundle.to_pem()).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::lchown(&out, Some(self.pilot.uid), Some(self.pilot.gid)).unwrap();
        out
    }

    /// Seal `run.sh` for user `user` with the job TOML `body` (after the
    /// executable line); the bundle, owned by the pilot.
    fn seal_with(&self, name: &str, user: usize, body: &str) -> PathBuf {
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

    /// The launcher as the pilot calls it, with extra variables.
    fn launch_env(&self, bundle: &Path, args: &[&str], extra: &[(&str, &Path)]) -> Output {
        self.launch_full(&self.pilot, bundle, args, extra)
    }

    /// The launcher as a pilot calls it: as `as_user` (the pilot unless
    /// said otherwise), with the pilot's leaky environment, in the job
    /// directory, with no descriptor but 0–2 inherited.
    fn launch_as(&self, as_user: &Account, bundle: &Path, args: &[&str]) -> Output {
        self.launch_full(as_user, bundle, args, &[])
    }

    fn launch_full(
        &self,
        as_user: &Account,
        bundle: &Path,
        args: &[&str],
        extra: &[(&str, &Path)],
    ) -> Output {
        let mut c = without_leaks("");
        c.args(as_account(as_user))
            // The pilot's leaky environment, set last so that only the
            // launcher gets it.
            .arg("env")
            .arg("LD_PRELOAD=/nonexistent/evil.so")
            .arg("BASH_ENV=/tmp/evil")
            .arg("X509_CERT_DIR=/nonexistent/attacker-cas")
            .arg("JOBSEAL_EXEC_CONFIG=/nonexistent/attacker.toml")
            .arg(self.launcher())
            .args(args)
            .current_dir(self.path("pilot/job"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path("pilot"))
            .env("GLEXEC_CLIENT_CERT", bundle)
            .env("ATHENA_CORES", "8");
        for (k, v) in extra {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        eprintln!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn launch(&self, bundle: &Path, args: &[&str]) -> Output {
        self.launch_as(&self.pilot, bundle, args)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("state/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(CONFIG);
        let _ = std::fs::remove_dir("/etc/jobseal");
        let mut names: Vec<String> = vec![self.pilot.name.clone(), self.target.name.clone()];
        names.extend(self.pool.iter().map(|a| a.name.clone()));
        for n in names {
            // Whatever a test left running under the account goes first.
            let _ = Command::new("pkill").args(["-KILL", "-u", &n]).output();
            let _ = Command::new("userdel").args(["-f", &n]).output();
        }
        let _ = Command::new("groupdel").arg(&self.extra_group.0).output();
    }
}

/// `setpriv` and its arguments to run what follows as `who` (its uid, gid
/// and `/etc/group` groups), as a pilot account runs.
fn as_account(who: &Account) -> [String; 5] {
    [
        "setpriv".into(),
        format!("--reuid={}", who.uid),
        format!("--regid={}", who.gid),
        "--init-groups".into(),
        "--".into(),
    ]
}

/// `bash -c` that closes what this test process would leak (cargo's
/// jobserver), runs `extra` shell text, then execs its arguments.
fn without_leaks(extra: &str) -> Command {
    let closes: String = leaked_descriptors()
        .iter()
        .map(|fd| format!("exec {fd}>&-; "))
        .collect();
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("{closes}{extra}exec \"$@\""))
        .arg("bash");
    c
}

/// Descriptors this process would pass on (open, not close-on-exec).
fn leaked_descriptors() -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or(0);
        if flags & 0o2_000_000 == 0 {
            out.push(fd);
        }
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The refusal line a launcher prints, and that nothing ran.
fn assert_refused(o: &Output, code: i32, reason: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert!(
        stderr(o).starts_with(&format!("{reason}: ")),
        "expected {reason}: {}",
        stderr(o)
    );
    assert!(stdout(o).is_empty(), "something ran: {}", stdout(o));
}

#[test]
fn the_payload_runs_as_the_mapped_account_with_its_groups_in_a_fresh_directory() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let dn = slash_dn(USERS[0]);
    w.gridmap(&format!("\"{dn}\" {}\n", w.target.name));
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
    let mut groups: Vec<u32> = vec![w.target.gid, w.extra_group.1];
    groups.sort_unstable();
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let first = head.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("uid={} gid={} ", w.target.uid, w.target.gid)),
        "{first}"
    );
    let shown: Vec<&str> = first
        .split("groups=")
        .nth(1)
        .unwrap()
        .split(" pwd=")
        .next()
        .unwrap()
        .split(' ')
        .collect();
    let mut shown: Vec<String> = shown.iter().map(|s| (*s).to_string()).collect();
    shown.sort();
    let mut want = groups.clone();
    want.sort();
    assert_eq!(shown, want, "supplementary groups");
    // A fresh directory, the target's, holding the verified input.
    let workdir = first.split(" pwd=").nth(1).unwrap();
    let job_dir = w.path("work");
    assert!(
        workdir.starts_with(&job_dir.display().to_string()),
        "{workdir}"
    );
    let meta = std::fs::metadata(workdir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (w.target.uid, 0o700));
    assert!(head.contains("the signed input"));
    // The environment: the pilot's leaks are gone, the signed values and
    // the site's whitelist are there, PATH is reset.
    for gone in [
        "LD_PRELOAD=",
        "BASH_ENV=",
        "X509_CERT_DIR=",
        "JOBSEAL_EXEC_CONFIG=",
    ] {
        assert!(!env.contains(gone), "{gone} reached the payload:\n{env}");
    }
    for kept in [
        "ATHENA_CORES=8\n",
        "LD_LIBRARY_PATH=/opt/signed/lib\n",
        "TMPDIR=/scratch\n",
        "PATH=/usr/local/bin:/usr/bin:/bin\n",
        &format!("USER={}\n", w.target.name),
        &format!("JOBSEAL_WORKDIR={workdir}\n"),
    ] {
        assert!(env.contains(kept), "{kept:?} missing:\n{env}");
    }
    // The audit record says who ran whose job as whom.
    let audit = w.audit();
    assert_eq!(audit.len(), 1);
    let launch = &audit[0]["launch"];
    assert_eq!(audit[0]["outcome"], "permit");
    assert_eq!(launch["mode"], "identity-switching");
    assert_eq!(launch["source_uid"], w.pilot.uid);
    assert_eq!(launch["target_uid"], w.target.uid);
    assert_eq!(launch["account"], w.target.name.as_str());
    assert_eq!(launch["mapped_by"], "grid-mapfile");
    assert_eq!(launch["workdir"], workdir);

    // Replayed: 203, nothing runs, and the refusal is recorded too.
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
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
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
    // A payload changed after signing.
    let b = w.seal("p", 0, &["a"], "");
    w.payload("run.sh", "#!/bin/sh\necho evil\n");
    let o = w.launch(&b, &["./run.sh", "a"]);
    assert_refused(&o, 203, "payload.executable-mismatch");
    // An input changed after signing.
    let b = w.seal("i", 0, &["a"], "");
    std::fs::write(w.path("pilot/job/input.txt"), "changed\n").unwrap();
    let o = w.launch(&b, &["./run.sh", "a"]);
    assert_refused(&o, 203, "payload.input-mismatch");
    // No working directory is left behind for a refused job.
    let left: Vec<_> = std::fs::read_dir(w.path("work")).map_or(Vec::new(), |d| d.collect());
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_payload_rewritten_or_swapped_while_it_is_launched_never_runs_changed() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    let good = "#!/bin/sh\necho good\n";
    w.payload("run.sh", good);
    let bundles: Vec<PathBuf> = (0..20)
        .map(|i| w.seal(&format!("r{i}"), 0, &[], ""))
        .collect();
    // The pilot itself (its uid, its files) rewrites the payload in place
    // (same inode: `1<>` does not truncate) and swaps it by rename, as fast
    // as it can, while the launches run.
    /// Stops the attacker even if an assertion fails first.
    struct Attacker(std::process::Child);
    impl Drop for Attacker {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let [setpriv, reuid, regid, groups, dashes] = as_account(&w.pilot);
    let attacker = Command::new(setpriv)
        .args([reuid, regid, groups, dashes])
        .arg("sh")
        .arg("-c")
        .arg(
            "while :; do printf '#!/bin/sh\\necho EVIL\\n' 1<>run.sh; \
             printf '#!/bin/sh\\necho good\\n' 1<>run.sh; \
             printf '#!/bin/sh\\necho EVIL\\n' > new.sh; chmod 755 new.sh; mv new.sh run.sh; \
             printf '#!/bin/sh\\necho good\\n' > new.sh; chmod 755 new.sh; mv new.sh run.sh; done",
        )
        .current_dir(w.path("pilot/job"))
        .spawn()
        .unwrap();
    let attacker = Attacker(attacker);
    let mut ran = 0;
    let mut refused = 0;
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
    // The race was really run: the attacker caught some launches.
    assert!(refused > 0, "the attacker never caught a launch");
}

#[test]
fn pool_accounts_are_leased_one_user_each_and_kept() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let prefix = format!("jxq{}", w.tag);
    w.gridmap(&format!(
        "\"{}\" .{prefix}\n\"{}\" .{prefix}\n\"{}\" .{prefix}\n",
        slash_dn(USERS[0]),
        slash_dn(USERS[1]),
        slash_dn(USERS[2])
    ));
    let who = |user: usize, name: &str| {
        let b = w.seal(name, user, &[], "");
        let o = w.launch(&b, &["./run.sh"]);
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let uid_of = |out: &str| -> u32 {
        out.split("uid=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (code, jane, e) = who(0, "j1");
    assert_eq!(code, Some(0), "{e}");
    let (code, john, e) = who(1, "r1");
    assert_eq!(code, Some(0), "{e}");
    let pool_uids: Vec<u32> = w.pool.iter().map(|a| a.uid).collect();
    let (jane, john) = (uid_of(&jane), uid_of(&john));
    assert!(pool_uids.contains(&jane) && pool_uids.contains(&john));
    assert_ne!(jane, john, "two users share a pool account");
    // Jane keeps her lease.
    let (code, again, e) = who(0, "j2");
    assert_eq!(code, Some(0), "{e}");
    assert_eq!(uid_of(&again), jane);
    // The pool has two accounts: a third user is refused, and runs nothing.
    let (code, out, e) = who(2, "m1");
    assert_eq!(code, Some(203), "{e}");
    assert!(e.starts_with("exec.no-mapping: "), "{e}");
    assert!(out.is_empty());
    // The leases are in the gridmapdir, as LCMAPS names them.
    let lease = w
        .path("gridmapdir")
        .join("%2fo%3djobseal%2fcn%3djane%20doe");
    assert_eq!(std::fs::metadata(lease).unwrap().nlink(), 2);
    // The audit record names the lease.
    let audit = w.audit();
    assert_eq!(
        audit[0]["launch"]["lease"],
        "%2fo%3djobseal%2fcn%3djane%20doe"
    );
}

#[test]
fn a_static_fqan_or_dn_map_entry_comes_before_the_grid_mapfile() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.pool[0].name));
    w.configure(&format!(
        "[[map]]\ndn = \"{}\"\naccount = \"{}\"\n",
        slash_dn(USERS[0]),
        w.target.name
    ));
    let b = w.seal("s", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("uid={} ", w.target.uid)));
    assert_eq!(w.audit()[0]["launch"]["mapped_by"], "map dn");
}

#[test]
fn each_built_in_control_denies_what_it_should() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    let dn = slash_dn(USERS[0]);
    let mut n = 0;
    let mut refused_bundles = Vec::new();
    let mut attempt = |gridmap: &str, config: &str| {
        n += 1;
        w.gridmap(gridmap);
        w.configure(config);
        w.seal(&format!("c{n}"), 0, &[], "")
    };
    // A caller not on the whitelist.
    let b = attempt(&format!("\"{dn}\" {}\n", w.target.name), "");
    let o = w.launch_as(&w.target, &b, &["./run.sh"]);
    assert_refused(&o, 203, "exec.caller-not-allowed");
    // Mapped to root, to an account below min_uid, to no account at all.
    let b = attempt(&format!("\"{dn}\" root\n"), "");
    assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.target-uid");
    refused_bundles.push(b);
    let b = attempt(
        &format!("\"{dn}\" {}\n", w.target.name),
        "min_uid = 4000000000\n",
    );
    assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.target-uid");
    refused_bundles.push(b);
    let b = attempt(
        &format!("\"{dn}\" {}\n", w.target.name),
        "min_gid = 4000000000\n",
    );
    assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.target-gid");
    refused_bundles.push(b);
    let b = attempt(&format!("\"{dn}\" nosuchaccount{}\n", w.tag), "");
    assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.no-account");
    refused_bundles.push(b);
    let b = attempt("\"/O=jobseal/CN=Someone Else\" nobody\n", "");
    assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.no-mapping");
    refused_bundles.push(b);
    // None of those spent its job's use: once mapped, each runs.
    w.gridmap(&format!("\"{dn}\" {}\n", w.target.name));
    w.configure("");
    assert_eq!(refused_bundles.len(), 5);
    for b in &refused_bundles {
        let o = w.launch(b, &["./run.sh"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    // The payload: writable by others, setuid, owned by someone else.
    let gridmap = format!("\"{dn}\" {}\n", w.target.name);
    let run_sh = w.path("pilot/job/run.sh");
    for (mode, owner) in [
        (0o757, w.pilot.uid),
        (0o4755, w.pilot.uid),
        (0o755, w.pool[1].uid),
    ] {
        let b = attempt(&gridmap, "");
        std::os::unix::fs::lchown(&run_sh, Some(owner), None).unwrap();
        std::fs::set_permissions(&run_sh, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_refused(&w.launch(&b, &["./run.sh"]), 203, "exec.payload-untrusted");
        std::os::unix::fs::lchown(&run_sh, Some(w.pilot.uid), None).unwrap();
        std::fs::set_permissions(&run_sh, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A descriptor the pilot leaks would reach another account: refused.
    let b = attempt(&gridmap, "");
    let o = without_leaks("exec 7</etc/hostname; ")
        .args(as_account(&w.pilot))
        .arg(w.launcher())
        .arg("./run.sh")
        .current_dir(w.path("pilot/job"))
        .env_clear()
        .env("GLEXEC_CLIENT_CERT", &b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(201), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("exec.descriptor: "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("descriptors [7]"), "{}", stderr(&o));
    // A configuration the pilot could have written is not trusted.
    std::os::unix::fs::lchown(CONFIG, Some(w.pilot.uid), None).unwrap();
    assert_refused(&w.launch(&b, &["./run.sh"]), 202, "config.invalid");
    std::os::unix::fs::lchown(CONFIG, Some(0), None).unwrap();
    // A CA directory someone else can write to is not trusted either.
    std::fs::set_permissions(w.path("ca"), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&w.launch(&b, &["./run.sh"]), 202, "config.invalid");
    std::fs::set_permissions(w.path("ca"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The refusals after the configuration was read are in the audit log.
    let reasons: Vec<String> = w
        .audit()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("permit").to_string())
        .collect();
    // Callers not on the whitelist are not recorded: anyone could flood the
    // shared log.
    assert!(!reasons.iter().any(|r| r == "exec.caller-not-allowed"));
    for code in [
        "exec.target-uid",
        "exec.target-gid",
        "exec.no-account",
        "exec.no-mapping",
        "exec.payload-untrusted",
        "exec.descriptor",
        "config.invalid",
    ] {
        assert!(
            reasons.iter().any(|r| r == code),
            "{code} not in {reasons:?}"
        );
    }
}

#[test]
fn nothing_the_user_signs_reaches_root_and_the_trampoline_is_out_of_reach() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    // A preload library, shipped as a signed input and named in the signed
    // environment: it may load into the payload (as the target), never into
    // anything that runs as root.
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
    std::os::unix::fs::lchown(&so, Some(w.pilot.uid), Some(w.pilot.gid)).unwrap();
    let b = w.seal_with(
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
    // The pilot cannot call the trampoline: it refuses any process whose
    // real uid is not 0, and runs nothing.
    let [setpriv, reuid, regid, groups, dashes] = as_account(&w.pilot);
    let o = Command::new(setpriv)
        .args([reuid, regid, groups, dashes])
        .arg(w.launcher())
        .args([
            "--jobseal-payload",
            "3",
            "0",
            "0",
            "",
            "/bin/sh",
            "/",
            "-",
            "-",
            "sh",
            "--",
            "-c",
            "id -u",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(201), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn the_proxy_copy_is_the_user_s_own_written_as_the_target_where_allowed() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    w.payload(
        "run.sh",
        "#!/bin/sh\nstat -c '%u %a' \"$X509_USER_PROXY\"\necho \"$X509_USER_PROXY\"\n",
    );
    // A user's own proxy chain: the certificates of a bundle (job-bound
    // proxy, user certificate), mode 0600, the pilot's.
    let proxy_of = |user: usize, name: &str| {
        let bundle = std::fs::read_to_string(w.seal(name, user, &[], "")).unwrap();
        let mut certs = String::new();
        let mut inside = false;
        for line in bundle.lines() {
            if line == "-----BEGIN CERTIFICATE-----" {
                inside = true;
            }
            if inside {
                certs.push_str(line);
                certs.push('\n');
            }
            if line == "-----END CERTIFICATE-----" {
                inside = false;
            }
        }
        let p = w.path(&format!("pilot/{name}.proxy.pem"));
        std::fs::write(&p, certs).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::lchown(&p, Some(w.pilot.uid), Some(w.pilot.gid)).unwrap();
        p
    };
    let jane_proxy = proxy_of(0, "jane-proxy");
    let john_proxy = proxy_of(1, "john-proxy");
    // Jane's proxy for Jane's job: written as the target, 0600, in the
    // working directory by default.
    let b = w.seal("p1", 0, &[], "");
    let o = w.launch_env(&b, &["./run.sh"], &[("GLEXEC_SOURCE_PROXY", &jane_proxy)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with(&format!("{} 600\n", w.target.uid)), "{out}");
    assert!(out.contains(&w.path("work").display().to_string()), "{out}");
    // John's proxy for Jane's job: refused (201), and nothing runs.
    let b = w.seal("p2", 0, &[], "");
    let o = w.launch_env(&b, &["./run.sh"], &[("GLEXEC_SOURCE_PROXY", &john_proxy)]);
    assert_refused(&o, 201, "exec.proxy");
    // A destination of the pilot's choosing outside the working directory:
    // refused before anything is written.
    let b = w.seal("p3", 0, &[], "");
    let victim = w.path("pilot/victim");
    let o = w.launch_env(
        &b,
        &["./run.sh"],
        &[
            ("GLEXEC_SOURCE_PROXY", &jane_proxy),
            ("GLEXEC_TARGET_PROXY", &victim),
        ],
    );
    assert_refused(&o, 201, "exec.proxy");
    assert!(!victim.exists());
}

#[test]
fn an_input_the_pilot_cannot_read_is_refused_not_copied_as_root() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    let b = w.seal("s", 0, &[], "");
    // The signed input replaced by a link to a root-only file.
    let input = w.path("pilot/job/input.txt");
    std::fs::remove_file(&input).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &input).unwrap();
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 201, "exec.workdir");
    assert!(
        !stderr(&o).contains("sha256"),
        "a digest leaked: {}",
        stderr(&o)
    );
}

#[test]
fn a_ca_without_a_namespace_policy_maps_nobody() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    for e in std::fs::read_dir(w.path("ca")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "namespaces") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let b = w.seal("n", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_eq!(o.status.code(), Some(203), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("chain.namespace"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn a_payload_that_cannot_be_executed_is_the_launcher_s_126_not_the_payload_s() {
    if !root_or_skip() {
        return;
    }
    let w = World::new();
    w.gridmap(&format!("\"{}\" {}\n", slash_dn(USERS[0]), w.target.name));
    // Signed, admitted, but its interpreter does not exist: the exec fails
    // in the trampoline, after the identity switch.
    w.payload("run.sh", "#!/nonexistent/interpreter\n");
    let b = w.seal("x", 0, &[], "");
    let o = w.launch(&b, &["./run.sh"]);
    assert_refused(&o, 126, "exec.not-executable");
}

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr
)]
//! Interoperability tests: jobseal against the real grid middleware shipped by Debian
//! (OpenSSL, Globus proxy utilities, VOMS clients, LCMAPS verify-proxy, XRootD).
//!
//! Every PKI is made with the `openssl` command-line tool in a temporary directory. Each test
//! first checks the tools it needs (`peers`, from `jobseal-testkit`): one that is not
//! installed makes the test print `SKIPPED <test>: needs <package> (apt-get install ...)` and
//! return under plain `cargo test`, and fails it under `JOBSEAL_REQUIRE_PEERS=1`
//! (`scripts/test`, CI); never a silent skip. Every external command runs under a timeout.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

#[allow(dead_code)]
#[path = "../../crates/jobseal-testkit/src/peers.rs"]
mod peers;

/// The test peers: (program, Debian package).
const OPENSSL: (&str, &str) = ("openssl", "openssl");
const GLOBUS: (&str, &str) = ("grid-proxy-init", "globus-proxy-utils");
const VOMS: (&str, &str) = ("voms-proxy-fake", "voms-clients");
const VERIFY_PROXY: (&str, &str) = ("verify-proxy-tool", "lcmaps-plugins-verify-proxy");
const XROOTD: (&str, &str) = ("xrootd", "xrootd-server");
const XRDFS: (&str, &str) = ("xrdfs", "xrootd-client");

const JOBSEAL: &str = env!("CARGO_BIN_EXE_jobseal");
const USER_DN: &str = "/DC=org/DC=example/CN=Jane Doe";
const CA_DN: &str = "/DC=org/DC=example/CN=Example Test CA";
const AA_DN: &str = "/DC=org/DC=example/CN=voms.example.org";
const AA_HOST: &str = "voms.example.org";
const VO: &str = "testvo";
const FQAN: &str = "/testvo/Role=NULL/Capability=NULL";
const TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

/// The result of one external command.
#[derive(Debug)]
struct Out {
    /// `None` when killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together, for matching messages wherever a tool prints them.
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert!(self.success(), "{} failed:\n{self}", self.what);
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd` to completion, feeding `stdin`, killing it (and failing the test) after `timeout`.
#[track_caller]
fn run_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Out {
    let what = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
        drop(pipe);
    }
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    Out {
        code: status.code(),
        stdout,
        stderr,
        what,
    }
}

#[track_caller]
fn run(cmd: &mut Command) -> Out {
    run_timeout(cmd, None, TIMEOUT)
}

/// The full path of `tool`, or a test failure naming the Debian package that provides it.
#[track_caller]
fn require(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    for dir in std::env::split_paths(&path).chain(extra) {
        let candidate = dir.join(tool);
        let executable = fs::metadata(&candidate)
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if executable {
            return candidate;
        }
    }
    panic!("missing {tool}: apt-get install {package}");
}

fn openssl() -> PathBuf {
    require("openssl", "openssl")
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The PEM blocks of `text`, as (label, whole block including the BEGIN/END lines).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_owned(), format!("{line}\n")));
        } else if let Some((label, mut body)) = current.take() {
            body.push_str(line);
            body.push('\n');
            if line.starts_with("-----END ") {
                blocks.push((label, body));
            } else {
                current = Some((label, body));
            }
        }
    }
    blocks
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// A test PKI made with the openssl CLI
// ---------------------------------------------------------------------------------------------

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[user_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
authorityKeyIdentifier = keyid
[host_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost
authorityKeyIdentifier = keyid
[aa_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:voms.example.org
authorityKeyIdentifier = keyid
";

#[derive(Debug)]
struct Pki {
    /// Owns every file of the test; removed on drop.
    tmp: TempDir,
    cnf: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    /// IGTF-style CA directory: `<hash>.0`.
    ca_dir: PathBuf,
    user_cert: PathBuf,
    user_key: PathBuf,
    aa_cert: PathBuf,
    aa_key: PathBuf,
    vomsdir: PathBuf,
    /// `$HOME` of every tool we run: keeps them away from the real `~/.globus`.
    home: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::Builder::new()
            .prefix("jobseal-interop-")
            .tempdir()
            .unwrap();
        let root = tmp.path().to_path_buf();
        let cnf = root.join("openssl.cnf");
        fs::write(&cnf, OPENSSL_CNF).unwrap();
        let home = root.join("home");
        fs::create_dir(&home).unwrap();

        let ca_cert = root.join("ca.pem");
        let ca_key = root.join("ca.key");
        run(Command::new(openssl())
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
            ])
            .args(["-subj", CA_DN])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert)
            .arg("-config")
            .arg(&cnf)
            .args(["-extensions", "ca_ext"]))
        .assert_ok();
        let hash = run(Command::new(openssl())
            .args(["x509", "-hash", "-noout", "-in"])
            .arg(&ca_cert))
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
        assert_eq!(hash.len(), 8, "unexpected subject hash {hash:?}");
        let ca_dir = root.join("certificates");
        fs::create_dir(&ca_dir).unwrap();
        fs::copy(&ca_cert, ca_dir.join(format!("{hash}.0"))).unwrap();

        let pki = Pki {
            user_cert: root.join("usercert.pem"),
            user_key: root.join("userkey.pem"),
            aa_cert: root.join("aacert.pem"),
            aa_key: root.join("aakey.pem"),
            vomsdir: root.join("vomsdir"),
            tmp,
            cnf,
            ca_cert,
            ca_key,
            ca_dir,
            home,
        };
        pki.issue(USER_DN, "user_ext", 0x1001, &pki.user_cert, &pki.user_key);
        pki.issue(AA_DN, "aa_ext", 0x1002, &pki.aa_cert, &pki.aa_key);

        let vo_dir = pki.vomsdir.join(VO);
        fs::create_dir_all(&vo_dir).unwrap();
        fs::write(
            vo_dir.join(format!("{AA_HOST}.lsc")),
            format!("{AA_DN}\n{CA_DN}\n"),
        )
        .unwrap();
        pki
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// An RSA-2048 key and a certificate for `subject` signed by the CA.
    fn issue(&self, subject: &str, ext: &str, serial: u32, cert: &Path, key: &Path) {
        let csr = key.with_extension("csr");
        run(Command::new(openssl())
            .args([
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", subject,
            ])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(&csr)
            .arg("-config")
            .arg(&self.cnf))
        .assert_ok();
        set_mode(key, 0o600);
        run(Command::new(openssl())
            .args([
                "x509",
                "-req",
                "-sha256",
                "-days",
                "30",
                "-set_serial",
                &serial.to_string(),
            ])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.ca_cert)
            .arg("-CAkey")
            .arg(&self.ca_key)
            .arg("-extfile")
            .arg(&self.cnf)
            .args(["-extensions", ext])
            .arg("-out")
            .arg(cert))
        .assert_ok();
    }

    /// A command with a controlled grid environment: our CA dir and vomsdir, a scratch `$HOME`,
    /// and no inherited user credential.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", &self.home)
            .env("X509_CERT_DIR", &self.ca_dir)
            .env("X509_VOMS_DIR", &self.vomsdir)
            .env("X509_USER_CERT", self.home.join("no-such-usercert.pem"))
            .env("X509_USER_KEY", self.home.join("no-such-userkey.pem"))
            .env_remove("X509_USER_PROXY")
            .env_remove("X509_CERT_FILE");
        c
    }

    fn jobseal(&self) -> Command {
        self.cmd(JOBSEAL)
    }

    /// `grid-proxy-init -rfc` from the user's certificate and (unencrypted) key.
    fn grid_proxy_init(&self, out: &Path, extra: &[&str]) -> Out {
        let tool = require("grid-proxy-init", "globus-proxy-utils");
        run(self
            .cmd(tool)
            .args(["-rfc", "-q", "-cert"])
            .arg(&self.user_cert)
            .arg("-key")
            .arg(&self.user_key)
            .arg("-out")
            .arg(out)
            .args(extra))
    }

    /// `voms-proxy-fake -rfc` with a `testvo` attribute certificate signed by our AA.
    fn voms_proxy_fake(&self, out: &Path, extra: &[&str]) -> Out {
        let tool = require("voms-proxy-fake", "voms-clients");
        run(self
            .cmd(tool)
            .args(["-rfc", "-q", "-bits", "2048", "-cert"])
            .arg(&self.user_cert)
            .arg("-key")
            .arg(&self.user_key)
            .arg("-out")
            .arg(out)
            .args(["-voms", VO, "-hostcert"])
            .arg(&self.aa_cert)
            .arg("-hostkey")
            .arg(&self.aa_key)
            .args(["-uri", &format!("{AA_HOST}:15000"), "-fqan", FQAN])
            .args(extra))
    }

    /// A job directory `name/` with `run.sh`, `data/in.txt` and `job.toml`.
    fn job(&self, name: &str, script: &str, args: &[&str]) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir_all(dir.join("data")).unwrap();
        let exe = dir.join("run.sh");
        fs::write(&exe, script).unwrap();
        set_mode(&exe, 0o755);
        fs::write(dir.join("data/in.txt"), format!("input of {name}\n")).unwrap();
        let args_toml: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        fs::write(
            dir.join("job.toml"),
            format!(
                "executable = \"run.sh\"\narguments = [{}]\ninputs = [\"data/in.txt\"]\n\
                 vo = \"{VO}\"\nvalid = \"6h\"\n\n[environment]\nJOB_NAME = \"{name}\"\n",
                args_toml.join(", ")
            ),
        )
        .unwrap();
        dir
    }

    /// `jobseal sign JOB.toml --out BUNDLE` plus the credential arguments; must succeed.
    fn sign(&self, job_dir: &Path, bundle: &Path, cred: &[&std::ffi::OsStr]) {
        run(self
            .jobseal()
            .arg("sign")
            .arg(job_dir.join("job.toml"))
            .arg("--out")
            .arg(bundle)
            .args(cred))
        .assert_ok();
        assert!(
            bundle.is_file(),
            "jobseal sign wrote no {}",
            bundle.display()
        );
    }

    fn sign_with_proxy(&self, job_dir: &Path, bundle: &Path, proxy: &Path) {
        self.sign(job_dir, bundle, &["--proxy".as_ref(), proxy.as_os_str()]);
    }

    fn sign_with_cert_key(&self, job_dir: &Path, bundle: &Path) {
        self.sign(
            job_dir,
            bundle,
            &[
                "--cert".as_ref(),
                self.user_cert.as_os_str(),
                "--key".as_ref(),
                self.user_key.as_os_str(),
            ],
        );
    }

    /// `jobseal verify BUNDLE --ca-dir --voms-dir --job-dir [--json] -- ./run.sh ARGS`, run in
    /// the job directory.
    fn verify(&self, bundle: &Path, job_dir: &Path, json: bool, args: &[&str]) -> Out {
        let mut c = self.jobseal();
        c.current_dir(job_dir)
            .arg("verify")
            .arg(bundle)
            .arg("--ca-dir")
            .arg(&self.ca_dir)
            .arg("--voms-dir")
            .arg(&self.vomsdir)
            .arg("--job-dir")
            .arg(job_dir);
        if json {
            c.arg("--json");
        }
        c.arg("--").arg("./run.sh").args(args);
        run(&mut c)
    }

    /// `jobseal proxy --out OUT` plus the credential arguments; must succeed.
    fn jobseal_proxy(&self, out: &Path, cred: &[&std::ffi::OsStr]) {
        run(self.jobseal().arg("proxy").arg("--out").arg(out).args(cred)).assert_ok();
    }

    fn jobseal_proxy_from_cert_key(&self, out: &Path) {
        self.jobseal_proxy(
            out,
            &[
                "--cert".as_ref(),
                self.user_cert.as_os_str(),
                "--key".as_ref(),
                self.user_key.as_os_str(),
            ],
        );
    }

    /// `openssl verify -allow_proxy_certs -CApath CADIR -untrusted CHAIN FILE`.
    fn openssl_verify(&self, untrusted: &Path, file: &Path) -> Out {
        run(Command::new(openssl())
            .args(["verify", "-allow_proxy_certs", "-CApath"])
            .arg(&self.ca_dir)
            .arg("-untrusted")
            .arg(untrusted)
            .arg(file))
    }

    /// `verify-proxy-tool FILE` (the file must be mode 0600).
    fn verify_proxy_tool(&self, file: &Path) -> Out {
        let tool = require("verify-proxy-tool", "lcmaps-plugins-verify-proxy");
        run(self.cmd(tool).arg(file))
    }

    fn grid_proxy_info(&self, file: &Path, extra: &[&str]) -> Out {
        let tool = require("grid-proxy-info", "globus-proxy-utils");
        run(self.cmd(tool).arg("-f").arg(file).args(extra))
    }

    /// A file holding every certificate of `file` after the first (the issuer chain).
    fn chain_of(&self, file: &Path, out_name: &str) -> PathBuf {
        let text = fs::read_to_string(file).unwrap();
        let chain: String = pem_blocks(&text)
            .into_iter()
            .filter(|(label, _)| label == "CERTIFICATE")
            .skip(1)
            .map(|(_, block)| block)
            .collect();
        assert!(
            !chain.is_empty(),
            "{} holds no issuer chain",
            file.display()
        );
        let out = self.path(out_name);
        fs::write(&out, chain).unwrap();
        out
    }
}

fn parse_json(out: &Out) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

const SCRIPT: &str = "#!/bin/sh\necho \"analysing $*\"\n";

/// Asserts a --json verify decision is a permit for Jane Doe and returns the JSON.
#[track_caller]
fn assert_permit_for_user(out: &Out) -> Value {
    assert_eq!(out.code, Some(0), "verify did not permit:\n{out}");
    let v = parse_json(out);
    assert_eq!(v["decision"], "permit", "{out}");
    assert_eq!(v["reason"], Value::Null, "{out}");
    assert_eq!(v["end_entity"], USER_DN, "{out}");
    assert_eq!(v["ca"], CA_DN, "{out}");
    v
}

/// Asserts verify denied with exit 1 and `code: ...` on stderr.
#[track_caller]
fn assert_deny(out: &Out, code: &str) {
    assert_eq!(out.code, Some(1), "verify did not exit 1:\n{out}");
    assert!(
        out.stderr.trim_start().starts_with(&format!("{code}: ")),
        "expected reason `{code}` on stderr:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// (a) signing from credentials made by the real tools
// ---------------------------------------------------------------------------------------------

#[test]
fn a1_grid_proxy_init_proxy_signs_and_verify_permits_with_end_entity_dn() {
    if !peers::require_all(&[OPENSSL, GLOBUS]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("gpi-proxy.pem");
    pki.grid_proxy_init(&proxy, &[]).assert_ok();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_proxy(&job, &bundle, &proxy);

    let out = pki.verify(&bundle, &job, true, &["--events", "10"]);
    let v = assert_permit_for_user(&out);
    // The job-bound proxy hangs under the grid-proxy-init proxy, i.e. two proxy levels below the user.
    let subject = v["subject"].as_str().unwrap();
    assert!(subject.starts_with(&format!("{USER_DN}/CN=")), "{out}");
    assert_eq!(subject.matches("/CN=").count(), 3, "subject {subject}");
    println!(
        "a1: grid-proxy-init -rfc -> jobseal sign --proxy -> jobseal verify --json: permit, end_entity {}",
        v["end_entity"]
    );
}

#[test]
fn a2_voms_proxy_fake_proxy_signs_verify_permits_and_verifies_the_voms_ac() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("voms-proxy.pem");
    pki.voms_proxy_fake(&proxy, &[]).assert_ok();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_proxy(&job, &bundle, &proxy);

    // The vomsdir's LSC describes our AA and its CA: voms-proxy-fake's AC
    // (holder = the user's EEC, the AA certificate carried inside) verifies.
    let out = pki.verify(&bundle, &job, true, &["--events", "10"]);
    let v = assert_permit_for_user(&out);
    let voms = v["voms"]
        .as_array()
        .unwrap_or_else(|| panic!("no voms array:\n{out}"));
    assert_eq!(voms.len(), 1, "{out}");
    assert_eq!(voms[0]["vo"], VO, "{out}");
    assert_eq!(voms[0]["issuer"], AA_DN, "{out}");
    assert_eq!(voms[0]["verified"], true, "{out}");
    assert_eq!(voms[0]["error"], Value::Null, "{out}");
    let fqans: Vec<&str> = voms[0]["fqans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        fqans.first(),
        Some(&FQAN),
        "primary FQAN {FQAN} missing:\n{out}"
    );

    // Honest both ways: an LSC naming another AA, or none at all, leaves the
    // job permitted but the AC untrusted and without attributes.
    let lsc = pki.vomsdir.join(VO).join(format!("{AA_HOST}.lsc"));
    for (content, code) in [
        (
            Some(format!(
                "/DC=org/DC=example/CN=other.example.org\n{CA_DN}\n"
            )),
            "voms.lsc-mismatch",
        ),
        (None, "voms.no-lsc"),
    ] {
        match &content {
            Some(text) => fs::write(&lsc, text).unwrap(),
            None => fs::remove_file(&lsc).unwrap(),
        }
        let out = pki.verify(&bundle, &job, true, &["--events", "10"]);
        let v = assert_permit_for_user(&out);
        let entry = &v["voms"][0];
        assert_eq!(entry["verified"], false, "{out}");
        assert_eq!(entry["error"], code, "{out}");
        assert_eq!(entry["fqans"], serde_json::json!([]), "{out}");
        assert_eq!(entry["vo"], VO, "{out}");
    }
    fs::write(&lsc, format!("{AA_DN}\n{CA_DN}\n")).unwrap();

    let text = run(pki.jobseal().arg("inspect").arg(&bundle))
        .assert_ok()
        .stdout
        .clone();
    let vo_line = text
        .lines()
        .find(|l| l.starts_with("VO ") || l.starts_with("VO:"))
        .unwrap_or_else(|| panic!("jobseal inspect shows no VO line:\n{text}"));
    assert_eq!(vo_line.split(':').nth(1).map(str::trim), Some(VO), "{text}");
    assert!(
        text.contains(FQAN),
        "jobseal inspect does not show the FQAN:\n{text}"
    );
    let ij = parse_json(run(pki.jobseal().args(["inspect", "--json"]).arg(&bundle)).assert_ok());
    assert_eq!(ij["voms"][0]["vo"], VO, "{ij}");
    println!(
        "a2: voms-proxy-fake -rfc -voms {VO} -> jobseal sign --proxy -> verify: permit, voms vo {VO} fqan {FQAN} verified:true (wrong LSC: voms.lsc-mismatch, none: voms.no-lsc, both still permit); inspect shows VO {VO}"
    );
}

#[test]
fn a3_sign_with_user_cert_and_rsa_key_ps256_manifest_and_verify_permits() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_cert_key(&job, &bundle);

    let out = pki.verify(&bundle, &job, true, &["--events", "10"]);
    let v = assert_permit_for_user(&out);
    assert_eq!(
        v["issuer"], USER_DN,
        "the job-bound proxy is issued by the EEC:\n{out}"
    );

    let ij = parse_json(run(pki.jobseal().args(["inspect", "--json"]).arg(&bundle)).assert_ok());
    assert_eq!(ij["job"]["algorithm"], "PS256", "{ij}");
    assert_eq!(ij["private_key"], false, "{ij}");
    assert!(
        !fs::read_to_string(&bundle).unwrap().contains("PRIVATE KEY"),
        "the bundle holds a private key"
    );
    println!(
        "a3: jobseal sign --cert --key (RSA-2048) -> PS256 manifest, no private key -> verify: permit for {USER_DN}"
    );
}

// ---------------------------------------------------------------------------------------------
// (b) jobseal proxy accepted by the real tools
// ---------------------------------------------------------------------------------------------

/// The checks of (b) on one `jobseal proxy` output; returns the grid-proxy-info output.
fn check_plain_proxy_accepted(pki: &Pki, proxy: &Path, untrusted: &Path) -> Out {
    assert_eq!(
        mode_of(proxy),
        0o600,
        "jobseal proxy output is not mode 0600"
    );
    let text = fs::read_to_string(proxy).unwrap();
    let labels: Vec<String> = pem_blocks(&text).into_iter().map(|(l, _)| l).collect();
    assert!(
        labels.len() >= 3,
        "expected cert, key, chain; got {labels:?}"
    );
    assert_eq!(labels[0], "CERTIFICATE", "{labels:?}");
    assert!(labels[1].ends_with("PRIVATE KEY"), "{labels:?}");

    let ov = pki.openssl_verify(untrusted, proxy);
    assert!(ov.success(), "openssl verify rejected the proxy:\n{ov}");
    assert!(ov.stdout.trim_end().ends_with(": OK"), "{ov}");

    let vpt = pki.verify_proxy_tool(proxy);
    assert!(
        vpt.success(),
        "verify-proxy-tool rejected the proxy:\n{vpt}"
    );

    let gpi = pki.grid_proxy_info(proxy, &[]);
    gpi.assert_ok();
    let identity = gpi
        .stdout
        .lines()
        .find(|l| l.starts_with("identity"))
        .unwrap_or_else(|| panic!("no identity line:\n{gpi}"));
    assert_eq!(
        identity.split_once(':').map(|(_, v)| v.trim()),
        Some(USER_DN),
        "{gpi}"
    );
    let kind = gpi
        .stdout
        .lines()
        .find(|l| l.starts_with("type"))
        .unwrap_or_else(|| panic!("no type line:\n{gpi}"));
    assert_eq!(
        kind.split_once(':').map(|(_, v)| v.trim()),
        Some("RFC 3820 compliant impersonation proxy"),
        "{gpi}"
    );
    gpi
}

#[test]
fn b1_jobseal_proxy_accepted_by_openssl_verify_proxy_tool_and_grid_proxy_info() {
    if !peers::require_all(&[OPENSSL, GLOBUS, VERIFY_PROXY]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("jobseal-proxy.pem");
    pki.jobseal_proxy_from_cert_key(&proxy);
    check_plain_proxy_accepted(&pki, &proxy, &pki.user_cert);
    println!(
        "b1: jobseal proxy --cert --key: mode 0600; openssl verify -allow_proxy_certs OK; verify-proxy-tool exit 0; grid-proxy-info: identity {USER_DN}, RFC 3820 impersonation proxy"
    );
}

#[test]
fn b2_jobseal_proxy_from_grid_proxy_init_proxy_accepted_by_openssl_verify_proxy_tool_and_grid_proxy_info()
 {
    if !peers::require_all(&[OPENSSL, GLOBUS, VERIFY_PROXY]) {
        return;
    }
    let pki = Pki::new();
    let gpi_proxy = pki.path("gpi-proxy.pem");
    pki.grid_proxy_init(&gpi_proxy, &[]).assert_ok();
    let proxy = pki.path("jobseal-proxy.pem");
    pki.jobseal_proxy(&proxy, &["--proxy".as_ref(), gpi_proxy.as_os_str()]);
    // -untrusted: the user certificate and the grid-proxy-init proxy certificate.
    let chain = pki.chain_of(&proxy, "chain.pem");
    let info = check_plain_proxy_accepted(&pki, &proxy, &chain);

    let parent = pki
        .grid_proxy_info(&gpi_proxy, &["-subject"])
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    let issuer = pki
        .grid_proxy_info(&proxy, &["-issuer"])
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(
        issuer, parent,
        "the jobseal proxy is not issued by the grid-proxy-init proxy:\n{info}"
    );
    println!(
        "b2: grid-proxy-init -rfc -> jobseal proxy --proxy (issuer {issuer}): openssl verify OK; verify-proxy-tool exit 0; grid-proxy-info identity {USER_DN}"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) the job-bound proxy is refused by standard proxy verifiers
// ---------------------------------------------------------------------------------------------

#[test]
fn c_job_bound_bundle_rejected_by_openssl_and_verify_proxy_tool_unhandled_critical_extension_plain_proxy_accepted()
 {
    if !peers::require_all(&[OPENSSL, GLOBUS, VERIFY_PROXY]) {
        return;
    }
    let pki = Pki::new();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let gpi_proxy = pki.path("gpi-proxy.pem");
    pki.grid_proxy_init(&gpi_proxy, &[]).assert_ok();

    // Two bundles: issued by the EEC directly, and under a grid-proxy-init proxy.
    let direct = pki.path("direct.bundle.pem");
    pki.sign_with_cert_key(&job, &direct);
    let via_gpi = pki.path("via-gpi.bundle.pem");
    pki.sign_with_proxy(&job, &via_gpi, &gpi_proxy);
    // Controls: plain proxies of the same user, issued the same two ways.
    let plain_direct = pki.path("plain-direct.pem");
    pki.jobseal_proxy_from_cert_key(&plain_direct);
    let plain_via_gpi = pki.path("plain-via-gpi.pem");
    pki.jobseal_proxy(&plain_via_gpi, &["--proxy".as_ref(), gpi_proxy.as_os_str()]);

    for (bundle, plain) in [(&direct, &plain_direct), (&via_gpi, &plain_via_gpi)] {
        // The bundle verifies with jobseal itself (it is a good bundle) ...
        assert_permit_for_user(&pki.verify(bundle, &job, true, &["--events", "10"]));

        // ... but not with OpenSSL, at depth 0, because of the critical extension.
        let chain = pki.chain_of(bundle, "bundle-chain.pem");
        let ov = pki.openssl_verify(&chain, bundle);
        assert!(
            !ov.success(),
            "openssl verify accepted the job-bound proxy:\n{ov}"
        );
        assert!(
            ov.all()
                .contains("error 34 at 0 depth lookup: unhandled critical extension"),
            "{ov}"
        );

        // verify-proxy-tool: same refusal (bundle carries no key, so it warns about that too).
        set_mode(bundle, 0o600);
        let vpt = pki.verify_proxy_tool(bundle);
        assert!(
            !vpt.success(),
            "verify-proxy-tool accepted the job-bound proxy:\n{vpt}"
        );
        assert!(
            vpt.all().contains("error 34: unhandled critical extension"),
            "{vpt}"
        );
        assert!(vpt.all().contains("Failed at depth: 0"), "{vpt}");

        // Control: the plain proxy of the same user, same chain, is accepted by both.
        let chain = pki.chain_of(plain, "plain-chain.pem");
        let ov = pki.openssl_verify(&chain, plain);
        assert!(
            ov.success() && ov.stdout.contains(": OK"),
            "control rejected by openssl:\n{ov}"
        );
        let vpt = pki.verify_proxy_tool(plain);
        assert!(
            vpt.success(),
            "control rejected by verify-proxy-tool:\n{vpt}"
        );
    }

    // The extension OpenSSL does not handle is critical in the job-bound certificate only.
    let text = run(Command::new(openssl())
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&direct))
    .assert_ok()
    .stdout
    .clone();
    let ctrl = run(Command::new(openssl())
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&plain_direct))
    .assert_ok()
    .stdout
    .clone();
    let unknown_critical = |t: &str| {
        t.lines()
            .filter(|l| {
                l.trim_start().starts_with("1.3.6.1.4.1.") && l.trim_end().ends_with("critical")
            })
            .count()
    };
    assert!(
        unknown_critical(&text) >= 1,
        "no unknown critical extension:\n{text}"
    );
    assert_eq!(
        unknown_critical(&ctrl),
        0,
        "plain proxy has an unknown critical extension:\n{ctrl}"
    );
    println!(
        "c: job-bound bundles (from cert/key and from grid-proxy-init) refused by openssl verify (error 34 at depth 0) and verify-proxy-tool (error 34: unhandled critical extension); plain proxies of the same user accepted by both"
    );
}

// ---------------------------------------------------------------------------------------------
// (d) XRootD GSI
// ---------------------------------------------------------------------------------------------

/// A running xrootd; killed (SIGKILL) and reaped on drop, whatever the test outcome.
#[derive(Debug)]
struct XrootdServer {
    child: Child,
    log: PathBuf,
}

impl XrootdServer {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for XrootdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn current_uid() -> u32 {
    let out = run(Command::new("id").arg("-u")).assert_ok().stdout.clone();
    out.trim().parse().unwrap()
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_recursive(&e.unwrap().path(), uid, gid);
        }
    }
}

#[test]
fn d_xrootd_gsi_accepts_plain_jobseal_proxy_and_rejects_bundle_without_private_key() {
    if !peers::require_all(&[OPENSSL, XROOTD, XRDFS]) {
        return;
    }
    let xrootd = require("xrootd", "xrootd-server");
    let xrdfs = require("xrdfs", "xrootd-client");
    let xrdcp = require("xrdcp", "xrootd-client");
    let pki = Pki::new();

    // XRootD 5.5 has no listen-address directive: it binds the wildcard address, and
    // `xrd.allow host localhost` makes it refuse every connection not from the loopback
    // interface ("XrdAccept: Unable to accept TCP connection from ...; permission denied").
    //
    // Server files, owned by the (non-root) user xrootd runs as.
    let srv = pki.path("srv");
    let export = srv.join("export");
    fs::create_dir_all(&export).unwrap();
    fs::create_dir_all(srv.join("admin")).unwrap();
    fs::write(export.join("hello.txt"), "hello from xrootd\n").unwrap();
    let srv_ca = srv.join("certificates");
    fs::create_dir(&srv_ca).unwrap();
    for name in list_dir(&pki.ca_dir) {
        fs::copy(pki.ca_dir.join(&name), srv_ca.join(&name)).unwrap();
    }
    let host_cert = srv.join("hostcert.pem");
    let host_key = srv.join("hostkey.pem");
    pki.issue(
        "/DC=org/DC=example/CN=localhost",
        "host_ext",
        0x1003,
        &host_cert,
        &host_key,
    );
    let port = free_port();
    let cfg = srv.join("xrootd.cfg");
    fs::write(
        &cfg,
        format!(
            "xrd.port {port}\n\
             xrd.allow host localhost\n\
             all.export /\n\
             oss.localroot {export}\n\
             all.adminpath {admin}\n\
             all.pidpath {admin}\n\
             xrootd.seclib libXrdSec.so\n\
             sec.protocol gsi -certdir:{ca} -cert:{cert} -key:{key} -gmapopt:0 -crl:0 -vomsat:0 -dlgpxy:0\n\
             sec.protbind * only gsi\n",
            export = export.display(),
            admin = srv.join("admin").display(),
            ca = srv_ca.display(),
            cert = host_cert.display(),
            key = host_key.display(),
        ),
    )
    .unwrap();

    let uid = current_uid();
    let mut cmd = if uid == 0 {
        // Never run the server as root: drop to nobody (65534), which must reach the files.
        let setpriv = require("setpriv", "util-linux");
        chown_recursive(&srv, 65534, 65534);
        set_mode(pki.root(), 0o711);
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&xrootd);
        c
    } else {
        Command::new(&xrootd)
    };
    let log = pki.path("xrootd.log");
    let log_file = fs::File::create(&log).unwrap();
    cmd.arg("-c")
        .arg(&cfg)
        .env("HOME", &srv)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let mut server = XrootdServer {
        child: cmd.spawn().unwrap(),
        log,
    };

    // Wait (bounded) for the port to accept and the daemon to finish initialising.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            panic!("xrootd exited ({st}) during start-up:\n{}", server.log());
        }
        let log_text = server.log();
        let initialised = log_text
            .lines()
            .any(|l| l.starts_with("------ xrootd ") && l.contains("initialization completed"));
        if initialised && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "xrootd not ready after 30 s:\n{log_text}"
        );
        thread::sleep(Duration::from_millis(100));
    }

    let url = format!("root://localhost:{port}");
    let client = |proxy: &Path, program: &Path| {
        let mut c = pki.cmd(program);
        c.env("X509_USER_PROXY", proxy)
            .env("XRD_CONNECTIONWINDOW", "10")
            .env("XRD_CONNECTIONRETRY", "1")
            .env("XRD_REQUESTTIMEOUT", "30")
            .env("XRD_STREAMTIMEOUT", "30");
        c
    };

    // A plain jobseal proxy (RSA key) authenticates.
    let proxy = pki.path("jobseal-proxy.pem");
    pki.jobseal_proxy_from_cert_key(&proxy);
    let ls = run_timeout(
        client(&proxy, &xrdfs).arg(&url).args(["ls", "/"]),
        None,
        Duration::from_secs(60),
    );
    assert!(
        ls.success(),
        "xrdfs ls with the plain proxy failed:\n{ls}\n--- server log ---\n{}",
        server.log()
    );
    assert!(ls.stdout.lines().any(|l| l.trim() == "/hello.txt"), "{ls}");
    let copy = pki.path("copied.txt");
    let cp = run_timeout(
        client(&proxy, &xrdcp)
            .args(["-f", "-s", &format!("{url}//hello.txt")])
            .arg(&copy),
        None,
        Duration::from_secs(60),
    );
    assert!(
        cp.success(),
        "xrdcp with the plain proxy failed:\n{cp}\n--- server log ---\n{}",
        server.log()
    );
    assert_eq!(fs::read_to_string(&copy).unwrap(), "hello from xrootd\n");

    // The bundle (no private key) does not.
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_cert_key(&job, &bundle);
    set_mode(&bundle, 0o600);
    let denied = run_timeout(
        client(&bundle, &xrdfs)
            .env("XrdSecDEBUG", "1")
            .arg(&url)
            .args(["ls", "/"]),
        None,
        Duration::from_secs(60),
    );
    assert!(
        matches!(denied.code, Some(c) if c != 0),
        "xrdfs ls with the keyless bundle did not fail cleanly:\n{denied}"
    );
    assert!(!denied.stdout.contains("hello.txt"), "{denied}");
    assert!(denied.all().contains("Auth failed"), "{denied}");
    assert!(
        denied.all().contains("invalid key pair"),
        "the GSI client did not refuse the bundle for want of a key pair:\n{denied}"
    );

    assert!(
        server.child.try_wait().unwrap().is_none(),
        "xrootd died:\n{}",
        server.log()
    );
    drop(server);
    println!(
        "d: xrootd (GSI only, port {port}, loopback clients only, uid {}): xrdfs ls + xrdcp with a jobseal proxy OK; with the job bundle: Auth failed (invalid key pair)",
        if uid == 0 { 65534 } else { uid }
    );
}

// ---------------------------------------------------------------------------------------------
// (e) tampering
// ---------------------------------------------------------------------------------------------

#[test]
fn e1_executable_changed_after_signing_denied_with_executable_mismatch() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_cert_key(&job, &bundle);
    assert_permit_for_user(&pki.verify(&bundle, &job, true, &["--events", "10"]));

    fs::write(job.join("run.sh"), format!("{SCRIPT}rm -rf \"$HOME\"\n")).unwrap();
    let out = pki.verify(&bundle, &job, false, &["--events", "10"]);
    assert_deny(&out, "payload.executable-mismatch");
    println!(
        "e1: executable rewritten after signing -> verify exit 1, payload.executable-mismatch"
    );
}

#[test]
fn e2_arguments_changed_denied_with_arguments_mismatch() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let bundle = pki.path("job.bundle.pem");
    pki.sign_with_cert_key(&job, &bundle);
    assert_permit_for_user(&pki.verify(&bundle, &job, true, &["--events", "10"]));

    for args in [
        &["--events", "1000000"][..],
        &["--events", "10", "--extra"][..],
        &["--events"][..],
    ] {
        let out = pki.verify(&bundle, &job, false, args);
        assert_deny(&out, "payload.arguments-mismatch");
    }
    println!("e2: arguments changed/added/removed -> verify exit 1, payload.arguments-mismatch");
}

#[test]
fn e3_manifest_of_another_job_spliced_in_denied_with_digest_mismatch() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let job_a = pki.job("job-a", SCRIPT, &["--events", "10"]);
    let job_b = pki.job("job-b", "#!/bin/sh\necho other job\n", &["--other"]);
    let bundle_a = pki.path("a.bundle.pem");
    let bundle_b = pki.path("b.bundle.pem");
    pki.sign_with_cert_key(&job_a, &bundle_a);
    pki.sign_with_cert_key(&job_b, &bundle_b);
    assert_permit_for_user(&pki.verify(&bundle_a, &job_a, true, &["--events", "10"]));
    assert_permit_for_user(&pki.verify(&bundle_b, &job_b, true, &["--other"]));

    // A's certificates (its job-bound proxy) with B's manifest (validly signed by the same user).
    let text_a = fs::read_to_string(&bundle_a).unwrap();
    let text_b = fs::read_to_string(&bundle_b).unwrap();
    let certs_a: String = pem_blocks(&text_a)
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, b)| b)
        .collect();
    let manifest_b: Vec<String> = pem_blocks(&text_b)
        .into_iter()
        .filter(|(l, _)| l == "JOBSEAL MANIFEST")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        manifest_b.len(),
        1,
        "bundle B has {} manifest blocks",
        manifest_b.len()
    );
    let spliced = pki.path("spliced.bundle.pem");
    fs::write(&spliced, format!("{certs_a}{}", manifest_b[0])).unwrap();

    // Whichever command is presented: B's (which the spliced manifest describes) or A's.
    assert_deny(
        &pki.verify(&spliced, &job_b, false, &["--other"]),
        "binding.digest-mismatch",
    );
    assert_deny(
        &pki.verify(&spliced, &job_a, false, &["--events", "10"]),
        "binding.digest-mismatch",
    );
    println!(
        "e3: job A's proxy + job B's manifest -> verify exit 1, binding.digest-mismatch (with A's and B's command)"
    );
}

// ---------------------------------------------------------------------------------------------
// (f) credentials jobseal sign must refuse
// ---------------------------------------------------------------------------------------------

/// `jobseal sign --proxy PROXY` into an empty directory: must fail and leave it empty.
#[track_caller]
fn assert_sign_refused(pki: &Pki, proxy: &Path, out_dir_name: &str) -> Out {
    let job = pki.job("job", SCRIPT, &["--events", "10"]);
    let out_dir = pki.path(out_dir_name);
    fs::create_dir(&out_dir).unwrap();
    let bundle = out_dir.join("job.bundle.pem");
    let out = run(pki
        .jobseal()
        .arg("sign")
        .arg(job.join("job.toml"))
        .arg("--out")
        .arg(&bundle)
        .arg("--proxy")
        .arg(proxy));
    assert!(
        matches!(out.code, Some(c) if c != 0),
        "jobseal sign did not refuse {} with an error exit:\n{out}",
        proxy.display()
    );
    assert!(
        !bundle.exists(),
        "jobseal sign left {} behind",
        bundle.display()
    );
    assert!(
        list_dir(&out_dir).is_empty(),
        "jobseal sign left files: {:?}",
        list_dir(&out_dir)
    );
    out
}

#[test]
fn f1_sign_refuses_limited_proxies_from_grid_proxy_init_and_voms_proxy_fake() {
    if !peers::require_all(&[OPENSSL, GLOBUS, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let gpi = pki.path("gpi-limited.pem");
    pki.grid_proxy_init(&gpi, &["-limited"]).assert_ok();
    let kind = pki
        .grid_proxy_info(&gpi, &["-type"])
        .assert_ok()
        .stdout
        .clone();
    assert!(
        kind.contains("limited"),
        "grid-proxy-init -limited made: {kind}"
    );
    let out = assert_sign_refused(&pki, &gpi, "out-gpi");
    assert!(out.stderr.contains("limited"), "{out}");

    let vpf = pki.path("voms-limited.pem");
    pki.voms_proxy_fake(&vpf, &["-limited"]).assert_ok();
    let out = assert_sign_refused(&pki, &vpf, "out-vpf");
    assert!(out.stderr.contains("limited"), "{out}");
    println!(
        "f1: jobseal sign refuses grid-proxy-init -limited -rfc and voms-proxy-fake -limited proxies (\"limited\"), no output left"
    );
}

#[test]
fn f2_sign_refuses_expired_proxy() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let expired = pki.path("expired.pem");
    // Valid for one hour, starting two hours ago.
    pki.voms_proxy_fake(
        &expired,
        &[
            "-hours",
            "1",
            "-pastproxy",
            "2:00",
            "-pastac",
            "2:00",
            "-vomslife",
            "1",
        ],
    )
    .assert_ok();
    let end = run(Command::new(openssl())
        .args(["x509", "-noout", "-checkend", "0", "-in"])
        .arg(&expired));
    assert_eq!(end.code, Some(1), "the test proxy is not expired:\n{end}");
    let out = assert_sign_refused(&pki, &expired, "out");
    assert!(out.stderr.contains("expired"), "{out}");
    println!(
        "f2: jobseal sign refuses a voms-proxy-fake proxy that expired an hour ago (\"expired\"), no output left"
    );
}

// ---------------------------------------------------------------------------------------------
// (g) issue 15: sign never seals what sites refuse, and says why in grid terms
// ---------------------------------------------------------------------------------------------

impl Pki {
    /// A certificate for `subject` with an RSA key of `bits`, signed by `issuer_cert`/`issuer_key`
    /// with `digest` (`-sha1`, `-sha256`) and the extensions `ext` of the test configuration.
    #[allow(clippy::too_many_arguments)]
    fn issue_with(
        &self,
        subject: &str,
        bits: u32,
        digest: &str,
        ext: &str,
        (issuer_cert, issuer_key): (&Path, &Path),
        (cert, key): (&Path, &Path),
    ) {
        let csr = key.with_extension("csr");
        run(Command::new(openssl())
            .args(["req", "-new", "-newkey", &format!("rsa:{bits}"), "-nodes"])
            .args(["-subj", subject, "-keyout"])
            .arg(key)
            .arg("-out")
            .arg(&csr)
            .arg("-config")
            .arg(&self.cnf))
        .assert_ok();
        set_mode(key, 0o600);
        run(Command::new(openssl())
            .args([
                "x509",
                "-req",
                digest,
                "-days",
                "2",
                "-set_serial",
                "4660",
                "-in",
            ])
            .arg(&csr)
            .arg("-CA")
            .arg(issuer_cert)
            .arg("-CAkey")
            .arg(issuer_key)
            .arg("-extfile")
            .arg(&self.cnf)
            .args(["-extensions", ext, "-out"])
            .arg(cert))
        .assert_ok();
    }

    /// `jobseal sign` of a fresh job (`vo` line as given) with `cred`; the output.
    fn try_sign(&self, name: &str, vo: Option<&str>, cred: &[&std::ffi::OsStr]) -> Out {
        let job = self.job(name, SCRIPT, &["--events", "10"]);
        let toml = job.join("job.toml");
        let text = fs::read_to_string(&toml).unwrap();
        let line = vo.map(|v| format!("vo = \"{v}\"\n")).unwrap_or_default();
        fs::write(&toml, text.replace(&format!("vo = \"{VO}\"\n"), &line)).unwrap();
        run(self
            .jobseal()
            .arg("sign")
            .arg(&toml)
            .arg("--out")
            .arg(job.join("b.pem"))
            .args(cred))
    }
}

const PROXY_EXT: &str = "\n[proxy_ext]\nbasicConstraints = critical,CA:FALSE\n\
keyUsage = critical,digitalSignature,keyEncipherment\n\
proxyCertInfo = critical,language:id-ppl-inheritAll\n";

/// Issue 15 §1: a proxy signed with SHA-1 (what `arcproxy -c signingAlgorithm=sha1` makes;
/// here `openssl x509 -sha1`) is refused with `chain.weak-algorithm` and how to make one
/// sites accept; a user certificate its CA signed with SHA-1 is refused unless `--force`
/// (only sites that allow legacy CAs accept it), then sealed with a warning.
#[test]
fn g1_sha1_in_the_issuer_chain_is_refused_with_the_fix() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    fs::write(&pki.cnf, format!("{OPENSSL_CNF}{PROXY_EXT}")).unwrap();
    let (pcert, pkey) = (pki.path("sha1proxy.pem"), pki.path("sha1proxy.key"));
    let proxy_dn = format!("{USER_DN}/CN=4660");
    pki.issue_with(
        &proxy_dn,
        2048,
        "-sha1",
        "proxy_ext",
        (&pki.user_cert, &pki.user_key),
        (&pcert, &pkey),
    );
    let file = pki.path("sha1-proxy-file.pem");
    let parts: Vec<String> = [&pcert, &pkey, &pki.user_cert]
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    fs::write(&file, parts.concat()).unwrap();
    set_mode(&file, 0o600);
    let out = pki.try_sign("sha1-proxy", None, &["--proxy".as_ref(), file.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("chain.weak-algorithm"), "{out}");
    assert!(out.stderr.contains("SHA-1"), "{out}");
    assert!(
        out.stderr.contains("arcproxy -c signingAlgorithm=sha256"),
        "{out}"
    );

    // The user certificate itself signed by the CA with SHA-1.
    let (ucert, ukey) = (pki.path("sha1user.pem"), pki.path("sha1user.key"));
    pki.issue_with(
        USER_DN,
        2048,
        "-sha1",
        "user_ext",
        (&pki.ca_cert, &pki.ca_key),
        (&ucert, &ukey),
    );
    let cred = [
        "--cert".as_ref(),
        ucert.as_os_str(),
        "--key".as_ref(),
        ukey.as_os_str(),
    ];
    let out = pki.try_sign("sha1-user", None, &cred);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("legacy CAs"), "{out}");
    assert!(out.stderr.contains("--force"), "{out}");
    let mut forced = vec!["--force".as_ref()];
    forced.extend(cred);
    let out = pki.try_sign("sha1-user-forced", None, &forced);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("jobseal: warning: "), "{out}");
}

/// Issue 15 §1: VOMS attributes signed by an AA with an RSA-1024 key, which every site
/// ignores (`voms.weak-algorithm`), are refused before signing.
#[test]
fn g2_a_weak_voms_ac_is_refused() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let (aa, aa_key) = (pki.path("aa1024.pem"), pki.path("aa1024.key"));
    pki.issue_with(
        AA_DN,
        1024,
        "-sha256",
        "aa_ext",
        (&pki.ca_cert, &pki.ca_key),
        (&aa, &aa_key),
    );
    let proxy = pki.path("weak-ac.pem");
    let tool = require("voms-proxy-fake", "voms-clients");
    run(pki
        .cmd(tool)
        .args(["-rfc", "-q", "-bits", "2048", "-cert"])
        .arg(&pki.user_cert)
        .arg("-key")
        .arg(&pki.user_key)
        .arg("-out")
        .arg(&proxy)
        .args(["-voms", VO, "-hostcert"])
        .arg(&aa)
        .arg("-hostkey")
        .arg(&aa_key)
        .args(["-uri", &format!("{AA_HOST}:15000"), "-fqan", FQAN]))
    .assert_ok();
    let out = pki.try_sign(
        "weak-ac",
        Some(VO),
        &["--proxy".as_ref(), proxy.as_os_str()],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("voms.weak-algorithm"), "{out}");
    assert!(out.stderr.contains(&format!("VO {VO}")), "{out}");
}

/// Issue 15 §1: a proxy with a 1024-bit key (`voms-proxy-fake -bits 1024`, as
/// `voms-proxy-init -bits 1024`) is refused saying what is wrong and how to make a usable one.
#[test]
fn g3_a_1024_bit_voms_proxy_is_refused_in_words() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("small.pem");
    // voms-proxy-fake takes the last -bits it is given.
    pki.voms_proxy_fake(&proxy, &["-bits", "1024"]).assert_ok();
    let out = pki.try_sign("small", Some(VO), &["--proxy".as_ref(), proxy.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stderr.contains("TooSmall"), "{out}");
    assert!(out.stderr.contains("fewer than 2048 bits"), "{out}");
    assert!(
        out.stderr.contains("voms-proxy-init -rfc -bits 2048"),
        "{out}"
    );
}

/// Issue 15 §1: a legacy (`-old`) proxy carrying VOMS attributes is refused advising
/// `voms-proxy-init -rfc -voms VO` (grid-proxy-init would drop the attributes); one without
/// them, `grid-proxy-init -rfc`.
#[test]
fn g4_a_legacy_voms_proxy_is_refused_advising_voms_proxy_init() {
    if !peers::require_all(&[OPENSSL, VOMS, GLOBUS]) {
        return;
    }
    let pki = Pki::new();
    let legacy = pki.path("legacy-voms.pem");
    // A legacy Globus proxy (-proxyver 2, without -rfc) with a testvo AC.
    let tool = require("voms-proxy-fake", "voms-clients");
    run(pki
        .cmd(tool)
        .args(["-proxyver", "2", "-q", "-bits", "2048", "-cert"])
        .arg(&pki.user_cert)
        .arg("-key")
        .arg(&pki.user_key)
        .arg("-out")
        .arg(&legacy)
        .args(["-voms", VO, "-hostcert"])
        .arg(&pki.aa_cert)
        .arg("-hostkey")
        .arg(&pki.aa_key)
        .args(["-uri", &format!("{AA_HOST}:15000"), "-fqan", FQAN]))
    .assert_ok();
    let out = pki.try_sign(
        "legacy-voms",
        Some(VO),
        &["--proxy".as_ref(), legacy.as_os_str()],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("legacy Globus proxy"), "{out}");
    assert!(
        out.stderr
            .contains(&format!("voms-proxy-init -rfc -voms {VO}")),
        "{out}"
    );
    let old = pki.path("legacy-plain.pem");
    let tool = require("grid-proxy-init", "globus-proxy-utils");
    run(pki
        .cmd(tool)
        .args(["-old", "-q", "-cert"])
        .arg(&pki.user_cert)
        .arg("-key")
        .arg(&pki.user_key)
        .arg("-out")
        .arg(&old))
    .assert_ok();
    let out = pki.try_sign("legacy-plain", None, &["--proxy".as_ref(), old.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("(grid-proxy-init -rfc)"), "{out}");
}

/// Issue 15 §1: a job of VO `atlas` under a `testvo` VOMS proxy is sealed with a warning
/// naming both VOs and the command that makes the right proxy (sites that check VOs refuse
/// it); the `testvo` job under it is sealed without one, and `sign` names the credential and
/// its VO.
#[test]
fn g5_a_job_of_another_vo_than_the_proxy_is_sealed_with_a_warning() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("voms.pem");
    pki.voms_proxy_fake(&proxy, &[]).assert_ok();
    let cred = ["--proxy".as_ref(), proxy.as_os_str()];
    let out = pki.try_sign("atlas", Some("atlas"), &cred);
    assert_eq!(out.code, Some(0), "{out}");
    let warning = out
        .stderr
        .lines()
        .find(|l| l.starts_with("jobseal: warning: "))
        .unwrap_or_else(|| panic!("no warning:\n{out}"));
    assert!(
        warning.contains(&format!("VOMS attributes of {VO} only")),
        "{out}"
    );
    assert!(warning.contains("voms-proxy-init -voms atlas"), "{out}");
    let out = pki.try_sign("testvo", Some(VO), &cred);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("warning"), "{out}");
    let said = format!(
        "jobseal: signing as {USER_DN} with proxy {}, VOMS attributes of {VO}",
        proxy.display()
    );
    assert!(out.stderr.lines().any(|l| l == said), "{out}");
}

/// Issue 15 §2: inspect shows a VOMS generic attribute (`-ga nickname=jane`), in the text as
/// `voms-proxy-info -all` does, and in the JSON.
#[test]
fn g6_inspect_shows_generic_voms_attributes() {
    if !peers::require_all(&[OPENSSL, VOMS]) {
        return;
    }
    let pki = Pki::new();
    let proxy = pki.path("ga.pem");
    pki.voms_proxy_fake(&proxy, &["-ga", "nickname=jane"])
        .assert_ok();
    let text = run(pki.jobseal().arg("inspect").arg(&proxy))
        .assert_ok()
        .stdout
        .clone();
    assert!(text.contains("attribute : nickname = jane"), "{text}");
    let j = parse_json(run(pki.jobseal().args(["inspect", "--json"]).arg(&proxy)).assert_ok());
    assert_eq!(
        j["voms"][0]["generic_attributes"][0]["name"], "nickname",
        "{j}"
    );
    assert_eq!(
        j["voms"][0]["generic_attributes"][0]["value"], "jane",
        "{j}"
    );
}

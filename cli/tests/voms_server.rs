#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]
//! `jobseal sign --voms` against a real VOMS server (Debian `voms-server`
//! over MariaDB, in its own network namespace: `jobseal-testkit`'s
//! `voms_server.rs`), with the user's certificate and key: the bundle
//! verifies with the FQANs asked and `inspect` shows them; every refusal is
//! one clear line and writes no bundle.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../../crates/jobseal-testkit/src/peers.rs"]
mod peers;
#[allow(dead_code)]
#[path = "../../crates/jobseal-testkit/src/voms_server.rs"]
mod voms_server;

use voms_server::{Pki, VO, VomsServer};

const JOBSEAL: &str = env!("CARGO_BIN_EXE_jobseal");

struct Setup {
    pki: Pki,
    server: VomsServer,
    job: PathBuf,
    vomses: PathBuf,
    home: PathBuf,
}

impl Setup {
    /// `jobseal` with a controlled grid environment (no inherited
    /// credential, the test's CA directory and vomsdir).
    fn jobseal(&self, in_namespace: bool) -> Command {
        let mut c = if in_namespace {
            self.server.command(JOBSEAL)
        } else {
            Command::new(JOBSEAL)
        };
        c.env("HOME", &self.home)
            .env("X509_CERT_DIR", &self.pki.ca_dir)
            .env("X509_VOMS_DIR", &self.pki.vomsdir)
            .env_remove("X509_USER_PROXY")
            .env_remove("X509_USER_CERT")
            .env_remove("X509_USER_KEY")
            .env_remove("VOMS_USERCONF");
        c
    }

    /// `jobseal sign` of the job with Jane's (or John's) certificate.
    fn sign(&self, user: &str, out: &Path, extra: &[&str], in_namespace: bool) -> Output {
        let (cert, key) = match user {
            "jane" => (&self.pki.user_cert, &self.pki.user_key),
            _ => (&self.pki.other_cert, &self.pki.other_key),
        };
        self.jobseal(in_namespace)
            .arg("sign")
            .arg(&self.job)
            .arg("--out")
            .arg(out)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(extra)
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup(root: &Path) -> Setup {
    let pki = Pki::new(root).unwrap();
    let server = VomsServer::start(&pki).unwrap_or_else(|e| panic!("VOMS server: {e}"));
    let jobs = root.join("job");
    std::fs::create_dir_all(&jobs).unwrap();
    let exe = jobs.join("analysis.sh");
    std::fs::write(&exe, "#!/bin/sh\necho analysis\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let job = jobs.join("job.toml");
    std::fs::write(
        &job,
        format!("executable = \"analysis.sh\"\narguments = [\"--events\", \"10\"]\nvo = \"{VO}\"\nvalid = \"2h\"\n"),
    )
    .unwrap();
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let vomses = pki
        .vomses("vomses", "localhost", voms_server::PORT)
        .unwrap();
    Setup {
        pki,
        server,
        job,
        vomses,
        home,
    }
}

/// `verify --json` of the bundle for the job's command: permitted, with
/// these FQANs verified.
fn verify(s: &Setup, bundle: &Path, fqans: &[&str]) {
    let out = s
        .jobseal(false)
        .arg("verify")
        .arg(bundle)
        .arg("--json")
        .args(["--", "./analysis.sh", "--events", "10"])
        .current_dir(s.job.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "verify: {}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = json.to_string();
    for f in fqans {
        assert!(all.contains(f), "verify does not show {f}: {all}");
    }
    assert!(
        !all.contains("\"verified\":false"),
        "an AC did not verify: {all}"
    );
}

fn inspect_shows(s: &Setup, bundle: &Path, fqans: &[&str]) {
    let out = s
        .jobseal(false)
        .arg("inspect")
        .arg(bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "inspect: {}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    for f in fqans {
        assert!(shown.contains(f), "inspect does not show {f}:\n{shown}");
    }
}

/// A refused `sign`: exit 1, the expected words in one `jobseal:` line, and
/// no bundle.
#[track_caller]
fn refused(out: &Output, bundle: &Path, words: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no line with {words:?}: {}", text(out)));
    assert!(line.starts_with("jobseal: "), "{line}");
    assert!(!bundle.exists(), "a bundle was written: {}", text(out));
    eprintln!("{line}");
}

#[test]
fn sign_with_voms_attributes_from_a_real_voms_server() {
    if !voms_server::available() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("jobseal-cli-voms-")
        .tempdir()
        .unwrap();
    let s = setup(tmp.path());
    let vomses = s.vomses.to_str().unwrap().to_string();
    let with = |spec: &str| {
        vec![
            "--voms".to_string(),
            spec.to_string(),
            "--vomses".into(),
            vomses.clone(),
        ]
    };

    // Every form voms-proxy-init -voms accepts (the last with its
    // single-dash spelling).
    for (i, (spec, primary)) in [
        ("testvo", "/testvo/Role=NULL/Capability=NULL"),
        (
            "testvo:/testvo/analysis",
            "/testvo/analysis/Role=NULL/Capability=NULL",
        ),
        (
            "testvo:/testvo/analysis/Role=production",
            "/testvo/analysis/Role=production/Capability=NULL",
        ),
        (
            "testvo:/testvo/Role=production",
            "/testvo/Role=production/Capability=NULL",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let bundle = tmp.path().join(format!("ok{i}.pem"));
        let mut args = with(spec);
        if i == 3 {
            args[0] = "-voms".into();
            args[2] = "-vomses".into();
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.sign("jane", &bundle, &args, true);
        assert!(
            out.status.success(),
            "{spec}: {}\n{}",
            text(&out),
            s.server.log()
        );
        let pem = std::fs::read_to_string(&bundle).unwrap();
        assert!(!pem.contains("PRIVATE KEY"), "a private key in the bundle");
        verify(&s, &bundle, &[primary]);
        inspect_shows(&s, &bundle, &[primary, "/testvo/Role=NULL/Capability=NULL"]);
    }

    let bundle = tmp.path().join("refused.pem");
    let out = s.sign(
        "john",
        &bundle,
        &["--voms", "testvo", "--vomses", &vomses],
        true,
    );
    refused(
        &out,
        &bundle,
        &["not a member of VO testvo", voms_server::OTHER_DN],
    );

    let out = s.sign(
        "jane",
        &bundle,
        &["--voms", "testvo:/testvo/Role=admiral", "--vomses", &vomses],
        true,
    );
    refused(&out, &bundle, &["did not grant", "/testvo/Role=admiral"]);

    // The vomsdir's LSC describes another server.
    let other = tmp.path().join("vomsdir-other");
    std::fs::create_dir_all(other.join(VO)).unwrap();
    std::fs::write(
        other.join(VO).join("localhost.lsc"),
        format!(
            "/DC=org/DC=example/CN=voms.example.org\n{}\n",
            voms_server::CA_DN
        ),
    )
    .unwrap();
    let other = other.to_str().unwrap();
    let out = s.sign(
        "jane",
        &bundle,
        &["--voms", "testvo", "--vomses", &vomses, "--vomsdir", other],
        true,
    );
    refused(&out, &bundle, &["not trusted", "localhost.lsc"]);

    // A trusted server whose AC names another AA host, without an LSC for
    // it: the AC fails the vomsdir check.
    let elsewhere = s
        .pki
        .vomses("vomses-elsewhere", "localhost", voms_server::PORT_OTHER_URI)
        .unwrap();
    let elsewhere = elsewhere.to_str().unwrap();
    let out = s.sign(
        "jane",
        &bundle,
        &["--voms", "testvo", "--vomses", elsewhere],
        true,
    );
    refused(
        &out,
        &bundle,
        &["refused by the vomsdir check", voms_server::OTHER_URI_HOST],
    );

    // Attributes are asked with the user's certificate, never with a proxy
    // (whose holder would be another certificate).
    let proxy = tmp.path().join("proxy.pem");
    let out = s
        .jobseal(false)
        .args(["proxy", "--out"])
        .arg(&proxy)
        .arg("--cert")
        .arg(&s.pki.user_cert)
        .arg("--key")
        .arg(&s.pki.user_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = s
        .jobseal(false)
        .arg("sign")
        .arg(&s.job)
        .arg("--out")
        .arg(&bundle)
        .arg("--proxy")
        .arg(&proxy)
        .args(["--voms", "testvo", "--vomses", &vomses])
        .output()
        .unwrap();
    refused(&out, &bundle, &["not a proxy", "--cert/--key"]);

    // A dead server (nothing listens on the port).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = s.pki.vomses("vomses-dead", "localhost", port).unwrap();
    let out = s.sign(
        "jane",
        &bundle,
        &["--voms", "testvo", "--vomses", dead.to_str().unwrap()],
        false,
    );
    refused(&out, &bundle, &["cannot be reached"]);

    // A slow server: accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(30));
        drop(conn);
    });
    let slow = s.pki.vomses("vomses-slow", "127.0.0.1", port).unwrap();
    let started = Instant::now();
    let out = s.sign(
        "jane",
        &bundle,
        &[
            "--voms",
            "testvo",
            "--vomses",
            slow.to_str().unwrap(),
            "--voms-timeout",
            "2",
        ],
        false,
    );
    refused(&out, &bundle, &["too slow", "--voms-timeout"]);
    assert!(started.elapsed() < Duration::from_secs(15));

    // No vomses entry for the VO.
    let out = s.sign(
        "jane",
        &bundle,
        &["--voms", "othervo", "--vomses", &vomses],
        false,
    );
    refused(&out, &bundle, &["no vomses entry for VO othervo"]);
}

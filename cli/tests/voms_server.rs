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

/// The tests of this file run their servers one at a time: each is a
/// MariaDB and two voms, and two bootstraps at once on a loaded machine
/// have failed (`mariadb-install-db`).
static ONE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_server() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed holding it leaves nothing to protect.
    ONE_SERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    let _one = one_server();
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

/// `admit --json` of `bundle` under `policy` (a file, or the built-in
/// policy), with a state directory of its own: exit code and decision.
fn admit(s: &Setup, bundle: &Path, policy: Option<&Path>, state: &Path) -> serde_json::Value {
    let mut c = s.jobseal(false);
    c.arg("admit").arg(bundle).arg("--state-dir").arg(state);
    match policy {
        Some(p) => c.arg("--policy").arg(p),
        None => c.env_remove("JOBSEAL_POLICY"),
    };
    let out = c
        .arg("--json")
        .args(["--", "./analysis.sh", "--events", "10"])
        .current_dir(s.job.parent().unwrap())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("admit --json: {e}: {}", text(&out)));
    let permit = json["decision"] == "permit";
    assert_eq!(
        out.status.code(),
        Some(if permit { 0 } else { 1 }),
        "{}",
        text(&out)
    );
    json
}

/// The verified FQANs of a decision.
fn fqans_of(json: &serde_json::Value) -> Vec<String> {
    json["voms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["verified"] == true)
        .flat_map(|v| v["fqans"].as_array().unwrap().clone())
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

/// The ACs the leaf (the job-bound proxy) of a bundle carries, DER each.
fn leaf_acs(bundle: &Path) -> Vec<Vec<u8>> {
    use der::{Decode as _, Encode as _};
    let b = jobseal_core::bundle::Bundle::parse(&std::fs::read(bundle).unwrap()).unwrap();
    let leaf = x509_cert::Certificate::from_der(&b.certificates[0]).unwrap();
    let Some(ext) = leaf.tbs_certificate().extensions().and_then(|e| {
        e.iter()
            .find(|e| e.extn_id == jobseal_core::oid::VOMS_AC_SEQ)
    }) else {
        return Vec::new();
    };
    // SEQUENCE OF SEQUENCE OF AttributeCertificate, as voms-proxy-init writes.
    Vec::<Vec<der::Any>>::from_der(ext.extn_value.as_bytes())
        .unwrap()
        .into_iter()
        .flatten()
        .map(|ac| ac.to_der().unwrap())
        .collect()
}

/// Issue 16, the site-policy rule with bundles sealed both ways, against
/// the real server: `issuer = "end-entity"` admits the `sign --voms`
/// bundle (the user's certificate issued its job-bound proxy) with its
/// FQANs, and denies jobs sealed under a proxy (jobseal's own, and a real
/// VOMS proxy from `voms-proxy-init`) with `policy.issuer-not-end-entity`;
/// the built-in policy admits all three. And one AC serves a whole batch:
/// three jobs sealed by one `sign --voms` carry the same AC, byte for byte.
#[test]
fn site_policy_issuer_end_entity_and_one_ac_per_batch_with_a_real_voms_server() {
    if !voms_server::available() {
        return;
    }
    let _one = one_server();
    let tmp = tempfile::Builder::new()
        .prefix("jobseal-cli-voms-policy-")
        .tempdir()
        .unwrap();
    let s = setup(tmp.path());
    let vomses = s.vomses.to_str().unwrap().to_string();
    let primary = "/testvo/analysis/Role=production/Capability=NULL";
    let spec = "testvo:/testvo/analysis/Role=production";

    // Sealed with the user's certificate and `--voms`, no proxy: the
    // README's user command `jobseal sign --voms atlas job.toml --out job.bundle.pem`
    // (.ci/readme maps it here), with the test VO, the credential in
    // ~/.globus and the VO's server in $VOMS_USERCONF.
    let globus = s.home.join(".globus");
    std::fs::create_dir_all(&globus).unwrap();
    std::fs::copy(&s.pki.user_cert, globus.join("usercert.pem")).unwrap();
    std::fs::copy(&s.pki.user_key, globus.join("userkey.pem")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(&globus.join("userkey.pem"), 0o600).unwrap();
        mode(&globus, 0o700).unwrap();
    }
    let out = s
        .jobseal(true)
        .env("VOMS_USERCONF", &s.vomses)
        .args(["sign", "--voms", VO, "job.toml", "--out", "job.bundle.pem"])
        .current_dir(s.job.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), s.server.log());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("usercert.pem"), "{stderr}");
    let direct = s.job.with_file_name("job.bundle.pem");

    // Sealed under a plain proxy of Jane (`jobseal proxy`), without VOMS.
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
    let under_proxy = tmp.path().join("under-proxy.pem");
    let out = s
        .jobseal(false)
        .arg("sign")
        .arg(&s.job)
        .arg("--out")
        .arg(&under_proxy)
        .arg("--proxy")
        .arg(&proxy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Sealed under a real VOMS proxy: voms-proxy-init against the same
    // server, then `sign --proxy`.
    let voms_proxy = tmp.path().join("voms-proxy.pem");
    let out = s
        .server
        .command("voms-proxy-init")
        .env("HOME", &s.home)
        .env("X509_CERT_DIR", &s.pki.ca_dir)
        .env("X509_VOMS_DIR", &s.pki.vomsdir)
        .env_remove("X509_USER_PROXY")
        .args(["-voms", spec, "-vomses", &vomses, "-rfc", "-bits", "2048"])
        .arg("-cert")
        .arg(&s.pki.user_cert)
        .arg("-key")
        .arg(&s.pki.user_key)
        .arg("-certdir")
        .arg(&s.pki.ca_dir)
        .arg("-out")
        .arg(&voms_proxy)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "voms-proxy-init: {}", text(&out));
    let under_voms_proxy = tmp.path().join("under-voms-proxy.pem");
    let out = s
        .jobseal(false)
        .arg("sign")
        .arg(&s.job)
        .arg("--out")
        .arg(&under_voms_proxy)
        .arg("--proxy")
        .arg(&voms_proxy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The site's policy; and the same without `vos`, for the job sealed
    // under a plain proxy (no AC: `vos` would deny it first, 6c).
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("issuer = \"end-entity\"\nvos = [\"{VO}\"]\n"),
    )
    .unwrap();
    let policy_no_vo = tmp.path().join("policy-no-vo.toml");
    std::fs::write(&policy_no_vo, "issuer = \"end-entity\"\n").unwrap();
    let state_ee = tmp.path().join("state-end-entity");
    let state_any = tmp.path().join("state-built-in");

    // issuer = "end-entity": the job the user's certificate sealed runs,
    // with its FQANs; both sealed under a proxy are denied.
    let d = admit(&s, &direct, Some(&policy), &state_ee);
    assert_eq!(d["decision"], "permit", "{d}");
    assert_eq!(d["issued_by_end_entity"], true, "{d}");
    assert_eq!(d["issuer"], voms_server::USER_DN, "{d}");
    assert_eq!(
        fqans_of(&d)[0],
        "/testvo/Role=NULL/Capability=NULL",
        "the primary FQAN: {d}"
    );
    for (bundle, policy, fqans) in [
        (&under_proxy, &policy_no_vo, Vec::<&str>::new()),
        (&under_voms_proxy, &policy, vec![primary]),
    ] {
        let d = admit(&s, bundle, Some(policy), &state_ee);
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["reason"], "policy.issuer-not-end-entity", "{d}");
        assert_eq!(d["issued_by_end_entity"], false, "{d}");
        let issuer = d["issuer"].as_str().unwrap();
        assert!(
            issuer.starts_with(&format!("{}/CN=", voms_server::USER_DN)),
            "{d}"
        );
        // The message names the proxy that sealed it.
        assert!(d["message"].as_str().unwrap().contains(issuer), "{d}");
        // A real VOMS proxy's attributes are verified, and still denied.
        let got = fqans_of(&d);
        for f in fqans {
            assert!(got.iter().any(|g| g == f), "{f} not in {d}");
        }
    }
    // The audit record says who sealed each job.
    let log = std::fs::read_to_string(state_ee.join("audit.jsonl")).unwrap();
    let who: Vec<(String, Option<bool>)> = log
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["who"]["issued_by_end_entity"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            ("permit".to_string(), Some(true)),
            ("deny".to_string(), Some(false)),
            ("deny".to_string(), Some(false))
        ],
        "{log}"
    );
    let out = s
        .jobseal(false)
        .args(["audit", "verify"])
        .arg(state_ee.join("audit.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "audit verify: {}", text(&out));

    // The built-in policy (issuer = "any") admits all three.
    for (bundle, by_ee) in [
        (&direct, true),
        (&under_proxy, false),
        (&under_voms_proxy, false),
    ] {
        let d = admit(&s, bundle, None, &state_any);
        assert_eq!(d["decision"], "permit", "{d}");
        assert_eq!(d["issued_by_end_entity"], by_ee, "{d}");
    }

    // One AC per batch: three jobs sealed by one `sign --voms` carry the
    // same AC, byte for byte (one request to the server); a second `sign`
    // asks again and gets another AC (another serial), so the comparison
    // can fail.
    let dir = s.job.parent().unwrap();
    let mut jobs = vec![s.job.clone()];
    for n in 2..=3 {
        let j = dir.join(format!("job{n}.toml"));
        std::fs::copy(&s.job, &j).unwrap();
        jobs.push(j);
    }
    let batch = tmp.path().join("batch");
    let out = s
        .jobseal(true)
        .arg("sign")
        .args(&jobs)
        .arg("--out-dir")
        .arg(&batch)
        .arg("--cert")
        .arg(&s.pki.user_cert)
        .arg("--key")
        .arg(&s.pki.user_key)
        .args(["--voms", spec, "--vomses", &vomses])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), s.server.log());
    let acs: Vec<Vec<Vec<u8>>> = ["job", "job2", "job3"]
        .iter()
        .map(|n| leaf_acs(&batch.join(format!("{n}.bundle.pem"))))
        .collect();
    assert_eq!(acs[0].len(), 1, "one AC in the job-bound proxy");
    assert!(acs[0].len() == 1 && acs[0][0].len() > 100);
    assert_eq!(
        acs[0], acs[1],
        "jobs 1 and 2 of one batch carry different ACs"
    );
    assert_eq!(
        acs[0], acs[2],
        "jobs 1 and 3 of one batch carry different ACs"
    );
    let other = leaf_acs(&direct);
    assert_eq!(other.len(), 1);
    assert_ne!(other, acs[0], "two sign runs got the same AC");
    for n in ["job", "job2", "job3"] {
        let d = admit(
            &s,
            &batch.join(format!("{n}.bundle.pem")),
            Some(&policy),
            &state_ee,
        );
        assert_eq!(d["decision"], "permit", "{n}: {d}");
        assert_eq!(fqans_of(&d)[0], primary, "{d}");
    }
}

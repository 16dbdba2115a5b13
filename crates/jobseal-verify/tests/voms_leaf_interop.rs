//! Issue 16 against real middleware: the attribute certificate that
//! `voms-proxy-fake` (Debian voms-clients) issues for a user's certificate,
//! taken out of its proxy and sealed into a job-bound proxy that the user's
//! certificate issues directly, verifies with its FQANs. PKI by the
//! `openssl` command line (RSA-2048, as grid CAs issue). Skipped, and said
//! so, without those tools (a failure under `JOBSEAL_REQUIRE_PEERS`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jobseal_core::oid;
use jobseal_core::pem::parse_blocks;
use jobseal_core::time::UnixTime;
use jobseal_core::voms::split_ac_seq;
use jobseal_issue::credential::{Credential, Source, check_issuer};
use jobseal_issue::{IssueError, JobSpec, SealParams, seal};
use jobseal_testkit::peers;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::{Config, Invocation, Verifier};

const CA_DN: &str = "/O=jobseal interop/CN=Leaf Interop CA";
const USER_DN: &str = "/O=jobseal interop/CN=Jane Doe";
const AA_DN: &str = "/O=jobseal interop/CN=voms.leaf.example";
const VO: &str = "leafvo";
const FQAN: &str = "/leafvo/prod/Role=pilot";

const CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ee_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
authorityKeyIdentifier = keyid
";

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An RSA-2048 key and certificate for `subject`, signed by the CA.
fn issue(openssl: &Path, dir: &Path, name: &str, subject: &str, serial: u32) -> (PathBuf, PathBuf) {
    let (cert, key, csr) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    run(Command::new(openssl)
        .args([
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", subject,
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .arg("-config")
        .arg(dir.join("openssl.cnf")));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(Command::new(openssl)
        .args(["x509", "-req", "-sha256", "-days", "30", "-set_serial"])
        .arg(serial.to_string())
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(dir.join("ca.pem"))
        .arg("-CAkey")
        .arg(dir.join("ca.key"))
        .arg("-extfile")
        .arg(dir.join("openssl.cnf"))
        .args(["-extensions", "ee_ext", "-out"])
        .arg(&cert));
    (cert, key)
}

/// The first AC of the VOMS extension of the first certificate in `pem`.
fn first_ac(pem: &Path) -> Vec<u8> {
    let block = parse_blocks(&std::fs::read(pem).unwrap())
        .unwrap()
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .unwrap();
    let cert = ParsedCert::from_der(block.der, 0).unwrap();
    let ext = cert.extension(oid::VOMS_AC_SEQ).unwrap().unwrap();
    split_ac_seq(ext.extn_value.as_bytes()).unwrap()[0].to_vec()
}

#[test]
fn a_voms_proxy_fake_ac_verifies_in_the_job_bound_proxy() {
    let (Some(openssl), Some(fake)) = (
        peers::require("openssl", "openssl"),
        peers::require("voms-proxy-fake", "voms-clients"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("openssl.cnf"), CNF).unwrap();
    run(Command::new(&openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .args(["-subj", CA_DN, "-keyout"])
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(dir.join("ca.pem"))
        .arg("-config")
        .arg(dir.join("openssl.cnf"))
        .args(["-extensions", "ca_ext"]));
    let hash = run(Command::new(&openssl)
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(dir.join("ca.pem")));
    let ca_dir = dir.join("certificates");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::copy(
        dir.join("ca.pem"),
        ca_dir.join(format!("{}.0", hash.trim())),
    )
    .unwrap();
    let (user_cert, user_key) = issue(&openssl, dir, "user", USER_DN, 0x2001);
    let (aa_cert, aa_key) = issue(&openssl, dir, "aa", AA_DN, 0x2002);
    let vomsdir = dir.join("vomsdir");
    std::fs::create_dir_all(vomsdir.join(VO)).unwrap();
    std::fs::write(
        vomsdir.join(VO).join("voms.leaf.example.lsc"),
        format!("{AA_DN}\n{CA_DN}\n"),
    )
    .unwrap();

    // What voms-proxy-fake's AC holds is what a VOMS server returns.
    let proxy = dir.join("x509up");
    run(Command::new(&fake)
        .env("HOME", dir)
        .args(["-rfc", "-q", "-bits", "2048", "-cert"])
        .arg(&user_cert)
        .arg("-key")
        .arg(&user_key)
        .arg("-out")
        .arg(&proxy)
        .args(["-voms", VO, "-hostcert"])
        .arg(&aa_cert)
        .arg("-hostkey")
        .arg(&aa_key)
        .args(["-uri", "voms.leaf.example:15000", "-fqan", FQAN]));
    let ac = first_ac(&proxy);

    // Sealed by the user's certificate, no proxy: the AC rides in the leaf.
    let cred = Credential::load(
        Source::CertKey {
            cert: user_cert,
            key: user_key,
        },
        // The key is not encrypted: never asked.
        &mut |_: &str| Err(IssueError::Key("no passphrase here".into())),
    )
    .unwrap()
    .with_voms_ac(ac)
    .unwrap();
    let now = UnixTime::now();
    let job_dir = dir.join("job");
    std::fs::create_dir(&job_dir).unwrap();
    std::fs::write(job_dir.join("run.sh"), b"#!/bin/sh\n").unwrap();
    let job = JobSpec::from_toml(
        "executable = \"run.sh\"\nvalid = \"1h\"\n",
        &job_dir.join("job.toml"),
        &job_dir,
    )
    .unwrap();
    let issuer = check_issuer(&cred, now).unwrap();
    let sealed = seal(&cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
    assert_eq!(
        sealed.bundle.certificates.len(),
        2,
        "leaf and user certificate only"
    );

    let verifier = Verifier::new(Config {
        ca_dir,
        voms_dir: vomsdir,
        ..Config::default()
    })
    .unwrap();
    let inv = Invocation {
        executable: job_dir.join("run.sh"),
        arguments: Vec::new(),
        job_dir,
    };
    let d = verifier.check(sealed.bundle.to_pem().as_bytes(), &inv, now);
    assert!(d.is_permit(), "{}: {}", d.code(), d.message);
    let id = d.identity.unwrap();
    assert!(id.issued_by_end_entity);
    assert_eq!(id.voms.len(), 1);
    assert!(id.voms[0].verified, "{:?}", id.voms[0].error);
    assert_eq!(id.voms[0].vo, VO);
    assert!(
        id.voms[0].fqans.iter().any(|f| f == FQAN),
        "{:?}",
        id.voms[0].fqans
    );
}

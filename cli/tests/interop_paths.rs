//! Path validation as the site's other middleware sees the same CA
//! directory (issue 18): a root and its subordinate installed side by side
//! as IGTF ships them, each CA's CRL beside it as fetch-crl writes them, and
//! the user's bundle carrying the user certificate alone. When the root's
//! CRL revokes the subordinate, `openssl verify -crl_check_all` refuses the
//! user certificate (error 23 at depth 1), and so do `jobseal verify` and
//! `jobseal admit`; when it does not, all of them accept it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use jobseal_issue::proxy::CertTemplate;
use jobseal_issue::throwaway::{self, Party};
use jobseal_testkit::crl::CrlTemplate;

const DAY: u64 = 86_400;

fn openssl() -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join("openssl");
        if p.is_file() {
            return p;
        }
    }
    panic!("missing openssl: apt-get install openssl");
}

fn subject_of(cert: &[u8]) -> Vec<u8> {
    jobseal_core::tlv::RawCert::split(cert)
        .unwrap()
        .subject
        .to_vec()
}

fn hash_of(cert: &[u8]) -> String {
    format!(
        "{:08x}",
        jobseal_core::name::openssl_hash(&subject_of(cert)).unwrap()
    )
}

/// A root, a subordinate it issued (serial 7), a user of the subordinate,
/// in a CA directory with both CRLs; the root's CRL revokes the
/// subordinate if `revoke_sub`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(revoke_sub: bool) -> Self {
        let now = UnixTime::now();
        let dir = tempfile::tempdir().unwrap();
        let root = throwaway::ca(
            &[31; 32],
            "CN=Interop Root CA,O=jobseal",
            now.minus(30 * DAY),
            now.plus(365 * DAY),
        )
        .unwrap();
        let (sub_key, sub_pkcs8, sub_spki) = throwaway::ed25519_from_seed(&[32; 32]).unwrap();
        let sub = Party {
            cert: CertTemplate {
                serial: 7,
                issuer: subject_of(&root.cert),
                subject: throwaway::name_der("CN=Interop Sub CA,O=jobseal").unwrap(),
                spki: sub_spki,
                not_before: now.minus(30 * DAY),
                not_after: now.plus(300 * DAY),
                extensions: throwaway::ca_extensions().unwrap(),
            }
            .sign(&root.key)
            .unwrap(),
            key: sub_key,
            pkcs8: sub_pkcs8,
        };
        let user = throwaway::user(
            &sub,
            &[33; 32],
            "CN=Ursula User,O=jobseal",
            9,
            now.minus(DAY),
            now.plus(30 * DAY),
        )
        .unwrap();
        let ca = dir.path().join("certificates");
        std::fs::create_dir(&ca).unwrap();
        for party in [&root, &sub] {
            std::fs::write(
                ca.join(format!("{}.0", hash_of(&party.cert))),
                encode_block("CERTIFICATE", &party.cert),
            )
            .unwrap();
        }
        let mut root_crl = CrlTemplate::new(&root.cert, now.minus(DAY), now.plus(7 * DAY)).unwrap();
        if revoke_sub {
            root_crl = root_crl.revoke(7, now.minus(DAY));
        }
        std::fs::write(
            ca.join(format!("{}.r0", hash_of(&root.cert))),
            root_crl.sign_pem(&root.key).unwrap(),
        )
        .unwrap();
        std::fs::write(
            ca.join(format!("{}.r0", hash_of(&sub.cert))),
            CrlTemplate::new(&sub.cert, now.minus(DAY), now.plus(7 * DAY))
                .unwrap()
                .sign_pem(&sub.key)
                .unwrap(),
        )
        .unwrap();
        let w = |name: &str, data: &[u8]| std::fs::write(dir.path().join(name), data).unwrap();
        w(
            "usercert.pem",
            encode_block("CERTIFICATE", &user.cert).as_bytes(),
        );
        w(
            "userkey.pem",
            encode_block("PRIVATE KEY", &user.pkcs8).as_bytes(),
        );
        std::fs::set_permissions(
            dir.path().join("userkey.pem"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        w("run.sh", b"#!/bin/sh\necho ok\n");
        // An executable the site can run (sign refuses one it cannot).
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        w("job.toml", b"executable = \"run.sh\"\nvalid = \"1h\"\n");
        Self { dir }
    }

    fn jobseal(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_jobseal"))
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", "/usr/bin:/bin")
            .args(args)
            .output()
            .unwrap()
    }

    fn openssl_verify(&self) -> Output {
        Command::new(openssl())
            .current_dir(self.dir.path())
            .args([
                "verify",
                "-crl_check_all",
                "-CApath",
                "certificates",
                "usercert.pem",
            ])
            .output()
            .unwrap()
    }

    /// Seal the job with the user certificate alone in the bundle, then
    /// `verify` and `admit` it.
    fn verify_and_admit(&self) -> (Output, Output) {
        let sealed = self.jobseal(&[
            "sign",
            "job.toml",
            "--out",
            "job.bundle.pem",
            "--cert",
            "usercert.pem",
            "--key",
            "userkey.pem",
        ]);
        assert!(sealed.status.success(), "{}", text(&sealed.stderr));
        let verify = self.jobseal(&[
            "verify",
            "job.bundle.pem",
            "--ca-dir",
            "certificates",
            "--",
            "./run.sh",
        ]);
        let admit = self.jobseal(&[
            "admit",
            "job.bundle.pem",
            "--ca-dir",
            "certificates",
            "--state-dir",
            "state",
            "--",
            "./run.sh",
        ]);
        (verify, admit)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_subordinate_revoked_by_its_root_is_refused_like_openssl_does() {
    if !jobseal_testkit::peers::require_all(&[("openssl", "openssl")]) {
        return;
    }
    let site = Site::new(true);
    let o = site.openssl_verify();
    assert!(!o.status.success(), "openssl accepted: {}", text(&o.stdout));
    let said = text(&o.stdout) + &text(&o.stderr);
    assert!(said.contains("error 23 at 1 depth"), "openssl: {said}");
    let (verify, admit) = site.verify_and_admit();
    for (what, o) in [("verify", verify), ("admit", admit)] {
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).starts_with("chain.revoked: /O=jobseal/CN=Interop Sub CA was revoked by /O=jobseal/CN=Interop Root CA"),
            "{what}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn the_same_site_without_the_revocation_is_accepted_by_all() {
    if !jobseal_testkit::peers::require_all(&[("openssl", "openssl")]) {
        return;
    }
    let site = Site::new(false);
    let o = site.openssl_verify();
    assert!(
        o.status.success(),
        "openssl refused: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let (verify, admit) = site.verify_and_admit();
    for (what, o) in [("verify", verify), ("admit", admit)] {
        assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o.stderr));
    }
}

//! Revocation and namespace checks (spec §6.3 2d.7, 2d.8) beyond the
//! known-answer vectors: CRL edge cases written over the vectors' CA
//! directory, the `Config` settings, and OpenSSL's opinion of the CRL
//! vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use jobseal_core::{name, tlv};
use jobseal_issue::proxy::{CertTemplate, extension};
use jobseal_issue::throwaway::{self, Party};
use jobseal_testkit::crl::{CrlTemplate, Revoked};
use jobseal_testkit::{VECTOR_TIME, generate, write_dir};
use jobseal_verify::{Config, CrlPolicy, Invocation, NamespacePolicy, UnixTime, Verifier};

const T: UnixTime = VECTOR_TIME;
const DAY: u64 = 86_400;
/// The vectors' CA that publishes a CRL, and its user Rosa (serial 42).
const CA_R: &str = "CN=jobseal Test CA with CRL,O=jobseal test vectors";
const ROSA: &str = "permit-ca-with-crl-and-namespaces";

fn vectors() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_dir(&generate().unwrap(), dir.path()).unwrap();
    dir
}

fn ca_r() -> Party {
    throwaway::ca(&[40; 32], CA_R, T.minus(365 * DAY), T.plus(9 * 365 * DAY)).unwrap()
}

fn ca_file(dir: &Path, ca_cert: &[u8], suffix: &str) -> PathBuf {
    let subject = tlv::RawCert::split(ca_cert).unwrap().subject;
    let hash = name::openssl_hash(subject).unwrap();
    dir.join("ca").join(format!("{hash:08x}.{suffix}"))
}

/// The reason code (or "permit") of vector `name` under `config`.
fn decide(dir: &Path, name: &str, edit: impl FnOnce(&mut Config)) -> String {
    let mut config = Config {
        ca_dir: dir.join("ca"),
        ..Config::default()
    };
    edit(&mut config);
    let verifier = Verifier::new(config).unwrap();
    let job = dir.join(name).join("job");
    let inv = Invocation {
        executable: job.join("run.sh"),
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: job,
    };
    let d = verifier.check_file(&dir.join(name).join("bundle.pem"), &inv, T);
    eprintln!("{name}: {} {}", d.code(), d.message);
    d.code().to_string()
}

fn crl(ca: &Party) -> CrlTemplate {
    CrlTemplate::new(&ca.cert, T.minus(DAY), T.plus(7 * DAY)).unwrap()
}

/// Rosa's decision with `r0` as CA-R's CRL file.
fn rosa_with(dir: &Path, r0: &[u8]) -> String {
    std::fs::write(ca_file(dir, &ca_r().cert, "r0"), r0).unwrap();
    decide(dir, ROSA, |_| {})
}

#[test]
fn crl_edge_cases() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    let pem = |t: &CrlTemplate| t.sign_pem(&ca.key).unwrap();
    let crl_ext = |oid: &str, critical: bool| {
        extension(
            der::asn1::ObjectIdentifier::new_unwrap(oid),
            critical,
            &[0x05, 0x00],
        )
        .unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("current CRL, serial not listed", pem(&crl(&ca)), "permit"),
        (
            "serial listed",
            pem(&crl(&ca).revoke(42, T.minus(DAY))),
            "chain.revoked",
        ),
        (
            "DER instead of PEM",
            crl(&ca).revoke(42, T).sign(&ca.key).unwrap(),
            "chain.revoked",
        ),
        (
            "v1 CRL without version or extensions",
            pem(&CrlTemplate {
                v2: false,
                extensions: Vec::new(),
                ..crl(&ca).revoke(42, T)
            }),
            "chain.revoked",
        ),
        (
            "v1 CRL with extensions",
            pem(&CrlTemplate {
                v2: false,
                ..crl(&ca)
            }),
            "chain.crl-invalid",
        ),
        (
            "no nextUpdate",
            pem(&CrlTemplate {
                next_update: None,
                ..crl(&ca)
            }),
            "chain.crl-invalid",
        ),
        (
            "thisUpdate an hour ahead",
            pem(&CrlTemplate {
                this_update: T.plus(3600),
                ..crl(&ca)
            }),
            "chain.crl-invalid",
        ),
        (
            "thisUpdate within the skew",
            pem(&CrlTemplate {
                this_update: T.plus(200),
                ..crl(&ca)
            }),
            "permit",
        ),
        (
            "expired, and the serial listed: revoked first",
            pem(&CrlTemplate {
                this_update: T.minus(9 * DAY),
                next_update: Some(T.minus(DAY)),
                ..crl(&ca).revoke(42, T.minus(10 * DAY))
            }),
            "chain.revoked",
        ),
        (
            "unknown critical CRL extension",
            pem(&{
                let mut t = crl(&ca);
                t.extensions.push(crl_ext("1.2.3.4", true));
                t
            }),
            "chain.crl-invalid",
        ),
        (
            "unknown non-critical CRL extension",
            pem(&{
                let mut t = crl(&ca);
                t.extensions.push(crl_ext("1.2.3.4", false));
                t
            }),
            "permit",
        ),
        (
            "delta CRL",
            pem(&{
                let mut t = crl(&ca);
                t.extensions.push(crl_ext("2.5.29.27", true));
                t
            }),
            "chain.crl-invalid",
        ),
        (
            "malformed critical issuing distribution point",
            pem(&{
                let mut t = crl(&ca);
                t.extensions.push(crl_ext("2.5.29.28", true));
                t
            }),
            "chain.crl-invalid",
        ),
        (
            "indirect CRL entry (certificateIssuer)",
            pem(&{
                let mut t = crl(&ca);
                t.revoked.push(Revoked {
                    serial: 7,
                    date: T,
                    extensions: vec![crl_ext("2.5.29.29", true)],
                });
                t
            }),
            "chain.crl-invalid",
        ),
        (
            "non-critical entry extension (reasonCode)",
            pem(&{
                let mut t = crl(&ca);
                t.revoked.push(Revoked {
                    serial: 7,
                    date: T,
                    extensions: vec![
                        extension(
                            der::asn1::ObjectIdentifier::new_unwrap("2.5.29.21"),
                            false,
                            &[0x0a, 0x01, 0x01],
                        )
                        .unwrap(),
                    ],
                });
                t
            }),
            "permit",
        ),
        (
            "signed by another key under the CA's name",
            crl(&ca)
                .sign_pem(&throwaway::ed25519_from_seed(&[99; 32]).unwrap().0)
                .unwrap(),
            "chain.crl-invalid",
        ),
        ("not a CRL at all", b"hello\n".to_vec(), "chain.crl-invalid"),
        (
            "PEM without a CRL block",
            jobseal_core::pem::encode_block("CERTIFICATE", &ca.cert).into_bytes(),
            "chain.crl-invalid",
        ),
        (
            "two CRLs, the second lists the serial",
            {
                let mut two = pem(&crl(&ca));
                two.extend(pem(&crl(&ca).revoke(42, T)));
                two
            },
            "chain.revoked",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, r0, expected) in cases {
        let got = rosa_with(d, &r0);
        if got != expected {
            wrong.push(format!("{what}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn crl_files_in_index_order() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    // A CRL of another CA (another hash) under CA-R's hash is misplaced.
    let other = throwaway::ca(
        &[98; 32],
        "CN=Other CA,O=elsewhere",
        T.minus(DAY),
        T.plus(DAY),
    )
    .unwrap();
    let other_crl = CrlTemplate::new(&other.cert, T.minus(DAY), T.plus(DAY))
        .unwrap()
        .sign_pem(&other.key)
        .unwrap();
    assert_eq!(rosa_with(d, &other_crl), "chain.crl-invalid");
    // Every file is read: a revocation in .r1 counts.
    std::fs::write(
        ca_file(d, &ca.cert, "r0"),
        crl(&ca).sign_pem(&ca.key).unwrap(),
    )
    .unwrap();
    std::fs::write(
        ca_file(d, &ca.cert, "r1"),
        crl(&ca).revoke(42, T).sign_pem(&ca.key).unwrap(),
    )
    .unwrap();
    assert_eq!(decide(d, ROSA, |_| {}), "chain.revoked");
    // Lookup stops at the first missing index, as for certificates.
    std::fs::remove_file(ca_file(d, &ca.cert, "r0")).unwrap();
    assert_eq!(decide(d, ROSA, |_| {}), "permit");
}

#[test]
fn crl_files_that_cannot_be_used() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    let r0 = ca_file(d, &ca.cert, "r0");
    std::fs::remove_file(&r0).unwrap();
    std::fs::create_dir(&r0).unwrap();
    assert_eq!(decide(d, ROSA, |_| {}), "chain.crl-invalid");
    std::fs::remove_dir(&r0).unwrap();
    let big = vec![b'#'; jobseal_core::limits::MAX_CRL_BYTES + 1];
    assert_eq!(rosa_with(d, &big), "limits.exceeded");
}

#[test]
fn an_issuer_without_crl_sign_cannot_publish_crls() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    // The same CA (name and key), with keyUsage keyCertSign only.
    let raw = tlv::RawCert::split(&ca.cert).unwrap();
    let no_crl_sign = CertTemplate {
        serial: 1,
        issuer: raw.subject.to_vec(),
        subject: raw.subject.to_vec(),
        spki: raw.spki.to_vec(),
        not_before: T.minus(365 * DAY),
        not_after: T.plus(9 * 365 * DAY),
        extensions: vec![
            extension(
                jobseal_core::oid::BASIC_CONSTRAINTS,
                true,
                &[0x30, 0x03, 0x01, 0x01, 0xff],
            )
            .unwrap(),
            extension(
                jobseal_core::oid::KEY_USAGE,
                true,
                &[0x03, 0x02, 0x02, 0x04],
            )
            .unwrap(),
        ],
    }
    .sign(&ca.key)
    .unwrap();
    std::fs::write(
        ca_file(d, &ca.cert, "0"),
        jobseal_core::pem::encode_block("CERTIFICATE", &no_crl_sign),
    )
    .unwrap();
    assert_eq!(decide(d, ROSA, |_| {}), "chain.crl-invalid");
}

#[test]
fn config_settings() {
    let dir = vectors();
    let d = dir.path();
    let require = |c: &mut Config| c.crl = CrlPolicy::Require;
    let ignore = |c: &mut Config| c.crl = CrlPolicy::Ignore;
    // The default: CRLs where published.
    assert_eq!(
        decide(d, "permit-direct-from-user-certificate", |_| {}),
        "permit"
    );
    // Require: a CA without a CRL file denies; one with a current CRL passes.
    assert_eq!(
        decide(d, "permit-direct-from-user-certificate", require),
        "chain.crl-missing"
    );
    assert_eq!(decide(d, ROSA, require), "permit");
    assert_eq!(
        decide(d, "deny-chain-crl-expired", require),
        "chain.crl-expired"
    );
    // Ignore: no CRL is read.
    for v in [
        "deny-chain-user-certificate-revoked",
        "deny-chain-crl-expired",
        "deny-chain-crl-invalid",
    ] {
        assert_eq!(decide(d, v, ignore), "permit", "{v}");
    }
    // Namespaces: Ignore reads none; Require wants one for every issuer.
    let ns_ignore = |c: &mut Config| c.namespaces = NamespacePolicy::Ignore;
    let ns_require = |c: &mut Config| c.namespaces = NamespacePolicy::Require;
    for v in [
        "deny-chain-namespace-violation",
        "deny-chain-namespace-deny-rule",
        "deny-chain-policy-file-invalid",
    ] {
        assert_eq!(decide(d, v, ns_ignore), "permit", "{v}");
    }
    assert_eq!(
        decide(d, "permit-direct-from-user-certificate", ns_require),
        "chain.namespace-violation"
    );
    assert_eq!(decide(d, ROSA, ns_require), "permit");
    assert_eq!(
        decide(d, "permit-ca-with-signing-policy", ns_require),
        "permit"
    );
}

#[test]
fn namespace_lookup_walks_up_to_the_anchor() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    let ns = ca_file(d, &ca.cert, "namespaces");
    let text = std::fs::read_to_string(&ns).unwrap();
    // Without the rule about the sub-CA, the sub-CA may sign nothing: its
    // user is denied at the namespace check (ahead of revocation, which
    // would otherwise deny the revoked sub-CA itself: drop the CRL).
    std::fs::remove_file(ca_file(d, &ca.cert, "r0")).unwrap();
    assert_eq!(
        decide(d, "deny-chain-intermediate-ca-revoked", |_| {}),
        "permit"
    );
    let without_sub: String = text
        .split("\n\n")
        .filter(|block| !block.contains("Sub CA revoked\""))
        .collect::<Vec<_>>()
        .join("\n\n");
    std::fs::write(&ns, without_sub).unwrap();
    assert_eq!(
        decide(d, "deny-chain-intermediate-ca-revoked", |_| {}),
        "chain.namespace-violation"
    );
    // A policy file of the sub-CA's own hash takes precedence.
    let sub_subject =
        throwaway::name_der("CN=jobseal Test Sub CA revoked,O=jobseal test vectors").unwrap();
    let hash = name::openssl_hash(&sub_subject).unwrap();
    std::fs::write(
        d.join("ca").join(format!("{hash:08x}.namespaces")),
        "TO Issuer SELF PERMIT Subject \"/O=jobseal test vectors/CN=Sam .*\"\n",
    )
    .unwrap();
    assert_eq!(
        decide(d, "deny-chain-intermediate-ca-revoked", |_| {}),
        "permit"
    );
}

#[test]
fn openssl_agrees_on_the_crl_vectors() {
    let Some(openssl) = jobseal_testkit::peers::require("openssl", "openssl") else {
        return;
    };
    let version = std::process::Command::new(&openssl).arg("version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "{} does not run: apt-get install -y openssl",
        openssl.display()
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let tmp = tempfile::tempdir().unwrap();
    for (vector, expected) in [
        ("permit-ca-with-crl-and-namespaces", "OK"),
        ("deny-chain-user-certificate-revoked", "certificate revoked"),
        ("deny-chain-crl-expired", "CRL has expired"),
        ("deny-chain-crl-invalid", "CRL signature failure"),
    ] {
        // The user certificate: the bundle's second certificate.
        let bundle = std::fs::read(dir.join(vector).join("bundle.pem")).unwrap();
        let blocks = jobseal_core::pem::parse_blocks(&bundle).unwrap();
        let user = tmp.path().join(format!("{vector}.pem"));
        std::fs::write(
            &user,
            jobseal_core::pem::encode_block("CERTIFICATE", &blocks[1].der),
        )
        .unwrap();
        let o = std::process::Command::new("openssl")
            .args([
                "verify",
                "-crl_check",
                "-attime",
                &T.0.to_string(),
                "-CApath",
            ])
            .arg(dir.join("ca"))
            .arg(&user)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(text.contains(expected), "{vector}: openssl says {text}");
        assert_eq!(o.status.success(), expected == "OK", "{vector}: {text}");
    }
}

/// DER of `tag` around the concatenated parts.
fn wrap(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    let mut out = tlv::header(tag, body.len());
    out.extend_from_slice(&body);
    out
}

#[test]
fn issuing_distribution_points() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    let idp = |value: Vec<u8>| {
        let mut t = crl(&ca).revoke(42, T);
        t.extensions.push(
            extension(
                der::asn1::ObjectIdentifier::new_unwrap("2.5.29.28"),
                true,
                &value,
            )
            .unwrap(),
        );
        t.sign_pem(&ca.key).unwrap()
    };
    let ca_name = tlv::RawCert::split(&ca.cert).unwrap().subject.to_vec();
    // distributionPoint [0] { fullName [0] { one GeneralName } }
    let full_name = |general_name: Vec<u8>| wrap(0xa0, &[&wrap(0xa0, &[&general_name])]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "only user certificates: covers Rosa",
            wrap(0x30, &[&[0x81, 0x01, 0xff]]),
            "chain.revoked",
        ),
        (
            "only CA certificates: no CRL covers Rosa",
            wrap(0x30, &[&[0x82, 0x01, 0xff]]),
            "chain.crl-missing",
        ),
        (
            "only attribute certificates: no CRL covers Rosa",
            wrap(0x30, &[&[0x85, 0x01, 0xff]]),
            "chain.crl-missing",
        ),
        (
            "indirect CRL",
            wrap(0x30, &[&[0x84, 0x01, 0xff]]),
            "chain.crl-invalid",
        ),
        (
            "only some reasons",
            wrap(0x30, &[&[0x83, 0x02, 0x06, 0x40]]),
            "chain.crl-invalid",
        ),
        (
            "two scopes at once",
            wrap(0x30, &[&[0x81, 0x01, 0xff, 0x82, 0x01, 0xff]]),
            "chain.crl-invalid",
        ),
        ("not DER", vec![0x30, 0x03, 0x81, 0x01], "chain.crl-invalid"),
        (
            "a distribution point named by the issuer's name: covers a certificate without cRLDistributionPoints",
            wrap(0x30, &[&full_name(wrap(0xa4, &[&ca_name]))]),
            "chain.revoked",
        ),
        (
            "a distribution point URI: does not cover a certificate without cRLDistributionPoints",
            wrap(
                0x30,
                &[&full_name(wrap(0x86, &[b"http://ca.example.invalid/crl"]))],
            ),
            "chain.crl-missing",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, value, expected) in cases {
        let got = rosa_with(d, &idp(value));
        if got != expected {
            wrong.push(format!("{what}: expected {expected}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_damaged_crl_unrevokes_a_certificate() {
    let dir = vectors();
    let d = dir.path();
    let ca = ca_r();
    let good = crl(&ca).revoke(42, T).sign(&ca.key).unwrap();
    let r0 = ca_file(d, &ca.cert, "r0");
    let verifier = Verifier::new(Config {
        ca_dir: d.join("ca"),
        ..Config::default()
    })
    .unwrap();
    let job = d.join(ROSA).join("job");
    let inv = Invocation {
        executable: job.join("run.sh"),
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: job,
    };
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            std::fs::write(&r0, &bad).unwrap();
            let dec = verifier.check_file(&d.join(ROSA).join("bundle.pem"), &inv, T);
            assert!(
                ["chain.revoked", "chain.crl-invalid"].contains(&dec.code()),
                "byte {i} ^ {mask:#x}: {} {}",
                dec.code(),
                dec.message
            );
            *seen.entry(dec.code().to_string()).or_insert(0) += 1;
        }
    }
    eprintln!("damaged CRLs: {seen:?}");
}

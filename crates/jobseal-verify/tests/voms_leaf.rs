//! Issue 16: a VOMS attribute certificate carried by the job-bound proxy
//! itself, which the user's certificate issues directly (no proxy with a
//! private key anywhere). The issuing side puts it there
//! (`Credential::with_voms_ac`) and refuses what no site would accept; the
//! verifier reports its FQANs with the checks of §6.3a, and denies a chain
//! with two AC-bearing certificates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use jobseal_core::time::UnixTime;
use jobseal_core::{name, oid, tlv};
use jobseal_issue::credential::{Credential, Source, check_issuer};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::proxy::{CertTemplate, ProxyKind, extension};
use jobseal_issue::throwaway::{self, Party};
use jobseal_issue::{IssueError, JobSpec, SealParams, seal};
use jobseal_testkit::ac::{AcSpec, aa, ac_seq};
use jobseal_verify::{Config, Decision, Invocation, Reason, Verifier};

const NOW: UnixTime = UnixTime(1_767_225_600);
const DAY: u64 = 86_400;
const VO: &str = "testvo";
const AA_HOST: &str = "voms.leaf.test";

struct World {
    dir: tempfile::TempDir,
    ca: Party,
    user: Party,
    aa: Party,
}

fn subject(cert: &[u8]) -> Vec<u8> {
    tlv::RawCert::split(cert).unwrap().subject.to_vec()
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = throwaway::ca(
            &[1; 32],
            "CN=Leaf Test CA,O=jobseal",
            NOW.minus(DAY),
            NOW.plus(365 * DAY),
        )
        .unwrap();
        let user = throwaway::user(
            &ca,
            &[2; 32],
            "CN=Jane Doe,O=jobseal",
            0x1234,
            NOW.minus(DAY),
            NOW.plus(30 * DAY),
        )
        .unwrap();
        let aa = aa(
            &ca,
            &[3; 32],
            3,
            &format!("CN={AA_HOST},O=jobseal"),
            (NOW.minus(DAY), NOW.plus(365 * DAY)),
        )
        .unwrap();
        throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        let lsc = dir.path().join("vomsdir").join(VO);
        std::fs::create_dir_all(&lsc).unwrap();
        std::fs::write(
            lsc.join(format!("{AA_HOST}.lsc")),
            format!(
                "{}\n{}\n",
                name::to_slash_string(&subject(&aa.cert)),
                name::to_slash_string(&subject(&ca.cert))
            ),
        )
        .unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(job.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        Self { dir, ca, user, aa }
    }

    /// The AC a VOMS server issues for the user's certificate: holder the
    /// user's subject and serial, two FQANs, valid a day.
    fn ac_spec(&self) -> AcSpec {
        AcSpec {
            vo: VO.into(),
            host: AA_HOST.into(),
            fqans: vec![format!("/{VO}"), format!("/{VO}/prod/Role=pilot")],
            generic: Vec::new(),
            holder_name: subject(&self.user.cert),
            holder_serial: vec![0x12, 0x34],
            issuer: subject(&self.aa.cert),
            carried: vec![self.aa.cert.clone()],
            not_before: NOW.minus(60),
            not_after: NOW.plus(DAY),
            extra_extensions: Vec::new(),
            algorithm: None,
            flip_signature: false,
        }
    }

    fn ac(&self) -> Vec<u8> {
        self.ac_spec().sign(&self.aa.key).unwrap()
    }

    fn cred(&self, key: &Party, chain: Vec<Vec<u8>>) -> Credential {
        Credential::from_parts(
            Source::Proxy(PathBuf::from("test")),
            &KeyDer::Pkcs8(key.pkcs8.clone()),
            chain,
        )
        .unwrap()
    }

    fn user_cred(&self) -> Credential {
        self.cred(&self.user, vec![self.user.cert.clone()])
    }

    /// An inheritAll proxy of `issuer`, carrying `acs` if any.
    fn proxy(&self, issuer: &Party, seed: u8, acs: &[Vec<u8>]) -> Party {
        let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&[seed; 32]).unwrap();
        let mut t = CertTemplate::proxy(
            &issuer.cert,
            spki,
            u64::from(seed),
            NOW.minus(DAY),
            NOW.plus(7 * DAY),
            &ProxyKind::InheritAll { path_len: None },
        )
        .unwrap();
        if !acs.is_empty() {
            t.extensions
                .push(extension(oid::VOMS_AC_SEQ, false, &ac_seq(acs)).unwrap());
        }
        let cert = t.sign(&issuer.key).unwrap();
        Party { key, pkcs8, cert }
    }

    fn job(&self, valid: &str) -> JobSpec {
        let toml = self.dir.path().join("job").join("job.toml");
        let text = format!("executable = \"run.sh\"\nvalid = \"{valid}\"\n");
        JobSpec::from_toml(&text, &toml, &self.dir.path().join("job")).unwrap()
    }

    fn seal(&self, cred: &Credential, valid: &str) -> Result<jobseal_issue::Sealed, IssueError> {
        let issuer = check_issuer(cred, NOW)?;
        let params = SealParams {
            now: NOW,
            job_id: [7; 16],
            serial: 99,
        };
        seal(cred, &issuer, &self.job(valid), &params)
    }

    fn verify(&self, bundle: &[u8]) -> Decision {
        let verifier = Verifier::new(Config {
            ca_dir: self.dir.path().join("ca"),
            voms_dir: self.dir.path().join("vomsdir"),
            ..Config::default()
        })
        .unwrap();
        let job = self.dir.path().join("job");
        let inv = Invocation {
            executable: job.join("run.sh"),
            arguments: Vec::new(),
            job_dir: job,
        };
        verifier.check(bundle, &inv, NOW)
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, IssueError>) -> String {
    match r {
        Err(IssueError::Credential(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The VOMS extension of the leaf (the job-bound proxy), if any.
fn leaf_voms_extension(bundle: &jobseal_core::bundle::Bundle) -> Option<Vec<u8>> {
    use der::Decode;
    let leaf = x509_cert::Certificate::from_der(&bundle.certificates[0]).unwrap();
    let exts = leaf.tbs_certificate().extensions()?;
    exts.iter()
        .find(|e| e.extn_id == oid::VOMS_AC_SEQ)
        .map(|e| e.extn_value.as_bytes().to_vec())
}

fn fqans(d: &Decision) -> Vec<String> {
    let id = d.identity.as_ref().unwrap();
    assert_eq!(id.voms.len(), 1, "{:?}", id.voms);
    assert!(id.voms[0].verified, "{:?}", id.voms[0].error);
    id.voms[0].fqans.clone()
}

#[test]
fn an_ac_sealed_by_the_user_certificate_is_carried_by_the_leaf_and_verified() {
    let w = World::new();
    let ac = w.ac();
    let cred = w.user_cred().with_voms_ac(ac.clone()).unwrap();
    let sealed = w.seal(&cred, "1h").unwrap();
    // The leaf carries exactly this AC, in the form voms-proxy-init writes,
    // and the chain is the leaf and the user certificate: no proxy.
    assert_eq!(
        leaf_voms_extension(&sealed.bundle),
        Some(ac_seq(std::slice::from_ref(&ac)))
    );
    assert_eq!(sealed.bundle.certificates.len(), 2);
    let d = w.verify(sealed.bundle.to_pem().as_bytes());
    assert!(d.is_permit(), "{}: {}", d.code(), d.message);
    assert_eq!(fqans(&d), ["/testvo", "/testvo/prod/Role=pilot"]);
    assert!(d.identity.unwrap().issued_by_end_entity);
}

/// The Debian VOMS server names the user's CA and serial in the holder
/// (RFC 5755); voms-proxy-fake names the user's subject. Both are the EEC.
#[test]
fn both_holder_forms_are_accepted() {
    let w = World::new();
    let mut spec = w.ac_spec();
    spec.holder_name = subject(&w.ca.cert);
    let cred = w
        .user_cred()
        .with_voms_ac(spec.sign(&w.aa.key).unwrap())
        .unwrap();
    let d = w.verify(w.seal(&cred, "1h").unwrap().bundle.to_pem().as_bytes());
    assert!(d.is_permit(), "{}: {}", d.code(), d.message);
    assert_eq!(fqans(&d).len(), 2);
}

#[test]
fn the_ac_validity_caps_the_job_and_says_so() {
    let w = World::new();
    let mut spec = w.ac_spec();
    spec.not_after = NOW.plus(3600);
    let cred = w
        .user_cred()
        .with_voms_ac(spec.sign(&w.aa.key).unwrap())
        .unwrap();
    let sealed = w.seal(&cred, "2d").unwrap();
    assert_eq!(sealed.manifest.not_after, NOW.plus(3600).0);
    let note = sealed.capped.unwrap();
    assert!(note.contains("VOMS attributes of VO testvo"), "{note}");
}

#[test]
fn an_expired_or_future_ac_is_refused_before_signing() {
    let w = World::new();
    let mut spec = w.ac_spec();
    spec.not_before = NOW.minus(2 * DAY);
    spec.not_after = NOW.minus(DAY);
    let cred = w
        .user_cred()
        .with_voms_ac(spec.sign(&w.aa.key).unwrap())
        .unwrap();
    assert!(refusal(w.seal(&cred, "1h")).contains("expired"));
    let mut spec = w.ac_spec();
    spec.not_before = NOW.plus(3600);
    let cred = w
        .user_cred()
        .with_voms_ac(spec.sign(&w.aa.key).unwrap())
        .unwrap();
    assert!(refusal(w.seal(&cred, "1h")).contains("not valid before"));
}

#[test]
fn an_ac_is_refused_under_a_proxy() {
    let w = World::new();
    let p = w.proxy(&w.user, 10, &[]);
    let cred = w.cred(&p, vec![p.cert.clone(), w.user.cert.clone()]);
    let m = refusal(cred.with_voms_ac(w.ac()));
    assert!(m.contains("not a proxy"), "{m}");
    // Set directly, bypassing with_voms_ac: sealing still refuses.
    let mut cred = w.cred(&p, vec![p.cert.clone(), w.user.cert.clone()]);
    cred.voms_ac = Some(w.ac());
    assert!(refusal(w.seal(&cred, "1h")).contains("not a proxy"));
}

#[test]
fn an_ac_for_another_certificate_is_refused() {
    let w = World::new();
    let mut spec = w.ac_spec();
    spec.holder_serial = vec![0x12, 0x35];
    let m = refusal(w.user_cred().with_voms_ac(spec.sign(&w.aa.key).unwrap()));
    assert!(
        m.contains("is not for") && m.contains("serial number"),
        "{m}"
    );
    let mut spec = w.ac_spec();
    spec.holder_name = throwaway::name_der("CN=John Roe,O=jobseal").unwrap();
    let m = refusal(w.user_cred().with_voms_ac(spec.sign(&w.aa.key).unwrap()));
    assert!(m.contains("issued to /O=jobseal/CN=John Roe"), "{m}");
}

#[test]
fn bytes_that_are_not_a_voms_ac_are_refused() {
    let w = World::new();
    let m = refusal(w.user_cred().with_voms_ac(b"not an AC".to_vec()));
    assert!(m.contains("cannot be used"), "{m}");
    let mut spec = w.ac_spec();
    spec.fqans.push("/othervo".into());
    let m = refusal(w.user_cred().with_voms_ac(spec.sign(&w.aa.key).unwrap()));
    assert!(m.contains("not under the VO"), "{m}");
}

/// Attributes from one certificate of the chain only: sites deny a chain
/// where two proxies carry ACs, and `sign` refuses to seal under one.
#[test]
fn two_ac_bearing_certificates_are_denied_and_refused() {
    let w = World::new();
    let p1 = w.proxy(&w.user, 10, &[w.ac()]);
    let p2 = w.proxy(&p1, 11, &[w.ac()]);
    let chain = vec![p2.cert.clone(), p1.cert.clone(), w.user.cert.clone()];
    let m = refusal(w.seal(&w.cred(&p2, chain.clone()), "1h"));
    assert!(m.contains("chain.voms-two-sources"), "{m}");
    // Sealed anyway (seal_manifest does not check the issuer): denied.
    let user = w.user_cred();
    let params = SealParams {
        now: NOW,
        job_id: [8; 16],
        serial: 98,
    };
    let (manifest, _) = jobseal_issue::job::build_manifest(
        &w.job("1h"),
        &check_issuer(&user, NOW).unwrap(),
        &params,
    )
    .unwrap();
    let (bundle, _) =
        jobseal_issue::job::seal_manifest(&w.cred(&p2, chain), &manifest, 98).unwrap();
    let d = w.verify(bundle.to_pem().as_bytes());
    assert_eq!(d.reason, Some(Reason::ChainVomsTwoSources), "{}", d.message);
    assert_eq!(d.identity.unwrap().end_entity, "/O=jobseal/CN=Jane Doe");
    // One AC-bearing proxy is fine.
    let one = w.proxy(&p1, 12, &[]);
    let cred = w.cred(
        &one,
        vec![one.cert.clone(), p1.cert.clone(), w.user.cert.clone()],
    );
    let d = w.verify(w.seal(&cred, "1h").unwrap().bundle.to_pem().as_bytes());
    assert!(d.is_permit(), "{}: {}", d.code(), d.message);
    assert_eq!(fqans(&d).len(), 2);
    assert!(!d.identity.unwrap().issued_by_end_entity);
}

/// The verifier's side of the same rule, on a bundle the issuer would not
/// make: a VOMS proxy's AC and another in the job-bound proxy.
#[test]
fn a_verifier_denies_a_voms_proxy_and_an_ac_in_the_leaf() {
    let w = World::new();
    let p = w.proxy(&w.user, 10, &[w.ac()]);
    let chain = vec![p.cert.clone(), w.user.cert.clone()];
    let sealed = w.seal(&w.cred(&p, chain), "1h").unwrap();
    let mut bundle = sealed.bundle.clone();
    // Re-issue the leaf with an AC of its own, signed by the proxy's key.
    let raw = tlv::RawCert::split(&bundle.certificates[0]).unwrap();
    let digest = sealed.manifest_sha256;
    let mut t = CertTemplate::proxy(
        &p.cert,
        raw.spki.to_vec(),
        99,
        NOW.minus(300),
        NOW.plus(3600),
        &ProxyKind::JobBound {
            manifest_sha256: digest,
        },
    )
    .unwrap();
    t.extensions
        .push(extension(oid::VOMS_AC_SEQ, false, &ac_seq(&[w.ac()])).unwrap());
    bundle.certificates[0] = t.sign(&p.key).unwrap();
    let d = w.verify(bundle.to_pem().as_bytes());
    assert_eq!(d.reason, Some(Reason::ChainVomsTwoSources), "{}", d.message);
    // The same bundle without the leaf's AC verifies: the AC is the one
    // thing wrong.
    let d = w.verify(sealed.bundle.to_pem().as_bytes());
    assert!(d.is_permit(), "{}: {}", d.code(), d.message);
}

/// The published vector `deny-chain-voms-two-sources` and its control
/// `permit-voms-one-source` (both verified by `vectors.rs` with every other
/// vector) are the same bundle but for the leaf's AC: the same VOMS proxy,
/// user certificate and manifest, the leaf's validity and key. So the deny
/// comes from rule 2f alone.
#[test]
fn the_two_sources_vector_and_its_control_differ_only_in_the_leaf_ac() {
    use der::Decode as _;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
    let read = |name: &str| {
        let pem = std::fs::read(root.join(name).join("bundle.pem")).unwrap();
        jobseal_core::bundle::Bundle::parse(&pem).unwrap()
    };
    let deny = read("deny-chain-voms-two-sources");
    let control = read("permit-voms-one-source");
    assert_eq!(deny.certificates[1..], control.certificates[1..]);
    assert_eq!(deny.certificates.len(), 3);
    assert_eq!(deny.manifest, control.manifest);
    let (d, c) = (
        tlv::RawCert::split(&deny.certificates[0]).unwrap(),
        tlv::RawCert::split(&control.certificates[0]).unwrap(),
    );
    assert_eq!((d.subject, d.issuer, d.spki), (c.subject, c.issuer, c.spki));
    // The VOMS proxy carries the AC; only the deny's leaf carries it too.
    assert!(leaf_voms_extension(&control).is_none());
    let leaf_ac = leaf_voms_extension(&deny).unwrap();
    let proxy = x509_cert::Certificate::from_der(&deny.certificates[1]).unwrap();
    let proxy_ac = proxy
        .tbs_certificate()
        .extensions()
        .and_then(|e| e.iter().find(|e| e.extn_id == oid::VOMS_AC_SEQ))
        .map(|e| e.extn_value.as_bytes().to_vec());
    assert_eq!(Some(leaf_ac), proxy_ac, "the same AC, twice");
}

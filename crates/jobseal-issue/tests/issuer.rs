//! Choosing the credential as grid tools do, and refusing issuers that cannot
//! work before anything is signed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use der::Encode;
use jobseal_core::asn1::{ProxyCertInfo, ProxyPolicy};
use jobseal_core::oid;
use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{
    Credential, Environment, Explicit, Source, check_issuer, find_source,
};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::proxy::{CertTemplate, ProxyKind, extension};
use jobseal_issue::throwaway::{self, Party};
use jobseal_issue::{IssueError, JobSpec, SealParams, seal};

const NOW: UnixTime = UnixTime(1_767_225_600);
const DAY: u64 = 86_400;

fn pki() -> (Party, Party) {
    let ca = throwaway::ca(
        &[1; 32],
        "CN=Test CA,O=jobseal",
        NOW.minus(DAY),
        NOW.plus(365 * DAY),
    )
    .unwrap();
    let user = throwaway::user(
        &ca,
        &[2; 32],
        "CN=Jane Doe,O=jobseal",
        2,
        NOW.minus(DAY),
        NOW.plus(30 * DAY),
    )
    .unwrap();
    (ca, user)
}

fn cred(key: &Party, chain: Vec<Vec<u8>>) -> Credential {
    Credential::from_parts(
        Source::Proxy(PathBuf::from("test")),
        &KeyDer::Pkcs8(key.pkcs8.clone()),
        chain,
    )
    .unwrap()
}

fn proxy(
    issuer: &Party,
    seed: u8,
    lang: der::asn1::ObjectIdentifier,
    path_len: Option<u32>,
    not_after: UnixTime,
) -> Party {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&[seed; 32]).unwrap();
    let mut t = CertTemplate::proxy(
        &issuer.cert,
        spki,
        77,
        NOW.minus(DAY),
        not_after,
        &ProxyKind::InheritAll { path_len },
    )
    .unwrap();
    let pci = ProxyCertInfo {
        path_len_constraint: path_len,
        proxy_policy: ProxyPolicy {
            policy_language: lang,
            policy: None,
        },
    };
    let e = t
        .extensions
        .iter_mut()
        .find(|e| e.extn_id == oid::PROXY_CERT_INFO)
        .unwrap();
    *e = extension(oid::PROXY_CERT_INFO, true, &pci.to_der().unwrap()).unwrap();
    let cert = t.sign(&issuer.key).unwrap();
    Party { key, pkcs8, cert }
}

fn refusal(c: &Credential) -> String {
    match check_issuer(c, NOW) {
        Err(IssueError::Credential(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_user_certificate_and_a_full_proxy_can_issue() {
    let (_, user) = pki();
    let c = check_issuer(&cred(&user, vec![user.cert.clone()]), NOW).unwrap();
    assert_eq!(c.end_entity, "/O=jobseal/CN=Jane Doe");
    assert!(!c.issuer_is_proxy);
    let p = proxy(&user, 3, oid::PPL_INHERIT_ALL, Some(1), NOW.plus(DAY));
    let c = check_issuer(&cred(&p, vec![p.cert.clone(), user.cert.clone()]), NOW).unwrap();
    assert!(c.issuer_is_proxy);
    assert_eq!(
        c.expires,
        NOW.plus(DAY),
        "the proxy's expiry bounds what it issues"
    );
}

#[test]
fn limited_independent_and_exhausted_proxies_are_refused() {
    let (_, user) = pki();
    let limited = proxy(&user, 3, oid::PPL_LIMITED, None, NOW.plus(DAY));
    assert!(
        refusal(&cred(
            &limited,
            vec![limited.cert.clone(), user.cert.clone()]
        ))
        .contains("limited proxy")
    );
    let independent = proxy(&user, 4, oid::PPL_INDEPENDENT, None, NOW.plus(DAY));
    assert!(
        refusal(&cred(
            &independent,
            vec![independent.cert.clone(), user.cert.clone()]
        ))
        .contains("independent")
    );
    let last_level = proxy(&user, 5, oid::PPL_INHERIT_ALL, Some(0), NOW.plus(DAY));
    assert!(
        refusal(&cred(
            &last_level,
            vec![last_level.cert.clone(), user.cert.clone()]
        ))
        .contains("path length 0")
    );
}

#[test]
fn an_expired_credential_is_refused_with_what_to_do() {
    let (_, user) = pki();
    let expired = proxy(&user, 6, oid::PPL_INHERIT_ALL, None, NOW.minus(60));
    let m = refusal(&cred(
        &expired,
        vec![expired.cert.clone(), user.cert.clone()],
    ));
    assert!(
        m.contains("expired") && m.contains("voms-proxy-init"),
        "{m}"
    );
}

#[test]
fn a_legacy_globus_proxy_is_refused() {
    let (_, user) = pki();
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&[7; 32]).unwrap();
    let subject = jobseal_core::tlv::RawCert::split(&user.cert)
        .unwrap()
        .subject
        .to_vec();
    let legacy = CertTemplate {
        serial: 9,
        issuer: subject.clone(),
        subject: jobseal_core::name::append_cn(&subject, "proxy").unwrap(),
        spki,
        not_before: NOW.minus(DAY),
        not_after: NOW.plus(DAY),
        extensions: vec![],
    }
    .sign(&user.key)
    .unwrap();
    let p = Party {
        key,
        pkcs8,
        cert: legacy,
    };
    assert!(
        refusal(&cred(&p, vec![p.cert.clone(), user.cert.clone()])).contains("legacy Globus proxy")
    );
}

#[test]
fn validity_is_capped_at_the_issuer_expiry_and_says_why() {
    let (_, user) = pki();
    let p = proxy(&user, 8, oid::PPL_INHERIT_ALL, None, NOW.plus(3600));
    let c = cred(&p, vec![p.cert.clone(), user.cert.clone()]);
    let issuer = check_issuer(&c, NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.sh"), b"#!/bin/sh\n").unwrap();
    let job = JobSpec::from_toml(
        "executable = \"run.sh\"\nvalid = \"2d\"\n",
        &dir.path().join("job.toml"),
        dir.path(),
    )
    .unwrap();
    let sealed = seal(
        &c,
        &issuer,
        &job,
        &SealParams {
            now: NOW,
            job_id: [1; 16],
            serial: 5,
        },
    )
    .unwrap();
    assert_eq!(sealed.manifest.not_after, NOW.plus(3600).0);
    let note = sealed.capped.unwrap();
    assert!(note.contains("capped") && note.contains("CN=77"), "{note}");
}

fn env() -> Environment {
    Environment {
        x509_user_proxy: None,
        x509_user_cert: None,
        x509_user_key: None,
        home: None,
        uid: None,
    }
}

#[test]
fn credential_search_order_is_the_grid_one() {
    let home = tempfile::tempdir().unwrap();
    let globus = home.path().join(".globus");
    std::fs::create_dir_all(&globus).unwrap();
    for f in ["usercert.pem", "userkey.pem", "usercred.p12"] {
        std::fs::write(globus.join(f), b"x").unwrap();
    }
    let mut e = env();
    e.home = Some(home.path().to_path_buf());
    let p = |s: &str| PathBuf::from(s);
    // ~/.globus cert+key before the .p12.
    assert_eq!(
        find_source(&Explicit::default(), &e).unwrap(),
        Source::CertKey {
            cert: globus.join("usercert.pem"),
            key: globus.join("userkey.pem")
        }
    );
    std::fs::remove_file(globus.join("userkey.pem")).unwrap();
    assert_eq!(
        find_source(&Explicit::default(), &e).unwrap(),
        Source::Pkcs12(globus.join("usercred.p12"))
    );
    // X509_USER_CERT/KEY before ~/.globus; X509_USER_PROXY before those.
    let set = tempfile::tempdir().unwrap();
    let q = |s: &str| {
        let path = set.path().join(s);
        std::fs::write(&path, b"x").unwrap();
        path
    };
    let (cert, key, proxy) = (q("cert.pem"), q("key.pem"), q("proxy"));
    e.x509_user_cert = Some(cert.clone());
    e.x509_user_key = Some(key.clone());
    assert_eq!(
        find_source(&Explicit::default(), &e).unwrap(),
        Source::CertKey {
            cert: cert.clone(),
            key: key.clone()
        }
    );
    e.x509_user_proxy = Some(proxy.clone());
    assert_eq!(
        find_source(&Explicit::default(), &e).unwrap(),
        Source::Proxy(proxy)
    );
    // Explicit flags before everything.
    let explicit = Explicit {
        proxy: None,
        cert: Some(p("/flag/c.pem")),
        key: Some(p("/flag/k.pem")),
    };
    assert_eq!(
        find_source(&explicit, &e).unwrap(),
        Source::CertKey {
            cert: p("/flag/c.pem"),
            key: p("/flag/k.pem")
        }
    );
    let explicit = Explicit {
        proxy: Some(p("/flag/proxy")),
        cert: None,
        key: None,
    };
    assert_eq!(
        find_source(&explicit, &e).unwrap(),
        Source::Proxy(p("/flag/proxy"))
    );
    // Nothing at all: a message that says what to do.
    match find_source(&Explicit::default(), &env()) {
        Err(IssueError::Credential(m)) => assert!(
            m.contains("voms-proxy-init") && m.contains("usercert.pem"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

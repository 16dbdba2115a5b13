//! Paths built upward through the CA directory and the `/` form of names
//! (issue 18; from its hostile review): the bounds of §6.3 2b, the anchor
//! copy rule, a directory without a root, the sign-side check, and names
//! that must not share an identity.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation // DER lengths of small test names
)]

use std::path::Path;

use jobseal_core::pem::encode_block;
use jobseal_core::{name, tlv};
use jobseal_issue::proxy::CertTemplate;
use jobseal_issue::throwaway::{self, Party};
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::{self, PathOptions, ValidatedPath};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;
use jobseal_verify::{Error, UnixTime};

const T: UnixTime = UnixTime(1_780_000_000);
const DAY: u64 = 86_400;
const O: &str = "O=jobseal review";

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

fn subject_of(cert: &[u8]) -> Vec<u8> {
    tlv::RawCert::split(cert).unwrap().subject.to_vec()
}

fn root(b: u8, cn: &str, nb: UnixTime, na: UnixTime) -> Party {
    throwaway::ca(&seed(b), &format!("CN={cn},{O}"), nb, na).unwrap()
}

fn root_now(b: u8, cn: &str) -> Party {
    root(b, cn, T.minus(365 * DAY), T.plus(365 * DAY))
}

/// A CA certificate for key `b` named `subject` issued by `parent`.
fn ca_cert(parent: &Party, b: u8, subject: &[u8], serial: u64) -> Party {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&seed(b)).unwrap();
    let cert = CertTemplate {
        serial,
        issuer: subject_of(&parent.cert),
        subject: subject.to_vec(),
        spki,
        not_before: T.minus(300 * DAY),
        not_after: T.plus(300 * DAY),
        extensions: throwaway::ca_extensions().unwrap(),
    }
    .sign(&parent.key)
    .unwrap();
    Party { key, pkcs8, cert }
}

fn sub(parent: &Party, b: u8, cn: &str) -> Party {
    let name = throwaway::name_der(&format!("CN={cn},{O}")).unwrap();
    ca_cert(parent, b, &name, u64::from(b))
}

fn user_named(ca: &Party, b: u8, subject_der: &[u8]) -> Party {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&seed(b)).unwrap();
    let cert = CertTemplate {
        serial: u64::from(b),
        issuer: subject_of(&ca.cert),
        subject: subject_der.to_vec(),
        spki,
        not_before: T.minus(DAY),
        not_after: T.plus(30 * DAY),
        extensions: throwaway::user_extensions().unwrap(),
    }
    .sign(&ca.key)
    .unwrap();
    Party { key, pkcs8, cert }
}

fn user(ca: &Party, b: u8, cn: &str) -> Party {
    user_named(
        ca,
        b,
        &throwaway::name_der(&format!("CN={cn},{O}")).unwrap(),
    )
}

/// Install `cert` as the next free `<hash>.N` of `dir`.
fn install(dir: &Path, cert: &[u8]) {
    let hash = name::openssl_hash(&subject_of(cert)).unwrap();
    let mut n = 0;
    while dir.join(format!("{hash:08x}.{n}")).exists() {
        n += 1;
    }
    std::fs::write(
        dir.join(format!("{hash:08x}.{n}")),
        encode_block("CERTIFICATE", cert),
    )
    .unwrap();
}

fn opts() -> PathOptions {
    PathOptions {
        at: T,
        clock_skew: 300,
        algorithms: AlgorithmPolicy::default(),
    }
}

fn parsed(chain: &[&[u8]]) -> Vec<ParsedCert> {
    chain
        .iter()
        .enumerate()
        .map(|(i, c)| ParsedCert::from_der(c.to_vec(), i).unwrap())
        .collect()
}

fn validate(dir: &Path, chain: &[&[u8]]) -> Result<ValidatedPath, Error> {
    let trust = TrustStore::open(dir).unwrap();
    path::validate(&parsed(chain), &trust, &opts())
}

/// A root and `n` subordinates, each issued by the one before, all in
/// the directory; validate a user of the last one, given alone.
fn chain_of_directory_cas(n: u8) -> Result<ValidatedPath, Error> {
    let dir = tempfile::tempdir().unwrap();
    let mut parent = root_now(1, "Review Root");
    install(dir.path(), &parent.cert);
    for i in 0..n {
        let s = sub(&parent, 10 + i, &format!("Review Sub {i}"));
        install(dir.path(), &s.cert);
        parent = s;
    }
    let u = user(&parent, 30, "Deep User");
    validate(dir.path(), &[&u.cert])
}

/// §6.3 2b.3: "At most 6 directory certificates lie between the bundle and
/// the anchor": 5 and 6 are found, 7 are beyond the bound.
#[test]
fn directory_cas_are_followed_up_to_the_spec_bound() {
    for n in [5, 6] {
        if let Err(e) = chain_of_directory_cas(n) {
            panic!("{n} directory CAs: {}: {}", e.reason.code(), e.message);
        }
    }
    let e = chain_of_directory_cas(7).unwrap_err();
    assert_eq!(e.reason.code(), "chain.untrusted", "{}", e.message);
}

/// A user whose CN holds `/` (a Globus host or service certificate) or
/// `+`: the identity is escaped (§6.8), and its unescaped form is the text
/// grid tools print, which ban lists may hold (jobseal-policy matches
/// both).
#[test]
fn separators_in_values_are_escaped_and_unescape_to_the_grid_form() {
    let dir = tempfile::tempdir().unwrap();
    let r = root_now(1, "Review Root");
    install(dir.path(), &r.cert);
    for (b, rfc4514, escaped, grid_form) in [
        (
            40,
            "CN=host/node.example.org,OU=PDP,O=NIKHEF,C=NL",
            "/C=NL/O=NIKHEF/OU=PDP/CN=host\\/node.example.org",
            "/C=NL/O=NIKHEF/OU=PDP/CN=host/node.example.org",
        ),
        (41, "CN=C\\+\\+ dev", "/CN=C\\+\\+ dev", "/CN=C++ dev"),
    ] {
        let u = user_named(&r, b, &throwaway::name_der(rfc4514).unwrap());
        let p = validate(dir.path(), &[&u.cert]).unwrap();
        assert_eq!(p.identity.end_entity, escaped);
        assert_eq!(
            name::unescaped_slash_form(&p.identity.end_entity),
            grid_form
        );
    }
}

/// §5 / §6.8: "two names have the same / form only if they are equal names".
/// An attribute type without a short name, once as DER (2.5.4.12) and once
/// with a non-minimal arc (0x80 padding, which OpenSSL refuses to decode):
/// x509-cert accepts both, the canonical forms differ (different names,
/// different subject hashes), and the `/` forms are identical.
#[test]
fn a_non_minimal_attribute_type_is_refused() {
    let name_with = |oid: &[u8]| {
        let mut atv = vec![0x06, oid.len() as u8];
        atv.extend_from_slice(oid);
        atv.extend_from_slice(&[0x0c, 0x03, b'b', b'o', b'b']);
        let mut seq = vec![0x30, atv.len() as u8];
        seq.extend_from_slice(&atv);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend_from_slice(&seq);
        let o = throwaway::name_der(O).unwrap();
        let body: Vec<u8> = [tlv::read_all(&o).unwrap().value, &set].concat();
        let mut out = vec![0x30, body.len() as u8];
        out.extend_from_slice(&body);
        out
    };
    let minimal = name_with(&[0x55, 0x04, 0x0c]);
    let padded = name_with(&[0x55, 0x04, 0x80, 0x0c]);
    let r = root_now(1, "Review Root");
    let a = user_named(&r, 50, &minimal);
    let b = user_named(&r, 51, &padded);
    // The DER one is a name; the padded one is refused when parsed
    // (x509-cert alone would accept it and it would print alike).
    assert!(ParsedCert::from_der(a.cert.clone(), 0).is_ok());
    let e = ParsedCert::from_der(b.cert.clone(), 0).unwrap_err();
    assert_eq!(e.reason.code(), "cert.malformed", "{}", e.message);
}

/// `jobseal sign` runs `path::check_without_anchor` ("what this refuses,
/// every verifier refuses"). A credential chain that ends in an expired
/// copy of the root, which every verifier sets aside (§6.3 2b; vector
/// permit-expired-root-copy-in-bundle), must not be refused by it.
#[test]
fn sign_check_does_not_refuse_what_the_verifier_permits() {
    let dir = tempfile::tempdir().unwrap();
    // The directory's root, renewed with the same key; the user's copy expired.
    let renewed = root_now(2, "Review Renewed Root");
    install(dir.path(), &renewed.cert);
    let expired = root(
        2,
        "Review Renewed Root",
        T.minus(800 * DAY),
        T.minus(10 * DAY),
    );
    let u = user(&renewed, 60, "Old Copy Holder");
    let chain: [&[u8]; 2] = [&u.cert, &expired.cert];
    validate(dir.path(), &chain).unwrap();
    let sign_opts = PathOptions {
        algorithms: AlgorithmPolicy {
            min_rsa_bits_ca_issued: 1024,
            allow_sha1_ca_issued: true,
        },
        ..opts()
    };
    let r = path::check_without_anchor(&parsed(&chain), &sign_opts);
    assert!(
        r.is_ok(),
        "the verifier permits, jobseal sign refuses: {:?}",
        r.err()
            .map(|e| format!("{}: {}", e.reason.code(), e.message))
    );
}

/// An attacker's bundle ends in a self-issued certificate with the name of
/// a directory subordinate and its key (which the attacker cannot sign
/// with): it is set aside unverified. Harmless only if the result is the
/// same as without it; checked here.
#[test]
fn forged_self_issued_copy_of_a_subordinate_is_only_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let r = root_now(1, "Review Root");
    install(dir.path(), &r.cert);
    let s = sub(&r, 10, "Review Sub");
    install(dir.path(), &s.cert);
    let u = user(&s, 70, "Alice");
    // Forged: subject = issuer = Sub's name, Sub's key, signed by some key.
    let (_, _, sub_spki) = throwaway::ed25519_from_seed(&seed(10)).unwrap();
    let (evil, _, _) = throwaway::ed25519_from_seed(&seed(99)).unwrap();
    let forged = CertTemplate {
        serial: 9,
        issuer: subject_of(&s.cert),
        subject: subject_of(&s.cert),
        spki: sub_spki,
        not_before: T.minus(DAY),
        not_after: T.plus(DAY),
        extensions: Vec::new(),
    }
    .sign(&evil)
    .unwrap();
    let with = validate(dir.path(), &[&u.cert, &forged]).unwrap();
    let without = validate(dir.path(), &[&u.cert]).unwrap();
    assert_eq!(with.identity.end_entity, without.identity.end_entity);
    assert_eq!(with.identity.cas, without.identity.cas);
    assert_eq!(with.identity.not_after, without.identity.not_after);
}

/// DoS: a directory whose CAs only cross-certify each other (no root).
#[test]
fn directory_cycle_between_two_cross_certified_cas_terminates() {
    // A issued by B, B issued by A, no self-issued root: bounded search,
    // chain.untrusted, no hang.
    let dir = tempfile::tempdir().unwrap();
    let a_name = throwaway::name_der(&format!("CN=Cycle A,{O}")).unwrap();
    let b_name = throwaway::name_der(&format!("CN=Cycle B,{O}")).unwrap();
    let fake_b = Party {
        key: throwaway::ed25519_from_seed(&seed(81)).unwrap().0,
        pkcs8: throwaway::ed25519_from_seed(&seed(81)).unwrap().1,
        cert: CertTemplate {
            serial: 1,
            issuer: b_name.clone(),
            subject: b_name.clone(),
            spki: throwaway::ed25519_from_seed(&seed(81)).unwrap().2,
            not_before: T.minus(DAY),
            not_after: T.plus(DAY),
            extensions: Vec::new(),
        }
        .sign(&throwaway::ed25519_from_seed(&seed(81)).unwrap().0)
        .unwrap(),
    };
    let fake_a = Party {
        key: throwaway::ed25519_from_seed(&seed(80)).unwrap().0,
        pkcs8: throwaway::ed25519_from_seed(&seed(80)).unwrap().1,
        cert: CertTemplate {
            serial: 1,
            issuer: a_name.clone(),
            subject: a_name.clone(),
            spki: throwaway::ed25519_from_seed(&seed(80)).unwrap().2,
            not_before: T.minus(DAY),
            not_after: T.plus(DAY),
            extensions: Vec::new(),
        }
        .sign(&throwaway::ed25519_from_seed(&seed(80)).unwrap().0)
        .unwrap(),
    };
    // Several copies of each direction so the search branches.
    for serial in 0..8u64 {
        let mut a_by_b = ca_cert(&fake_b, 80, &a_name, 100 + serial);
        let mut b_by_a = ca_cert(&fake_a, 81, &b_name, 200 + serial);
        install(dir.path(), &std::mem::take(&mut a_by_b.cert));
        install(dir.path(), &std::mem::take(&mut b_by_a.cert));
    }
    let u = user(&fake_a, 90, "Cycle User");
    let e = validate(dir.path(), &[&u.cert]).unwrap_err();
    assert_eq!(e.reason.code(), "chain.untrusted");
}

/// A namespace DENY rule written as grid tools print names (`CN=host/…`
/// unescaped) still denies a subject whose `/` form escapes the `/`; a
/// PERMIT rule written that way grants nothing (§5.2, §6.8).
#[test]
fn namespace_deny_rules_match_the_grid_form_permit_rules_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = root_now(1, "Review Root");
    install(dir.path(), &r.cert);
    let hash = name::openssl_hash(&subject_of(&r.cert)).unwrap();
    let policy = dir.path().join(format!("{hash:08x}.namespaces"));
    let bad = user_named(
        &r,
        40,
        &throwaway::name_der(&format!("CN=host/bad.example.org,{O}")).unwrap(),
    );
    std::fs::write(
        &policy,
        "TO Issuer SELF DENY Subject \"/O=jobseal review/CN=host/bad.*\"\n\
         TO Issuer SELF PERMIT Subject \"/O=jobseal review/.*\"\n",
    )
    .unwrap();
    let e = validate(dir.path(), &[&bad.cert]).unwrap_err();
    assert_eq!(
        e.reason.code(),
        "chain.namespace-violation",
        "{}",
        e.message
    );
    assert!(e.message.contains("denied by"), "{}", e.message);
    std::fs::write(
        &policy,
        "TO Issuer SELF PERMIT Subject \"/O=jobseal review/CN=host/bad.example.org\"\n",
    )
    .unwrap();
    let e = validate(dir.path(), &[&bad.cert]).unwrap_err();
    assert_eq!(
        e.reason.code(),
        "chain.namespace-violation",
        "{}",
        e.message
    );
    assert!(e.message.contains("outside the namespace"), "{}", e.message);
}

/// RFC 5280 §4.1.2.2 on proxies (issue 13 §6): a serial of 0 is
/// `proxy.malformed`; the same serial on a CA-issued certificate is not
/// (IGTF roots use it).
#[test]
fn a_proxy_with_serial_zero_is_refused_a_user_certificate_is_not() {
    use jobseal_issue::proxy::ProxyKind;
    let dir = tempfile::tempdir().unwrap();
    let r = root_now(1, "Review Root");
    install(dir.path(), &r.cert);
    let (ukey, _, uspki) = throwaway::ed25519_from_seed(&seed(91)).unwrap();
    let u = CertTemplate {
        serial: 0,
        issuer: subject_of(&r.cert),
        subject: throwaway::name_der(&format!("CN=Zero Serial,{O}")).unwrap(),
        spki: uspki,
        not_before: T.minus(DAY),
        not_after: T.plus(DAY),
        extensions: throwaway::user_extensions().unwrap(),
    }
    .sign(&r.key)
    .unwrap();
    validate(dir.path(), &[&u]).unwrap();
    let (_, _, pspki) = throwaway::ed25519_from_seed(&seed(92)).unwrap();
    let proxy = CertTemplate::proxy(
        &u,
        pspki,
        0,
        T.minus(60),
        T.plus(60),
        &ProxyKind::InheritAll { path_len: None },
    )
    .unwrap()
    .sign(&ukey)
    .unwrap();
    let e = validate(dir.path(), &[&proxy, &u]).unwrap_err();
    assert_eq!(e.reason.code(), "proxy.malformed", "{}", e.message);
    assert!(e.message.contains("serial"), "{}", e.message);
}

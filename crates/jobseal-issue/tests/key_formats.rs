//! Every private key format a grid user may hold, made by the real `openssl`
//! CLI, read by `jobseal_issue::keys` and loaded by ring.
//!
//! These tests need `openssl` (OpenSSL 3) on the PATH. Without it they say
//! SKIPPED and return (`peers`, from `jobseal-testkit`), or fail under
//! `JOBSEAL_REQUIRE_PEERS=1` (`scripts/test`, CI); an `openssl` that is not
//! OpenSSL 3 always fails.
// Test helpers outside `#[test]` functions may panic, unwrap and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use jobseal_core::pem::parse_blocks;
use jobseal_issue::keys::{KeyDer, KeyError, decode_pkcs12, decode_private_key};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use zeroize::Zeroizing;

#[allow(dead_code)]
#[path = "../../jobseal-testkit/src/peers.rs"]
mod peers;

const PASS: &str = "grid pass phrase";
const WRONG: &str = "not the pass phrase";

/// A scratch directory and the `openssl` CLI.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// `None` once the test has been reported skipped (no `openssl`).
    fn new() -> Option<Self> {
        let openssl = peers::require("openssl", "openssl")?;
        let version = Command::new(openssl).arg("version").output().unwrap_or_else(|e| {
            panic!("the `openssl` command does not run ({e}): these tests need the OpenSSL 3 CLI (Debian: apt-get install openssl)")
        });
        assert!(version.status.success(), "`openssl version` failed");
        let text = String::from_utf8_lossy(&version.stdout);
        assert!(
            text.starts_with("OpenSSL 3"),
            "these tests need the OpenSSL 3 CLI, found: {text}"
        );
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `openssl ARGS` in the scratch directory; panic with its stderr on failure.
    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `openssl {}`: {e}", args.join(" ")));
        assert!(
            out.status.success(),
            "`openssl {}` failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name))
            .unwrap_or_else(|e| panic!("openssl did not write {name}: {e}"))
    }

    /// The label of the first PEM block of `name`.
    fn label(&self, name: &str) -> String {
        parse_blocks(&self.read(name)).unwrap()[0].label.clone()
    }

    /// The DER body of the first PEM block of `name`.
    fn body(&self, name: &str) -> Vec<u8> {
        parse_blocks(&self.read(name)).unwrap()[0].der.clone()
    }
}

/// Decode `data` with `pass` (None: the callback fails with NoPassphrase);
/// also returns how many times the callback was called.
fn decode_with(data: &[u8], pass: Option<&str>) -> (Result<KeyDer, KeyError>, usize) {
    let mut calls = 0;
    let mut cb = || {
        calls += 1;
        match pass {
            Some(p) => Ok(Zeroizing::new(p.to_string())),
            None => Err(KeyError::NoPassphrase),
        }
    };
    let result = decode_private_key(data, &mut cb);
    (result, calls)
}

fn load(lab: &Lab, name: &str, pass: Option<&str>) -> (Result<KeyDer, KeyError>, usize) {
    decode_with(&lab.read(name), pass)
}

/// An unencrypted key: read without asking for a passphrase.
fn load_plain(lab: &Lab, name: &str) -> KeyDer {
    let (result, calls) = load(lab, name, None);
    assert_eq!(
        calls, 0,
        "{name}: the passphrase was asked for an unencrypted key"
    );
    result.unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An encrypted key: the right passphrase works (asked once), a wrong one
/// gives WrongPassphrase, no passphrase gives NoPassphrase.
fn load_encrypted(lab: &Lab, name: &str) -> KeyDer {
    let (wrong, calls) = load(lab, name, Some(WRONG));
    assert_eq!(calls, 1, "{name}: passphrase asked {calls} times");
    assert!(
        matches!(wrong, Err(KeyError::WrongPassphrase)),
        "{name}: a wrong passphrase gave {wrong:?}"
    );
    let (none, _) = load(lab, name, None);
    assert!(
        matches!(none, Err(KeyError::NoPassphrase)),
        "{name}: {none:?}"
    );
    let (right, calls) = load(lab, name, Some(PASS));
    assert_eq!(calls, 1, "{name}: passphrase asked {calls} times");
    right.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pkcs1(key: &KeyDer, what: &str) -> Vec<u8> {
    match key {
        KeyDer::Pkcs1Rsa(der) => {
            RsaKeyPair::from_der(der)
                .unwrap_or_else(|e| panic!("{what}: ring refuses the RSA key: {e}"));
            der.to_vec()
        }
        other => panic!("{what}: expected a PKCS#1 RSA key, got {other:?}"),
    }
}

fn pkcs8_rsa(key: &KeyDer, what: &str) -> Vec<u8> {
    match key {
        KeyDer::Pkcs8(der) => {
            RsaKeyPair::from_pkcs8(der)
                .unwrap_or_else(|e| panic!("{what}: ring refuses the RSA key: {e}"));
            der.to_vec()
        }
        other => panic!("{what}: expected a PKCS#8 key, got {other:?}"),
    }
}

fn pkcs8_p256(key: &KeyDer, what: &str) -> Vec<u8> {
    match key {
        KeyDer::Pkcs8(der) => {
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .unwrap_or_else(|e| panic!("{what}: ring refuses the P-256 key: {e}"));
            der.to_vec()
        }
        other => panic!("{what}: expected a PKCS#8 key, got {other:?}"),
    }
}

fn pkcs8_ed25519(key: &KeyDer, what: &str) -> Vec<u8> {
    match key {
        KeyDer::Pkcs8(der) => {
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .unwrap_or_else(|e| panic!("{what}: ring refuses the Ed25519 key: {e}"));
            der.to_vec()
        }
        other => panic!("{what}: expected a PKCS#8 key, got {other:?}"),
    }
}

fn sec1(key: &KeyDer, what: &str) -> Vec<u8> {
    match key {
        KeyDer::Sec1Ec(der) => der.to_vec(),
        other => panic!("{what}: expected a SEC1 EC key, got {other:?}"),
    }
}

fn not_a_key(result: Result<KeyDer, KeyError>, what: &str) {
    assert!(
        matches!(result, Err(KeyError::NotAKey(_))),
        "{what}: {result:?}"
    );
}

/// Truncate and corrupt `data` in many ways: nothing panics, and a
/// truncation never yields a key other than the original.
fn mangle(data: &[u8], pass: &str, what: &str) {
    let step = (data.len() / 97).max(1);
    for len in (0..data.len()).step_by(step) {
        let (result, _) = decode_with(&data[..len], Some(pass));
        if let Ok(key) = result {
            // A PEM cut inside its trailing junk (e.g. after the END line) is fine.
            let (full, _) = decode_with(data, Some(pass));
            assert_eq!(
                full.unwrap().der(),
                key.der(),
                "{what}: truncation to {len} bytes gave another key"
            );
        }
    }
    for pos in (0..data.len()).step_by(step) {
        let mut copy = data.to_vec();
        copy[pos] ^= 0x41;
        let _ = decode_with(&copy, Some(pass));
    }
}

// ---------------------------------------------------------------------------

#[test]
fn rsa_traditional_plain_and_legacy_encrypted() {
    let Some(lab) = Lab::new() else {
        return;
    };
    lab.openssl(&["genrsa", "-traditional", "-out", "plain.pem", "2048"]);
    assert_eq!(lab.label("plain.pem"), "RSA PRIVATE KEY");
    let plain = pkcs1(&load_plain(&lab, "plain.pem"), "traditional RSA");
    assert_eq!(plain, lab.body("plain.pem"));

    for (flag, dek) in [
        ("-des3", "DES-EDE3-CBC"),
        ("-aes128", "AES-128-CBC"),
        ("-aes192", "AES-192-CBC"),
        ("-aes256", "AES-256-CBC"),
    ] {
        let name = format!("legacy{flag}.pem");
        lab.openssl(&[
            "genrsa",
            "-traditional",
            flag,
            "-passout",
            &format!("pass:{PASS}"),
            "-out",
            &name,
            "2048",
        ]);
        let text = String::from_utf8(lab.read(&name)).unwrap();
        assert!(
            text.contains("Proc-Type: 4,ENCRYPTED"),
            "{name} is not a legacy encrypted PEM:\n{text}"
        );
        assert!(
            text.contains(&format!("DEK-Info: {dek},")),
            "{name}: expected {dek}:\n{text}"
        );
        let key = pkcs1(&load_encrypted(&lab, &name), &name);
        // The same bytes as OpenSSL's own decryption.
        let out = format!("{name}.der");
        lab.openssl(&[
            "rsa",
            "-in",
            &name,
            "-passin",
            &format!("pass:{PASS}"),
            "-traditional",
            "-outform",
            "DER",
            "-out",
            &out,
        ]);
        assert_eq!(
            key,
            lab.read(&out),
            "{name}: decrypted key differs from OpenSSL's"
        );
        mangle(text.as_bytes(), PASS, &name);
    }

    // Legacy single DES (old userkey.pem files; OpenSSL 3 keeps it in its legacy provider).
    lab.openssl(&[
        "rsa",
        "-in",
        "plain.pem",
        "-traditional",
        "-des",
        "-provider",
        "legacy",
        "-provider",
        "default",
        "-passout",
        &format!("pass:{PASS}"),
        "-out",
        "des.pem",
    ]);
    assert!(
        String::from_utf8(lab.read("des.pem"))
            .unwrap()
            .contains("DEK-Info: DES-CBC,")
    );
    assert_eq!(pkcs1(&load_encrypted(&lab, "des.pem"), "DES-CBC"), plain);

    // Raw DER PKCS#1.
    lab.openssl(&[
        "rsa",
        "-in",
        "plain.pem",
        "-traditional",
        "-outform",
        "DER",
        "-out",
        "plain.der",
    ]);
    assert_eq!(pkcs1(&load_plain(&lab, "plain.der"), "PKCS#1 DER"), plain);
}

#[test]
fn rsa_pkcs8_plain_and_pbes2() {
    let Some(lab) = Lab::new() else {
        return;
    };
    lab.openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "p8.pem",
    ]);
    assert_eq!(lab.label("p8.pem"), "PRIVATE KEY");
    let plain = pkcs8_rsa(&load_plain(&lab, "p8.pem"), "PKCS#8 RSA");
    assert_eq!(plain, lab.body("p8.pem"));

    let pass = format!("pass:{PASS}");
    let cases: [(&str, &[&str]); 5] = [
        ("aes256.pem", &["-v2", "aes-256-cbc"]),
        ("des3.pem", &["-v2", "des3"]),
        (
            "aes128-sha1.pem",
            &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"],
        ),
        (
            "aes192-sha512.pem",
            &["-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"],
        ),
        ("scrypt.pem", &["-scrypt"]),
    ];
    for (name, opts) in cases {
        let mut args = vec![
            "pkcs8", "-topk8", "-in", "p8.pem", "-passout", &pass, "-out", name,
        ];
        args.extend_from_slice(opts);
        lab.openssl(&args);
        assert_eq!(lab.label(name), "ENCRYPTED PRIVATE KEY");
        assert_eq!(
            pkcs8_rsa(&load_encrypted(&lab, name), name),
            plain,
            "{name}"
        );
    }
    mangle(&lab.read("aes256.pem"), PASS, "aes256.pem");

    // What OpenSSL 3's `genrsa -des3` writes: encrypted PKCS#8.
    lab.openssl(&[
        "genrsa",
        "-des3",
        "-passout",
        &pass,
        "-out",
        "genrsa-des3.pem",
        "2048",
    ]);
    assert_eq!(lab.label("genrsa-des3.pem"), "ENCRYPTED PRIVATE KEY");
    pkcs8_rsa(&load_encrypted(&lab, "genrsa-des3.pem"), "genrsa -des3");

    // Raw DER, plain and encrypted.
    lab.openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "p8.pem", "-outform", "DER", "-out", "p8.der",
    ]);
    assert_eq!(pkcs8_rsa(&load_plain(&lab, "p8.der"), "PKCS#8 DER"), plain);
    lab.openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        "p8.pem",
        "-v2",
        "aes-256-cbc",
        "-passout",
        &pass,
        "-outform",
        "DER",
        "-out",
        "enc.der",
    ]);
    assert_eq!(
        pkcs8_rsa(&load_encrypted(&lab, "enc.der"), "encrypted PKCS#8 DER"),
        plain
    );
    mangle(&lab.read("enc.der"), PASS, "enc.der");
}

#[test]
fn pkcs8_v1_pbe_is_refused_with_a_conversion_hint() {
    let Some(lab) = Lab::new() else {
        return;
    };
    lab.openssl(&["genpkey", "-algorithm", "ED25519", "-out", "k.pem"]);
    lab.openssl(&[
        "pkcs8",
        "-topk8",
        "-v1",
        "PBE-SHA1-3DES",
        "-in",
        "k.pem",
        "-passout",
        &format!("pass:{PASS}"),
        "-out",
        "v1.pem",
    ]);
    let (result, calls) = load(&lab, "v1.pem", Some(PASS));
    assert_eq!(
        calls, 0,
        "the passphrase was asked for a key that cannot be decrypted"
    );
    match result {
        Err(e @ KeyError::Unsupported(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("PBE-SHA1-3DES"), "{msg}");
            assert!(
                msg.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
                "{msg}"
            );
        }
        other => panic!("PBE-SHA1-3DES: {other:?}"),
    }
}

#[test]
fn ec_sec1_and_pkcs8() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let pass = format!("pass:{PASS}");
    lab.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "sec1.pem",
    ]);
    assert_eq!(lab.label("sec1.pem"), "EC PRIVATE KEY");
    let plain = sec1(&load_plain(&lab, "sec1.pem"), "SEC1");
    assert_eq!(plain, lab.body("sec1.pem"));

    for (flag, name) in [("-aes256", "sec1-aes.pem"), ("-des3", "sec1-des3.pem")] {
        lab.openssl(&[
            "ec", "-in", "sec1.pem", flag, "-passout", &pass, "-out", name,
        ]);
        assert!(
            String::from_utf8(lab.read(name))
                .unwrap()
                .contains("Proc-Type: 4,ENCRYPTED")
        );
        assert_eq!(sec1(&load_encrypted(&lab, name), name), plain);
    }
    mangle(&lab.read("sec1-aes.pem"), PASS, "sec1-aes.pem");

    lab.openssl(&[
        "ec", "-in", "sec1.pem", "-outform", "DER", "-out", "sec1.der",
    ]);
    assert_eq!(sec1(&load_plain(&lab, "sec1.der"), "SEC1 DER"), plain);

    lab.openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem", "-out", "p8.pem",
    ]);
    assert_eq!(lab.label("p8.pem"), "PRIVATE KEY");
    let p8 = pkcs8_p256(&load_plain(&lab, "p8.pem"), "PKCS#8 P-256");
    lab.openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        "sec1.pem",
        "-passout",
        &pass,
        "-out",
        "p8-enc.pem",
    ]);
    assert_eq!(
        pkcs8_p256(
            &load_encrypted(&lab, "p8-enc.pem"),
            "encrypted PKCS#8 P-256"
        ),
        p8
    );

    lab.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "genpkey.pem",
    ]);
    pkcs8_p256(&load_plain(&lab, "genpkey.pem"), "genpkey EC");

    // P-384 loads too; a curve ring cannot use is refused as unsupported.
    lab.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        "p384.pem",
    ]);
    match load_plain(&lab, "p384.pem") {
        KeyDer::Pkcs8(der) => {
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &der,
                &SystemRandom::new(),
            )
            .unwrap();
        }
        other => panic!("P-384: {other:?}"),
    }
    lab.openssl(&[
        "ecparam",
        "-name",
        "secp256k1",
        "-genkey",
        "-noout",
        "-out",
        "k1.pem",
    ]);
    let (k1, _) = load(&lab, "k1.pem", None);
    assert!(
        matches!(k1, Err(KeyError::Unsupported(_))),
        "secp256k1: {k1:?}"
    );
}

#[test]
fn ed25519() {
    let Some(lab) = Lab::new() else {
        return;
    };
    lab.openssl(&["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    assert_eq!(lab.label("ed.pem"), "PRIVATE KEY");
    let plain = pkcs8_ed25519(&load_plain(&lab, "ed.pem"), "Ed25519");
    lab.openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        "ed.pem",
        "-passout",
        &format!("pass:{PASS}"),
        "-out",
        "ed-enc.pem",
    ]);
    assert_eq!(
        pkcs8_ed25519(&load_encrypted(&lab, "ed-enc.pem"), "encrypted Ed25519"),
        plain
    );

    lab.openssl(&["genpkey", "-algorithm", "ED448", "-out", "ed448.pem"]);
    let (ed448, _) = load(&lab, "ed448.pem", None);
    assert!(
        matches!(ed448, Err(KeyError::Unsupported(_))),
        "Ed448: {ed448:?}"
    );
}

/// A CA, a user certificate it signed, and the user's key.
fn user_credential(lab: &Lab, key_alg: &[&str]) {
    lab.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ca.key",
    ]);
    lab.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/DC=org/DC=example/CN=Example CA",
        "-days",
        "2",
        "-out",
        "ca.pem",
    ]);
    let mut args = vec!["genpkey"];
    args.extend_from_slice(key_alg);
    args.extend_from_slice(&["-out", "user.key"]);
    lab.openssl(&args);
    lab.openssl(&[
        "req",
        "-new",
        "-key",
        "user.key",
        "-subj",
        "/DC=org/DC=example/CN=Jane Doe",
        "-out",
        "user.csr",
    ]);
    lab.openssl(&[
        "x509",
        "-req",
        "-in",
        "user.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "user.pem",
    ]);
}

#[test]
fn pkcs12_default_legacy_and_without_mac() {
    let Some(lab) = Lab::new() else {
        return;
    };
    user_credential(
        &lab,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let user_der = lab.body("user.pem");
    let ca_der = lab.body("ca.pem");
    let key_der = lab.body("user.key");
    let pass = format!("pass:{PASS}");

    let variants: [(&str, &[&str]); 3] = [
        ("default.p12", &[]),
        ("legacy.p12", &["-legacy"]),
        ("nomac.p12", &["-nomac"]),
    ];
    for (name, extra) in variants {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "user.key",
            "-in",
            "user.pem",
            "-certfile",
            "ca.pem",
            "-passout",
            &pass,
            "-out",
            name,
        ];
        args.extend_from_slice(extra);
        lab.openssl(&args);
        let data = lab.read(name);

        let (key, chain) = decode_pkcs12(&data, PASS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pkcs8_rsa(&key, name), key_der, "{name}: key differs");
        assert_eq!(
            chain,
            vec![user_der.clone(), ca_der.clone()],
            "{name}: chain order"
        );

        let wrong = decode_pkcs12(&data, WRONG);
        assert!(
            matches!(wrong, Err(KeyError::WrongPassphrase)),
            "{name}: a wrong passphrase gave {wrong:?}"
        );

        for len in (0..data.len()).step_by(data.len() / 53 + 1) {
            let _ = decode_pkcs12(&data[..len], PASS);
        }
        // The key reader points elsewhere.
        let (as_key, calls) = decode_with(&data, Some(PASS));
        assert_eq!(calls, 0);
        not_a_key(as_key, name);
    }

    // An Ed25519 user key: ring loads it.
    let Some(lab) = Lab::new() else {
        return;
    };
    user_credential(&lab, &["-algorithm", "ED25519"]);
    lab.openssl(&[
        "pkcs12",
        "-export",
        "-inkey",
        "user.key",
        "-in",
        "user.pem",
        "-certfile",
        "ca.pem",
        "-passout",
        &pass,
        "-out",
        "ed.p12",
    ]);
    let (key, chain) = decode_pkcs12(&lab.read("ed.p12"), PASS).unwrap();
    pkcs8_ed25519(&key, "Ed25519 p12");
    assert_eq!(chain[0], lab.body("user.pem"));

    // Not a PKCS#12 file at all.
    not_a_p12(
        decode_pkcs12(&lab.read("user.pem"), PASS),
        "a PEM certificate",
    );
    not_a_p12(
        decode_pkcs12(&lab.body("user.pem"), PASS),
        "a DER certificate",
    );
    not_a_p12(decode_pkcs12(b"", PASS), "nothing");
}

/// Without a usable `localKeyId`, the leaf is found by its public key.
#[test]
fn pkcs12_leaf_found_by_public_key() {
    const LOCAL_KEY_ID: [u8; 15] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15, 0x31, 0x16, 0x04, 0x14,
    ];
    let pass = format!("pass:{PASS}");
    for alg in [
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
    ] {
        let Some(lab) = Lab::new() else {
            return;
        };
        user_credential(&lab, alg);
        // Nothing encrypted and no MAC, so the bags can be edited in place.
        lab.openssl(&[
            "pkcs12",
            "-export",
            "-inkey",
            "user.key",
            "-in",
            "user.pem",
            "-certfile",
            "ca.pem",
            "-keypbe",
            "NONE",
            "-certpbe",
            "NONE",
            "-nomac",
            "-passout",
            &pass,
            "-out",
            "clear.p12",
        ]);
        let mut data = lab.read("clear.p12");
        let at: Vec<usize> = data
            .windows(LOCAL_KEY_ID.len())
            .enumerate()
            .filter(|(_, w)| *w == LOCAL_KEY_ID)
            .map(|(i, _)| i + LOCAL_KEY_ID.len())
            .collect();
        assert_eq!(
            at.len(),
            2,
            "{alg:?}: expected a localKeyId on the key and on its certificate"
        );
        let (key, chain) = decode_pkcs12(&data, PASS).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(chain, vec![lab.body("user.pem"), lab.body("ca.pem")]);
        data[at[0]] ^= 0xff;
        let (key2, chain2) = decode_pkcs12(&data, PASS)
            .unwrap_or_else(|e| panic!("{alg:?} without localKeyId: {e}"));
        assert_eq!(key.der(), key2.der());
        assert_eq!(chain2, chain, "{alg:?}: leaf not found by its public key");
    }
}

fn not_a_p12(result: Result<(KeyDer, Vec<Vec<u8>>), KeyError>, what: &str) {
    assert!(
        matches!(result, Err(KeyError::NotAKey(_))),
        "{what}: {result:?}"
    );
}

#[test]
fn proxy_file_and_non_keys() {
    let Some(lab) = Lab::new() else {
        return;
    };
    user_credential(
        &lab,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    lab.openssl(&[
        "rsa",
        "-in",
        "user.key",
        "-traditional",
        "-out",
        "user-trad.key",
    ]);
    // A proxy file: certificate, key, then the chain.
    let mut proxy = lab.read("user.pem");
    proxy.extend_from_slice(&lab.read("user-trad.key"));
    proxy.extend_from_slice(&lab.read("ca.pem"));
    let (key, calls) = decode_with(&proxy, None);
    assert_eq!(calls, 0);
    assert_eq!(
        pkcs1(&key.unwrap(), "proxy file"),
        lab.body("user-trad.key")
    );

    let (cert, _) = load(&lab, "user.pem", Some(PASS));
    match cert {
        Err(KeyError::NotAKey(msg)) => assert!(msg.contains("CERTIFICATE"), "{msg}"),
        other => panic!("a certificate: {other:?}"),
    }
    not_a_key(
        decode_with(&lab.body("user.pem"), Some(PASS)).0,
        "a DER certificate",
    );
    not_a_key(load(&lab, "user.csr", Some(PASS)).0, "a CSR");
    not_a_key(decode_with(b"", Some(PASS)).0, "an empty file");
    not_a_key(decode_with(b"hello, world\n", Some(PASS)).0, "text");
    not_a_key(
        decode_with(&[0x30, 0x03, 0x02, 0x01, 0x00], Some(PASS)).0,
        "a small DER sequence",
    );
    not_a_key(
        decode_with(&[0xff, 0x00, 0x30], Some(PASS)).0,
        "binary junk",
    );
    not_a_key(
        decode_with(
            b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n",
            Some(PASS),
        )
        .0,
        "a PEM block that is not PKCS#8",
    );
    let (unclosed, _) = decode_with(b"-----BEGIN RSA PRIVATE KEY-----\nAAEC\n", Some(PASS));
    not_a_key(unclosed, "an unclosed PEM block");

    // Messages a user can act on.
    assert_eq!(KeyError::WrongPassphrase.to_string(), "wrong passphrase");
    assert!(KeyError::NoPassphrase.to_string().contains("no passphrase"));
}

#[test]
fn legacy_headers_that_do_not_add_up() {
    let Some(lab) = Lab::new() else {
        return;
    };
    lab.openssl(&[
        "genrsa",
        "-traditional",
        "-aes128",
        "-passout",
        &format!("pass:{PASS}"),
        "-out",
        "k.pem",
        "2048",
    ]);
    let text = String::from_utf8(lab.read("k.pem")).unwrap();
    let dek_line = text
        .lines()
        .find(|l| l.starts_with("DEK-Info:"))
        .unwrap()
        .to_string();

    let unknown = text.replace("AES-128-CBC", "CAMELLIA-128-CBC");
    let (r, calls) = decode_with(unknown.as_bytes(), Some(PASS));
    assert_eq!(
        calls, 0,
        "asked for a passphrase for a cipher that cannot be used"
    );
    assert!(
        matches!(r, Err(KeyError::Unsupported(_))),
        "unknown cipher: {r:?}"
    );

    let short_iv = text.replace(&dek_line, "DEK-Info: AES-128-CBC,00112233");
    not_a_key(decode_with(short_iv.as_bytes(), Some(PASS)).0, "a short IV");
    let bad_hex = text.replace(
        &dek_line,
        "DEK-Info: AES-128-CBC,ZZ112233445566778899AABBCCDDEEFF",
    );
    not_a_key(
        decode_with(bad_hex.as_bytes(), Some(PASS)).0,
        "a non-hex IV",
    );
    let no_dek = text.replace(&format!("{dek_line}\n"), "");
    not_a_key(decode_with(no_dek.as_bytes(), Some(PASS)).0, "no DEK-Info");
    // A changed IV decrypts the first block wrongly: the key does not parse.
    let other_iv = text.replace(
        &dek_line,
        "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF",
    );
    let (r, _) = decode_with(other_iv.as_bytes(), Some(PASS));
    assert!(
        matches!(r, Err(KeyError::WrongPassphrase)),
        "another IV: {r:?}"
    );
}

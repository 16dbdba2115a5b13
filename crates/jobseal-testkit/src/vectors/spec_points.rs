//! Vectors of decisions the specification once left open (issue 18 §5):
//! each fixes how a verifier written from `spec/jobseal.md` alone must
//! decide. A `deny-…` vector has one thing wrong, or, where the point is
//! which of two defects decides, exactly those two.

use super::*;
use ring::signature::{self as rs, EcdsaKeyPair, KeyPair};

/// The vectors, in spec order.
pub(super) fn generate(pki: &Pki) -> Result<Vec<Vector>, IssueError> {
    let mut out = Vec::new();
    let user = || Issuer {
        key: &pki.user.key,
        chain: vec![pki.user.cert.clone()],
    };
    let mut add = |name: &str, description: &str, bundle: Vec<u8>, expected: Expected| {
        out.push(vector(name, description, bundle, expected));
    };

    // §2.2, §6.4 3e: extensions [0] is SIZE (1..MAX).
    let mut b = Build::new(user());
    b.edit_leaf = Box::new(|t| {
        let e = t
            .extensions
            .iter_mut()
            .find(|e| e.extn_id == oid::JOB_BINDING)
            .ok_or_else(|| IssueError::Internal("no binding".into()))?;
        let mut jb = <JobBinding as der::Decode>::from_der(e.extn_value.as_bytes())
            .map_err(|e| IssueError::Internal(e.to_string()))?;
        jb.extensions = Some(Vec::new());
        *e = extension(oid::JOB_BINDING, true, &binding_der(&jb)?)?;
        Ok(())
    });
    add(
        "deny-binding-extensions-empty",
        "JobBinding carries extensions [0] with no extension in it",
        b.bundle()?,
        Expected::Deny(Reason::BindingMalformed),
    );

    // §2.4, §6.8: the leaf's validity is the issuer's business; both
    // windows are checked, neither is compared with the other.
    let mut b = Build::new(user());
    b.leaf_validity = (T.minus(DAY), T.plus(2 * DAY));
    add(
        "permit-leaf-validity-differs-from-manifest",
        "the job-bound proxy is valid longer, on both sides, than the manifest",
        b.bundle()?,
        Expected::Permit,
    );

    // §3.1, §3.2: an input listed twice.
    let mut m = manifest();
    m.inputs.extend(m.inputs.clone());
    let mut b = Build::new(user());
    b.payload = m.to_cbor();
    add(
        "deny-manifest-duplicate-input-name",
        "the manifest lists the same input twice (same name, same digest)",
        b.bundle()?,
        Expected::Deny(Reason::ManifestMalformed),
    );

    // §3.2: inside a file map, entries decide in key order; a missing key
    // is seen only after all entries.
    let exe = manifest().executable;
    let file_map = |entries: &[(u8, &[u8])]| {
        let mut m = vec![0xa0 | u8::try_from(entries.len()).unwrap_or(0)];
        for (k, v) in entries {
            m.push(*k);
            m.extend_from_slice(v);
        }
        m
    };
    let name = cbor_text(&exe.name);
    let size = cbor_uint(exe.size);
    let sha = cbor_bytes(&exe.sha256);
    let canonical = file_map(&[(1, &name), (2, &size), (3, &sha)]);
    for (vname, description, map, reason) in [
        (
            "deny-manifest-file-wrong-type-before-extra-key",
            "the executable's size is text and the map has a key 4: key 2 decides",
            file_map(&[(1, &name), (2, &cbor_text("38")), (3, &sha), (4, &[0x00])]),
            Reason::ManifestMalformed,
        ),
        (
            "deny-manifest-file-missing-key-and-extra-key",
            "the executable has no size and a key 4: the extra key decides",
            file_map(&[(1, &name), (3, &sha), (4, &[0x00])]),
            Reason::ManifestUnknownField,
        ),
    ] {
        let mut b = Build::new(user());
        b.payload = replace_once(&b.payload, &canonical, &map)?;
        add(vname, description, b.bundle()?, Expected::Deny(reason));
    }

    // §3.2, §7: a length is compared with the input before the limits.
    let full = manifest().to_cbor();
    let tool = cbor_text(&manifest().tool);
    let at = find(&full, &tool)?;
    let mut truncated = full.get(..at).unwrap_or_default().to_vec();
    truncated.extend_from_slice(&[0x79, 0x4e, 0x20]); // text of 20000 bytes
    truncated.extend_from_slice(b"jobseal");
    let mut long = full.get(..at).unwrap_or_default().to_vec();
    long.extend_from_slice(&cbor_text(&"x".repeat(16385)));
    long.extend_from_slice(full.get(at + tool.len()..).unwrap_or_default());
    for (vname, description, payload, reason) in [
        (
            "deny-manifest-string-over-limit-truncated",
            "a text string claims 20000 bytes (over the limit) and the payload ends first",
            truncated,
            Reason::ManifestMalformed,
        ),
        (
            "deny-manifest-string-over-limit",
            "the tool is a text string of 16385 bytes",
            long,
            Reason::LimitExceeded,
        ),
    ] {
        let mut b = Build::new(user());
        b.payload = payload;
        add(vname, description, b.bundle()?, Expected::Deny(reason));
    }

    // §3.3: the envelope's heads in their shortest form only.
    type Edit = fn(&mut Vec<u8>) -> Option<()>;
    let edits: [(&str, &str, Edit); 4] = [
        (
            "deny-envelope-tag-not-shortest",
            "tag 18 written d8 12",
            |e| {
                e.splice(0..1, [0xd8, 0x12]);
                Some(())
            },
        ),
        (
            "deny-envelope-array-not-shortest",
            "the array of four written 98 04",
            |e| {
                e.splice(1..2, [0x98, 0x04]);
                Some(())
            },
        ),
        (
            "deny-envelope-unprotected-map-not-shortest",
            "the empty unprotected header written b8 00",
            |e| {
                let p = unprotected_at(e)?;
                e.splice(p..=p, [0xb8, 0x00]);
                Some(())
            },
        ),
        (
            "deny-envelope-payload-length-not-shortest",
            "the payload's length written with one more byte than needed",
            |e| {
                let p = unprotected_at(e)? + 1;
                // The payload (under 256 bytes) has head 58 NN.
                (e.get(p) == Some(&0x58)).then_some(())?;
                e.splice(p..=p, [0x59, 0x00]);
                Some(())
            },
        ),
    ];
    for (vname, description, edit) in edits {
        let mut b = Build::new(user());
        b.edit_envelope = Box::new(move |e| {
            let _ = edit(e);
        });
        add(
            vname,
            description,
            b.bundle()?,
            Expected::Deny(Reason::ManifestBadEnvelope),
        );
    }

    // §3.3, §6.5 4a: a signature of the wrong size is a bad signature.
    let mut b = Build::new(user());
    b.edit_envelope = Box::new(|e| {
        // The last item is `58 40` and 64 bytes: keep 63.
        let at = e.len().saturating_sub(66);
        if e.get(at..at + 2) == Some(&[0x58, 0x40]) {
            e.truncate(e.len() - 1);
            if let Some(len) = e.get_mut(at + 1) {
                *len = 0x3f;
            }
        }
    });
    add(
        "deny-manifest-eddsa-signature-63-bytes",
        "the EdDSA signature is 63 bytes (a well-formed envelope)",
        b.bundle()?,
        Expected::Deny(Reason::ManifestBadSignature),
    );

    // §3.3: ES256, fixed r || s; high S accepted, DER refused.
    let es = Es256User::new(pki)?;
    let low = es.bundle(Es256Sig::LowS)?;
    add(
        "permit-manifest-es256-low-s",
        "an ES256 manifest signature with S at most n/2",
        low,
        Expected::Permit,
    );
    add(
        "permit-manifest-es256-high-s",
        "an ES256 manifest signature with S above n/2 (n − S of a valid one)",
        es.bundle(Es256Sig::HighS)?,
        Expected::Permit,
    );
    add(
        "deny-manifest-es256-der-signature",
        "an ES256 manifest signature DER-encoded instead of r || s",
        es.bundle(Es256Sig::Der)?,
        Expected::Deny(Reason::ManifestBadSignature),
    );

    // §4: PEM text.
    let good = String::from_utf8(Build::new(user()).bundle()?)
        .map_err(|e| IssueError::Internal(e.to_string()))?;
    let spaced: String = good
        .lines()
        .map(|l| format!("  {l} \t\r\n"))
        .collect::<String>()
        .replace("-----\t\r\n", "-----\r\n");
    add(
        "permit-bundle-pem-whitespace",
        "every line indented, with trailing blanks and CRLF line ends",
        spaced.into_bytes(),
        Expected::Permit,
    );
    add(
        "deny-bundle-pem-header-line",
        "an RFC 1421 header line in a CERTIFICATE block",
        good.replacen(
            "-----BEGIN CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nComment: job-bound proxy\n\n",
            1,
        )
        .into_bytes(),
        Expected::Deny(Reason::BundleMalformed),
    );
    add(
        "deny-bundle-begin-inside-block",
        "the first block lacks its END line, so the next BEGIN is inside it",
        good.replacen("-----END CERTIFICATE-----\n", "", 1)
            .into_bytes(),
        Expected::Deny(Reason::BundleMalformed),
    );
    add(
        "deny-bundle-base64-nonzero-discarded-bits",
        "the last base64 character before = carries bits past the data",
        nonzero_pad_bits(&good)?.into_bytes(),
        Expected::Deny(Reason::BundleMalformed),
    );

    // §6.6 5c: an input that is a directory.
    let mut m = manifest();
    if let Some(i) = m.inputs.first_mut() {
        i.name = "data".into();
    }
    let mut b = Build::new(user());
    b.payload = m.to_cbor();
    add(
        "deny-payload-input-is-directory",
        "the input's path is a directory of the job directory",
        b.bundle()?,
        Expected::Deny(Reason::PayloadInputMissing),
    );
    Ok(out)
}

fn vector(name: &str, description: &str, bundle: Vec<u8>, expected: Expected) -> Vector {
    Vector {
        name: name.into(),
        description: description.into(),
        bundle,
        executable: Some(EXE.to_vec()),
        arguments: args(),
        inputs: vec![(INPUT_NAME.into(), INPUT.to_vec())],
        expected,
        expected_voms: None,
    }
}

fn cbor_head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    let be = n.to_be_bytes();
    let (info, len) = match n {
        0..=23 => (u8::try_from(n).unwrap_or(0), 0),
        24..=0xff => (24, 1),
        0x100..=0xffff => (25, 2),
        0x1_0000..=0xffff_ffff => (26, 4),
        _ => (27, 8),
    };
    let mut out = vec![m | info];
    out.extend_from_slice(be.get(8 - len..).unwrap_or_default());
    out
}

fn cbor_uint(n: u64) -> Vec<u8> {
    cbor_head(0, n)
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = cbor_head(2, b.len() as u64);
    out.extend_from_slice(b);
    out
}

fn cbor_text(s: &str) -> Vec<u8> {
    let mut out = cbor_head(3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Result<usize, IssueError> {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .ok_or_else(|| IssueError::Internal("pattern not found in the manifest".into()))
}

fn replace_once(hay: &[u8], from: &[u8], to: &[u8]) -> Result<Vec<u8>, IssueError> {
    let at = find(hay, from)?;
    let mut out = hay.get(..at).unwrap_or_default().to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(hay.get(at + from.len()..).unwrap_or_default());
    Ok(out)
}

/// Where the empty unprotected header (`a0`) follows the protected bstr.
fn unprotected_at(env: &[u8]) -> Option<usize> {
    // d2 84, then the protected header's head (one byte: under 24 bytes is
    // never the case here; 58 NN for 39 or 40 bytes).
    let len = usize::from(*env.get(3)?);
    (env.get(2) == Some(&0x58)).then_some(4 + len)
}

/// The bundle with one more bit set in the last base64 quantum of the
/// first block that ends in padding.
fn nonzero_pad_bits(pem: &str) -> Result<String, IssueError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let at = pem
        .find("=\n")
        .ok_or_else(|| IssueError::Internal("no padded base64 block".into()))?;
    let at = pem
        .get(..at)
        .map(|s| s.trim_end_matches('=').len())
        .unwrap_or(0);
    let before = at
        .checked_sub(1)
        .ok_or_else(|| IssueError::Internal("padding at the start".into()))?;
    let c = *pem.as_bytes().get(before).unwrap_or(&b'A');
    let v = ALPHABET.iter().position(|&a| a == c).unwrap_or(0);
    // Its lowest bit is always past the data: 2 or 4 bits are discarded.
    let flipped = char::from(*ALPHABET.get(v ^ 1).unwrap_or(&b'A'));
    let mut out = pem.to_string();
    out.replace_range(before..at, &flipped.to_string());
    Ok(out)
}

enum Es256Sig {
    LowS,
    HighS,
    Der,
}

/// A user with a P-256 key (`CN=Erin Elliptic`), signing deterministically:
/// ring's hedged nonce with a fixed "random" input.
struct Es256User {
    ca_cert: Vec<u8>,
    cert: Vec<u8>,
    pkcs8: Vec<u8>,
}

/// The order n of P-256.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[allow(deprecated)] // ring's fixed RNG: vectors must be reproducible.
fn fixed_rng() -> ring::test::rand::FixedByteRandom {
    ring::test::rand::FixedByteRandom { byte: 0x5a }
}

fn ring_err(what: &str) -> IssueError {
    IssueError::Internal(format!("P-256 vector key: {what}"))
}

impl Es256User {
    fn new(pki: &Pki) -> Result<Self, IssueError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &fixed_rng())
            .map_err(|_| ring_err("generate"))?
            .as_ref()
            .to_vec();
        let kp =
            EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &fixed_rng())
                .map_err(|_| ring_err("load"))?;
        // SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, the point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(kp.public_key().as_ref());
        let cert = CertTemplate {
            serial: 71,
            issuer: subject_of(&pki.ca.cert),
            subject: throwaway::name_der("CN=Erin Elliptic,O=jobseal test vectors")?,
            spki,
            not_before: T.minus(365 * DAY),
            not_after: T.plus(365 * DAY),
            extensions: throwaway::user_extensions()?,
        }
        .sign(&pki.ca.key)?;
        Ok(Self {
            ca_cert: pki.ca.cert.clone(),
            cert,
            pkcs8,
        })
    }

    fn key(&self, alg: &'static rs::EcdsaSigningAlgorithm) -> Result<EcdsaKeyPair, IssueError> {
        EcdsaKeyPair::from_pkcs8(alg, &self.pkcs8, &fixed_rng()).map_err(|_| ring_err("load"))
    }

    fn bundle(&self, kind: Es256Sig) -> Result<Vec<u8>, IssueError> {
        let _ = &self.ca_cert;
        let signer = SigningKey::from_pkcs8(&self.pkcs8)?;
        let payload = manifest().to_cbor();
        let issuer = Issuer {
            key: &signer,
            chain: vec![self.cert.clone()],
        };
        // The leaf, signed (ECDSA, DER, as X.509 wants) deterministically.
        let t = leaf_template(
            &issuer,
            &payload,
            UnixTime(manifest().not_before),
            UnixTime(manifest().not_after),
        )?;
        let leaf = resign(
            &t.sign(&signer)?,
            &self.key(&rs::ECDSA_P256_SHA256_ASN1_SIGNING)?,
        )?;
        let fixed = self.key(&rs::ECDSA_P256_SHA256_FIXED_SIGNING)?;
        let der = self.key(&rs::ECDSA_P256_SHA256_ASN1_SIGNING)?;
        let env = cose::build::<IssueError>(cose::SignatureAlgorithm::Es256, payload, |tbs| {
            let sig = match kind {
                Es256Sig::Der => der.sign(&fixed_rng(), tbs),
                _ => fixed.sign(&fixed_rng(), tbs),
            }
            .map_err(|_| ring_err("sign"))?;
            let mut sig = sig.as_ref().to_vec();
            if let Some(s) = sig
                .get_mut(32..64)
                .filter(|_| !matches!(kind, Es256Sig::Der))
            {
                let high = s.iter().copied().cmp(half_n()) == std::cmp::Ordering::Greater;
                if high != matches!(kind, Es256Sig::HighS) {
                    n_minus(s);
                }
            }
            Ok(sig)
        })?;
        Ok(pem(&[leaf, self.cert.clone()], &[env]))
    }
}

/// (n − 1) / 2: S above it is "high".
fn half_n() -> impl Iterator<Item = u8> {
    let mut out = P256_N;
    let mut carry = 0u8;
    for b in &mut out {
        let v = *b;
        *b = (v >> 1) | (carry << 7);
        carry = v & 1;
    }
    out.into_iter()
}

/// s := n − s (big-endian, s < n).
fn n_minus(s: &mut [u8]) {
    let mut borrow = 0i16;
    for (d, n) in s.iter_mut().rev().zip(P256_N.iter().rev()) {
        let mut v = i16::from(*n) - i16::from(*d) - borrow;
        borrow = i16::from(v < 0);
        if v < 0 {
            v += 256;
        }
        *d = u8::try_from(v).unwrap_or(0);
    }
}

/// The certificate with its signature replaced by a deterministic one.
fn resign(cert: &[u8], key: &EcdsaKeyPair) -> Result<Vec<u8>, IssueError> {
    let bad = || IssueError::Internal("cannot split the certificate".into());
    let outer = tlv::read_all(cert).ok_or_else(bad)?;
    let parts = tlv::children(outer.value).ok_or_else(bad)?;
    let [tbs, alg, _] = parts.as_slice() else {
        return Err(bad());
    };
    let sig = key
        .sign(&fixed_rng(), tbs.raw)
        .map_err(|_| ring_err("sign"))?;
    let mut bits = tlv::header(0x03, sig.as_ref().len() + 1);
    bits.push(0);
    bits.extend_from_slice(sig.as_ref());
    let mut out = tlv::header(0x30, tbs.raw.len() + alg.raw.len() + bits.len());
    out.extend_from_slice(tbs.raw);
    out.extend_from_slice(alg.raw);
    out.extend_from_slice(&bits);
    Ok(out)
}

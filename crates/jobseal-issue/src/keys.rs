//! Reading a grid user's private key.
//!
//! Accepted: PEM text (the first `*PRIVATE KEY` block is used, so a proxy
//! file with certificates around its key works) or raw DER, in these forms:
//!
//! - `PRIVATE KEY`: PKCS#8 (RSA, EC P-256/P-384, Ed25519);
//! - `RSA PRIVATE KEY`: PKCS#1;
//! - `EC PRIVATE KEY`: SEC1;
//! - `ENCRYPTED PRIVATE KEY`: PKCS#8 with PBES2 (PBKDF2 with an HMAC-SHA-1 or
//!   SHA-2 PRF, or scrypt; AES-CBC, AES-GCM or DES-EDE3-CBC);
//! - the legacy OpenSSL encrypted PEM (`Proc-Type: 4,ENCRYPTED` and
//!   `DEK-Info: DES-EDE3-CBC|DES-CBC|AES-128-CBC|AES-192-CBC|AES-256-CBC,<iv>`)
//!   on any of the three unencrypted labels, which is what old
//!   `~/.globus/userkey.pem` files hold;
//! - PKCS#12 (`.p12`/`.pfx`), OpenSSL 3's default (PBES2/AES) and legacy
//!   (3DES/RC2) files, through [`decode_pkcs12`].
//!
//! Decrypted key material is held in [`Zeroizing`] buffers. Nothing here
//! panics on malformed input, and the key derivation cost an encrypted key
//! may ask for is capped so a hostile file cannot exhaust memory or time.

use std::fmt;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Reader, Sequence, SliceReader, Tag, Tagged};
use jobseal_core::pem::{PemBlock, parse_blocks};
use md5::{Digest, Md5};
use pkcs8::pkcs5::{self, pbes2};
use pkcs8::{AlgorithmIdentifierRef, PrivateKeyInfoRef, SubjectPublicKeyInfoRef};
use zeroize::{Zeroize, Zeroizing};

/// A decrypted private key, in one of the DER forms ring can load.
pub enum KeyDer {
    /// PKCS#8 `PrivateKeyInfo` (RSA, EC P-256/P-384 or Ed25519).
    Pkcs8(Zeroizing<Vec<u8>>),
    /// PKCS#1 `RSAPrivateKey` (ring: `RsaKeyPair::from_der`).
    Pkcs1Rsa(Zeroizing<Vec<u8>>),
    /// SEC1 `ECPrivateKey` on P-256 or P-384, with its curve parameters
    /// (ring needs it wrapped in PKCS#8).
    Sec1Ec(Zeroizing<Vec<u8>>),
}

impl KeyDer {
    /// The DER bytes, whatever the form.
    pub fn der(&self) -> &[u8] {
        match self {
            Self::Pkcs8(d) | Self::Pkcs1Rsa(d) | Self::Sec1Ec(d) => d.as_slice(),
        }
    }
}

impl fmt::Debug for KeyDer {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match self {
            Self::Pkcs8(_) => "Pkcs8",
            Self::Pkcs1Rsa(_) => "Pkcs1Rsa",
            Self::Sec1Ec(_) => "Sec1Ec",
        };
        write!(f, "KeyDer::{form}(<{} bytes>)", self.der().len())
    }
}

/// Why a private key could not be read.
#[non_exhaustive]
#[derive(Debug)]
pub enum KeyError {
    /// The data holds no private key in a form described above (or it is
    /// malformed); the message says what was found.
    NotAKey(String),
    /// The passphrase does not decrypt the key.
    WrongPassphrase,
    /// A private key, but in a form or with an algorithm jobseal does not
    /// read; the message says which and, where there is one, how to convert.
    Unsupported(String),
    /// Reading the passphrase failed (for the passphrase callback's use).
    Io(std::io::Error),
    /// The key is encrypted and no passphrase is available (for the
    /// passphrase callback's use, e.g. when there is no terminal).
    NoPassphrase,
    /// A PKCS#12 file holds no certificate for its private key.
    NoCertificate,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAKey(msg) => write!(f, "not a usable private key: {msg}"),
            Self::WrongPassphrase => f.write_str("wrong passphrase"),
            Self::Unsupported(msg) => write!(f, "unsupported private key: {msg}"),
            Self::Io(e) => write!(f, "cannot read the passphrase: {e}"),
            Self::NoPassphrase => {
                f.write_str("the private key is encrypted and no passphrase was given")
            }
            Self::NoCertificate => {
                f.write_str("the PKCS#12 file holds no certificate matching its private key")
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for KeyError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// How to get rid of an encryption scheme jobseal cannot decrypt.
const CONVERT_HINT: &str = "convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLDKEY -out NEWKEY` (this keeps it encrypted)";

/// Highest PBKDF2 iteration count accepted (OpenSSL writes 2048 by default).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Highest scrypt memory cost (128·N·r bytes) accepted: 1 GiB.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Highest scrypt parallelism accepted.
const MAX_SCRYPT_PARALLELISM: u16 = 16;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");

/// PKCS#8 v1 / PKCS#12 password-based encryption schemes, by name.
const V1_SCHEMES: [(ObjectIdentifier, &str); 10] = [
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.1"),
        "PBE-SHA1-RC4-128",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.2"),
        "PBE-SHA1-RC4-40",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3"),
        "PBE-SHA1-3DES",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4"),
        "PBE-SHA1-2DES",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5"),
        "PBE-SHA1-RC2-128",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6"),
        "PBE-SHA1-RC2-40",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.3"),
        "PBE-MD5-DES",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.6"),
        "PBE-MD5-RC2-64",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.10"),
        "PBE-SHA1-DES",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.11"),
        "PBE-SHA1-RC2-64",
    ),
];

/// PKCS#1 `RSAPrivateKey`.
#[derive(Sequence)]
struct RsaPrivateKey<'a> {
    version: UintRef<'a>,
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
    private_exponent: UintRef<'a>,
    prime1: UintRef<'a>,
    prime2: UintRef<'a>,
    exponent1: UintRef<'a>,
    exponent2: UintRef<'a>,
    coefficient: UintRef<'a>,
    #[asn1(optional = "true")]
    other_prime_infos: Option<AnyRef<'a>>,
}

/// PKCS#1 `RSAPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// SEC1 `ECPrivateKey`.
#[derive(Sequence)]
struct EcPrivateKey<'a> {
    version: UintRef<'a>,
    private_key: &'a OctetStringRef,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    parameters: Option<AnyRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    public_key: Option<BitStringRef<'a>>,
}

/// PKCS#8 `EncryptedPrivateKeyInfo`, with the algorithm left undecoded so
/// that schemes pkcs5 cannot parse still get a precise error.
#[derive(Sequence)]
struct EncryptedKeyInfo<'a> {
    algorithm: AlgorithmIdentifierRef<'a>,
    data: &'a OctetStringRef,
}

/// Why decrypted or raw bytes are not a key we can use.
enum Invalid {
    /// Not the expected structure (garbage, or a wrong passphrase).
    Malformed(String),
    /// A well-formed key of a kind we do not support.
    Unsupported(String),
}

impl Invalid {
    /// For a key that was stored in the clear.
    fn plain(self) -> KeyError {
        match self {
            Self::Malformed(m) => KeyError::NotAKey(m),
            Self::Unsupported(m) => KeyError::Unsupported(m),
        }
    }

    /// For a key that was just decrypted: a malformed result means the
    /// passphrase was wrong.
    fn decrypted(self) -> KeyError {
        match self {
            Self::Malformed(_) => KeyError::WrongPassphrase,
            Self::Unsupported(m) => KeyError::Unsupported(m),
        }
    }
}

/// Load the private key from PEM text (first `*PRIVATE KEY` block) or raw DER.
/// `passphrase` is called at most once, only if the key is encrypted.
pub fn decode_private_key(
    data: &[u8],
    passphrase: &mut dyn FnMut() -> Result<Zeroizing<String>, KeyError>,
) -> Result<KeyDer, KeyError> {
    if data.first() == Some(&0x30) {
        return decode_der(data, passphrase);
    }
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(KeyError::NotAKey("the file is empty".into()));
    }
    let mut blocks = parse_blocks(data).map_err(|e| KeyError::NotAKey(e.to_string()))?;
    let result = match blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) {
        Some(block) => decode_pem_block(block, passphrase),
        None if blocks.is_empty() => Err(KeyError::NotAKey("neither PEM nor DER".into())),
        None => {
            let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
            Err(KeyError::NotAKey(format!(
                "no PRIVATE KEY block (the file holds {})",
                labels.join(", ")
            )))
        }
    };
    for block in &mut blocks {
        block.der.zeroize();
    }
    result
}

fn decode_pem_block(
    block: &PemBlock,
    passphrase: &mut dyn FnMut() -> Result<Zeroizing<String>, KeyError>,
) -> Result<KeyDer, KeyError> {
    let form = match block.label.as_str() {
        "PRIVATE KEY" => Form::Pkcs8,
        "RSA PRIVATE KEY" => Form::Pkcs1,
        "EC PRIVATE KEY" => Form::Sec1,
        "ENCRYPTED PRIVATE KEY" => return decode_encrypted_pkcs8(&block.der, passphrase),
        "DSA PRIVATE KEY" => {
            return Err(KeyError::Unsupported(
                "DSA keys are not supported (use RSA, EC or Ed25519)".into(),
            ));
        }
        "OPENSSH PRIVATE KEY" => {
            return Err(KeyError::Unsupported(
                "this is an OpenSSH key, not an X.509 private key (OpenSSL's PEM or PKCS#8 formats are expected)".into(),
            ));
        }
        other => {
            return Err(KeyError::Unsupported(format!(
                "PEM label `{other}` is not a key format jobseal reads"
            )));
        }
    };
    match legacy_encryption(block)? {
        None => form.check(&block.der).map_err(Invalid::plain)?,
        Some((cipher, iv)) => {
            let pass = passphrase()?;
            let plain = legacy_decrypt(cipher, &iv, pass.as_bytes(), &block.der)?;
            form.check(&plain).map_err(Invalid::decrypted)?;
            return Ok(form.wrap(plain));
        }
    }
    Ok(form.wrap(Zeroizing::new(block.der.clone())))
}

/// The unencrypted DER forms.
#[derive(Clone, Copy)]
enum Form {
    Pkcs8,
    Pkcs1,
    Sec1,
}

impl Form {
    fn check(self, der: &[u8]) -> Result<(), Invalid> {
        match self {
            Self::Pkcs8 => check_pkcs8(der),
            Self::Pkcs1 => check_pkcs1(der),
            Self::Sec1 => check_sec1(der, None),
        }
    }

    fn wrap(self, der: Zeroizing<Vec<u8>>) -> KeyDer {
        match self {
            Self::Pkcs8 => KeyDer::Pkcs8(der),
            Self::Pkcs1 => KeyDer::Pkcs1Rsa(der),
            Self::Sec1 => KeyDer::Sec1Ec(der),
        }
    }
}

fn decode_der(
    data: &[u8],
    passphrase: &mut dyn FnMut() -> Result<Zeroizing<String>, KeyError>,
) -> Result<KeyDer, KeyError> {
    if PrivateKeyInfoRef::try_from(data).is_ok() {
        check_pkcs8(data).map_err(Invalid::plain)?;
        return Ok(KeyDer::Pkcs8(Zeroizing::new(data.to_vec())));
    }
    if EncryptedKeyInfo::from_der(data).is_ok() {
        return decode_encrypted_pkcs8(data, passphrase);
    }
    if RsaPrivateKey::from_der(data).is_ok() {
        check_pkcs1(data).map_err(Invalid::plain)?;
        return Ok(KeyDer::Pkcs1Rsa(Zeroizing::new(data.to_vec())));
    }
    if EcPrivateKey::from_der(data).is_ok() {
        check_sec1(data, None).map_err(Invalid::plain)?;
        return Ok(KeyDer::Sec1Ec(Zeroizing::new(data.to_vec())));
    }
    if pfx_has_mac(data).is_some() {
        return Err(KeyError::NotAKey(
            "this is a PKCS#12 file; read it as one (.p12)".into(),
        ));
    }
    if cert_spki(data).is_some() {
        return Err(KeyError::NotAKey("this is a certificate".into()));
    }
    Err(KeyError::NotAKey(
        "DER data that is neither PKCS#8, PKCS#1 nor SEC1".into(),
    ))
}

// ---------------------------------------------------------------------------
// Structure checks

fn check_pkcs8(der: &[u8]) -> Result<(), Invalid> {
    let info = PrivateKeyInfoRef::try_from(der)
        .map_err(|e| Invalid::Malformed(format!("malformed PKCS#8 key: {e}")))?;
    let inner = info.private_key.as_bytes();
    let oid = info.algorithm.oid;
    if oid == OID_RSA {
        check_pkcs1(inner)
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| Invalid::Unsupported("EC key without a named curve".into()))?;
        check_sec1(inner, Some(curve))
    } else if oid == OID_ED25519 {
        match <&OctetStringRef>::from_der(inner) {
            Ok(seed) if seed.as_bytes().len() == 32 => Ok(()),
            _ => Err(Invalid::Malformed("malformed Ed25519 key".into())),
        }
    } else {
        Err(Invalid::Unsupported(format!(
            "{} keys are not supported (use RSA, EC P-256/P-384 or Ed25519)",
            algorithm_name(oid)
        )))
    }
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    if oid == OID_RSA_PSS {
        "RSA-PSS".into()
    } else if oid == OID_DSA {
        "DSA".into()
    } else if oid == ObjectIdentifier::new_unwrap("1.3.101.113") {
        "Ed448".into()
    } else if oid == ObjectIdentifier::new_unwrap("1.3.101.110")
        || oid == ObjectIdentifier::new_unwrap("1.3.101.111")
    {
        "X25519/X448 (key agreement)".into()
    } else {
        format!("algorithm {oid}")
    }
}

fn check_pkcs1(der: &[u8]) -> Result<(), Invalid> {
    let key = RsaPrivateKey::from_der(der)
        .map_err(|e| Invalid::Malformed(format!("malformed RSA key: {e}")))?;
    match key.version.as_bytes() {
        [] | [0] if key.other_prime_infos.is_none() => Ok(()),
        [1] => Err(Invalid::Unsupported(
            "multi-prime RSA keys are not supported".into(),
        )),
        _ => Err(Invalid::Malformed("malformed RSA key (bad version)".into())),
    }
}

/// `curve`: the curve named outside the SEC1 structure (by PKCS#8), if any.
fn check_sec1(der: &[u8], curve: Option<ObjectIdentifier>) -> Result<(), Invalid> {
    let key = EcPrivateKey::from_der(der)
        .map_err(|e| Invalid::Malformed(format!("malformed EC key: {e}")))?;
    if key.version.as_bytes() != [1] {
        return Err(Invalid::Malformed("malformed EC key (bad version)".into()));
    }
    if key.private_key.as_bytes().is_empty() {
        return Err(Invalid::Malformed("malformed EC key (empty)".into()));
    }
    let inner = match key.parameters {
        Some(p) => Some(p.decode_as::<ObjectIdentifier>().map_err(|_| {
            Invalid::Unsupported(
                "EC key with explicit curve parameters (a named curve is needed)".into(),
            )
        })?),
        None => None,
    };
    let curve = match (curve, inner) {
        (Some(a), Some(b)) if a != b => {
            return Err(Invalid::Malformed(
                "EC key names two different curves".into(),
            ));
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(Invalid::Unsupported("EC key without its curve".into())),
    };
    if curve == OID_P256 || curve == OID_P384 {
        Ok(())
    } else {
        Err(Invalid::Unsupported(format!(
            "EC curve {curve} is not supported (P-256 and P-384 are)"
        )))
    }
}

// ---------------------------------------------------------------------------
// Encrypted PKCS#8

fn decode_encrypted_pkcs8(
    der: &[u8],
    passphrase: &mut dyn FnMut() -> Result<Zeroizing<String>, KeyError>,
) -> Result<KeyDer, KeyError> {
    let info = EncryptedKeyInfo::from_der(der)
        .map_err(|e| KeyError::NotAKey(format!("malformed encrypted PKCS#8 key: {e}")))?;
    let oid = info.algorithm.oid;
    if oid != OID_PBES2 {
        let what = match V1_SCHEMES.iter().find(|(o, _)| *o == oid) {
            Some((_, name)) => format!("the PKCS#8 v1 scheme {name}"),
            None => format!("the scheme {oid}"),
        };
        return Err(KeyError::Unsupported(format!(
            "the key is encrypted with {what}, which jobseal cannot decrypt; {CONVERT_HINT}"
        )));
    }
    let scheme = pkcs5::EncryptionScheme::try_from(info.algorithm).map_err(|e| {
        KeyError::Unsupported(format!(
            "the key's PBES2 encryption parameters are not supported ({e}); {CONVERT_HINT}"
        ))
    })?;
    let Some(params) = scheme.pbes2() else {
        return Err(KeyError::Unsupported(format!(
            "the key's encryption scheme is not PBES2; {CONVERT_HINT}"
        )));
    };
    check_kdf_cost(&params.kdf)?;
    let pass = passphrase()?;
    let mut buf = Zeroizing::new(info.data.as_bytes().to_vec());
    let len = match params.decrypt_in_place(pass.as_bytes(), buf.as_mut_slice()) {
        Ok(plain) => plain.len(),
        Err(pkcs5::Error::DecryptFailed) => return Err(KeyError::WrongPassphrase),
        Err(e) => {
            return Err(KeyError::Unsupported(format!(
                "cannot decrypt the key ({e}); {CONVERT_HINT}"
            )));
        }
    };
    buf.truncate(len);
    check_pkcs8(&buf).map_err(Invalid::decrypted)?;
    Ok(KeyDer::Pkcs8(buf))
}

fn check_kdf_cost(kdf: &pbes2::Kdf) -> Result<(), KeyError> {
    match kdf {
        pbes2::Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => {
            Err(KeyError::Unsupported(format!(
                "the key asks for {} PBKDF2 iterations (at most {MAX_PBKDF2_ITERATIONS} are accepted)",
                p.iteration_count
            )))
        }
        pbes2::Kdf::Scrypt(p) => {
            let memory = 128u64
                .checked_mul(p.cost_parameter)
                .and_then(|m| m.checked_mul(u64::from(p.block_size)));
            match memory {
                Some(m)
                    if m <= MAX_SCRYPT_MEMORY && p.parallelization <= MAX_SCRYPT_PARALLELISM =>
                {
                    Ok(())
                }
                _ => Err(KeyError::Unsupported(format!(
                    "the key's scrypt parameters (N={}, r={}, p={}) exceed the accepted cost (1 GiB, p <= {MAX_SCRYPT_PARALLELISM})",
                    p.cost_parameter, p.block_size, p.parallelization
                ))),
            }
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Legacy OpenSSL encrypted PEM (Proc-Type/DEK-Info)

#[derive(Clone, Copy)]
enum LegacyCipher {
    DesEde3,
    Des,
    Aes128,
    Aes192,
    Aes256,
}

impl LegacyCipher {
    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "DES-EDE3-CBC" => Some(Self::DesEde3),
            "DES-CBC" => Some(Self::Des),
            "AES-128-CBC" => Some(Self::Aes128),
            "AES-192-CBC" => Some(Self::Aes192),
            "AES-256-CBC" => Some(Self::Aes256),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::DesEde3 => 24,
            Self::Des => 8,
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Self::DesEde3 | Self::Des => 8,
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
        }
    }
}

fn header<'a>(block: &'a PemBlock, name: &str) -> Option<&'a str> {
    block
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The cipher and IV of a legacy encrypted PEM block, or `None` if the
/// block is not encrypted.
fn legacy_encryption(block: &PemBlock) -> Result<Option<(LegacyCipher, Vec<u8>)>, KeyError> {
    let encrypted = header(block, "Proc-Type")
        .and_then(|v| v.split(',').nth(1))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("ENCRYPTED"));
    let dek = header(block, "DEK-Info");
    if !encrypted {
        if dek.is_some() {
            return Err(KeyError::NotAKey(
                "PEM key with DEK-Info but no `Proc-Type: 4,ENCRYPTED`".into(),
            ));
        }
        return Ok(None);
    }
    let Some(dek) = dek else {
        return Err(KeyError::NotAKey(
            "encrypted PEM key without a DEK-Info header".into(),
        ));
    };
    let (name, iv_hex) = dek.split_once(',').unwrap_or((dek, ""));
    let name = name.trim();
    let Some(cipher) = LegacyCipher::from_name(name) else {
        return Err(KeyError::Unsupported(format!(
            "the key is encrypted with {name}, which jobseal cannot decrypt (DES-EDE3-CBC and AES-CBC are supported); {CONVERT_HINT}"
        )));
    };
    let iv = hex_decode(iv_hex.trim())
        .ok_or_else(|| KeyError::NotAKey("bad IV in the DEK-Info header".into()))?;
    if iv.len() != cipher.iv_len() {
        return Err(KeyError::NotAKey(format!(
            "the DEK-Info IV for {name} must be {} bytes",
            cipher.iv_len()
        )));
    }
    Ok(Some((cipher, iv)))
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration.
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut prev = Zeroizing::new(Vec::new());
    while key.len() < key_len {
        let mut md5 = Md5::new();
        md5.update(prev.as_slice());
        md5.update(pass);
        md5.update(salt);
        prev = Zeroizing::new(md5.finalize().to_vec());
        key.extend_from_slice(&prev);
    }
    key.truncate(key_len);
    key
}

fn legacy_decrypt(
    cipher: LegacyCipher,
    iv: &[u8],
    pass: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let salt = iv
        .get(..8)
        .ok_or_else(|| KeyError::NotAKey("the DEK-Info IV is too short".into()))?;
    let key = evp_bytes_to_key(pass, salt, cipher.key_len());
    let plain = match cipher {
        LegacyCipher::DesEde3 => cbc_decrypt::<des::TdesEde3>(&key, iv, data),
        LegacyCipher::Des => cbc_decrypt::<des::Des>(&key, iv, data),
        LegacyCipher::Aes128 => cbc_decrypt::<aes::Aes128>(&key, iv, data),
        LegacyCipher::Aes192 => cbc_decrypt::<aes::Aes192>(&key, iv, data),
        LegacyCipher::Aes256 => cbc_decrypt::<aes::Aes256>(&key, iv, data),
    };
    // Bad padding is what a wrong passphrase looks like.
    plain.ok_or(KeyError::WrongPassphrase)
}

fn cbc_decrypt<C: BlockCipherDecrypt + KeyInit>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    let mut buf = Zeroizing::new(data.to_vec());
    let len = decryptor
        .decrypt_padded::<Pkcs7>(buf.as_mut_slice())
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

// ---------------------------------------------------------------------------
// PKCS#12

/// Read a PKCS#12 file: the private key and the certificate chain (DER,
/// leaf = the cert matching the key first, then the rest).
///
/// The leaf is the certificate whose `localKeyId` equals the key's, or else
/// the one whose public key is the key's. After it come its issuers in
/// chain order, then any other certificates in file order.
pub fn decode_pkcs12(data: &[u8], passphrase: &str) -> Result<(KeyDer, Vec<Vec<u8>>), KeyError> {
    let Some(has_mac) = pfx_has_mac(data) else {
        return Err(KeyError::NotAKey("not a (DER-encoded) PKCS#12 file".into()));
    };
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, passphrase)
        .map_err(|e| p12_error(e, has_mac))?;
    let certs = &archive.certs;

    let leaf_of = |key: &p12_keystore::PrivateKeyBag| -> Option<usize> {
        let by_id = key.local_key_id.as_ref().and_then(|id| {
            certs
                .iter()
                .position(|c| c.local_key_id.as_deref() == Some(id.as_ref()))
        });
        by_id.or_else(|| {
            certs
                .iter()
                .position(|c| key_matches_cert(key.key.as_der(), c.cert.as_der()))
        })
    };

    let (key, leaf) = match archive.keys.as_slice() {
        [] => {
            return Err(KeyError::NotAKey(
                "the PKCS#12 file holds no private key".into(),
            ));
        }
        [key] => (key, leaf_of(key)),
        keys => {
            let mut matched = keys.iter().filter_map(|k| leaf_of(k).map(|l| (k, Some(l))));
            match (matched.next(), matched.next()) {
                (Some(one), None) => one,
                (None, _) => return Err(KeyError::NoCertificate),
                (Some(_), Some(_)) => {
                    return Err(KeyError::Unsupported(format!(
                        "the PKCS#12 file holds {} private keys, several with certificates; export the one to use into a file of its own",
                        keys.len()
                    )));
                }
            }
        }
    };
    let Some(leaf) = leaf else {
        return Err(KeyError::NoCertificate);
    };

    let der = key.key.as_der();
    check_pkcs8(der).map_err(|e| match e {
        Invalid::Malformed(m) if has_mac => KeyError::NotAKey(m),
        other => other.decrypted(),
    })?;
    let key_der = KeyDer::Pkcs8(Zeroizing::new(der.to_vec()));

    // Leaf, then its issuers, then everything else.
    let mut order: Vec<usize> = vec![leaf];
    let mut current = leaf;
    while let Some(cur) = certs.get(current) {
        let (subject, issuer) = (cur.cert.subject(), cur.cert.issuer());
        if subject == issuer {
            break;
        }
        let next = certs
            .iter()
            .enumerate()
            .find_map(|(i, c)| (!order.contains(&i) && c.cert.subject() == issuer).then_some(i));
        match next {
            Some(n) => {
                order.push(n);
                current = n;
            }
            None => break,
        }
    }
    for i in 0..certs.len() {
        if !order.contains(&i) {
            order.push(i);
        }
    }
    let mut chain: Vec<Vec<u8>> = Vec::with_capacity(order.len());
    for cert in order.iter().filter_map(|&i| certs.get(i)) {
        let der = cert.cert.as_der().to_vec();
        if !chain.contains(&der) {
            chain.push(der);
        }
    }
    Ok((key_der, chain))
}

/// `Some(has_mac)` if `data` has the outer shape of a PKCS#12 PFX.
fn pfx_has_mac(data: &[u8]) -> Option<bool> {
    let pfx = AnyRef::from_der(data).ok()?;
    if pfx.tag() != Tag::Sequence {
        return None;
    }
    let mut reader = SliceReader::new(pfx.value()).ok()?;
    let version: u8 = reader.decode().ok()?;
    let auth_safe: AnyRef<'_> = reader.decode().ok()?;
    if version != 3 || auth_safe.tag() != Tag::Sequence {
        return None;
    }
    Some(!reader.is_finished())
}

fn p12_error(e: p12_keystore::error::Error, has_mac: bool) -> KeyError {
    use p12_keystore::error::Error as E;
    match e {
        E::MacError(_) | E::UnpadError => KeyError::WrongPassphrase,
        E::Pkcs5Error(msg) if msg == pkcs5::Error::DecryptFailed.to_string() => KeyError::WrongPassphrase,
        // Without a MAC, garbage after decryption is the only sign of a
        // wrong passphrase.
        E::DerError(_) | E::InvalidPrivateKey | E::InvalidData | E::InvalidLength if !has_mac => KeyError::WrongPassphrase,
        E::Pkcs5Error(msg) => KeyError::Unsupported(format!("PKCS#12 encryption: {msg}")),
        E::UnsupportedEncryptionScheme => KeyError::Unsupported(
            "the PKCS#12 file uses an encryption scheme jobseal cannot decrypt; re-export it with `openssl pkcs12 -export` (OpenSSL 3 defaults)".into(),
        ),
        E::UnsupportedMacAlgorithm => KeyError::Unsupported("the PKCS#12 file uses an unsupported MAC algorithm".into()),
        E::UnsupportedContentType => {
            KeyError::Unsupported("the PKCS#12 file uses public-key (enveloped) protection, not a password".into())
        }
        E::UnsupportedCertificateType => {
            KeyError::Unsupported("the PKCS#12 file holds a certificate that is not X.509".into())
        }
        E::InvalidParameters => KeyError::Unsupported(
            "the PKCS#12 file's key derivation parameters are out of the accepted range".into(),
        ),
        other => KeyError::NotAKey(format!("malformed PKCS#12 file: {other}")),
    }
}

/// The `SubjectPublicKeyInfo` of a certificate.
fn cert_spki(cert: &[u8]) -> Option<SubjectPublicKeyInfoRef<'_>> {
    let cert = AnyRef::from_der(cert).ok()?;
    if cert.tag() != Tag::Sequence {
        return None;
    }
    let mut outer = SliceReader::new(cert.value()).ok()?;
    let tbs: AnyRef<'_> = outer.decode().ok()?;
    let _signature_algorithm: AlgorithmIdentifierRef<'_> = outer.decode().ok()?;
    let _signature: BitStringRef<'_> = outer.decode().ok()?;
    if !outer.is_finished() || tbs.tag() != Tag::Sequence {
        return None;
    }
    let mut tbs = SliceReader::new(tbs.value()).ok()?;
    let mut field: AnyRef<'_> = tbs.decode().ok()?;
    if field.tag() != Tag::Integer {
        // [0] version
        field = tbs.decode().ok()?;
    }
    if field.tag() != Tag::Integer {
        return None;
    }
    // signature, issuer, validity, subject
    for _ in 0..4 {
        let _: AnyRef<'_> = tbs.decode().ok()?;
    }
    tbs.decode().ok()
}

/// Whether the PKCS#8 key `key` is the private half of `cert`'s public key.
fn key_matches_cert(key: &[u8], cert: &[u8]) -> bool {
    let (Ok(info), Some(spki)) = (PrivateKeyInfoRef::try_from(key), cert_spki(cert)) else {
        return false;
    };
    if info.algorithm.oid != spki.algorithm.oid {
        return false;
    }
    let cert_key = spki.subject_public_key.raw_bytes();
    if let Some(public) = info.public_key {
        return public.raw_bytes() == cert_key;
    }
    let inner = info.private_key.as_bytes();
    if info.algorithm.oid == OID_RSA {
        match (
            RsaPrivateKey::from_der(inner),
            RsaPublicKey::from_der(cert_key),
        ) {
            (Ok(private), Ok(public)) => {
                private.modulus == public.modulus
                    && private.public_exponent == public.public_exponent
            }
            _ => false,
        }
    } else if info.algorithm.oid == OID_EC_PUBLIC_KEY {
        EcPrivateKey::from_der(inner)
            .ok()
            .and_then(|k| k.public_key)
            .is_some_and(|p| p.raw_bytes() == cert_key)
    } else {
        false
    }
}

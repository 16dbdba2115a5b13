//! A private key that signs certificates (X.509 algorithms) and manifests
//! (COSE algorithms), backed by ring.

use der::asn1::ObjectIdentifier;
use jobseal_core::cose::SignatureAlgorithm;
use jobseal_core::oid;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use spki::AlgorithmIdentifierOwned;

use crate::IssueError;
use crate::keys::KeyDer;

/// A user's (or a user proxy's) private key.
pub enum SigningKey {
    Rsa(RsaKeyPair),
    /// X.509 wants ASN.1 ECDSA signatures, COSE fixed-width ones: keep both.
    EcdsaP256 {
        asn1: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
    },
    EcdsaP384 {
        asn1: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
    },
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe().as_str())
    }
}

fn bad_key(msg: impl std::fmt::Display) -> IssueError {
    IssueError::Key(format!("the private key cannot be used: {msg}"))
}

/// What ring's refusal of an RSA key means to the person holding it.
fn rsa_rejected(e: ring::error::KeyRejected) -> IssueError {
    match e.to_string().as_str() {
        "TooSmall" => bad_key(
            "it is an RSA key of fewer than 2048 bits, which every site refuses; \
             make a proxy with a 2048-bit key (voms-proxy-init -rfc -bits 2048, arcproxy -c keybits=2048) \
             or, for your certificate's own key, ask your CA for a new certificate",
        ),
        "TooLarge" => bad_key("it is an RSA key of more than 8192 bits, which sites refuse"),
        other => bad_key(format!("the RSA key is malformed ({other})")),
    }
}

impl SigningKey {
    /// Load from a decrypted key.
    pub fn from_key_der(key: &KeyDer) -> Result<Self, IssueError> {
        match key {
            KeyDer::Pkcs1Rsa(der) => RsaKeyPair::from_der(der)
                .map(Self::Rsa)
                .map_err(rsa_rejected),
            KeyDer::Pkcs8(der) => Self::from_pkcs8(der),
            KeyDer::Sec1Ec(der) => Self::from_pkcs8(&sec1_to_pkcs8(der)?),
        }
    }

    /// Load from PKCS#8 DER (RSA, P-256, P-384 or Ed25519).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, IssueError> {
        let rng = SystemRandom::new();
        match RsaKeyPair::from_pkcs8(der) {
            Ok(k) => return Ok(Self::Rsa(k)),
            // An RSA key of the wrong size is not another kind of key.
            Err(e) if matches!(e.to_string().as_str(), "TooSmall" | "TooLarge") => {
                return Err(rsa_rejected(e));
            }
            Err(_) => {}
        }
        if let (Ok(asn1), Ok(fixed)) = (
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng),
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng),
        ) {
            return Ok(Self::EcdsaP256 { asn1, fixed });
        }
        if let (Ok(asn1), Ok(fixed)) = (
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der, &rng),
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng),
        ) {
            return Ok(Self::EcdsaP384 { asn1, fixed });
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(Self::Ed25519)
            .map_err(|_| bad_key("not an RSA (2048 bits or more), P-256, P-384 or Ed25519 key"))
    }

    /// A short description, e.g. `RSA-2048`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => format!("RSA-{}", k.public().modulus_len() * 8),
            Self::EcdsaP256 { .. } => "ECDSA P-256".into(),
            Self::EcdsaP384 { .. } => "ECDSA P-384".into(),
            Self::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// The public key as it appears in a certificate's subjectPublicKey bits.
    pub fn public_key_bits(&self) -> &[u8] {
        match self {
            Self::Rsa(k) => k.public().as_ref(),
            Self::EcdsaP256 { asn1, .. } | Self::EcdsaP384 { asn1, .. } => {
                asn1.public_key().as_ref()
            }
            Self::Ed25519(k) => k.public_key().as_ref(),
        }
    }

    /// The X.509 signature algorithm this key signs certificates with.
    pub fn x509_algorithm(&self) -> AlgorithmIdentifierOwned {
        let (oid, null_params): (ObjectIdentifier, bool) = match self {
            Self::Rsa(_) => (oid::SHA256_WITH_RSA, true),
            Self::EcdsaP256 { .. } => (oid::ECDSA_WITH_SHA256, false),
            Self::EcdsaP384 { .. } => (oid::ECDSA_WITH_SHA384, false),
            Self::Ed25519(_) => (oid::ED25519, false),
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: null_params.then(der::asn1::Any::null),
        }
    }

    /// Sign a TBSCertificate.
    pub fn sign_x509(&self, tbs: &[u8]) -> Result<Vec<u8>, IssueError> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, tbs, &mut sig)
                    .map_err(|_| IssueError::Internal("RSA signing failed".into()))?;
                Ok(sig)
            }
            Self::EcdsaP256 { asn1, .. } | Self::EcdsaP384 { asn1, .. } => asn1
                .sign(&rng, tbs)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| IssueError::Internal("ECDSA signing failed".into())),
            Self::Ed25519(k) => Ok(k.sign(tbs).as_ref().to_vec()),
        }
    }

    /// The COSE algorithm this key signs manifests with.
    pub fn cose_algorithm(&self) -> SignatureAlgorithm {
        match self {
            Self::Rsa(_) => SignatureAlgorithm::Ps256,
            Self::EcdsaP256 { .. } => SignatureAlgorithm::Es256,
            Self::EcdsaP384 { .. } => SignatureAlgorithm::Es384,
            Self::Ed25519(_) => SignatureAlgorithm::EdDsa,
        }
    }

    /// Sign a COSE Sig_structure.
    pub fn sign_cose(&self, tbs: &[u8]) -> Result<Vec<u8>, IssueError> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PSS_SHA256, &rng, tbs, &mut sig)
                    .map_err(|_| IssueError::Internal("RSA-PSS signing failed".into()))?;
                Ok(sig)
            }
            Self::EcdsaP256 { fixed, .. } | Self::EcdsaP384 { fixed, .. } => fixed
                .sign(&rng, tbs)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| IssueError::Internal("ECDSA signing failed".into())),
            Self::Ed25519(k) => Ok(k.sign(tbs).as_ref().to_vec()),
        }
    }
}

/// Wrap a SEC1 `ECPrivateKey` in PKCS#8, taking the curve from its parameters.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, IssueError> {
    use jobseal_core::tlv;
    let seq = tlv::read_all(sec1).ok_or_else(|| bad_key("malformed EC private key"))?;
    let fields = tlv::children(seq.value).ok_or_else(|| bad_key("malformed EC private key"))?;
    let params = fields
        .iter()
        .find(|f| f.tag == 0xa0)
        .and_then(|p| tlv::read_all(p.value))
        .ok_or_else(|| bad_key("the EC private key does not name its curve"))?;
    // AlgorithmIdentifier { id-ecPublicKey, namedCurve }
    let mut alg_body = vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    alg_body.extend_from_slice(params.raw);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&tlv::header(0x30, alg_body.len()));
    body.extend_from_slice(&alg_body);
    body.extend_from_slice(&tlv::header(0x04, sec1.len()));
    body.extend_from_slice(sec1);
    let mut out = tlv::header(0x30, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

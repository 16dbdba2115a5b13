//! The vectors.

use std::path::Path;

use der::Encode;
use der::asn1::ObjectIdentifier;
use jobseal_core::asn1::{JobBinding, ProxyCertInfo, ProxyPolicy};
use jobseal_core::manifest::{FileDigest, Manifest};
use jobseal_core::pem::encode_block;
use jobseal_core::time::UnixTime;
use jobseal_core::{Reason, bound_key, bundle, cose, name, oid, sha256, tlv};
use jobseal_issue::IssueError;
use jobseal_issue::proxy::{CertTemplate, KU_DIGITAL_SIGNATURE, ProxyKind, extension};
use jobseal_issue::signer::SigningKey;
use jobseal_issue::throwaway::{self, Party};
use serde_json::json;

mod spec_points;
mod status;
mod voms;

pub use voms::ExpectedVoms;

/// The verification time of every vector: 2026-01-01T00:00:00Z.
pub const VECTOR_TIME: UnixTime = UnixTime(1_767_225_600);
const T: UnixTime = VECTOR_TIME;
const DAY: u64 = 86_400;

/// What the verifier must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    Permit,
    Deny(Reason),
}

impl Expected {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny(r) => r.code(),
        }
    }
}

/// One known-answer vector.
#[derive(Clone, Debug)]
pub struct Vector {
    pub name: String,
    pub description: String,
    /// The bundle file's bytes.
    pub bundle: Vec<u8>,
    /// The executable presented (`None`: the path does not exist).
    pub executable: Option<Vec<u8>>,
    pub arguments: Vec<String>,
    /// Files of the job directory.
    pub inputs: Vec<(String, Vec<u8>)>,
    pub expected: Expected,
    /// The VOMS attributes the decision must report, one entry per AC, if
    /// the vector says (`None`: not checked).
    pub expected_voms: Option<Vec<ExpectedVoms>>,
}

/// A site-policy vector (step 6, `spec/jobseal.md` §13): the bundle of the
/// vector `vector`, checked as that vector says, then the policy `policy`
/// applied to the decision.
#[derive(Clone, Debug)]
pub struct PolicyVector {
    pub name: String,
    pub description: String,
    /// The name of the (permit) vector whose bundle and job are checked.
    pub vector: String,
    /// The policy file's text (TOML).
    pub policy: String,
    pub expected: Expected,
}

/// The trust anchors and the vectors.
#[derive(Debug)]
pub struct Fixture {
    /// CA certificates to install in the CA directory.
    pub trusted_cas: Vec<Vec<u8>>,
    /// Other files of the CA directory (CRLs, namespace policies): (file
    /// name, contents).
    pub ca_files: Vec<(String, Vec<u8>)>,
    /// Files of the vomsdir: (path relative to it, contents).
    pub voms_files: Vec<(String, String)>,
    pub vectors: Vec<Vector>,
    /// Site-policy vectors over some of `vectors`' bundles.
    pub policy_vectors: Vec<PolicyVector>,
}

const EXE: &[u8] = b"#!/bin/sh\necho \"analysing $2 events\"\n";
const INPUT_NAME: &str = "data/in.txt";
const INPUT: &[u8] = b"run 2026-01\n";

fn args() -> Vec<String> {
    vec!["--events".into(), "1000".into()]
}

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

fn subject_of(cert: &[u8]) -> Vec<u8> {
    tlv::RawCert::split(cert)
        .map(|r| r.subject.to_vec())
        .unwrap_or_default()
}

fn manifest() -> Manifest {
    Manifest {
        job_id: [0x42; 16],
        executable: FileDigest {
            name: "run.sh".into(),
            size: EXE.len() as u64,
            sha256: sha256(EXE),
        },
        arguments: args(),
        environment: None,
        inputs: vec![FileDigest {
            name: INPUT_NAME.into(),
            size: INPUT.len() as u64,
            sha256: sha256(INPUT),
        }],
        vo: Some("testvo".into()),
        sites: None,
        not_before: T.minus(300).0,
        not_after: T.plus(DAY).0,
        created: T.minus(300).0,
        tool: "jobseal/test-vectors".into(),
        allowed_uses: 1,
    }
}

/// The parties of the test PKI.
struct Pki {
    ca: Party,
    user: Party,
}

/// The key and certificate that sign the job (the leaf's issuer), and the
/// chain above the leaf (signer first).
struct Issuer<'a> {
    key: &'a SigningKey,
    chain: Vec<Vec<u8>>,
}

fn envelope(key: &SigningKey, payload: Vec<u8>) -> Result<Vec<u8>, IssueError> {
    cose::build::<IssueError>(key.cose_algorithm(), payload, |tbs| key.sign_cose(tbs))
}

/// A job-bound leaf template over `payload`, valid like the manifest.
fn leaf_template(
    issuer: &Issuer<'_>,
    payload: &[u8],
    nb: UnixTime,
    na: UnixTime,
) -> Result<CertTemplate, IssueError> {
    let digest = sha256(payload);
    let key = bound_key::derive(&digest)?;
    let spki = bound_key::ed25519_spki(&key)
        .and_then(|s| s.to_der())
        .map_err(|e| IssueError::Internal(e.to_string()))?;
    let signer = issuer
        .chain
        .first()
        .ok_or_else(|| IssueError::Internal("empty chain".into()))?;
    CertTemplate::proxy(
        signer,
        spki,
        1000,
        nb,
        na,
        &ProxyKind::JobBound {
            manifest_sha256: digest,
        },
    )
}

fn pem(certs: &[Vec<u8>], manifests: &[Vec<u8>]) -> Vec<u8> {
    let mut out = String::new();
    for c in certs {
        out.push_str(&encode_block("CERTIFICATE", c));
    }
    for m in manifests {
        out.push_str(&encode_block(bundle::MANIFEST_LABEL, m));
    }
    out.into_bytes()
}

type LeafEdit<'a> = Box<dyn FnOnce(&mut CertTemplate) -> Result<(), IssueError> + 'a>;
type BytesEdit<'a> = Box<dyn FnOnce(&mut Vec<u8>) + 'a>;
type CertsEdit<'a> = Box<dyn FnOnce(&mut Vec<Vec<u8>>) + 'a>;

/// Everything that goes into one bundle, with defaults a vector overrides.
struct Build<'a> {
    issuer: Issuer<'a>,
    payload: Vec<u8>,
    leaf_validity: (UnixTime, UnixTime),
    edit_leaf: LeafEdit<'a>,
    edit_envelope: BytesEdit<'a>,
    edit_certs: CertsEdit<'a>,
    extra_manifests: usize,
}

impl<'a> Build<'a> {
    fn new(issuer: Issuer<'a>) -> Self {
        let m = manifest();
        Self {
            issuer,
            leaf_validity: (UnixTime(m.not_before), UnixTime(m.not_after)),
            payload: m.to_cbor(),
            edit_leaf: Box::new(|_| Ok(())),
            edit_envelope: Box::new(|_| {}),
            edit_certs: Box::new(|_| {}),
            extra_manifests: 0,
        }
    }

    fn bundle(self) -> Result<Vec<u8>, IssueError> {
        let mut t = leaf_template(
            &self.issuer,
            &self.payload,
            self.leaf_validity.0,
            self.leaf_validity.1,
        )?;
        (self.edit_leaf)(&mut t)?;
        let leaf = t.sign(self.issuer.key)?;
        let mut env = envelope(self.issuer.key, self.payload)?;
        (self.edit_envelope)(&mut env);
        let mut certs = vec![leaf];
        certs.extend(self.issuer.chain);
        (self.edit_certs)(&mut certs);
        let manifests = vec![env; 1 + self.extra_manifests];
        Ok(pem(&certs, &manifests))
    }
}

/// A proxy (not job-bound) of `issuer`, with an Ed25519 key from `seed`.
fn proxy_of(
    issuer_cert: &[u8],
    issuer_key: &SigningKey,
    seed_byte: u8,
    kind: &ProxyKind,
    edit: impl FnOnce(&mut CertTemplate) -> Result<(), IssueError>,
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&seed(seed_byte))?;
    let serial = 500 + u64::from(seed_byte);
    let mut t = CertTemplate::proxy(
        issuer_cert,
        spki,
        serial,
        T.minus(DAY),
        T.plus(7 * DAY),
        kind,
    )?;
    edit(&mut t)?;
    let cert = t.sign(issuer_key)?;
    Ok(Party { key, pkcs8, cert })
}

/// A user certificate of `ca` with the user's key, from a template edit.
fn user_variant(
    ca: &Party,
    subject: &str,
    edit: impl FnOnce(&mut CertTemplate) -> Result<(), IssueError>,
) -> Result<Party, IssueError> {
    let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&seed(2))?;
    let mut t = CertTemplate {
        serial: 2,
        issuer: subject_of(&ca.cert),
        subject: throwaway::name_der(subject)?,
        spki,
        not_before: T.minus(365 * DAY),
        not_after: T.plus(365 * DAY),
        extensions: throwaway::user_extensions()?,
    };
    edit(&mut t)?;
    let cert = t.sign(&ca.key)?;
    Ok(Party { key, pkcs8, cert })
}

fn pci(path_len: Option<u32>, lang: ObjectIdentifier) -> Result<Vec<u8>, IssueError> {
    ProxyCertInfo {
        path_len_constraint: path_len,
        proxy_policy: ProxyPolicy {
            policy_language: lang,
            policy: None,
        },
    }
    .to_der()
    .map_err(|e| IssueError::Internal(e.to_string()))
}

fn replace_ext(
    t: &mut CertTemplate,
    id: ObjectIdentifier,
    critical: bool,
    value: &[u8],
) -> Result<(), IssueError> {
    let new = extension(id, critical, value)?;
    match t.extensions.iter_mut().find(|e| e.extn_id == id) {
        Some(e) => *e = new,
        None => t.extensions.push(new),
    }
    Ok(())
}

fn binding_der(b: &JobBinding) -> Result<Vec<u8>, IssueError> {
    b.to_der().map_err(|e| IssueError::Internal(e.to_string()))
}

const USER: &str = "CN=Alice Analyst,O=jobseal test vectors";
const CA: &str = "CN=jobseal Test CA,O=jobseal test vectors";

/// Generate every vector.
pub fn generate() -> Result<Fixture, IssueError> {
    let (start, end) = (T.minus(365 * DAY), T.plus(9 * 365 * DAY));
    let ca = throwaway::ca(&seed(1), CA, start, end)?;
    let user = throwaway::user(
        &ca,
        &seed(2),
        USER,
        2,
        T.minus(365 * DAY),
        T.plus(365 * DAY),
    )?;
    let pki = Pki { ca, user };
    // A CA with pathLen 0, also trusted.
    let (k0, _, spki0) = throwaway::ed25519_from_seed(&seed(5))?;
    let ca0_name = throwaway::name_der("CN=jobseal Test CA pathlen 0,O=jobseal test vectors")?;
    let mut ca0_ext = throwaway::ca_extensions()?;
    replace_ext_vec(
        &mut ca0_ext,
        oid::BASIC_CONSTRAINTS,
        true,
        &[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00],
    )?;
    let ca0 = Party {
        cert: CertTemplate {
            serial: 5,
            issuer: ca0_name.clone(),
            subject: ca0_name,
            spki: spki0,
            not_before: start,
            not_after: end,
            extensions: ca0_ext,
        }
        .sign(&k0)?,
        key: k0,
        pkcs8: zeroize_empty(),
    };
    let mut v = Vec::new();
    let user_issuer = || Issuer {
        key: &pki.user.key,
        chain: vec![pki.user.cert.clone()],
    };
    let mut add = |name: &str, description: &str, bundle: Vec<u8>, expected: Expected| {
        v.push(Vector {
            name: name.into(),
            description: description.into(),
            bundle,
            executable: Some(EXE.to_vec()),
            arguments: args(),
            inputs: vec![(INPUT_NAME.into(), INPUT.to_vec())],
            expected,
            expected_voms: None,
        });
    };
    use Expected::{Deny, Permit};

    // ---- Permits ----
    add(
        "permit-direct-from-user-certificate",
        "job-bound proxy issued by the user certificate",
        Build::new(user_issuer()).bundle()?,
        Permit,
    );
    let p1 = proxy_of(
        &pki.user.cert,
        &pki.user.key,
        10,
        &ProxyKind::InheritAll { path_len: None },
        |_| Ok(()),
    )?;
    add(
        "permit-via-user-proxy",
        "job-bound proxy issued by an inheritAll proxy of the user",
        Build::new(Issuer {
            key: &p1.key,
            chain: vec![p1.cert.clone(), pki.user.cert.clone()],
        })
        .bundle()?,
        Permit,
    );
    let p2 = proxy_of(
        &p1.cert,
        &p1.key,
        11,
        &ProxyKind::InheritAll { path_len: Some(1) },
        |_| Ok(()),
    )?;
    add(
        "permit-via-two-proxies",
        "two inheritAll proxies, the lower with path length 1",
        Build::new(Issuer {
            key: &p2.key,
            chain: vec![p2.cert.clone(), p1.cert.clone(), pki.user.cert.clone()],
        })
        .bundle()?,
        Permit,
    );
    {
        let mut b = Build::new(user_issuer());
        let ca_cert = pki.ca.cert.clone();
        b.edit_certs = Box::new(move |c| c.push(ca_cert));
        add(
            "permit-anchor-in-bundle",
            "the trust anchor itself appended to the bundle is ignored",
            b.bundle()?,
            Permit,
        );
    }
    {
        let mut m = manifest();
        m.environment = Some(
            [("ATHENA_CORES".to_string(), "8".to_string())]
                .into_iter()
                .collect(),
        );
        m.sites = Some(vec!["NIKHEF-ELPROD".into(), "CERN-PROD".into()]);
        let mut b = Build::new(user_issuer());
        b.payload = m.to_cbor();
        add(
            "permit-with-environment-and-sites",
            "optional manifest fields present",
            b.bundle()?,
            Permit,
        );
    }
    {
        let mut m = manifest();
        m.not_before = T.plus(200).0;
        let mut b = Build::new(user_issuer());
        b.payload = m.to_cbor();
        b.leaf_validity = (T.minus(300), UnixTime(m.not_after));
        add(
            "permit-manifest-not-before-within-skew",
            "the manifest starts 200 s in the future, within the 300 s skew",
            b.bundle()?,
            Permit,
        );
    }
    // Intermediate CA.
    let (ik, _, ispki) = throwaway::ed25519_from_seed(&seed(6))?;
    let inter_name = throwaway::name_der("CN=jobseal Test Sub CA,O=jobseal test vectors")?;
    let inter = CertTemplate {
        serial: 6,
        issuer: subject_of(&pki.ca.cert),
        subject: inter_name.clone(),
        spki: ispki.clone(),
        not_before: start,
        not_after: end,
        extensions: throwaway::ca_extensions()?,
    }
    .sign(&pki.ca.key)?;
    let inter_party = Party {
        key: ik,
        pkcs8: zeroize_empty(),
        cert: inter,
    };
    let sub_user = throwaway::user(
        &inter_party,
        &seed(7),
        "CN=Bob Builder,O=jobseal test vectors",
        7,
        T.minus(DAY),
        T.plus(DAY * 30),
    )?;
    add(
        "permit-intermediate-ca",
        "user certificate issued by an intermediate CA carried in the bundle",
        Build::new(Issuer {
            key: &sub_user.key,
            chain: vec![sub_user.cert.clone(), inter_party.cert.clone()],
        })
        .bundle()?,
        Permit,
    );

    // ---- Step 1: parse ----
    {
        let mut b = Build::new(user_issuer()).bundle()?;
        b.extend_from_slice(encode_block("FOO", b"bar").as_bytes());
        add(
            "deny-bundle-unexpected-block",
            "a PEM block of an unknown type",
            b,
            Deny(Reason::BundleMalformed),
        );
    }
    {
        let mut b = Build::new(user_issuer()).bundle()?;
        b.extend_from_slice(encode_block("PRIVATE KEY", &pki.user.pkcs8).as_bytes());
        add(
            "deny-bundle-private-key",
            "the bundle carries a private key",
            b,
            Deny(Reason::BundlePrivateKey),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.extra_manifests = 1;
        add(
            "deny-bundle-two-manifests",
            "two JOBSEAL MANIFEST blocks",
            b.bundle()?,
            Deny(Reason::BundleManifestCount),
        );
    }
    {
        let full = Build::new(user_issuer()).bundle()?;
        let text = String::from_utf8_lossy(&full).into_owned();
        let cut = text
            .find("-----BEGIN JOBSEAL MANIFEST")
            .unwrap_or(text.len());
        add(
            "deny-bundle-no-manifest",
            "no JOBSEAL MANIFEST block",
            text.get(..cut).unwrap_or_default().as_bytes().to_vec(),
            Deny(Reason::BundleManifestCount),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        let u = pki.user.cert.clone();
        b.edit_certs = Box::new(move |c| c.extend(std::iter::repeat_n(u, 12)));
        add(
            "deny-limits-chain-too-long",
            "thirteen certificates, more than the limit of twelve",
            b.bundle()?,
            Deny(Reason::LimitExceeded),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_certs = Box::new(|c| {
            if let Some(u) = c.get_mut(1) {
                u.truncate(u.len() - 10);
            }
        });
        add(
            "deny-cert-truncated",
            "the user certificate is truncated",
            b.bundle()?,
            Deny(Reason::CertMalformed),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_envelope = Box::new(|e| {
            e.remove(0); // drop the COSE_Sign1 tag
        });
        add(
            "deny-manifest-untagged-cose",
            "the COSE_Sign1 lacks its tag",
            b.bundle()?,
            Deny(Reason::ManifestBadEnvelope),
        );
    }

    // ---- Step 2: path ----
    let rogue = throwaway::ca(&seed(3), "CN=Rogue CA,O=nowhere", start, end)?;
    let rogue_user = throwaway::user(&rogue, &seed(2), USER, 2, T.minus(DAY), T.plus(30 * DAY))?;
    add(
        "deny-chain-unknown-ca",
        "the user certificate is issued by a CA not in the CA directory",
        Build::new(Issuer {
            key: &rogue_user.key,
            chain: vec![rogue_user.cert.clone()],
        })
        .bundle()?,
        Deny(Reason::ChainUntrusted),
    );
    let twin = throwaway::ca(&seed(4), CA, start, end)?;
    let twin_user = throwaway::user(&twin, &seed(2), USER, 2, T.minus(DAY), T.plus(30 * DAY))?;
    add(
        "deny-chain-same-name-impostor-ca",
        "issued by a CA with the trusted CA's name but another key: the signature does not verify",
        Build::new(Issuer {
            key: &twin_user.key,
            chain: vec![twin_user.cert.clone()],
        })
        .bundle()?,
        Deny(Reason::ChainBadSignature),
    );
    {
        let other = throwaway::user(
            &pki.ca,
            &seed(8),
            "CN=Carol Other,O=jobseal test vectors",
            8,
            T.minus(DAY),
            T.plus(30 * DAY),
        )?;
        let mut b = Build::new(user_issuer());
        b.edit_certs = Box::new(move |c| {
            if let Some(u) = c.get_mut(1) {
                *u = other.cert;
            }
        });
        add(
            "deny-chain-wrong-issuer-certificate",
            "the bundle carries another user's certificate as the issuer",
            b.bundle()?,
            Deny(Reason::ChainBroken),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_certs = Box::new(|c| {
            if let Some(last) = c.get_mut(1).and_then(|u| u.last_mut()) {
                *last ^= 0x01;
            }
        });
        add(
            "deny-chain-bad-signature",
            "one bit of the user certificate's signature flipped",
            b.bundle()?,
            Deny(Reason::ChainBadSignature),
        );
    }
    {
        let t = CertTemplate {
            serial: 2,
            issuer: subject_of(&pki.ca.cert),
            subject: throwaway::name_der(USER)?,
            spki: throwaway::ed25519_from_seed(&seed(2))?.2,
            not_before: T.minus(DAY),
            not_after: T.plus(30 * DAY),
            extensions: throwaway::user_extensions()?,
        };
        let weak = t.sign_claiming(
            &pki.ca.key,
            spki::AlgorithmIdentifierOwned {
                oid: oid::SHA1_WITH_RSA,
                parameters: Some(der::asn1::Any::null()),
            },
        )?;
        add(
            "deny-chain-sha1-signature",
            "the user certificate claims sha1WithRSAEncryption",
            Build::new(Issuer {
                key: &pki.user.key,
                chain: vec![weak],
            })
            .bundle()?,
            Deny(Reason::ChainWeakAlgorithm),
        );
    }
    {
        let u = user_variant(&pki.ca, USER, |t| {
            t.extensions.push(extension(
                ObjectIdentifier::new_unwrap("1.2.3.4.5"),
                true,
                &[0x05, 0x00],
            )?);
            Ok(())
        })?;
        add(
            "deny-chain-unknown-critical-extension",
            "the user certificate carries an unknown critical extension",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ChainUnhandledCritical),
        );
    }
    {
        // A "CA" with cA but without keyCertSign issues the user certificate.
        let (nk, _, nspki) = throwaway::ed25519_from_seed(&seed(9))?;
        let mut ext = throwaway::ca_extensions()?;
        replace_ext_vec(&mut ext, oid::KEY_USAGE, true, &KU_DIGITAL_SIGNATURE)?;
        let nca = CertTemplate {
            serial: 9,
            issuer: subject_of(&pki.ca.cert),
            subject: throwaway::name_der("CN=No Signing CA,O=jobseal test vectors")?,
            spki: nspki,
            not_before: start,
            not_after: end,
            extensions: ext,
        }
        .sign(&pki.ca.key)?;
        let nparty = Party {
            key: nk,
            pkcs8: zeroize_empty(),
            cert: nca,
        };
        let u = throwaway::user(&nparty, &seed(2), USER, 2, T.minus(DAY), T.plus(30 * DAY))?;
        add(
            "deny-chain-issuer-not-allowed-to-sign",
            "an intermediate CA without keyCertSign issues the user certificate",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone(), nparty.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ChainNotCa),
        );
    }
    {
        let (ik2, _, ispki2) = throwaway::ed25519_from_seed(&seed(12))?;
        let sub = CertTemplate {
            serial: 12,
            issuer: subject_of(&ca0.cert),
            subject: throwaway::name_der("CN=Sub CA under pathlen 0,O=jobseal test vectors")?,
            spki: ispki2,
            not_before: start,
            not_after: end,
            extensions: throwaway::ca_extensions()?,
        }
        .sign(&ca0.key)?;
        let subp = Party {
            key: ik2,
            pkcs8: zeroize_empty(),
            cert: sub,
        };
        let u = throwaway::user(&subp, &seed(2), USER, 2, T.minus(DAY), T.plus(30 * DAY))?;
        add(
            "deny-chain-ca-path-length",
            "an intermediate CA below a root with pathLen 0",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone(), subp.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ChainPathLength),
        );
    }
    {
        let u = user_variant(&pki.ca, USER, |t| {
            t.not_before = T.minus(365 * DAY);
            t.not_after = T.minus(60);
            Ok(())
        })?;
        add(
            "deny-time-user-certificate-expired",
            "the user certificate expired a minute before",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::TimeExpired),
        );
        let u = user_variant(&pki.ca, USER, |t| {
            t.not_before = T.plus(3600);
            Ok(())
        })?;
        add(
            "deny-time-user-certificate-not-yet-valid",
            "the user certificate starts in an hour (beyond the skew)",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::TimeNotYetValid),
        );
    }
    {
        // Legacy Globus proxy: subject + CN=proxy, no ProxyCertInfo.
        let (lk, _, lspki) = throwaway::ed25519_from_seed(&seed(13))?;
        let legacy = CertTemplate {
            serial: 13,
            issuer: subject_of(&pki.user.cert),
            subject: name::append_cn(&subject_of(&pki.user.cert), "proxy").unwrap_or_default(),
            spki: lspki,
            not_before: T.minus(DAY),
            not_after: T.plus(DAY * 7),
            extensions: vec![extension(
                oid::KEY_USAGE,
                true,
                &jobseal_issue::proxy::KU_SIGNATURE_AND_ENCIPHERMENT,
            )?],
        }
        .sign(&pki.user.key)?;
        add(
            "deny-proxy-legacy-globus",
            "the job-bound proxy is issued by a legacy CN=proxy proxy",
            Build::new(Issuer {
                key: &lk,
                chain: vec![legacy, pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyLegacy),
        );
    }
    {
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            14,
            &ProxyKind::InheritAll { path_len: None },
            |t| {
                t.subject = name::append_cn(
                    &throwaway::name_der("CN=Mallory,O=jobseal test vectors")?,
                    "514",
                )
                .unwrap_or_default();
                Ok(())
            },
        )?;
        add(
            "deny-proxy-subject-not-issuer-plus-cn",
            "an intermediate proxy's subject does not extend its issuer's",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyBadSubject),
        );
    }
    {
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            15,
            &ProxyKind::InheritAll { path_len: None },
            |t| {
                replace_ext(
                    t,
                    oid::PROXY_CERT_INFO,
                    false,
                    &pci(None, oid::PPL_INHERIT_ALL)?,
                )
            },
        )?;
        add(
            "deny-proxy-cert-info-not-critical",
            "an intermediate proxy's ProxyCertInfo is not critical",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyMalformed),
        );
    }
    {
        // keyUsage digitalSignature|keyCertSign on a proxy.
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            21,
            &ProxyKind::InheritAll { path_len: None },
            |t| replace_ext(t, oid::KEY_USAGE, true, &[0x03, 0x02, 0x02, 0x84]),
        )?;
        add(
            "deny-proxy-asserts-key-cert-sign",
            "an intermediate proxy asserts keyCertSign",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyMalformed),
        );
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            22,
            &ProxyKind::InheritAll { path_len: None },
            |t| {
                let with_policy = ProxyCertInfo {
                    path_len_constraint: None,
                    proxy_policy: ProxyPolicy {
                        policy_language: oid::PPL_INHERIT_ALL,
                        policy: Some(
                            der::asn1::OctetString::new(b"anything".to_vec())
                                .map_err(|e| IssueError::Internal(e.to_string()))?,
                        ),
                    },
                };
                replace_ext(
                    t,
                    oid::PROXY_CERT_INFO,
                    true,
                    &with_policy
                        .to_der()
                        .map_err(|e| IssueError::Internal(e.to_string()))?,
                )
            },
        )?;
        add(
            "deny-proxy-inherit-all-with-policy",
            "an inheritAll proxy carries a policy",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyMalformed),
        );
        let u = user_variant(&pki.ca, USER, |t| {
            let ku = t
                .extensions
                .first()
                .cloned()
                .ok_or_else(|| IssueError::Internal("no keyUsage".into()))?;
            t.extensions.push(ku);
            Ok(())
        })?;
        add(
            "deny-cert-repeated-extension",
            "the user certificate carries keyUsage twice",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::CertMalformed),
        );
        let u = user_variant(&pki.ca, USER, |t| {
            t.subject = vec![0x30, 0x00];
            Ok(())
        })?;
        add(
            "deny-cert-user-empty-subject",
            "the user certificate names no one (empty subject)",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::CertMalformed),
        );
        // The user certificate issues an ordinary (non-proxy) certificate,
        // which then issues the job-bound proxy: the user acted as a CA.
        let (sk, _, sspki) = throwaway::ed25519_from_seed(&seed(23))?;
        let sub = CertTemplate {
            serial: 23,
            issuer: subject_of(&pki.user.cert),
            subject: throwaway::name_der("CN=Not A Proxy,O=jobseal test vectors")?,
            spki: sspki,
            not_before: T.minus(DAY),
            not_after: T.plus(7 * DAY),
            extensions: throwaway::user_extensions()?,
        }
        .sign(&pki.user.key)?;
        add(
            "deny-chain-user-certificate-acts-as-ca",
            "the user certificate issued a certificate that is not a proxy",
            Build::new(Issuer {
                key: &sk,
                chain: vec![sub, pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ChainNotCa),
        );
    }
    {
        let u = user_variant(&pki.ca, USER, |t| {
            // keyUsage keyEncipherment only (bit 2).
            replace_ext(t, oid::KEY_USAGE, true, &[0x03, 0x02, 0x05, 0x20])
        })?;
        add(
            "deny-proxy-issuer-without-digital-signature",
            "the user certificate lacks digitalSignature but issued the proxy",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyIssuerKeyUsage),
        );
    }
    {
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            16,
            &ProxyKind::InheritAll { path_len: Some(0) },
            |_| Ok(()),
        )?;
        add(
            "deny-proxy-path-length",
            "the job-bound proxy is issued by a proxy with path length 0",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyPathLength),
        );
    }
    for (seed_byte, lang, what) in [
        (17u8, oid::PPL_LIMITED, "limited"),
        (18, oid::PPL_INDEPENDENT, "independent"),
    ] {
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            seed_byte,
            &ProxyKind::InheritAll { path_len: None },
            |t| replace_ext(t, oid::PROXY_CERT_INFO, true, &pci(None, lang)?),
        )?;
        add(
            &format!("deny-proxy-under-{what}-proxy"),
            &format!("the job-bound proxy is issued by a {what} proxy"),
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::ProxyPolicyRefused),
        );
    }

    // ---- Step 2d.7, 2d.8: namespaces and revocation, on CAs of their own ----
    let status = status::generate()?;
    for (name, description, bundle, expected) in status.vectors {
        add(&name, &description, bundle, expected);
    }

    // ---- Step 3: binding ----
    {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(|t| {
            t.extensions.retain(|e| e.extn_id != oid::JOB_BINDING);
            Ok(())
        });
        add(
            "deny-binding-missing",
            "the leaf carries no JobBinding",
            b.bundle()?,
            Deny(Reason::BindingMissing),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(|t| {
            for e in &mut t.extensions {
                if e.extn_id == oid::JOB_BINDING {
                    e.critical = false;
                }
            }
            Ok(())
        });
        add(
            "deny-binding-not-critical",
            "the JobBinding is not critical",
            b.bundle()?,
            Deny(Reason::BindingNotCritical),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(|t| {
            if let Some(e) = t
                .extensions
                .iter()
                .find(|e| e.extn_id == oid::JOB_BINDING)
                .cloned()
            {
                t.extensions.push(e);
            }
            Ok(())
        });
        add(
            "deny-binding-twice",
            "the leaf carries JobBinding twice",
            b.bundle()?,
            Deny(Reason::BindingMisplaced),
        );
    }
    {
        let payload = manifest().to_cbor();
        let digest = sha256(&payload);
        let p = proxy_of(
            &pki.user.cert,
            &pki.user.key,
            19,
            &ProxyKind::InheritAll { path_len: None },
            |t| {
                let b = JobBinding::for_identity_switch(&digest)
                    .map_err(|e| IssueError::Internal(e.to_string()))?;
                t.extensions
                    .push(extension(oid::JOB_BINDING, true, &binding_der(&b)?)?);
                Ok(())
            },
        )?;
        add(
            "deny-binding-on-intermediate-proxy",
            "a JobBinding on a proxy other than the leaf",
            Build::new(Issuer {
                key: &p.key,
                chain: vec![p.cert.clone(), pki.user.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::BindingMisplaced),
        );
        let u = user_variant(&pki.ca, USER, |t| {
            let b = JobBinding::for_identity_switch(&digest)
                .map_err(|e| IssueError::Internal(e.to_string()))?;
            t.extensions
                .push(extension(oid::JOB_BINDING, true, &binding_der(&b)?)?);
            Ok(())
        })?;
        add(
            "deny-binding-on-user-certificate",
            "a critical JobBinding on the user certificate",
            Build::new(Issuer {
                key: &u.key,
                chain: vec![u.cert.clone()],
            })
            .bundle()?,
            Deny(Reason::BindingMisplaced),
        );
    }
    let binding_edit = |f: BindingEdit| {
        move |t: &mut CertTemplate| -> Result<(), IssueError> {
            let e = t
                .extensions
                .iter_mut()
                .find(|e| e.extn_id == oid::JOB_BINDING)
                .ok_or_else(|| IssueError::Internal("no binding".into()))?;
            let mut b = <JobBinding as der::Decode>::from_der(e.extn_value.as_bytes())
                .map_err(|e| IssueError::Internal(e.to_string()))?;
            f(&mut b)?;
            *e = extension(oid::JOB_BINDING, true, &binding_der(&b)?)?;
            Ok(())
        }
    };
    for (name, description, f, reason) in [
        (
            "deny-binding-version-2",
            "JobBinding version 2",
            binding_v2 as BindingEdit,
            Reason::BindingMalformed,
        ),
        (
            "deny-binding-sha1-digest",
            "the bound digest claims SHA-1",
            binding_sha1,
            Reason::BindingMalformed,
        ),
        (
            "deny-binding-no-identity-switch-use",
            "the binding permits only another use",
            binding_other_use,
            Reason::BindingUseNotPermitted,
        ),
        (
            "deny-binding-unknown-critical-sub-extension",
            "the binding carries an unknown critical extension",
            binding_critical_sub_extension,
            Reason::BindingMalformed,
        ),
    ] {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(binding_edit(f));
        add(name, description, b.bundle()?, Deny(reason));
    }
    for (name, description, path_len, lang) in [
        (
            "deny-binding-leaf-path-length-1",
            "the job-bound proxy allows one more level",
            Some(1),
            oid::PPL_JOB_BOUND,
        ),
        (
            "deny-binding-leaf-inherit-all",
            "the job-bound proxy uses inheritAll",
            Some(0),
            oid::PPL_INHERIT_ALL,
        ),
    ] {
        let mut b = Build::new(user_issuer());
        b.edit_leaf =
            Box::new(move |t| replace_ext(t, oid::PROXY_CERT_INFO, true, &pci(path_len, lang)?));
        add(
            name,
            description,
            b.bundle()?,
            Deny(Reason::BindingBadProxyProfile),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(|t| {
            replace_ext(
                t,
                oid::KEY_USAGE,
                true,
                &jobseal_issue::proxy::KU_SIGNATURE_AND_ENCIPHERMENT,
            )
        });
        add(
            "deny-binding-leaf-key-encipherment",
            "the job-bound proxy's keyUsage adds keyEncipherment",
            b.bundle()?,
            Deny(Reason::BindingBadProxyProfile),
        );
    }
    {
        let mut b = Build::new(user_issuer());
        b.edit_leaf = Box::new(|t| {
            t.spki = throwaway::ed25519_from_seed(&seed(20))?.2;
            Ok(())
        });
        add(
            "deny-binding-key-has-private-key",
            "the job-bound proxy's key is an ordinary key pair",
            b.bundle()?,
            Deny(Reason::BindingKeyNotDerived),
        );
    }
    {
        // The proxy is bound to the original manifest; another one, validly
        // signed by the same user, is spliced in.
        let mut other = manifest();
        other.arguments = vec!["--events".into(), "1000000".into()];
        let other_env = envelope(&pki.user.key, other.to_cbor())?;
        let mut b = Build::new(user_issuer());
        b.edit_envelope = Box::new(move |e| *e = other_env);
        add(
            "deny-binding-spliced-manifest",
            "a manifest of another job spliced into the bundle",
            b.bundle()?,
            Deny(Reason::BindingDigestMismatch),
        );
    }

    // ---- Step 4: manifest ----
    {
        let mut b = Build::new(user_issuer());
        b.edit_envelope = Box::new(|e| {
            if let Some(last) = e.last_mut() {
                *last ^= 0x01;
            }
        });
        add(
            "deny-manifest-bad-signature",
            "one bit of the COSE signature flipped",
            b.bundle()?,
            Deny(Reason::ManifestBadSignature),
        );
    }
    {
        // Signed by the CA's key (which did not issue the proxy).
        let mut b = Build::new(user_issuer());
        let payload = b.payload.clone();
        let env = envelope(&pki.ca.key, payload)?;
        b.edit_envelope = Box::new(move |e| *e = env);
        add(
            "deny-manifest-signed-by-another-key",
            "the manifest is signed by a key other than the proxy issuer's",
            b.bundle()?,
            Deny(Reason::ManifestBadSignature),
        );
    }
    let canonical = manifest().to_cbor();
    for (name, description, payload, reason) in [
        (
            "deny-manifest-non-canonical-integer",
            "the version is encoded in two bytes",
            {
                let mut p = vec![canonical.first().copied().unwrap_or(0), 0x01, 0x18, 0x01];
                p.extend_from_slice(canonical.get(3..).unwrap_or_default());
                p
            },
            Reason::ManifestMalformed,
        ),
        (
            "deny-manifest-version-2",
            "manifest version 2",
            {
                let mut p = canonical.clone();
                if let Some(b) = p.get_mut(2) {
                    *b = 0x02;
                }
                p
            },
            Reason::ManifestUnsupportedVersion,
        ),
        (
            "deny-manifest-unknown-field",
            "an extra field 14",
            {
                let mut p = canonical.clone();
                if let Some(b) = p.first_mut() {
                    *b += 1;
                }
                p.extend_from_slice(&[0x0e, 0x00]);
                p
            },
            Reason::ManifestUnknownField,
        ),
    ] {
        let mut b = Build::new(user_issuer());
        b.payload = payload;
        add(name, description, b.bundle()?, Deny(reason));
    }
    {
        let mut m = manifest();
        m.not_before = T.minus(2 * DAY).0;
        m.not_after = T.minus(60).0;
        let mut b = Build::new(user_issuer());
        b.payload = m.to_cbor();
        b.leaf_validity = (T.minus(2 * DAY), T.plus(DAY));
        add(
            "deny-manifest-expired",
            "the manifest expired a minute before (the proxy has not)",
            b.bundle()?,
            Deny(Reason::ManifestExpired),
        );
        let mut m = manifest();
        m.not_before = T.plus(3600).0;
        let mut b = Build::new(user_issuer());
        b.payload = m.to_cbor();
        b.leaf_validity = (T.minus(300), T.plus(DAY));
        add(
            "deny-manifest-not-yet-valid",
            "the manifest starts in an hour (beyond the skew)",
            b.bundle()?,
            Deny(Reason::ManifestNotYetValid),
        );
    }

    // ---- Step 5: payload ----
    let good = Build::new(user_issuer()).bundle()?;
    let mut payload_vector =
        |name: &str, description: &str, edit: &dyn Fn(&mut Vector), reason: Reason| {
            let mut vec = Vector {
                name: name.into(),
                description: description.into(),
                bundle: good.clone(),
                executable: Some(EXE.to_vec()),
                arguments: args(),
                inputs: vec![(INPUT_NAME.into(), INPUT.to_vec())],
                expected: Deny(reason),
                expected_voms: None,
            };
            edit(&mut vec);
            v.push(vec);
        };
    payload_vector(
        "deny-payload-executable-missing",
        "the executable does not exist",
        &|v| v.executable = None,
        Reason::PayloadExecutableUnreadable,
    );
    payload_vector(
        "deny-payload-executable-changed",
        "one byte of the executable changed",
        &|v| v.executable = Some(b"#!/bin/sh\necho \"analysing $2 eventz\"\n".to_vec()),
        Reason::PayloadExecutableMismatch,
    );
    payload_vector(
        "deny-payload-arguments-changed",
        "an argument changed",
        &|v| v.arguments = vec!["--events".into(), "1000000".into()],
        Reason::PayloadArgumentsMismatch,
    );
    payload_vector(
        "deny-payload-argument-added",
        "an argument added",
        &|v| v.arguments.push("--debug".into()),
        Reason::PayloadArgumentsMismatch,
    );
    payload_vector(
        "deny-payload-input-missing",
        "the input file is missing",
        &|v| v.inputs.clear(),
        Reason::PayloadInputMissing,
    );
    payload_vector(
        "deny-payload-input-changed",
        "the input file changed (same size)",
        &|v| v.inputs = vec![(INPUT_NAME.into(), b"run 1999-01\n".to_vec())],
        Reason::PayloadInputMismatch,
    );

    // ---- Step 2, VOMS (§6.3a): permits, with trusted or untrusted ACs ----
    let voms = voms::generate(&pki, &inter_party)?;
    for (name, description, bundle, expected_voms) in voms.vectors {
        v.push(Vector {
            name,
            description,
            bundle,
            executable: Some(EXE.to_vec()),
            arguments: args(),
            inputs: vec![(INPUT_NAME.into(), INPUT.to_vec())],
            expected: Permit,
            expected_voms: Some(expected_voms),
        });
    }
    for (name, description, bundle, reason) in voms.denies {
        v.push(Vector {
            name,
            description,
            bundle,
            executable: Some(EXE.to_vec()),
            arguments: args(),
            inputs: vec![(INPUT_NAME.into(), INPUT.to_vec())],
            expected: Deny(reason),
            expected_voms: None,
        });
    }

    v.extend(spec_points::generate(&pki)?);
    let mut trusted_cas = vec![pki.ca.cert.clone(), ca0.cert.clone()];
    trusted_cas.extend(status.cas);
    Ok(Fixture {
        trusted_cas,
        ca_files: status.files,
        voms_files: voms.lsc,
        vectors: v,
        policy_vectors: policy_vectors(),
    })
}

/// Issue 16: `issuer = "end-entity"` (§13.4 6f) on jobs sealed by the user
/// certificate and under proxies; the default accepts both.
fn policy_vectors() -> Vec<PolicyVector> {
    const END_ENTITY: &str = "issuer = \"end-entity\"\n";
    const END_ENTITY_VO: &str = "issuer = \"end-entity\"\nvos = [\"testvo\"]\n";
    let pv = |name: &str, description: &str, vector: &str, policy: &str, expected| PolicyVector {
        name: name.into(),
        description: description.into(),
        vector: vector.into(),
        policy: policy.into(),
        expected,
    };
    use Expected::{Deny, Permit};
    vec![
        pv(
            "permit-policy-issuer-any-via-user-proxy",
            "the built-in policy (issuer = \"any\") admits a job sealed under a proxy of the user",
            "permit-via-user-proxy",
            "",
            Permit,
        ),
        pv(
            "permit-policy-issuer-end-entity-direct",
            "issuer = \"end-entity\": a job sealed with the user certificate is admitted",
            "permit-direct-from-user-certificate",
            END_ENTITY,
            Permit,
        ),
        pv(
            "deny-policy-issuer-end-entity-via-user-proxy",
            "issuer = \"end-entity\": a job sealed under a proxy of the user is refused",
            "permit-via-user-proxy",
            END_ENTITY,
            Deny(Reason::PolicyIssuerNotEndEntity),
        ),
        pv(
            "permit-policy-issuer-end-entity-voms-in-job-bound-proxy",
            "issuer = \"end-entity\" and vos = [\"testvo\"]: the user certificate sealed the job and the job-bound proxy carries a verified AC of testvo",
            "permit-voms-in-job-bound-proxy",
            END_ENTITY_VO,
            Permit,
        ),
        pv(
            "deny-policy-issuer-end-entity-via-voms-proxy",
            "issuer = \"end-entity\" and vos = [\"testvo\"]: a job sealed under a VOMS proxy with a verified AC of testvo is refused for its issuer alone",
            "permit-voms-verified",
            END_ENTITY_VO,
            Deny(Reason::PolicyIssuerNotEndEntity),
        ),
    ]
}

type BindingEdit = fn(&mut JobBinding) -> Result<(), IssueError>;

fn binding_v2(b: &mut JobBinding) -> Result<(), IssueError> {
    b.version = 2;
    Ok(())
}

fn binding_sha1(b: &mut JobBinding) -> Result<(), IssueError> {
    b.manifest_digest.digest_algorithm.oid = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    Ok(())
}

fn binding_other_use(b: &mut JobBinding) -> Result<(), IssueError> {
    b.permitted_uses = vec![ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.7325.3.99")];
    Ok(())
}

fn binding_critical_sub_extension(b: &mut JobBinding) -> Result<(), IssueError> {
    b.extensions = Some(vec![extension(
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.7325.9.9"),
        true,
        &[0x05, 0x00],
    )?]);
    Ok(())
}

fn zeroize_empty() -> zeroize_free::Secret {
    zeroize_free::Secret::default()
}

/// `Party::pkcs8` of CAs is never used by vectors.
mod zeroize_free {
    pub type Secret = zeroize::Zeroizing<Vec<u8>>;
}

fn replace_ext_vec(
    exts: &mut Vec<x509_cert::ext::Extension>,
    id: ObjectIdentifier,
    critical: bool,
    value: &[u8],
) -> Result<(), IssueError> {
    let new = extension(id, critical, value)?;
    match exts.iter_mut().find(|e| e.extn_id == id) {
        Some(e) => *e = new,
        None => exts.push(new),
    }
    Ok(())
}

/// Write the fixture as `test-vectors/`: `ca/<hash>.0` (and the CRL and
/// policy files of some CAs), one directory per vector (`bundle.pem`,
/// `job/…`), and `vectors.json`.
pub fn write_dir(fixture: &Fixture, dir: &Path) -> std::io::Result<()> {
    let io = |e: IssueError| std::io::Error::other(e.to_string());
    for ca in &fixture.trusted_cas {
        throwaway::install_ca(&dir.join("ca"), ca).map_err(io)?;
    }
    for (name, data) in &fixture.ca_files {
        std::fs::write(dir.join("ca").join(name), data)?;
    }
    for (name, text) in &fixture.voms_files {
        let p = dir.join("vomsdir").join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)?;
    }
    let mut index = Vec::new();
    for vec in &fixture.vectors {
        let vdir = dir.join(&vec.name);
        let job = vdir.join("job");
        std::fs::create_dir_all(&job)?;
        std::fs::write(vdir.join("bundle.pem"), &vec.bundle)?;
        if let Some(exe) = &vec.executable {
            std::fs::write(job.join("run.sh"), exe)?;
        }
        for (name, data) in &vec.inputs {
            let p = job.join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(p, data)?;
        }
        index.push(json!({
            "name": vec.name,
            "description": vec.description,
            "bundle": format!("{}/bundle.pem", vec.name),
            "executable": format!("{}/job/run.sh", vec.name),
            "arguments": vec.arguments,
            "job_dir": format!("{}/job", vec.name),
            "expected": vec.expected.code(),
        }));
        if let (Some(expected), Some(serde_json::Value::Object(entry))) =
            (&vec.expected_voms, index.last_mut())
        {
            entry.insert(
                "expected_voms".into(),
                expected.iter().map(ExpectedVoms::to_json).collect(),
            );
        }
    }
    write_policy_vectors(fixture, dir)?;
    let doc = json!({
        "format": "jobseal test vectors, version 1",
        "generator": "cargo run -p jobseal-testkit --bin gen-vectors -- test-vectors",
        "verify_at": T.to_rfc3339(),
        "ca_dir": "ca",
        "voms_dir": "vomsdir",
        "vectors": index,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n";
    std::fs::write(dir.join("vectors.json"), text)
}

/// `policy-vectors.json`: the site-policy vectors (step 6), each naming the
/// vector of `vectors.json` whose bundle it checks.
fn write_policy_vectors(fixture: &Fixture, dir: &Path) -> std::io::Result<()> {
    let index: Vec<serde_json::Value> = fixture
        .policy_vectors
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "vector": p.vector,
                "policy": p.policy,
                "expected": p.expected.code(),
            })
        })
        .collect();
    let doc = json!({
        "format": "jobseal site-policy vectors, version 1",
        "generator": "cargo run -p jobseal-testkit --bin gen-vectors -- test-vectors",
        "vectors": index,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)? + "\n";
    std::fs::write(dir.join("policy-vectors.json"), text)
}

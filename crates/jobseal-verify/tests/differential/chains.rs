//! Chains and one-field mutations for the differential test against OpenSSL
//! (`tests/differential.rs`).
//!
//! A case is a valid chain (root, zero to two subordinate CAs placed in the
//! bundle, the CA directory or both, a user certificate, zero to three RFC
//! 3820 proxies, CRLs for every CA or none) with exactly one thing changed.
//! Every certificate and CRL is signed after the change, by its issuer's key
//! (or by the key the mutation names), so that a change is seen as the
//! change and not as a broken signature. Everything comes from a
//! deterministic generator: a seed and a case index give the same files.

use der::Encode;
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use jobseal_core::asn1::{ProxyCertInfo, ProxyPolicy};
use jobseal_core::time::UnixTime;
use jobseal_core::{name, oid, pem, tlv};
use jobseal_issue::proxy::{CertTemplate, extension};
use jobseal_issue::signer::SigningKey;
use jobseal_issue::throwaway;
use jobseal_testkit::crl::{CRL_NUMBER, CrlTemplate, Revoked};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;

/// The verification time of every case: 2026-01-01T00:00:00Z.
pub const AT: u64 = 1_767_225_600;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;
const YEAR: u64 = 365 * DAY;

const OID_C: Oid = Oid::new_unwrap("2.5.4.6");
const OID_O: Oid = Oid::new_unwrap("2.5.4.10");
const OID_OU: Oid = Oid::new_unwrap("2.5.4.11");
const OID_CN: Oid = Oid::new_unwrap("2.5.4.3");
const OID_UID: Oid = Oid::new_unwrap("0.9.2342.19200300.100.1.1");
const NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
const POLICY_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.36");
const CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
const UNKNOWN_EXT: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.99.1");
const UNKNOWN_LANGUAGE: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.99.2");
const EKU_SERVER_AUTH: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
];
const EKU_CLIENT_AUTH: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
];
/// certificatePolicies { anyPolicy }.
const ANY_POLICY: [u8; 10] = [0x30, 0x08, 0x30, 0x06, 0x06, 0x04, 0x55, 0x1d, 0x20, 0x00];
/// policyConstraints { requireExplicitPolicy 0 }.
const REQUIRE_EXPLICIT_POLICY: [u8; 5] = [0x30, 0x03, 0x80, 0x01, 0x00];

const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const BMP: u8 = 0x1e;

const KU_DS: u8 = 0x80;
const KU_KE: u8 = 0x20;
const KU_CERT_SIGN: u8 = 0x04;
const KU_CRL_SIGN: u8 = 0x02;

/// splitmix64: small, fixed, good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator of case `index` of run `seed`.
    pub fn for_case(seed: u64, index: u64) -> Self {
        let mut r = Self(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next();
        r
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        for chunk in s.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Root,
    Sub,
    User,
    Proxy,
}

/// A subject or authority key identifier.
#[derive(Clone, Debug)]
pub enum KeyId {
    /// SHA-1 of the right key (the subject's, or the issuer's).
    Auto,
    Absent,
    Fixed(Vec<u8>),
}

/// One certificate, before signing.
#[derive(Clone, Debug)]
pub struct Node {
    pub role: Role,
    pub key: usize,
    /// The issuing node (itself for a self-signed root).
    pub issuer: usize,
    pub serial: u64,
    /// `None`: a proxy's name, its issuer's subject plus `CN=<serial>`.
    pub subject: Option<Vec<u8>>,
    /// `None`: the issuer's subject.
    pub issuer_name: Option<Vec<u8>>,
    pub not_before: u64,
    pub not_after: u64,
    pub exts: Vec<Extension>,
    pub ski: KeyId,
    pub aki: KeyId,
    /// Sign with this key instead of the issuer's.
    pub sign_key: Option<usize>,
    /// Name this signature algorithm (in both places) whatever the key does.
    pub claim_alg: Option<Oid>,
    pub corrupt_sig: bool,
    /// Replace the outer signatureAlgorithm (not the TBS one) after signing.
    pub outer_alg: Option<Oid>,
    pub in_bundle: bool,
    pub in_dir: bool,
}

/// One CRL, before signing.
#[derive(Clone, Debug)]
pub struct Crl {
    /// The CA node it belongs to.
    pub ca: usize,
    /// `None`: the CA's subject.
    pub issuer_name: Option<Vec<u8>>,
    pub sign_key: Option<usize>,
    pub this_update: u64,
    pub next_update: Option<u64>,
    pub revoked: Vec<Revoked>,
    pub v2: bool,
    /// cRLNumber, `Some(critical)`, or none.
    pub number: Option<bool>,
    pub extra: Vec<Extension>,
    pub aki: KeyId,
    pub corrupt: bool,
}

pub struct Key {
    pub key: SigningKey,
    pub spki: Vec<u8>,
    pub id: Vec<u8>,
}

/// A generated case.
pub struct Case {
    pub keys: Vec<Key>,
    pub nodes: Vec<Node>,
    /// Leaf first, up to the root.
    pub chain: Vec<usize>,
    /// Certificates to install, in this order (`<hash>.0`, `.1`, …); the
    /// chain's nodes with `in_dir`, and extra copies.
    pub dir: Vec<usize>,
    /// CRLs to install, in this order (`<hash>.r0`, `.r1`, …).
    pub crls: Vec<Crl>,
    /// CRLs for every CA (`CrlPolicy::Require`, `-crl_check_all`), or none.
    pub crl_mode: bool,
    /// The mutation and its target: the class's first part.
    pub mutation: String,
    /// What the chain is, for the report.
    pub shape: String,
}

/// A case written out.
pub struct Built {
    /// DER certificates, leaf first, as in a bundle.
    pub bundle: Vec<Vec<u8>>,
    /// The CA directory: (file name, PEM).
    pub dir: Vec<(String, Vec<u8>)>,
}

// ---------------------------------------------------------------- encodings

fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = tlv::header(tag, body.len());
    out.extend_from_slice(body);
    out
}

fn ext(id: Oid, critical: bool, der: &[u8]) -> Extension {
    extension(id, critical, der).expect("extension")
}

fn atv(id: Oid, tag: u8, value: &[u8]) -> Vec<u8> {
    let mut body = id.to_der().expect("oid");
    body.extend_from_slice(&wrap(tag, value));
    wrap(0x30, &body)
}

/// A name from RDNs, each a list of (type, string tag, value).
pub fn name_of(rdns: &[Vec<(Oid, u8, Vec<u8>)>]) -> Vec<u8> {
    let mut body = Vec::new();
    for rdn in rdns {
        let mut atvs: Vec<Vec<u8>> = rdn.iter().map(|(o, t, v)| atv(*o, *t, v)).collect();
        atvs.sort(); // DER SET OF
        body.extend_from_slice(&wrap(0x31, &atvs.concat()));
    }
    wrap(0x30, &body)
}

fn std_name(extra: &[(Oid, &str)], cn: &str, cn_tag: u8) -> Vec<u8> {
    let mut rdns = vec![
        vec![(OID_C, PRINTABLE, b"NL".to_vec())],
        vec![(OID_O, UTF8, b"Diff Grid".to_vec())],
    ];
    for (o, v) in extra {
        rdns.push(vec![(*o, UTF8, v.as_bytes().to_vec())]);
    }
    rdns.push(vec![(OID_CN, cn_tag, encode_str(cn, cn_tag))]);
    name_of(&rdns)
}

fn encode_str(s: &str, tag: u8) -> Vec<u8> {
    if tag == BMP {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// The RDNs of a name, as (type, tag, value) triples.
fn rdns_of(name_der: &[u8]) -> Vec<Vec<(Oid, u8, Vec<u8>)>> {
    let mut out = Vec::new();
    let outer = tlv::read_all(name_der).expect("name");
    for set in tlv::children(outer.value).expect("rdns") {
        let mut rdn = Vec::new();
        for a in tlv::children(set.value).expect("atvs") {
            let [t, v] = tlv::exactly::<2>(a.value).expect("atv");
            let id = Oid::from_bytes(t.value).expect("oid");
            rdn.push((id, v.tag, v.value.to_vec()));
        }
        out.push(rdn);
    }
    out
}

fn key_usage(bits: u8) -> Vec<u8> {
    if bits == 0 {
        return vec![0x03, 0x01, 0x00];
    }
    vec![0x03, 0x02, bits.trailing_zeros() as u8, bits]
}

fn basic_constraints(ca: bool, path_len: Option<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    if ca {
        body.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    if let Some(n) = path_len {
        body.extend_from_slice(&[0x02, 0x01, n]);
    }
    wrap(0x30, &body)
}

fn pci(path_len: Option<u32>, lang: Oid, policy: Option<&[u8]>) -> Vec<u8> {
    ProxyCertInfo {
        path_len_constraint: path_len,
        proxy_policy: ProxyPolicy {
            policy_language: lang,
            policy: policy.map(|p| OctetString::new(p).expect("policy")),
        },
    }
    .to_der()
    .expect("pci")
}

fn aki_der(id: &[u8]) -> Vec<u8> {
    wrap(0x30, &wrap(0x80, id))
}

/// nameConstraints with one permitted directoryName subtree.
fn name_constraints(base: &[u8]) -> Vec<u8> {
    let subtree = wrap(0x30, &wrap(0xa4, base));
    wrap(0x30, &wrap(0xa0, &subtree))
}

fn key_id(key: &SigningKey) -> Vec<u8> {
    ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        key.public_key_bits(),
    )
    .as_ref()
    .to_vec()
}

// ---------------------------------------------------------------- the base chain

fn ca_exts(path_len: Option<u8>) -> Vec<Extension> {
    vec![
        ext(
            oid::BASIC_CONSTRAINTS,
            true,
            &basic_constraints(true, path_len),
        ),
        ext(oid::KEY_USAGE, true, &key_usage(KU_CERT_SIGN | KU_CRL_SIGN)),
    ]
}

fn fresh_key(rng: &mut Rng) -> Key {
    let (key, _, spki) = throwaway::ed25519_from_seed(&rng.seed32()).expect("key");
    let id = key_id(&key);
    Key { key, spki, id }
}

/// A P-256 key from the generator (ring's fixed-bytes random, so the key
/// is deterministic; its ECDSA signatures are not, their validity is).
#[allow(deprecated)]
fn p256_key(rng: &mut Rng) -> Key {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let seed = rng.seed32();
    let fixed = ring::test::rand::FixedSliceRandom { bytes: &seed };
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &fixed).expect("P-256 key");
    let key = SigningKey::from_pkcs8(pkcs8.as_ref()).expect("P-256 key");
    let mut alg = oid::EC_PUBLIC_KEY.to_der().expect("oid");
    alg.extend_from_slice(&oid::SECP256R1.to_der().expect("oid"));
    let mut bits = vec![0u8];
    bits.extend_from_slice(key.public_key_bits());
    let spki = wrap(0x30, &[wrap(0x30, &alg), wrap(0x03, &bits)].concat());
    let id = key_id(&key);
    Key { key, spki, id }
}

impl Case {
    fn add_key(&mut self, rng: &mut Rng) -> usize {
        self.keys.push(fresh_key(rng));
        self.keys.len() - 1
    }

    /// The subject of a node, proxies' names resolved.
    pub fn subject(&self, i: usize) -> Vec<u8> {
        let n = &self.nodes[i];
        match &n.subject {
            Some(s) => s.clone(),
            None => {
                name::append_cn(&self.subject(n.issuer), &n.serial.to_string()).expect("proxy name")
            }
        }
    }

    fn issuer_name(&self, i: usize) -> Vec<u8> {
        let n = &self.nodes[i];
        match &n.issuer_name {
            Some(s) => s.clone(),
            None => self.subject(n.issuer),
        }
    }

    /// The chain's CAs, root first.
    fn cas(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .chain
            .iter()
            .copied()
            .filter(|&i| matches!(self.nodes[i].role, Role::Root | Role::Sub))
            .collect();
        v.reverse();
        v
    }

    pub fn root(&self) -> usize {
        *self.chain.last().expect("root")
    }

    fn leaf(&self) -> usize {
        self.chain[0]
    }

    /// The label of a node in a class: its role, and for a subordinate CA
    /// where it is (bundle, dir, both).
    pub fn label(&self, i: usize) -> String {
        let n = &self.nodes[i];
        match n.role {
            Role::Root => "root".into(),
            Role::Sub => match (n.in_bundle, n.in_dir) {
                (true, true) => "sub(both)".into(),
                (false, true) => "sub(dir)".into(),
                _ => "sub(bundle)".into(),
            },
            Role::User => "user".into(),
            Role::Proxy if i == self.leaf() => "proxy-leaf".into(),
            Role::Proxy => "proxy-mid".into(),
        }
    }

    fn ext_mut(&mut self, i: usize, id: Oid) -> Option<&mut Extension> {
        self.nodes[i].exts.iter_mut().find(|e| e.extn_id == id)
    }

    fn remove_ext(&mut self, i: usize, id: Oid) -> bool {
        let before = self.nodes[i].exts.len();
        self.nodes[i].exts.retain(|e| e.extn_id != id);
        before != self.nodes[i].exts.len()
    }

    fn set_ext(&mut self, i: usize, e: Extension) {
        self.remove_ext(i, e.extn_id);
        self.nodes[i].exts.push(e);
    }

    fn crl_of(&mut self, ca: usize) -> Option<&mut Crl> {
        self.crls.iter_mut().find(|c| c.ca == ca)
    }
}

/// A valid chain.
pub fn base(rng: &mut Rng) -> Case {
    let mut case = Case {
        keys: Vec::new(),
        nodes: Vec::new(),
        chain: Vec::new(),
        dir: Vec::new(),
        crls: Vec::new(),
        crl_mode: rng.chance(50),
        mutation: String::new(),
        shape: String::new(),
    };
    let n_subs = *rng.pick(&[0usize, 1, 1, 2]);
    let n_proxies = *rng.pick(&[0usize, 1, 1, 1, 2, 2, 3]);
    let mut serial = || rng.range(2, 1 << 40);
    let serials: Vec<u64> = (0..8).map(|_| serial()).collect();

    // Root.
    let k = case.add_key(rng);
    let root_pl = if rng.chance(30) {
        Some((n_subs as u8) + rng.below(2) as u8)
    } else {
        None
    };
    case.nodes.push(Node {
        role: Role::Root,
        key: k,
        issuer: 0,
        serial: serials[0],
        subject: Some(std_name(&[], "Diff Root CA", UTF8)),
        issuer_name: None,
        not_before: AT - rng.range(YEAR, 5 * YEAR),
        not_after: AT + rng.range(YEAR, 10 * YEAR),
        exts: ca_exts(root_pl),
        ski: KeyId::Auto,
        aki: if rng.chance(30) {
            KeyId::Auto
        } else {
            KeyId::Absent
        },
        sign_key: None,
        claim_alg: None,
        corrupt_sig: false,
        outer_alg: None,
        in_bundle: false,
        in_dir: true,
    });
    // Subordinate CAs.
    let mut parent = 0;
    for s in 0..n_subs {
        let k = case.add_key(rng);
        let below = (n_subs - s - 1) as u8;
        let pl = if rng.chance(30) {
            Some(below + rng.below(2) as u8)
        } else {
            None
        };
        case.nodes.push(Node {
            role: Role::Sub,
            key: k,
            issuer: parent,
            serial: serials[1 + s],
            subject: Some(std_name(&[], &format!("Diff Sub CA {}", s + 1), UTF8)),
            issuer_name: None,
            not_before: AT - rng.range(DAY, 2 * YEAR),
            not_after: AT + rng.range(YEAR, 5 * YEAR),
            exts: ca_exts(pl),
            ski: KeyId::Auto,
            aki: KeyId::Auto,
            sign_key: None,
            claim_alg: None,
            corrupt_sig: false,
            outer_alg: None,
            in_bundle: true,
            in_dir: false,
        });
        parent = case.nodes.len() - 1;
    }
    // User.
    let k = case.add_key(rng);
    let mut user_exts = vec![ext(
        oid::KEY_USAGE,
        true,
        &key_usage(if rng.chance(70) { KU_DS | KU_KE } else { KU_DS }),
    )];
    if rng.chance(30) {
        user_exts.push(ext(oid::EXTENDED_KEY_USAGE, false, &EKU_CLIENT_AUTH));
    }
    if rng.chance(20) {
        user_exts.push(ext(
            oid::BASIC_CONSTRAINTS,
            true,
            &basic_constraints(false, None),
        ));
    }
    let user_serial = serials[4];
    case.nodes.push(Node {
        role: Role::User,
        key: k,
        issuer: parent,
        serial: user_serial,
        subject: Some(std_name(
            &[(OID_OU, "Users")],
            &format!("User {}", user_serial % 1000),
            UTF8,
        )),
        issuer_name: None,
        not_before: AT - rng.range(HOUR, YEAR),
        not_after: AT + rng.range(HOUR, YEAR),
        exts: user_exts,
        ski: if rng.chance(30) {
            KeyId::Auto
        } else {
            KeyId::Absent
        },
        aki: KeyId::Auto,
        sign_key: None,
        claim_alg: None,
        corrupt_sig: false,
        outer_alg: None,
        in_bundle: true,
        in_dir: false,
    });
    parent = case.nodes.len() - 1;
    // Proxies.
    let mut kinds = Vec::new();
    for p in 0..n_proxies {
        let k = case.add_key(rng);
        let below = (n_proxies - p - 1) as u32;
        let is_leaf = below == 0;
        let lang = if is_leaf {
            *rng.pick(&[
                oid::PPL_INHERIT_ALL,
                oid::PPL_INHERIT_ALL,
                oid::PPL_LIMITED,
                oid::PPL_INDEPENDENT,
            ])
        } else {
            oid::PPL_INHERIT_ALL
        };
        // Tight (exactly the proxies below) or absent: OpenSSL 3.0 carries
        // a lower proxy's constraint, not the count, up the chain (see the
        // `pci-pathlen-slack` mutation), so slack is a mutation of its own.
        let pl = if rng.chance(40) { Some(below) } else { None };
        kinds.push(format!(
            "{}{}",
            if lang == oid::PPL_LIMITED {
                "limited"
            } else if lang == oid::PPL_INDEPENDENT {
                "independent"
            } else {
                "inheritAll"
            },
            pl.map(|n| format!("/pathlen={n}")).unwrap_or_default()
        ));
        let ku = if rng.chance(60) { KU_DS | KU_KE } else { KU_DS };
        case.nodes.push(Node {
            role: Role::Proxy,
            key: k,
            issuer: parent,
            serial: rng.range(1, 1 << 31),
            subject: None,
            issuer_name: None,
            not_before: AT - rng.range(HOUR, DAY),
            not_after: AT + rng.range(HOUR, DAY),
            exts: vec![
                ext(oid::KEY_USAGE, true, &key_usage(ku)),
                ext(oid::PROXY_CERT_INFO, true, &pci(pl, lang, None)),
            ],
            ski: KeyId::Absent,
            aki: if rng.chance(20) {
                KeyId::Auto
            } else {
                KeyId::Absent
            },
            sign_key: None,
            claim_alg: None,
            corrupt_sig: false,
            outer_alg: None,
            in_bundle: true,
            in_dir: false,
        });
        parent = case.nodes.len() - 1;
    }
    case.chain = (0..case.nodes.len()).rev().collect();
    // Where the subordinate CAs are: the bundle holds the chain up to some
    // CA, the directory the CAs from some CA up (overlap: both).
    if n_subs > 0 {
        let (first_sub, top_sub) = (1, n_subs);
        // How many of the top subs are in the directory (dir_count), and how
        // many of those are also in the bundle.
        let dir_count = if rng.chance(50) {
            0
        } else {
            rng.range(1, n_subs as u64) as usize
        };
        let both = if dir_count > 0 && rng.chance(50) {
            rng.range(1, dir_count as u64) as usize
        } else {
            0
        };
        // Subs by level, top (index 1) first.
        for (level, s) in (first_sub..=top_sub).enumerate() {
            let in_dir = level < dir_count;
            // Of the subs in the directory, the lowest `both` stay in the bundle.
            let in_bundle = !in_dir || level >= dir_count - both;
            case.nodes[s].in_dir = in_dir;
            case.nodes[s].in_bundle = in_bundle;
        }
    }
    case.dir = case
        .chain
        .iter()
        .rev()
        .copied()
        .filter(|&i| case.nodes[i].in_dir)
        .collect();
    if case.crl_mode {
        for ca in case.cas() {
            let extra: Vec<Revoked> = (0..rng.below(3))
                .map(|_| Revoked {
                    serial: rng.range(1 << 41, 1 << 50),
                    date: UnixTime(AT - rng.range(DAY, 30 * DAY)),
                    extensions: Vec::new(),
                })
                .collect();
            case.crls.push(Crl {
                ca,
                issuer_name: None,
                sign_key: None,
                this_update: AT - rng.range(HOUR, 5 * DAY),
                next_update: Some(AT + rng.range(HOUR, 10 * DAY)),
                revoked: extra,
                v2: true,
                number: Some(false),
                extra: Vec::new(),
                aki: if rng.chance(50) {
                    KeyId::Auto
                } else {
                    KeyId::Absent
                },
                corrupt: false,
            });
        }
    }
    case.shape = format!(
        "{} sub CA(s) [{}], user, {} prox{} [{}], {}",
        n_subs,
        (1..=n_subs)
            .map(|s| case.label(s))
            .collect::<Vec<_>>()
            .join(", "),
        n_proxies,
        if n_proxies == 1 { "y" } else { "ies" },
        kinds.join(", "),
        if case.crl_mode {
            "CRLs for every CA"
        } else {
            "no CRLs"
        }
    );
    case
}

// ---------------------------------------------------------------- building

impl Case {
    fn cert_der(&self, i: usize, ders: &[Vec<u8>]) -> Vec<u8> {
        let _ = ders;
        let n = &self.nodes[i];
        let issuer = &self.nodes[n.issuer];
        let mut exts = n.exts.clone();
        let ski = match &n.ski {
            KeyId::Auto => Some(self.keys[n.key].id.clone()),
            KeyId::Absent => None,
            KeyId::Fixed(v) => Some(v.clone()),
        };
        if let Some(id) = ski {
            exts.push(ext(oid::SUBJECT_KEY_ID, false, &wrap(0x04, &id)));
        }
        let aki = match &n.aki {
            KeyId::Auto => Some(self.keys[issuer.key].id.clone()),
            KeyId::Absent => None,
            KeyId::Fixed(v) => Some(v.clone()),
        };
        if let Some(id) = aki {
            exts.push(ext(oid::AUTHORITY_KEY_ID, false, &aki_der(&id)));
        }
        let t = CertTemplate {
            serial: n.serial,
            issuer: self.issuer_name(i),
            subject: self.subject(i),
            spki: self.keys[n.key].spki.clone(),
            not_before: UnixTime(n.not_before),
            not_after: UnixTime(n.not_after),
            extensions: exts,
        };
        let key = &self.keys[n.sign_key.unwrap_or(issuer.key)].key;
        let mut der = match n.claim_alg {
            Some(alg) => t.sign_claiming(
                key,
                AlgorithmIdentifierOwned {
                    oid: alg,
                    parameters: None,
                },
            ),
            None => t.sign(key),
        }
        .expect("sign certificate");
        if n.corrupt_sig
            && let Some(last) = der.last_mut()
        {
            *last ^= 0x01;
        }
        if let Some(alg) = n.outer_alg {
            let outer = tlv::read_all(&der).expect("certificate");
            let [tbs, _, sig] = tlv::exactly::<3>(outer.value).expect("certificate parts");
            let alg = wrap(0x30, &alg.to_der().expect("oid"));
            der = wrap(0x30, &[tbs.raw, &alg, sig.raw].concat());
        }
        der
    }

    fn crl_der(&self, c: &Crl) -> Vec<u8> {
        let ca = &self.nodes[c.ca];
        let mut extensions = Vec::new();
        if let Some(critical) = c.number {
            extensions.push(ext(CRL_NUMBER, critical, &[0x02, 0x01, 0x01]));
        }
        let aki = match &c.aki {
            KeyId::Auto => Some(self.keys[ca.key].id.clone()),
            KeyId::Absent => None,
            KeyId::Fixed(v) => Some(v.clone()),
        };
        if let Some(id) = aki {
            extensions.push(ext(oid::AUTHORITY_KEY_ID, false, &aki_der(&id)));
        }
        extensions.extend(c.extra.iter().cloned());
        let t = CrlTemplate {
            v2: c.v2,
            issuer: c.issuer_name.clone().unwrap_or_else(|| self.subject(c.ca)),
            this_update: UnixTime(c.this_update),
            next_update: c.next_update.map(UnixTime),
            revoked: c.revoked.clone(),
            extensions: if c.v2 { extensions } else { Vec::new() },
        };
        let mut der = t
            .sign(&self.keys[c.sign_key.unwrap_or(ca.key)].key)
            .expect("sign CRL");
        if c.corrupt
            && let Some(last) = der.last_mut()
        {
            *last ^= 0x01;
        }
        der
    }

    /// Sign everything and name the CA directory's files.
    pub fn build(&self) -> Built {
        let ders: Vec<Vec<u8>> = (0..self.nodes.len())
            .map(|i| self.cert_der(i, &[]))
            .collect();
        let bundle = self
            .chain
            .iter()
            .filter(|&&i| self.nodes[i].in_bundle)
            .map(|&i| ders[i].clone())
            .collect();
        let mut dir = Vec::new();
        let mut next: std::collections::BTreeMap<String, usize> = Default::default();
        for &i in &self.dir {
            let h = hash_name(&self.subject(i));
            let n = next.entry(h.clone()).or_default();
            dir.push((
                format!("{h}.{n}"),
                pem::encode_block("CERTIFICATE", &ders[i]).into_bytes(),
            ));
            *n += 1;
        }
        let mut next: std::collections::BTreeMap<String, usize> = Default::default();
        for c in &self.crls {
            let issuer = c.issuer_name.clone().unwrap_or_else(|| self.subject(c.ca));
            let h = hash_name(&issuer);
            let n = next.entry(h.clone()).or_default();
            dir.push((
                format!("{h}.r{n}"),
                pem::encode_block("X509 CRL", &self.crl_der(c)).into_bytes(),
            ));
            *n += 1;
        }
        Built { bundle, dir }
    }
}

/// The `<hash>` of a name, as `openssl x509 -hash` computes it (jobseal's
/// implementation; a name it cannot hash is filed under `00000000`).
fn hash_name(name_der: &[u8]) -> String {
    format!("{:08x}", name::openssl_hash(name_der).unwrap_or(0))
}

// ---------------------------------------------------------------- mutations

/// Every mutation, by name. Weighted equally.
pub const MUTATIONS: &[&str] = &[
    "none",
    // validity
    "expired",
    "not-after=at",
    "not-after=at+1",
    "not-yet-valid",
    "not-before=at",
    "not-before-in-skew",
    "not-before-past-skew",
    "outlives-issuer",
    "generalized-time",
    // names
    "issuer-name-other",
    "issuer-name-case",
    "issuer-name-spaces",
    "issuer-name-printable",
    "subject-cn-bmpstring",
    "subject-cn-printable",
    "subject-undecodable",
    "subject-empty",
    "subject-multivalued-rdn",
    "proxy-subject-extra-rdn",
    "proxy-subject-not-cn",
    "proxy-subject-other-base",
    "proxy-subject-multivalued",
    "proxy-subject-no-cn-added",
    // basicConstraints
    "bc-absent",
    "bc-ca-false",
    "bc-noncritical",
    "bc-pathlen-0",
    "bc-ca-true",
    "bc-pathlen-without-ca",
    // keyUsage, extKeyUsage
    "ku-absent",
    "ku-no-cert-sign",
    "ku-no-crl-sign",
    "ku-no-digital-signature",
    "ku-cert-sign-added",
    "ku-noncritical",
    "eku-server-auth",
    "eku-server-auth-critical",
    // critical flags and other extensions
    "unknown-ext-critical",
    "unknown-ext-noncritical",
    "san-dns",
    "san-critical",
    "policies-critical",
    "policies-noncritical",
    "name-constraints-permit",
    "name-constraints-exclude",
    "name-constraints-exclude-noncritical",
    "policy-constraints-noncritical",
    "aki-critical",
    "ski-critical",
    // ProxyCertInfo
    "pci-absent",
    "pci-noncritical",
    "pci-pathlen-exceeded",
    "pci-pathlen-0",
    "pci-pathlen-slack",
    "pci-limited",
    "pci-independent",
    "pci-unknown-language",
    "pci-policy-with-inherit-all",
    "pci-draft-oid",
    // AKI / SKI
    "aki-wrong",
    "aki-absent",
    "aki-added",
    "ski-wrong",
    "ski-absent",
    // serials
    "serial-zero",
    "serial-large",
    "serial-same-as-issuer",
    // signatures
    "sig-corrupt",
    "sig-wrong-key",
    "sig-alg-claims-ecdsa",
    "sig-alg-claims-rsa",
    "sig-alg-outer-differs",
    "key-p256",
    "key-swapped",
    // CRLs
    "crl-revokes",
    "crl-revokes-future-date",
    "crl-revokes-remove-from-crl",
    "crl-revokes-hold",
    "crl-expired",
    "crl-next-update=at",
    "crl-not-yet-valid",
    "crl-this-update-in-skew",
    "crl-no-next-update",
    "crl-v1",
    "crl-number-critical",
    "crl-number-absent",
    "crl-unknown-ext-critical",
    "crl-entry-unknown-ext-critical",
    "crl-corrupt",
    "crl-wrong-key",
    "crl-issuer-other",
    "crl-aki-wrong",
    "crl-absent",
    "crl-expired-beside-current",
    "crl-current-beside-expired",
    "crl-expired-revokes-beside-current",
    // directory vs bundle
    "dir:root-in-bundle-too",
    "dir:root-in-bundle-after-gap",
    "dir:root-only-in-bundle",
    "dir:root-missing",
    "dir:top-sub-into-dir",
    "dir:top-sub-only-in-dir-no-root",
    "dir:sub-revoked-by-root-in-dir",
    "dir:expired-root-copy-first",
    "dir:expired-root-copy-second",
    "dir:root-other-key-first",
    "dir:root-other-key-second",
    "dir:expired-root-other-key-first",
    "dir:unrelated-ca-same-name",
    "dir:expired-sub-copy-first",
    "dir:sub-other-key-first",
];

fn roles(case: &Case, want: &[Role]) -> Vec<usize> {
    case.chain
        .iter()
        .copied()
        .filter(|&i| want.contains(&case.nodes[i].role))
        .collect()
}

const ALL: &[Role] = &[Role::Root, Role::Sub, Role::User, Role::Proxy];
const CAS: &[Role] = &[Role::Root, Role::Sub];
const NON_ROOT: &[Role] = &[Role::Sub, Role::User, Role::Proxy];
const EE_AND_CAS: &[Role] = &[Role::Root, Role::Sub, Role::User];
const CRL_COVERED: &[Role] = &[Role::Sub, Role::User];

/// Apply mutation `m` to one target chosen by `rng`; `None` if it does not
/// apply to this chain.
pub fn mutate(case: &mut Case, m: &str, rng: &mut Rng) -> Option<String> {
    let pick = |case: &Case, rng: &mut Rng, want: &[Role]| -> Option<usize> {
        let v = roles(case, want);
        if v.is_empty() {
            None
        } else {
            Some(*rng.pick(&v))
        }
    };
    let target: Option<usize> = match m {
        "none" => return Some("none".into()),
        "expired"
        | "not-after=at"
        | "not-after=at+1"
        | "not-yet-valid"
        | "not-before=at"
        | "not-before-in-skew"
        | "not-before-past-skew"
        | "generalized-time"
        | "sig-corrupt"
        | "sig-wrong-key"
        | "sig-alg-claims-ecdsa"
        | "sig-alg-claims-rsa"
        | "sig-alg-outer-differs"
        | "key-p256"
        | "key-swapped"
        | "unknown-ext-critical"
        | "unknown-ext-noncritical"
        | "ku-absent"
        | "ku-noncritical"
        | "eku-server-auth"
        | "eku-server-auth-critical"
        | "policies-critical"
        | "policies-noncritical"
        | "serial-zero"
        | "serial-large"
        | "bc-ca-true"
        | "aki-added" => pick(case, rng, ALL),
        "outlives-issuer"
        | "issuer-name-other"
        | "issuer-name-case"
        | "issuer-name-spaces"
        | "issuer-name-printable"
        | "aki-wrong"
        | "aki-absent"
        | "aki-critical"
        | "serial-same-as-issuer" => pick(case, rng, NON_ROOT),
        "subject-cn-bmpstring"
        | "subject-cn-printable"
        | "subject-multivalued-rdn"
        | "san-dns"
        | "san-critical" => pick(case, rng, EE_AND_CAS),
        "subject-undecodable" | "subject-empty" => pick(case, rng, &[Role::User]),
        "proxy-subject-extra-rdn"
        | "proxy-subject-not-cn"
        | "proxy-subject-other-base"
        | "proxy-subject-multivalued"
        | "proxy-subject-no-cn-added"
        | "pci-absent"
        | "pci-noncritical"
        | "pci-pathlen-0"
        | "pci-unknown-language"
        | "pci-policy-with-inherit-all"
        | "pci-draft-oid"
        | "pci-limited"
        | "pci-independent"
        | "pci-pathlen-slack" => pick(case, rng, &[Role::Proxy]),
        "pci-pathlen-exceeded" => {
            // A proxy with at least one proxy below it.
            let v: Vec<usize> = roles(case, &[Role::Proxy])
                .into_iter()
                .filter(|&i| i != case.leaf())
                .collect();
            if v.is_empty() {
                None
            } else {
                Some(*rng.pick(&v))
            }
        }
        "bc-absent"
        | "bc-ca-false"
        | "bc-noncritical"
        | "bc-pathlen-0"
        | "ku-no-cert-sign"
        | "name-constraints-permit"
        | "name-constraints-exclude"
        | "name-constraints-exclude-noncritical"
        | "policy-constraints-noncritical"
        | "ski-wrong"
        | "ski-absent"
        | "ski-critical" => pick(case, rng, CAS),
        "bc-pathlen-without-ca" => pick(case, rng, &[Role::User]),
        "ku-no-digital-signature" => pick(case, rng, &[Role::User, Role::Proxy]),
        "ku-cert-sign-added" => pick(case, rng, &[Role::User, Role::Proxy]),
        "ku-no-crl-sign" if case.crl_mode => pick(case, rng, CAS),
        "crl-revokes"
        | "crl-revokes-future-date"
        | "crl-revokes-remove-from-crl"
        | "crl-revokes-hold"
            if case.crl_mode =>
        {
            pick(case, rng, CRL_COVERED)
        }
        "crl-expired"
        | "crl-next-update=at"
        | "crl-not-yet-valid"
        | "crl-this-update-in-skew"
        | "crl-no-next-update"
        | "crl-v1"
        | "crl-number-critical"
        | "crl-number-absent"
        | "crl-unknown-ext-critical"
        | "crl-entry-unknown-ext-critical"
        | "crl-corrupt"
        | "crl-wrong-key"
        | "crl-issuer-other"
        | "crl-aki-wrong"
        | "crl-absent"
        | "crl-expired-beside-current"
        | "crl-current-beside-expired"
            if case.crl_mode =>
        {
            pick(case, rng, CAS)
        }
        "crl-expired-revokes-beside-current" if case.crl_mode => pick(case, rng, CRL_COVERED),
        "dir:root-in-bundle-too"
        | "dir:root-in-bundle-after-gap"
        | "dir:root-only-in-bundle"
        | "dir:root-missing"
        | "dir:expired-root-copy-first"
        | "dir:expired-root-copy-second"
        | "dir:root-other-key-first"
        | "dir:root-other-key-second"
        | "dir:expired-root-other-key-first"
        | "dir:unrelated-ca-same-name" => Some(case.root()),
        "dir:top-sub-into-dir" | "dir:top-sub-only-in-dir-no-root" => {
            // The subordinate right under the root.
            roles(case, &[Role::Sub]).last().copied()
        }
        "dir:expired-sub-copy-first" | "dir:sub-other-key-first" => {
            roles(case, &[Role::Sub]).last().copied()
        }
        "dir:sub-revoked-by-root-in-dir" if case.crl_mode => {
            roles(case, &[Role::Sub]).last().copied()
        }
        _ => None,
    };
    let t = target?;
    let label = case.label(t);
    apply(case, m, t, rng)?;
    Some(format!("{m}@{label}"))
}

fn other_name(rng: &mut Rng) -> Vec<u8> {
    std_name(&[], &format!("Elsewhere {}", rng.below(1000)), UTF8)
}

fn apply(case: &mut Case, m: &str, t: usize, rng: &mut Rng) -> Option<()> {
    let issuer = case.nodes[t].issuer;
    match m {
        "expired" => case.nodes[t].not_after = AT - rng.range(1, DAY),
        "not-after=at" => case.nodes[t].not_after = AT,
        "not-after=at+1" => case.nodes[t].not_after = AT + 1,
        "not-yet-valid" => case.nodes[t].not_before = AT + rng.range(HOUR, DAY),
        "not-before=at" => case.nodes[t].not_before = AT,
        "not-before-in-skew" => case.nodes[t].not_before = AT + rng.range(1, 299),
        "not-before-past-skew" => case.nodes[t].not_before = AT + rng.range(301, 600),
        "outlives-issuer" => {
            let limit = case.nodes[issuer].not_after;
            case.nodes[t].not_after = limit + rng.range(1, DAY);
        }
        "generalized-time" => case.nodes[t].not_after = 2_556_144_000 + rng.below(YEAR), // 2051
        "issuer-name-other" => case.nodes[t].issuer_name = Some(other_name(rng)),
        "issuer-name-case" | "issuer-name-spaces" | "issuer-name-printable" => {
            let mut rdns = rdns_of(&case.subject(issuer));
            let cn = rdns
                .iter_mut()
                .flat_map(|r| r.iter_mut())
                .rfind(|(o, _, _)| *o == OID_CN)?;
            match m {
                "issuer-name-case" => cn.2 = cn.2.to_ascii_uppercase(),
                "issuer-name-spaces" => {
                    let s = String::from_utf8(cn.2.clone()).ok()?;
                    cn.2 = format!("  {}  ", s.replace(' ', "   ")).into_bytes();
                }
                _ => {
                    if cn.1 == PRINTABLE {
                        cn.1 = UTF8;
                    } else {
                        // Only PrintableString characters are used in names.
                        cn.1 = PRINTABLE;
                    }
                }
            }
            case.nodes[t].issuer_name = Some(name_of(&rdns));
        }
        "subject-cn-bmpstring"
        | "subject-cn-printable"
        | "subject-undecodable"
        | "subject-multivalued-rdn" => {
            let mut rdns = rdns_of(&case.subject(t));
            let last = rdns.last_mut()?;
            let cn = last.iter_mut().find(|(o, _, _)| *o == OID_CN)?;
            match m {
                "subject-cn-bmpstring" => {
                    let s = String::from_utf8(cn.2.clone()).ok()?;
                    *cn = (OID_CN, BMP, encode_str(&s, BMP));
                }
                "subject-cn-printable" => cn.1 = PRINTABLE,
                "subject-undecodable" => cn.2.extend_from_slice(&[0xc3, 0x28, 0xff]),
                _ => last.push((OID_UID, UTF8, format!("u{}", rng.below(1000)).into_bytes())),
            }
            case.nodes[t].subject = Some(name_of(&rdns));
        }
        "subject-empty" => case.nodes[t].subject = Some(vec![0x30, 0x00]),
        "proxy-subject-extra-rdn"
        | "proxy-subject-not-cn"
        | "proxy-subject-other-base"
        | "proxy-subject-multivalued"
        | "proxy-subject-no-cn-added" => {
            let serial = case.nodes[t].serial.to_string().into_bytes();
            let mut rdns = rdns_of(&case.subject(issuer));
            match m {
                "proxy-subject-extra-rdn" => {
                    rdns.push(vec![(OID_OU, UTF8, b"Extra".to_vec())]);
                    rdns.push(vec![(OID_CN, UTF8, serial)]);
                }
                "proxy-subject-not-cn" => rdns.push(vec![(OID_OU, UTF8, serial)]),
                "proxy-subject-other-base" => {
                    rdns = rdns_of(&other_name(rng));
                    rdns.push(vec![(OID_CN, UTF8, serial)]);
                }
                "proxy-subject-multivalued" => rdns.push(vec![
                    (OID_CN, UTF8, serial),
                    (OID_UID, UTF8, b"extra".to_vec()),
                ]),
                _ => {}
            }
            case.nodes[t].subject = Some(name_of(&rdns));
        }
        "bc-absent" => {
            case.remove_ext(t, oid::BASIC_CONSTRAINTS);
        }
        "bc-ca-false" => case.set_ext(
            t,
            ext(
                oid::BASIC_CONSTRAINTS,
                true,
                &basic_constraints(false, None),
            ),
        ),
        "bc-noncritical" => case.ext_mut(t, oid::BASIC_CONSTRAINTS)?.critical = false,
        "bc-pathlen-0" => case.set_ext(
            t,
            ext(
                oid::BASIC_CONSTRAINTS,
                true,
                &basic_constraints(true, Some(0)),
            ),
        ),
        "bc-ca-true" => {
            if matches!(case.nodes[t].role, Role::Root | Role::Sub) {
                return None; // already
            }
            case.set_ext(
                t,
                ext(oid::BASIC_CONSTRAINTS, true, &basic_constraints(true, None)),
            );
        }
        "bc-pathlen-without-ca" => case.set_ext(
            t,
            ext(
                oid::BASIC_CONSTRAINTS,
                true,
                &basic_constraints(false, Some(0)),
            ),
        ),
        "ku-absent" => {
            case.remove_ext(t, oid::KEY_USAGE);
        }
        "ku-no-cert-sign" => case.set_ext(t, ext(oid::KEY_USAGE, true, &key_usage(KU_CRL_SIGN))),
        "ku-no-crl-sign" => case.set_ext(t, ext(oid::KEY_USAGE, true, &key_usage(KU_CERT_SIGN))),
        "ku-no-digital-signature" => case.set_ext(t, ext(oid::KEY_USAGE, true, &key_usage(KU_KE))),
        "ku-cert-sign-added" => case.set_ext(
            t,
            ext(
                oid::KEY_USAGE,
                true,
                &key_usage(KU_DS | KU_KE | KU_CERT_SIGN),
            ),
        ),
        "ku-noncritical" => case.ext_mut(t, oid::KEY_USAGE)?.critical = false,
        "eku-server-auth" => case.set_ext(t, ext(oid::EXTENDED_KEY_USAGE, false, &EKU_SERVER_AUTH)),
        "eku-server-auth-critical" => {
            case.set_ext(t, ext(oid::EXTENDED_KEY_USAGE, true, &EKU_SERVER_AUTH))
        }
        "unknown-ext-critical" => case.set_ext(t, ext(UNKNOWN_EXT, true, &[0x05, 0x00])),
        "unknown-ext-noncritical" => case.set_ext(t, ext(UNKNOWN_EXT, false, &[0x05, 0x00])),
        "san-dns" | "san-critical" => {
            let san = wrap(0x30, &wrap(0x82, b"host.diff.example"));
            case.set_ext(t, ext(oid::SUBJECT_ALT_NAME, m == "san-critical", &san));
        }
        "policies-critical" => case.set_ext(t, ext(oid::CERTIFICATE_POLICIES, true, &ANY_POLICY)),
        "policies-noncritical" => {
            case.set_ext(t, ext(oid::CERTIFICATE_POLICIES, false, &ANY_POLICY))
        }
        "name-constraints-permit" => {
            let base = name_of(&rdns_of(&std_name(&[], "x", UTF8))[..2]);
            case.set_ext(t, ext(NAME_CONSTRAINTS, true, &name_constraints(&base)));
        }
        "name-constraints-exclude" | "name-constraints-exclude-noncritical" => {
            // Only O=Elsewhere is permitted: the names below are outside.
            let base = name_of(&[
                vec![(OID_C, PRINTABLE, b"NL".to_vec())],
                vec![(OID_O, UTF8, b"Elsewhere".to_vec())],
            ]);
            let critical = m == "name-constraints-exclude";
            case.set_ext(t, ext(NAME_CONSTRAINTS, critical, &name_constraints(&base)));
        }
        "policy-constraints-noncritical" => {
            case.set_ext(t, ext(POLICY_CONSTRAINTS, false, &REQUIRE_EXPLICIT_POLICY))
        }
        "aki-critical" => {
            let id = case.keys[case.nodes[issuer].key].id.clone();
            case.nodes[t].aki = KeyId::Absent;
            case.set_ext(t, ext(oid::AUTHORITY_KEY_ID, true, &aki_der(&id)));
        }
        "ski-critical" => {
            let id = case.keys[case.nodes[t].key].id.clone();
            case.nodes[t].ski = KeyId::Absent;
            case.set_ext(t, ext(oid::SUBJECT_KEY_ID, true, &wrap(0x04, &id)));
        }
        "pci-absent" => {
            case.remove_ext(t, oid::PROXY_CERT_INFO);
        }
        "pci-noncritical" => case.ext_mut(t, oid::PROXY_CERT_INFO)?.critical = false,
        "pci-pathlen-exceeded" | "pci-pathlen-0" | "pci-pathlen-slack" => {
            // Proxies below t: t is at chain position p, the leaf at 0.
            let below = case.chain.iter().position(|&i| i == t)? as u32;
            let limit = match m {
                "pci-pathlen-0" => 0,
                "pci-pathlen-slack" => below + 1 + rng.below(2) as u32,
                _ => below.checked_sub(1)?,
            };
            let lang = current_language(case, t)?;
            case.set_ext(
                t,
                ext(oid::PROXY_CERT_INFO, true, &pci(Some(limit), lang, None)),
            );
        }
        "pci-limited" | "pci-independent" | "pci-unknown-language" => {
            let lang = match m {
                "pci-limited" => oid::PPL_LIMITED,
                "pci-independent" => oid::PPL_INDEPENDENT,
                _ => UNKNOWN_LANGUAGE,
            };
            let pl = current_path_len(case, t);
            case.set_ext(t, ext(oid::PROXY_CERT_INFO, true, &pci(pl, lang, None)));
        }
        "pci-policy-with-inherit-all" => {
            let pl = current_path_len(case, t);
            case.set_ext(
                t,
                ext(
                    oid::PROXY_CERT_INFO,
                    true,
                    &pci(pl, oid::PPL_INHERIT_ALL, Some(b"policy")),
                ),
            );
        }
        "pci-draft-oid" => {
            let e = case.ext_mut(t, oid::PROXY_CERT_INFO)?;
            e.extn_id = oid::PROXY_CERT_INFO_GT3;
        }
        "aki-wrong" => {
            let mut id = case.keys[case.nodes[issuer].key].id.clone();
            id[0] ^= 0x55;
            case.nodes[t].aki = KeyId::Fixed(id);
        }
        "aki-absent" => case.nodes[t].aki = KeyId::Absent,
        "aki-added" => {
            if !matches!(case.nodes[t].aki, KeyId::Absent) {
                return None;
            }
            case.nodes[t].aki = KeyId::Auto;
        }
        "ski-wrong" => {
            let mut id = case.keys[case.nodes[t].key].id.clone();
            id[0] ^= 0x55;
            case.nodes[t].ski = KeyId::Fixed(id);
        }
        "ski-absent" => case.nodes[t].ski = KeyId::Absent,
        "serial-zero" => case.nodes[t].serial = 0,
        "serial-large" => case.nodes[t].serial = u64::MAX - rng.below(1000),
        "serial-same-as-issuer" => case.nodes[t].serial = case.nodes[issuer].serial,
        "sig-corrupt" => case.nodes[t].corrupt_sig = true,
        "sig-wrong-key" => {
            let k = case.add_key(rng);
            case.nodes[t].sign_key = Some(k);
        }
        "sig-alg-claims-ecdsa" => case.nodes[t].claim_alg = Some(oid::ECDSA_WITH_SHA256),
        "sig-alg-claims-rsa" => case.nodes[t].claim_alg = Some(oid::SHA256_WITH_RSA),
        "sig-alg-outer-differs" => case.nodes[t].outer_alg = Some(oid::ECDSA_WITH_SHA384),
        "key-p256" => {
            // t gets a P-256 key: what it issues is signed with ECDSA.
            case.keys.push(p256_key(rng));
            case.nodes[t].key = case.keys.len() - 1;
        }
        "key-swapped" => {
            // A new key for t; what it issued is signed with the new key.
            let k = case.add_key(rng);
            case.nodes[t].key = k;
        }
        m if m.starts_with("crl-") => crl_mutation(case, m, t, rng)?,
        m if m.starts_with("dir:") => dir_mutation(case, m, t, rng)?,
        _ => return None,
    }
    Some(())
}

fn current_pci(case: &Case, t: usize) -> Option<ProxyCertInfo> {
    use der::Decode;
    let e = case.nodes[t]
        .exts
        .iter()
        .find(|e| e.extn_id == oid::PROXY_CERT_INFO)?;
    ProxyCertInfo::from_der(e.extn_value.as_bytes()).ok()
}

fn current_language(case: &Case, t: usize) -> Option<Oid> {
    current_pci(case, t).map(|p| p.proxy_policy.policy_language)
}

fn current_path_len(case: &Case, t: usize) -> Option<u32> {
    current_pci(case, t).and_then(|p| p.path_len_constraint)
}

fn revoked(serial: u64, date: u64) -> Revoked {
    Revoked {
        serial,
        date: UnixTime(date),
        extensions: Vec::new(),
    }
}

fn crl_mutation(case: &mut Case, m: &str, t: usize, rng: &mut Rng) -> Option<()> {
    match m {
        "crl-revokes"
        | "crl-revokes-future-date"
        | "crl-revokes-remove-from-crl"
        | "crl-revokes-hold" => {
            // t is covered by its issuer's CRL.
            let serial = case.nodes[t].serial;
            let issuer = case.nodes[t].issuer;
            let mut r = revoked(serial, AT - rng.range(HOUR, 10 * DAY));
            match m {
                "crl-revokes-future-date" => r.date = UnixTime(AT + rng.range(HOUR, DAY)),
                "crl-revokes-remove-from-crl" => {
                    r.extensions = vec![ext(CRL_REASON, false, &[0x0a, 0x01, 0x08])]
                }
                "crl-revokes-hold" => {
                    r.extensions = vec![ext(CRL_REASON, false, &[0x0a, 0x01, 0x06])]
                }
                _ => {}
            }
            case.crl_of(issuer)?.revoked.push(r);
        }
        "crl-expired" => {
            let c = case.crl_of(t)?;
            c.this_update = AT - 10 * DAY;
            c.next_update = Some(AT - rng.range(1, DAY));
        }
        "crl-next-update=at" => case.crl_of(t)?.next_update = Some(AT),
        "crl-not-yet-valid" => case.crl_of(t)?.this_update = AT + rng.range(HOUR, DAY),
        "crl-this-update-in-skew" => case.crl_of(t)?.this_update = AT + rng.range(1, 299),
        "crl-no-next-update" => case.crl_of(t)?.next_update = None,
        "crl-v1" => case.crl_of(t)?.v2 = false,
        "crl-number-critical" => case.crl_of(t)?.number = Some(true),
        "crl-number-absent" => case.crl_of(t)?.number = None,
        "crl-unknown-ext-critical" => {
            case.crl_of(t)?
                .extra
                .push(ext(UNKNOWN_EXT, true, &[0x05, 0x00]))
        }
        "crl-entry-unknown-ext-critical" => {
            let mut r = revoked(rng.range(1 << 41, 1 << 50), AT - DAY);
            r.extensions = vec![ext(UNKNOWN_EXT, true, &[0x05, 0x00])];
            case.crl_of(t)?.revoked.push(r);
        }
        "crl-corrupt" => case.crl_of(t)?.corrupt = true,
        "crl-wrong-key" => {
            let k = case.add_key(rng);
            case.crl_of(t)?.sign_key = Some(k);
        }
        "crl-issuer-other" => case.crl_of(t)?.issuer_name = Some(other_name(rng)),
        "crl-aki-wrong" => {
            let mut id = case.keys[case.nodes[t].key].id.clone();
            id[0] ^= 0x55;
            case.crl_of(t)?.aki = KeyId::Fixed(id);
        }
        "crl-absent" => {
            let before = case.crls.len();
            case.crls.retain(|c| c.ca != t);
            if before == case.crls.len() {
                return None;
            }
        }
        "crl-expired-revokes-beside-current" => {
            // An older, expired CRL of t's issuer listed t (a hold since
            // released); the current one does not.
            let issuer = case.nodes[t].issuer;
            let mut old = case.crl_of(issuer)?.clone();
            old.this_update = AT - 20 * DAY;
            old.next_update = Some(AT - rng.range(HOUR, 10 * DAY));
            let mut r = revoked(case.nodes[t].serial, AT - 25 * DAY);
            r.extensions = vec![ext(CRL_REASON, false, &[0x0a, 0x01, 0x06])];
            old.revoked.push(r);
            let pos = case.crls.iter().position(|c| c.ca == issuer)?;
            case.crls.insert(pos, old);
        }
        "crl-expired-beside-current" | "crl-current-beside-expired" => {
            let current = case.crl_of(t)?.clone();
            let mut old = current.clone();
            old.this_update = AT - 20 * DAY;
            old.next_update = Some(AT - rng.range(HOUR, 10 * DAY));
            let pos = case.crls.iter().position(|c| c.ca == t)?;
            if m == "crl-expired-beside-current" {
                case.crls.insert(pos, old);
            } else {
                case.crls.insert(pos + 1, old);
            }
        }
        _ => return None,
    }
    Some(())
}

fn dir_mutation(case: &mut Case, m: &str, t: usize, rng: &mut Rng) -> Option<()> {
    let root = case.root();
    match m {
        "dir:root-in-bundle-too" | "dir:root-in-bundle-after-gap" => {
            // Appended to a bundle that holds every CA below it, or to one
            // that stops below a CA the directory supplies (a gap).
            let gap = case
                .chain
                .iter()
                .any(|&i| !case.nodes[i].in_bundle && i != root);
            if gap != (m == "dir:root-in-bundle-after-gap") {
                return None;
            }
            case.nodes[root].in_bundle = true;
        }
        "dir:root-only-in-bundle" => {
            case.nodes[root].in_bundle = true;
            case.nodes[root].in_dir = false;
            case.dir.retain(|&i| i != root);
        }
        "dir:root-missing" => {
            case.nodes[root].in_dir = false;
            case.dir.retain(|&i| i != root);
        }
        "dir:top-sub-into-dir" => {
            if case.nodes[t].in_dir {
                return None;
            }
            case.nodes[t].in_dir = true;
            let pos = case.dir.iter().position(|&i| i == root).unwrap_or(0);
            case.dir.insert(pos + 1, t);
        }
        "dir:top-sub-only-in-dir-no-root" => {
            // Below the root, in the directory only: every sub above the
            // lowest one in the bundle must also be in the directory.
            for s in roles(case, &[Role::Sub]) {
                case.nodes[s].in_dir = true;
            }
            case.nodes[t].in_bundle = false;
            case.nodes[root].in_dir = false;
            case.dir = roles(case, &[Role::Sub]).into_iter().rev().collect();
        }
        "dir:sub-revoked-by-root-in-dir" => {
            // The root revoked the subordinate, which sits in the directory.
            if !case.nodes[t].in_dir {
                case.nodes[t].in_dir = true;
                let pos = case.dir.iter().position(|&i| i == root).unwrap_or(0);
                case.dir.insert(pos + 1, t);
            }
            let serial = case.nodes[t].serial;
            case.crl_of(root)?
                .revoked
                .push(revoked(serial, AT - rng.range(HOUR, 10 * DAY)));
        }
        "dir:expired-sub-copy-first" | "dir:sub-other-key-first" => {
            // Another certificate with the subordinate's name, issued by the
            // same root, first in the directory: expired (same key), or
            // current with another key (a decoy the chain was not issued by).
            let mut copy = case.nodes[t].clone();
            copy.serial = case.nodes[t].serial + 1 + rng.below(1000);
            copy.in_bundle = false;
            copy.in_dir = true;
            if m == "dir:expired-sub-copy-first" {
                copy.not_before = AT - 6 * YEAR;
                copy.not_after = AT - rng.range(DAY, YEAR);
            } else {
                let k = case.add_key(rng);
                copy.key = k;
            }
            let idx = case.nodes.len();
            case.nodes.push(copy);
            let pos = case
                .dir
                .iter()
                .position(|&i| i == t)
                .unwrap_or(case.dir.len());
            case.dir.insert(pos, idx);
        }
        "dir:expired-root-copy-first"
        | "dir:expired-root-copy-second"
        | "dir:root-other-key-first"
        | "dir:root-other-key-second"
        | "dir:expired-root-other-key-first"
        | "dir:unrelated-ca-same-name" => {
            // Another self-signed CA certificate with the root's name.
            let mut copy = case.nodes[root].clone();
            let other_key = m.contains("other-key") || m == "dir:unrelated-ca-same-name";
            let expired = m.contains("expired");
            copy.serial = case.nodes[root].serial + 1 + rng.below(1000);
            copy.in_bundle = false;
            copy.in_dir = true;
            if expired {
                copy.not_before = AT - 12 * YEAR;
                copy.not_after = AT - rng.range(DAY, YEAR);
            }
            let idx = case.nodes.len();
            copy.issuer = idx;
            if other_key {
                let k = case.add_key(rng);
                copy.key = k;
            }
            case.nodes.push(copy);
            if m == "dir:unrelated-ca-same-name" {
                // Valid, current, same name, other key: an impostor the
                // chain was never issued by. Its place is random.
                let pos = if rng.chance(50) { 0 } else { case.dir.len() };
                let at = case.dir.iter().position(|&i| i == root)?;
                case.dir.insert(if pos == 0 { at } else { at + 1 }, idx);
                return Some(());
            }
            if other_key && !expired {
                // The old key's root stays valid; the chain is signed by the
                // new key (the node `root`), the old root is a decoy.
            }
            let at = case.dir.iter().position(|&i| i == root)?;
            if m.ends_with("-second") {
                case.dir.insert(at + 1, idx);
            } else {
                case.dir.insert(at, idx);
            }
            // The old root's CRL, too, when CAs publish them.
            if case.crl_mode && !other_key {
                // Same name and key: its CRL is the root's CRL.
            } else if case.crl_mode {
                let mut c = case.crl_of(root)?.clone();
                c.ca = idx;
                let p = case.crls.iter().position(|c| c.ca == root)?;
                case.crls.insert(p, c);
            }
        }
        _ => return None,
    }
    Some(())
}

/// Generate case `index` of run `seed`.
pub fn generate(seed: u64, index: u64) -> Case {
    let mut rng = Rng::for_case(seed, index);
    loop {
        let mut case = base(&mut rng);
        // A few tries at a mutation that applies to this chain.
        for _ in 0..8 {
            let m = *rng.pick(MUTATIONS);
            let mut c = Case {
                keys: Vec::new(),
                nodes: case.nodes.clone(),
                chain: case.chain.clone(),
                dir: case.dir.clone(),
                crls: case.crls.clone(),
                crl_mode: case.crl_mode,
                mutation: String::new(),
                shape: case.shape.clone(),
            };
            c.keys = std::mem::take(&mut case.keys);
            let mut r2 = rng.clone();
            if let Some(label) = mutate(&mut c, m, &mut r2) {
                c.mutation = label;
                return c;
            }
            case.keys = std::mem::take(&mut c.keys);
        }
    }
}

//! Shared pieces of the conformance harnesses (`conformance_*.rs`): locating
//! the corpus, temporary IGTF-style CA directories, the exceptions files and
//! the bookkeeping that makes a harness fail when it is not truthful.
//!
//! Included by each harness with `#[path = "conformance/common.rs"] mod common;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jobseal_core::{name, oid, pem, tlv};
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::sig::{self, KeyKind};

/// The conformance corpus, `third_party/conformance` in the repository. A
/// missing corpus is a test failure, never a silent pass.
pub fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/conformance");
    assert!(
        dir.join("README.md").is_file(),
        "conformance corpus not found at {} (it is part of the repository: third_party/conformance). \
         The conformance tests cannot run without it.",
        dir.display()
    );
    dir
}

/// Where the checked-in exceptions files live.
pub fn exceptions_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(file)
}

/// What the verifier said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Success,
    /// Reason code and message.
    Failure(String, String),
}

impl Got {
    pub fn from_result<T>(r: Result<T, jobseal_core::Error>) -> Self {
        match r {
            Ok(_) => Self::Success,
            Err(e) => Self::Failure(e.reason.code().to_string(), e.message),
        }
    }
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }
    /// `SUCCESS` or `FAILURE:<reason code>`: the `our_result` column.
    pub fn label(&self) -> String {
        match self {
            Self::Success => "SUCCESS".into(),
            Self::Failure(code, _) => format!("FAILURE:{code}"),
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Success => None,
            Self::Failure(code, _) => Some(code),
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Self::Success => "",
            Self::Failure(_, m) => m,
        }
    }
}

/// One line of an exceptions file.
#[derive(Clone, Debug)]
pub struct Exception {
    pub our_result: String,
    pub reason: String,
}

/// Read an exceptions file: tab-separated `id`, `our_result`, `reason`, with
/// a header line; `#` starts a comment line.
pub fn load_exceptions(file: &str) -> BTreeMap<String, Exception> {
    let path = exceptions_path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    let mut header_seen = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if !header_seen {
            assert_eq!(
                cols,
                ["id", "our_result", "reason"],
                "{}:{}: the header must be id<TAB>our_result<TAB>reason",
                path.display(),
                n + 1
            );
            header_seen = true;
            continue;
        }
        let [id, our_result, reason] = cols.as_slice() else {
            panic!(
                "{}:{}: expected 3 tab-separated columns, got {}",
                path.display(),
                n + 1,
                cols.len()
            );
        };
        assert!(
            !reason.trim().is_empty(),
            "{}:{}: an exception needs a reason",
            path.display(),
            n + 1
        );
        let prev = out.insert(
            (*id).to_string(),
            Exception {
                our_result: (*our_result).to_string(),
                reason: (*reason).to_string(),
            },
        );
        assert!(
            prev.is_none(),
            "{}:{}: {id} is listed twice",
            path.display(),
            n + 1
        );
    }
    assert!(header_seen, "{}: no header line", path.display());
    out
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The verifier agrees with the expected result.
    Agreed,
    /// Expected INVALID, refused for a weak or unsupported algorithm before
    /// the property under test was reached: an agreement, counted apart.
    AgreedWeak,
    /// Disagrees, and is listed in the exceptions file.
    Exception(String),
    /// Disagrees and is not listed (or is listed with another result).
    Unexpected,
    /// Not run, with the reason.
    Skipped(String),
}

/// Counts of one group (a prefix, a section, a sub-suite).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub loaded: usize,
    pub run: usize,
    pub agreed: usize,
    pub agreed_weak: usize,
    pub exceptions: usize,
    pub unexpected: usize,
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, v: &Verdict) {
        self.loaded += 1;
        match v {
            Verdict::Skipped(_) => self.skipped += 1,
            other => {
                self.run += 1;
                match other {
                    Verdict::Agreed => self.agreed += 1,
                    Verdict::AgreedWeak => {
                        self.agreed += 1;
                        self.agreed_weak += 1;
                    }
                    Verdict::Exception(_) => self.exceptions += 1,
                    _ => self.unexpected += 1,
                }
            }
        }
    }
    /// Add another group's counts.
    pub fn merge(&mut self, o: &Self) {
        self.loaded += o.loaded;
        self.run += o.run;
        self.agreed += o.agreed;
        self.agreed_weak += o.agreed_weak;
        self.exceptions += o.exceptions;
        self.unexpected += o.unexpected;
        self.skipped += o.skipped;
    }
    pub fn line(&self) -> String {
        let weak = if self.agreed_weak > 0 {
            format!(
                " (of which {} refused for a weak algorithm)",
                self.agreed_weak
            )
        } else {
            String::new()
        };
        format!(
            "{} loaded, {} run, {} agreed{weak}, {} exceptions, {} unexpected, {} skipped",
            self.loaded, self.run, self.agreed, self.exceptions, self.unexpected, self.skipped
        )
    }
}

/// The bookkeeping of one suite.
#[derive(Debug)]
pub struct Suite {
    pub name: String,
    exceptions_file: String,
    exceptions: BTreeMap<String, Exception>,
    pub groups: BTreeMap<String, Counts>,
    pub total: Counts,
    pub skip_reasons: BTreeMap<String, usize>,
    /// Reason codes of every run case that failed, with counts.
    pub failure_codes: BTreeMap<String, usize>,
    /// The same by group.
    pub group_codes: BTreeMap<String, BTreeMap<String, usize>>,
    seen: BTreeSet<String>,
    pub errors: Vec<String>,
    pub rows: Vec<String>,
}

impl Suite {
    pub fn new(name: &str, exceptions_file: &str) -> Self {
        Self {
            name: name.into(),
            exceptions_file: exceptions_file.into(),
            exceptions: load_exceptions(exceptions_file),
            groups: BTreeMap::new(),
            total: Counts::default(),
            skip_reasons: BTreeMap::new(),
            failure_codes: BTreeMap::new(),
            group_codes: BTreeMap::new(),
            seen: BTreeSet::new(),
            errors: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Record a skipped case.
    pub fn skip(&mut self, group: &str, id: &str, reason: &str) {
        self.note_seen(id);
        if self.exceptions.contains_key(id) {
            self.errors.push(format!(
                "{id}: listed in {} but skipped ({reason}); remove it",
                self.exceptions_file
            ));
        }
        *self.skip_reasons.entry(reason.to_string()).or_default() += 1;
        self.rows.push(format!("{id}\tskipped\t{reason}"));
        self.record(group, Verdict::Skipped(reason.into()));
    }

    /// Record a case that ran. `expected_ok` is the expected verdict;
    /// `weak_agreement` says that a weak-algorithm refusal of an expected
    /// failure is to be counted apart.
    pub fn ran(&mut self, group: &str, id: &str, expected_ok: bool, got: &Got) -> Verdict {
        self.note_seen(id);
        if let Some(code) = got.code() {
            *self.failure_codes.entry(code.to_string()).or_default() += 1;
            *self
                .group_codes
                .entry(group.to_string())
                .or_default()
                .entry(code.to_string())
                .or_default() += 1;
        }
        let agrees = expected_ok == got.is_success();
        let listed = self.exceptions.get(id).cloned();
        let verdict = match (agrees, listed) {
            (true, None) => {
                if !expected_ok && got.code() == Some("chain.weak-algorithm") {
                    Verdict::AgreedWeak
                } else {
                    Verdict::Agreed
                }
            }
            (true, Some(_)) => {
                self.errors.push(format!(
                    "{id}: listed in {} as an exception, but now agrees ({}); remove the line",
                    self.exceptions_file,
                    got.label()
                ));
                Verdict::Unexpected
            }
            (false, Some(ex)) if ex.our_result == got.label() => Verdict::Exception(ex.reason),
            (false, Some(ex)) => {
                self.errors.push(format!(
                    "{id}: {} lists our result as {}, but it is now {} ({}); update the line",
                    self.exceptions_file,
                    ex.our_result,
                    got.label(),
                    got.message()
                ));
                Verdict::Unexpected
            }
            (false, None) => {
                self.errors.push(format!(
                    "{id}: expected {}, got {} ({}) and it is not in {}",
                    if expected_ok { "SUCCESS" } else { "FAILURE" },
                    got.label(),
                    got.message(),
                    self.exceptions_file
                ));
                Verdict::Unexpected
            }
        };
        self.rows.push(format!(
            "{id}\texpected {}\tgot {}\t{}",
            if expected_ok { "SUCCESS" } else { "FAILURE" },
            got.label(),
            match &verdict {
                Verdict::Agreed => "agree".to_string(),
                Verdict::AgreedWeak => "agree: refused (weak algorithm)".to_string(),
                Verdict::Exception(r) => format!("exception: {r}"),
                Verdict::Unexpected => "UNEXPECTED".to_string(),
                Verdict::Skipped(r) => format!("skipped: {r}"),
            }
        ));
        self.record(group, verdict.clone());
        verdict
    }

    fn note_seen(&mut self, id: &str) {
        if !self.seen.insert(id.to_string()) {
            self.errors
                .push(format!("{id}: the same case id was run twice"));
        }
    }

    fn record(&mut self, group: &str, v: Verdict) {
        self.groups.entry(group.to_string()).or_default().add(&v);
        self.total.add(&v);
    }

    /// Print the figures and fail if the suite is not truthful.
    pub fn finish(mut self) {
        for id in self.exceptions.keys() {
            if !self.seen.contains(id) {
                self.errors.push(format!(
                    "{id}: listed in {} but no such case was loaded",
                    self.exceptions_file
                ));
            }
        }
        if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
            for row in &self.rows {
                eprintln!("{}: case {row}", self.name);
            }
        }
        for (group, c) in &self.groups {
            eprintln!("{}: {group}: {}", self.name, c.line());
            if let Some(codes) = self.group_codes.get(group) {
                let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c}={n}")).collect();
                eprintln!(
                    "{}: {group}: refusals by reason code: {}",
                    self.name,
                    codes.join(", ")
                );
            }
        }
        eprintln!("{}: TOTAL: {}", self.name, self.total.line());
        for (reason, n) in &self.skip_reasons {
            eprintln!("{}: skipped {n}: {reason}", self.name);
        }
        let codes: Vec<String> = self
            .failure_codes
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        eprintln!(
            "{}: TOTAL: refusals by reason code: {}",
            self.name,
            codes.join(", ")
        );
        if self.total.run == 0 {
            self.errors
                .push("zero cases ran: a harness that runs nothing must fail".into());
        }
        if !self.errors.is_empty() {
            for e in &self.errors {
                eprintln!("{}: ERROR: {e}", self.name);
            }
            panic!(
                "{}: {} problem(s); see the ERROR lines above (run with --nocapture)",
                self.name,
                self.errors.len()
            );
        }
    }
}

/// The DER of every `CERTIFICATE` block of a PEM file, or the file itself if
/// it is not PEM.
pub fn certs_in(data: &[u8]) -> Vec<Vec<u8>> {
    blocks_in(data, "CERTIFICATE")
}

/// The DER of every block with `label`, or the file itself if it is not PEM.
pub fn blocks_in(data: &[u8], label: &str) -> Vec<Vec<u8>> {
    match pem::parse_blocks(data) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .filter(|b| b.label == label)
            .map(|b| b.der)
            .collect(),
        _ => vec![data.to_vec()],
    }
}

/// Subject of a DER certificate, as encoded (without a full parse).
pub fn cert_subject(der: &[u8]) -> Option<&[u8]> {
    tlv::RawCert::split(der).map(|r| r.subject)
}

/// Issuer name of a DER CRL, as encoded.
pub fn crl_issuer(der: &[u8]) -> Option<&[u8]> {
    let outer = tlv::read_all(der)?;
    let (tbs, _) = tlv::read(outer.value)?;
    let fields = tlv::children(tbs.value)?;
    let mut it = fields.into_iter().peekable();
    if it.peek().map(|t| t.tag) == Some(0x02) {
        it.next(); // version
    }
    let _alg = it.next()?;
    Some(it.next()?.raw)
}

/// A temporary IGTF-style CA directory: each anchor as `<subject-hash>.N`
/// (PEM) and each CRL as `<issuer-hash>.rN` (PEM), numbered from 0 per hash.
pub fn ca_dir(anchors: &[Vec<u8>], crls: &[Vec<u8>]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut next: BTreeMap<String, usize> = BTreeMap::new();
    for der in anchors {
        let Some(hash) = cert_subject(der).and_then(name::openssl_hash) else {
            continue; // cannot even be named: no verifier could find it
        };
        let key = format!("{hash:08x}");
        let n = next.entry(key.clone()).or_default();
        std::fs::write(
            dir.path().join(format!("{key}.{n}")),
            pem::encode_block("CERTIFICATE", der),
        )
        .unwrap();
        *n += 1;
    }
    let mut next_crl: BTreeMap<String, usize> = BTreeMap::new();
    for der in crls {
        let Some(hash) = crl_issuer(der).and_then(name::openssl_hash) else {
            continue;
        };
        let key = format!("{hash:08x}");
        let n = next_crl.entry(key.clone()).or_default();
        std::fs::write(
            dir.path().join(format!("{key}.r{n}")),
            pem::encode_block("X509 CRL", der),
        )
        .unwrap();
        *n += 1;
    }
    dir
}

/// Parse certificates leaf first, as the verifier's step 1e does.
pub fn parse_chain(ders: &[Vec<u8>]) -> Result<Vec<ParsedCert>, jobseal_core::Error> {
    ders.iter()
        .enumerate()
        .map(|(i, d)| ParsedCert::from_der(d.clone(), i))
        .collect()
}

/// Whether a chain (leaf first; `anchor_spkis` the keys that may sign the
/// last one) uses a signature algorithm or issuer key outside the default
/// algorithm table of spec §6.3 2d.2 (MD5, SHA-1, DSA, RSA below 2048 bits,
/// …): the condition under which a `chain.weak-algorithm` refusal is
/// expected. Returns a category (for the figures) and the detail.
pub fn uses_refused_algorithm(
    chain: &[Vec<u8>],
    anchor_spkis: &[Vec<u8>],
) -> Option<(&'static str, String)> {
    let allowed = [
        oid::SHA256_WITH_RSA,
        oid::SHA384_WITH_RSA,
        oid::SHA512_WITH_RSA,
        oid::ECDSA_WITH_SHA256,
        oid::ECDSA_WITH_SHA384,
        oid::ED25519,
    ];
    for (i, der) in chain.iter().enumerate() {
        let Ok(c) = ParsedCert::from_der(der.clone(), i) else {
            continue;
        };
        let alg = c.cert.signature_algorithm().oid;
        if !allowed.contains(&alg) {
            let category = match alg.to_string().as_str() {
                "1.2.840.113549.1.1.4" => "MD5 signature (never accepted)",
                "1.2.840.113549.1.1.5" => "SHA-1 signature",
                "1.2.840.10040.4.3" | "2.16.840.1.101.3.4.3.2" => "DSA signature (not supported)",
                _ => "unsupported signature algorithm",
            };
            return Some((
                category,
                format!("{} is signed with {}", c.subject_dn(), alg_name(alg)),
            ));
        }
        let issuer_spkis: Vec<Vec<u8>> = match chain.get(i + 1) {
            Some(next) => tlv::RawCert::split(next)
                .map(|r| vec![r.spki.to_vec()])
                .unwrap_or_default(),
            None => anchor_spkis.to_vec(),
        };
        for spki in issuer_spkis {
            match sig::public_key(&spki).map(|k| k.kind) {
                Some(KeyKind::Rsa(bits)) if bits < 2048 => {
                    return Some((
                        "RSA issuer key below 2048 bits",
                        format!("{} is signed by an RSA-{bits} key", c.subject_dn()),
                    ));
                }
                Some(KeyKind::Other) => {
                    return Some((
                        "issuer key of an unsupported type",
                        format!(
                            "{} is signed by a key of an unsupported type",
                            c.subject_dn()
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    None
}

fn alg_name(o: der::asn1::ObjectIdentifier) -> String {
    match o.to_string().as_str() {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.10040.4.3" => "dsa-with-sha1".into(),
        "2.16.840.1.101.3.4.3.2" => "dsa-with-sha256".into(),
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1".into(),
        other => other.to_string(),
    }
}

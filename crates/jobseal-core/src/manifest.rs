//! The job manifest (`spec/manifest.cddl`): its model, its deterministic CBOR
//! encoding (RFC 8949 §4.2.1) and a strict decoder.
//!
//! The decoder accepts only the deterministic encoding of the schema: shortest
//! heads, definite lengths, map keys in strictly ascending bytewise order, no
//! duplicates, no trailing bytes, no tags, no floats. Anything else is refused
//! rather than normalised, so that the bytes that were hashed and signed are
//! the only possible reading of the job.

use std::collections::BTreeMap;

use crate::limits;
use crate::reason::{Error, Reason};

/// The manifest format version this crate reads and writes.
pub const MANIFEST_VERSION: u64 = 1;

/// Map keys of the manifest (`spec/manifest.cddl`).
mod key {
    pub const VERSION: u64 = 1;
    pub const JOB_ID: u64 = 2;
    pub const EXECUTABLE: u64 = 3;
    pub const ARGUMENTS: u64 = 4;
    pub const ENVIRONMENT: u64 = 5;
    pub const INPUTS: u64 = 6;
    pub const VO: u64 = 7;
    pub const SITES: u64 = 8;
    pub const NOT_BEFORE: u64 = 9;
    pub const NOT_AFTER: u64 = 10;
    pub const CREATED: u64 = 11;
    pub const TOOL: u64 = 12;
    pub const ALLOWED_USES: u64 = 13;
    // Keys of `file` maps (executable and inputs).
    pub const FILE_NAME: u64 = 1;
    pub const FILE_SIZE: u64 = 2;
    pub const FILE_SHA256: u64 = 3;
}

/// A file the job uses, by name, size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// For the executable: its file name. For an input: a relative path.
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A job as its owner signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Random 128-bit identifier: the replay key.
    pub job_id: [u8; 16],
    pub executable: FileDigest,
    /// Arguments after the executable (argv[1..]).
    pub arguments: Vec<String>,
    pub environment: Option<BTreeMap<String, String>>,
    pub inputs: Vec<FileDigest>,
    pub vo: Option<String>,
    pub sites: Option<Vec<String>>,
    /// Seconds since the epoch.
    pub not_before: u64,
    pub not_after: u64,
    pub created: u64,
    /// The tool that made the manifest, e.g. `jobseal/0.1.0`.
    pub tool: String,
    /// How many times the job may be admitted (enforced by site policy).
    pub allowed_uses: u64,
}

impl Manifest {
    /// The job id as 32 lowercase hex digits.
    pub fn job_id_hex(&self) -> String {
        hex(&self.job_id)
    }

    /// Deterministic CBOR encoding.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        // version, job id, executable, arguments, inputs, not-before, not-after,
        // created, tool, allowed uses; then the optional fields present.
        let mut fields = 10;
        fields += usize::from(self.environment.is_some());
        fields += usize::from(self.vo.is_some());
        fields += usize::from(self.sites.is_some());
        e.head(5, fields as u64);
        e.uint_key(key::VERSION);
        e.head(0, MANIFEST_VERSION);
        e.uint_key(key::JOB_ID);
        e.bytes(&self.job_id);
        e.uint_key(key::EXECUTABLE);
        e.file(&self.executable);
        e.uint_key(key::ARGUMENTS);
        e.head(4, self.arguments.len() as u64);
        for a in &self.arguments {
            e.text(a);
        }
        if let Some(env) = &self.environment {
            e.uint_key(key::ENVIRONMENT);
            // Deterministic order is by encoded key bytes: shorter keys first.
            let mut entries: Vec<_> = env.iter().collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
            e.head(5, entries.len() as u64);
            for (k, v) in entries {
                e.text(k);
                e.text(v);
            }
        }
        e.uint_key(key::INPUTS);
        e.head(4, self.inputs.len() as u64);
        for i in &self.inputs {
            e.file(i);
        }
        if let Some(vo) = &self.vo {
            e.uint_key(key::VO);
            e.text(vo);
        }
        if let Some(sites) = &self.sites {
            e.uint_key(key::SITES);
            e.head(4, sites.len() as u64);
            for s in sites {
                e.text(s);
            }
        }
        e.uint_key(key::NOT_BEFORE);
        e.head(0, self.not_before);
        e.uint_key(key::NOT_AFTER);
        e.head(0, self.not_after);
        e.uint_key(key::CREATED);
        e.head(0, self.created);
        e.uint_key(key::TOOL);
        e.text(&self.tool);
        e.uint_key(key::ALLOWED_USES);
        e.head(0, self.allowed_uses);
        e.out
    }

    /// Decode and validate a manifest. Only the deterministic encoding of a
    /// schema-valid manifest is accepted.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Error> {
        let mut d = Decoder {
            input: bytes,
            pos: 0,
        };
        let value = d.value(0)?;
        if d.pos != bytes.len() {
            return Err(malformed("trailing bytes after the manifest"));
        }
        let Value::Map(entries) = value else {
            return Err(malformed("the manifest is not a CBOR map"));
        };
        let mut fields = BTreeMap::new();
        for (k, v) in entries {
            let Value::Uint(k) = k else {
                return Err(malformed("manifest keys must be unsigned integers"));
            };
            fields.insert(k, v);
        }
        // The version decides how to read everything else: check it first.
        match fields.remove(&key::VERSION) {
            Some(Value::Uint(MANIFEST_VERSION)) => {}
            Some(Value::Uint(v)) => {
                return Err(Error::new(
                    Reason::ManifestUnsupportedVersion,
                    format!(
                        "manifest version {v} is not supported (this verifier reads version {MANIFEST_VERSION})"
                    ),
                ));
            }
            _ => {
                return Err(malformed(
                    "the manifest version is missing or not an integer",
                ));
            }
        }
        let mut take = |k: u64| fields.remove(&k);
        let job_id = bytes_field(take(key::JOB_ID), "job id")?;
        let job_id: [u8; 16] = job_id
            .as_slice()
            .try_into()
            .map_err(|_| malformed("the job id must be 16 bytes"))?;
        let executable = file_field(take(key::EXECUTABLE), "executable")?;
        check_executable_name(&executable.name)?;
        let arguments = text_list(take(key::ARGUMENTS), "arguments", limits::MAX_ARGUMENTS)?
            .ok_or_else(|| malformed("the arguments field is missing"))?;
        let environment = match take(key::ENVIRONMENT) {
            None => None,
            Some(Value::Map(entries)) => {
                if entries.len() > limits::MAX_ENVIRONMENT {
                    return Err(limit("too many environment entries"));
                }
                let mut env = BTreeMap::new();
                for (k, v) in entries {
                    match (k, v) {
                        (Value::Text(k), Value::Text(v)) if !k.is_empty() && !k.contains('=') => {
                            env.insert(k, v);
                        }
                        _ => {
                            return Err(malformed(
                                "environment entries must be NAME => value text strings",
                            ));
                        }
                    }
                }
                Some(env)
            }
            Some(_) => return Err(malformed("the environment is not a map")),
        };
        let inputs = match take(key::INPUTS) {
            Some(Value::Array(items)) => {
                if items.len() > limits::MAX_INPUTS {
                    return Err(limit(format!("more than {} inputs", limits::MAX_INPUTS)));
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let f = file_field(Some(item), "input")?;
                    check_input_name(&f.name)?;
                    out.push(f);
                }
                // After the elements: two entries for one path would give
                // two readings of what that file must be.
                check_distinct_inputs(&out)?;
                out
            }
            Some(_) => return Err(malformed("the inputs field is not an array")),
            None => return Err(malformed("the inputs field is missing")),
        };
        let vo = match take(key::VO) {
            None => None,
            Some(Value::Text(s)) if !s.is_empty() => Some(s),
            Some(_) => return Err(malformed("the VO must be a non-empty text string")),
        };
        let sites = text_list(take(key::SITES), "sites", limits::MAX_SITES)?;
        if sites
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.iter().any(String::is_empty))
        {
            return Err(malformed(
                "target sites, when present, must be non-empty names",
            ));
        }
        let not_before = uint_field(take(key::NOT_BEFORE), "not-before")?;
        let not_after = uint_field(take(key::NOT_AFTER), "not-after")?;
        let created = uint_field(take(key::CREATED), "created")?;
        let tool = match take(key::TOOL) {
            Some(Value::Text(s)) => s,
            _ => return Err(malformed("the tool field is missing or not text")),
        };
        let allowed_uses = uint_field(take(key::ALLOWED_USES), "allowed-uses")?;
        if let Some(unknown) = fields.keys().next() {
            return Err(Error::new(
                Reason::ManifestUnknownField,
                format!("the manifest has unknown field {unknown}"),
            ));
        }
        if not_after <= not_before {
            return Err(malformed("not-after is not later than not-before"));
        }
        if not_after - not_before > limits::MAX_MANIFEST_LIFETIME {
            return Err(limit("the manifest validity is longer than 31 days"));
        }
        if allowed_uses == 0 {
            return Err(malformed("allowed-uses must be at least 1"));
        }
        Ok(Manifest {
            job_id,
            executable,
            arguments,
            environment,
            inputs,
            vo,
            sites,
            not_before,
            not_after,
            created,
            tool,
            allowed_uses,
        })
    }
}

/// An executable name is one path component.
fn check_executable_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(malformed(format!("bad executable name {name:?}")));
    }
    Ok(())
}

/// An input name is a relative path that stays below the job directory.
pub fn check_input_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(malformed(format!(
            "bad input name {name:?}: inputs are relative paths without '.' or '..' components"
        )));
    }
    Ok(())
}

/// Input names are distinct, compared as bytes (`spec/jobseal.md` §3.2).
fn check_distinct_inputs(inputs: &[FileDigest]) -> Result<(), Error> {
    let mut names: Vec<&str> = inputs.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w.first() == w.last()) {
        Some(w) => Err(malformed(format!(
            "input {:?} is listed more than once; list each input once",
            w.first().copied().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::new(Reason::ManifestMalformed, msg)
}

fn limit(msg: impl Into<String>) -> Error {
    Error::new(Reason::LimitExceeded, msg)
}

fn uint_field(v: Option<Value>, what: &str) -> Result<u64, Error> {
    match v {
        Some(Value::Uint(n)) => Ok(n),
        _ => Err(malformed(format!(
            "the {what} field is missing or not an unsigned integer"
        ))),
    }
}

fn bytes_field(v: Option<Value>, what: &str) -> Result<Vec<u8>, Error> {
    match v {
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(malformed(format!(
            "the {what} field is missing or not a byte string"
        ))),
    }
}

fn text_list(v: Option<Value>, what: &str, max: usize) -> Result<Option<Vec<String>>, Error> {
    match v {
        None => Ok(None),
        Some(Value::Array(items)) => {
            if items.len() > max {
                return Err(limit(format!("more than {max} {what}")));
            }
            items
                .into_iter()
                .map(|i| match i {
                    Value::Text(s) => Ok(s),
                    _ => Err(malformed(format!("{what} must be text strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(malformed(format!("the {what} field is not an array"))),
    }
}

fn file_field(v: Option<Value>, what: &str) -> Result<FileDigest, Error> {
    let Some(Value::Map(entries)) = v else {
        return Err(malformed(format!("the {what} is missing or not a map")));
    };
    let (mut name, mut size, mut sha) = (None, None, None);
    for (k, v) in entries {
        match (k, v) {
            (Value::Uint(key::FILE_NAME), Value::Text(s)) => name = Some(s),
            (Value::Uint(key::FILE_SIZE), Value::Uint(n)) => size = Some(n),
            (Value::Uint(key::FILE_SHA256), Value::Bytes(b)) => {
                sha = Some(<[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
                    malformed(format!("the {what} digest must be 32 bytes of SHA-256"))
                })?);
            }
            (Value::Uint(k), _) if k > key::FILE_SHA256 => {
                return Err(Error::new(
                    Reason::ManifestUnknownField,
                    format!("the {what} has unknown field {k}"),
                ));
            }
            _ => {
                return Err(malformed(format!(
                    "the {what} has a field of the wrong type"
                )));
            }
        }
    }
    match (name, size, sha) {
        (Some(name), Some(size), Some(sha256)) => Ok(FileDigest { name, size, sha256 }),
        _ => Err(malformed(format!(
            "the {what} needs a name, a size and a SHA-256"
        ))),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    /// A CBOR head with the shortest argument encoding.
    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        let be = arg.to_be_bytes();
        // (additional information, number of argument bytes)
        let (info, len) = match arg {
            0..=23 => (u8::try_from(arg).unwrap_or(0), 0),
            24..=0xff => (24, 1),
            0x100..=0xffff => (25, 2),
            0x1_0000..=0xffff_ffff => (26, 4),
            _ => (27, 8),
        };
        self.out.push(m | info);
        self.out
            .extend_from_slice(be.get(8 - len..).unwrap_or_default());
    }
    fn uint_key(&mut self, k: u64) {
        self.head(0, k);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.out.extend_from_slice(b);
    }
    fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    fn file(&mut self, f: &FileDigest) {
        self.head(5, 3);
        self.uint_key(key::FILE_NAME);
        self.text(&f.name);
        self.uint_key(key::FILE_SIZE);
        self.head(0, f.size);
        self.uint_key(key::FILE_SHA256);
        self.bytes(&f.sha256);
    }
}

/// The CBOR data model subset the schema uses.
#[derive(Debug)]
enum Value {
    Uint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

/// Most elements reserved ahead of reading them.
const PREALLOCATE: usize = 1024;

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or_else(|| malformed("truncated CBOR"))?;
        let s = self
            .input
            .get(self.pos..end)
            .ok_or_else(|| malformed("truncated CBOR"))?;
        self.pos = end;
        Ok(s)
    }

    /// Read a head; refuse non-shortest arguments and indefinite lengths.
    fn head(&mut self) -> Result<(u8, u64), Error> {
        let first = *self
            .take(1)?
            .first()
            .ok_or_else(|| malformed("truncated CBOR"))?;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let len = 1usize << (info - 24);
                let mut arg = 0u64;
                for b in self.take(len)? {
                    arg = (arg << 8) | u64::from(*b);
                }
                let shortest = match info {
                    24 => arg >= 24,
                    25 => arg > 0xff,
                    26 => arg > 0xffff,
                    _ => arg > 0xffff_ffff,
                };
                if !shortest {
                    return Err(Error::new(
                        Reason::ManifestMalformed,
                        "non-deterministic CBOR: an integer or length is not in its shortest form",
                    ));
                }
                arg
            }
            31 => return Err(malformed("non-deterministic CBOR: indefinite length")),
            _ => return Err(malformed("reserved CBOR additional information")),
        };
        Ok((major, arg))
    }

    fn len(&self, arg: u64) -> Result<usize, Error> {
        let n = usize::try_from(arg).map_err(|_| malformed("CBOR length too large"))?;
        // Every element takes at least one byte: a length beyond the input is
        // refused before allocating for it.
        if n > self.input.len().saturating_sub(self.pos) {
            return Err(malformed("truncated CBOR: length beyond the end of input"));
        }
        Ok(n)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth >= limits::MAX_CBOR_DEPTH {
            return Err(limit("CBOR nesting is deeper than the schema allows"));
        }
        let start = self.pos;
        let (major, arg) = self.head()?;
        match major {
            0 => Ok(Value::Uint(arg)),
            2 | 3 => {
                let n = self.len(arg)?;
                if major == 3 && n > limits::MAX_STRING_BYTES {
                    return Err(limit("a text string is longer than 16 KiB"));
                }
                let raw = self.take(n)?.to_vec();
                if major == 2 {
                    Ok(Value::Bytes(raw))
                } else {
                    String::from_utf8(raw)
                        .map(Value::Text)
                        .map_err(|_| malformed("a text string is not valid UTF-8"))
                }
            }
            4 => {
                let n = self.len(arg)?;
                // No array of the schema is longer than the inputs list:
                // refuse before reading (or reserving for) its elements.
                if n > limits::MAX_INPUTS {
                    return Err(limit(format!(
                        "a CBOR array of {n} items is longer than any the schema allows"
                    )));
                }
                let mut items = Vec::with_capacity(n.min(PREALLOCATE));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let n = self.len(arg)?;
                if n > limits::MAX_ENVIRONMENT {
                    return Err(limit(format!(
                        "a CBOR map of {n} entries is larger than any the schema allows"
                    )));
                }
                let mut entries = Vec::with_capacity(n.min(PREALLOCATE));
                let mut previous: Option<&[u8]> = None;
                let input = self.input;
                for _ in 0..n {
                    let key_start = self.pos;
                    let k = self.value(depth + 1)?;
                    let key_bytes = input.get(key_start..self.pos).unwrap_or_default();
                    if let Some(p) = previous
                        && p >= key_bytes
                    {
                        return Err(malformed(
                            "non-deterministic CBOR: map keys not in ascending order, or repeated",
                        ));
                    }
                    previous = Some(key_bytes);
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                Ok(Value::Map(entries))
            }
            1 => Err(malformed("negative integers are not used by the manifest")),
            6 => Err(malformed("CBOR tags are not used by the manifest")),
            _ => {
                let _ = start;
                Err(malformed(
                    "floats and simple values are not used by the manifest",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            job_id: [0x11; 16],
            executable: FileDigest {
                name: "run.sh".into(),
                size: 42,
                sha256: [0xaa; 32],
            },
            arguments: vec!["--events".into(), "1000".into()],
            environment: Some(BTreeMap::from([
                ("LONGER_NAME".to_string(), "x".to_string()),
                ("B".to_string(), "y".to_string()),
            ])),
            inputs: vec![FileDigest {
                name: "data/in.root".into(),
                size: 1 << 20,
                sha256: [0xbb; 32],
            }],
            vo: Some("atlas".into()),
            sites: Some(vec!["NIKHEF-ELPROD".into()]),
            not_before: 1_800_000_000,
            not_after: 1_800_086_400,
            created: 1_800_000_000,
            tool: "jobseal/0.1.0".into(),
            allowed_uses: 1,
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let bytes = m.to_cbor();
        assert_eq!(Manifest::from_cbor(&bytes).unwrap(), m);
    }

    #[test]
    fn environment_keys_are_in_deterministic_order() {
        // "B" (1 byte) sorts before "LONGER_NAME" although 'L' > 'B' anyway;
        // check a case where length decides against plain string order.
        let mut m = sample();
        m.environment = Some(BTreeMap::from([
            ("AA".to_string(), "1".to_string()),
            ("Z".to_string(), "2".to_string()),
        ]));
        let bytes = m.to_cbor();
        assert_eq!(Manifest::from_cbor(&bytes).unwrap(), m);
    }

    #[test]
    fn unknown_version_is_refused_before_anything_else() {
        let mut bytes = sample().to_cbor();
        // Map head, then key 1, then the version value 1.
        assert_eq!(&bytes[1..3], &[0x01, 0x01]);
        bytes[2] = 0x02;
        let err = Manifest::from_cbor(&bytes).unwrap_err();
        assert_eq!(err.reason, Reason::ManifestUnsupportedVersion);
    }

    #[test]
    fn non_shortest_integer_is_refused() {
        let bytes = sample().to_cbor();
        // Re-encode the version as a one-byte argument (0x18 0x01).
        let mut long = vec![bytes[0], 0x01, 0x18, 0x01];
        long.extend_from_slice(&bytes[3..]);
        let err = Manifest::from_cbor(&long).unwrap_err();
        assert_eq!(err.reason, Reason::ManifestMalformed);
        assert!(err.message.contains("shortest"), "{}", err.message);
    }

    #[test]
    fn unknown_field_is_refused() {
        let m = sample();
        let mut bytes = m.to_cbor();
        // Bump the field count and append key 14 => 0.
        bytes[0] += 1;
        bytes.extend_from_slice(&[0x0e, 0x00]);
        let err = Manifest::from_cbor(&bytes).unwrap_err();
        assert_eq!(err.reason, Reason::ManifestUnknownField);
    }

    #[test]
    fn trailing_bytes_and_truncation_are_refused() {
        let mut bytes = sample().to_cbor();
        bytes.push(0);
        assert_eq!(
            Manifest::from_cbor(&bytes).unwrap_err().reason,
            Reason::ManifestMalformed
        );
        let bytes = sample().to_cbor();
        for cut in 0..bytes.len() {
            assert!(Manifest::from_cbor(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn input_names_must_stay_below_the_job_directory() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/"] {
            assert!(check_input_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_input_name("data/in.root").is_ok());
    }

    #[test]
    fn an_input_listed_twice_is_refused() {
        let mut m = sample();
        let first = m.inputs[0].clone();
        m.inputs.push(FileDigest {
            name: "other".into(),
            ..first.clone()
        });
        // Same name, other digest: the manifest would say two things.
        m.inputs.push(FileDigest {
            sha256: [0xcc; 32],
            ..first
        });
        let err = Manifest::from_cbor(&m.to_cbor()).unwrap_err();
        assert_eq!(err.reason, Reason::ManifestMalformed);
        assert!(err.message.contains("data/in.root"), "{}", err.message);
        // Names that differ only in case or form are distinct (bytes).
        m.inputs.pop();
        m.inputs.push(FileDigest {
            name: "Data/in.root".into(),
            ..m.inputs[0].clone()
        });
        assert!(Manifest::from_cbor(&m.to_cbor()).is_ok());
    }

    #[test]
    fn huge_counts_are_refused_before_allocation() {
        // A map claiming 2^32-1 entries, an array claiming 2^20 items.
        assert_eq!(
            Manifest::from_cbor(&[0xba, 0xff, 0xff, 0xff, 0xff])
                .unwrap_err()
                .reason,
            Reason::ManifestMalformed
        );
        let mut big = vec![0xa1, 0x04, 0x9a, 0x00, 0x10, 0x00, 0x00];
        big.extend(std::iter::repeat_n(0x60, 1 << 20));
        assert_eq!(
            Manifest::from_cbor(&big).unwrap_err().reason,
            Reason::LimitExceeded
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = vec![0x81u8; 10_000];
        assert_eq!(
            Manifest::from_cbor(&deep).unwrap_err().reason,
            Reason::LimitExceeded
        );
    }
}

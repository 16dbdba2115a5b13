//! Object identifiers.
//!
//! jobseal's own arc sits under `1.3.6.1.4.1.32473`, the IANA Private
//! Enterprise Number reserved for documentation (RFC 5612). Every arc fits in
//! 32 bits, as `const-oid` requires. A production deployment must move to an
//! arc under its own Private Enterprise Number; see `spec/jobseal.md` §2.1.

use der::asn1::ObjectIdentifier as Oid;

/// The jobseal arc: `1.3.6.1.4.1.32473.7325`.
pub const JOBSEAL_ARC: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.7325");
/// The `JobBinding` certificate extension.
pub const JOB_BINDING: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.7325.1.1");
/// The proxy policy language of a job-bound proxy (RFC 3820 §3.8.1).
pub const PPL_JOB_BOUND: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.7325.2.1");
/// Permitted use: identity-switch execution (gLExec and compatible launchers).
pub const USE_IDENTITY_SWITCH: Oid = Oid::new_unwrap("1.3.6.1.4.1.32473.7325.3.1");

/// RFC 3820 `id-pe-proxyCertInfo`.
pub const PROXY_CERT_INFO: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.14");
/// RFC 3820 `id-ppl-inheritAll`.
pub const PPL_INHERIT_ALL: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.21.1");
/// RFC 3820 `id-ppl-independent`.
pub const PPL_INDEPENDENT: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.21.2");
/// Globus limited-proxy policy language.
pub const PPL_LIMITED: Oid = Oid::new_unwrap("1.3.6.1.4.1.3536.1.1.1.9");
/// GT3 draft ProxyCertInfo (pre-RFC 3820).
pub const PROXY_CERT_INFO_GT3: Oid = Oid::new_unwrap("1.3.6.1.4.1.3536.1.222");
/// VOMS attribute certificate sequence extension.
pub const VOMS_AC_SEQ: Oid = Oid::new_unwrap("1.3.6.1.4.1.8005.100.100.5");

/// `id-sha256`.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");

// Certificate extensions of RFC 5280.
pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
pub const ISSUER_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.18");
pub const EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
pub const AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
pub const CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");

/// `commonName`.
pub const CN: Oid = Oid::new_unwrap("2.5.4.3");

// Public key and signature algorithms.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const MD5_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.4");
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");

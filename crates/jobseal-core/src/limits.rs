//! Size limits of every input (`spec/jobseal.md` §7). Exceeding one is a deny
//! with reason `limits.exceeded` before any expensive work is done.

/// Largest bundle file, in bytes (a manifest of 100 000 inputs fits).
pub const MAX_BUNDLE_BYTES: usize = 32 * 1024 * 1024;
/// Largest number of certificates in a bundle (job-bound proxy included).
pub const MAX_CHAIN_CERTS: usize = 12;
/// Largest single certificate, in bytes.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Largest COSE_Sign1 envelope, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 24 * 1024 * 1024;
/// Most inputs a manifest may list.
pub const MAX_INPUTS: usize = 100_000;
/// Most arguments.
pub const MAX_ARGUMENTS: usize = 4096;
/// Most environment entries.
pub const MAX_ENVIRONMENT: usize = 1024;
/// Most target sites.
pub const MAX_SITES: usize = 256;
/// Longest text string (argument, name, path, VO, site), in bytes.
pub const MAX_STRING_BYTES: usize = 16 * 1024;
/// Deepest CBOR nesting (the schema needs 3).
pub const MAX_CBOR_DEPTH: usize = 4;
/// Longest manifest validity, in seconds (31 days).
pub const MAX_MANIFEST_LIFETIME: u64 = 31 * 86_400;
/// Largest CRL file (`<hash>.rN` of the CA directory), in bytes.
pub const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
/// Most CRL files (`<hash>.r0` to `<hash>.r15`) read for one issuer.
pub const MAX_CRL_FILES: usize = 16;
/// Largest `.namespaces` or `.signing_policy` file, in bytes.
pub const MAX_POLICY_FILE_BYTES: usize = 256 * 1024;

//! The bundle: one PEM file holding the job-bound proxy, its issuer chain and
//! the signed manifest, usable as `GLEXEC_CLIENT_CERT` (`spec/jobseal.md` §4).

use crate::limits;
use crate::pem::{encode_block, parse_blocks};
use crate::reason::{Error, Reason};

/// PEM label of the COSE_Sign1 manifest block.
pub const MANIFEST_LABEL: &str = "JOBSEAL MANIFEST";

/// A parsed bundle: certificates leaf first, and the COSE_Sign1 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// DER certificates: the job-bound proxy, then each issuer up to (at
    /// least) the end-entity certificate.
    pub certificates: Vec<Vec<u8>>,
    /// The tagged COSE_Sign1 envelope of the manifest.
    pub manifest: Vec<u8>,
}

impl Bundle {
    /// Parse a bundle, enforcing its layout and size limits.
    pub fn parse(text: &[u8]) -> Result<Self, Error> {
        if text.len() > limits::MAX_BUNDLE_BYTES {
            return Err(Error::new(
                Reason::LimitExceeded,
                format!(
                    "the bundle is larger than {} bytes",
                    limits::MAX_BUNDLE_BYTES
                ),
            ));
        }
        let blocks = parse_blocks(text).map_err(|e| Error::new(Reason::BundleMalformed, e.0))?;
        let mut certificates = Vec::new();
        let mut manifests = Vec::new();
        for block in blocks {
            // Header lines are for encrypted keys; in a certificate or the
            // manifest they would be text no signature covers (§4).
            let signed_block = block.label == "CERTIFICATE" || block.label == MANIFEST_LABEL;
            if signed_block && !block.headers.is_empty() {
                return Err(Error::new(
                    Reason::BundleMalformed,
                    format!(
                        "the {} block has RFC 1421 header lines; remove them",
                        block.label
                    ),
                ));
            }
            match block.label.as_str() {
                "CERTIFICATE" => {
                    if block.der.len() > limits::MAX_CERT_BYTES {
                        return Err(Error::new(
                            Reason::LimitExceeded,
                            "a certificate is larger than 64 KiB",
                        ));
                    }
                    certificates.push(block.der);
                }
                MANIFEST_LABEL => manifests.push(block.der),
                label if label.contains("PRIVATE KEY") => {
                    return Err(Error::new(
                        Reason::BundlePrivateKey,
                        "the bundle carries a private key; a job bundle never does (was a plain proxy given?)",
                    ));
                }
                label => {
                    return Err(Error::new(
                        Reason::BundleMalformed,
                        format!("unexpected PEM block {label:?} in the bundle"),
                    ));
                }
            }
        }
        if certificates.is_empty() {
            return Err(Error::new(
                Reason::BundleMalformed,
                "the bundle holds no certificate",
            ));
        }
        if certificates.len() > limits::MAX_CHAIN_CERTS {
            return Err(Error::new(
                Reason::LimitExceeded,
                format!(
                    "the bundle holds more than {} certificates",
                    limits::MAX_CHAIN_CERTS
                ),
            ));
        }
        let manifest = match <[Vec<u8>; 1]>::try_from(manifests) {
            Ok([m]) => m,
            Err(m) => {
                return Err(Error::new(
                    Reason::BundleManifestCount,
                    format!(
                        "the bundle holds {} {MANIFEST_LABEL} blocks, expected exactly one",
                        m.len()
                    ),
                ));
            }
        };
        if manifest.len() > limits::MAX_MANIFEST_BYTES {
            return Err(Error::new(
                Reason::LimitExceeded,
                "the signed manifest is too large",
            ));
        }
        Ok(Self {
            certificates,
            manifest,
        })
    }

    /// PEM text: certificates leaf first, then the manifest.
    pub fn to_pem(&self) -> String {
        let mut out = String::new();
        for c in &self.certificates {
            out.push_str(&encode_block("CERTIFICATE", c));
        }
        out.push_str(&encode_block(MANIFEST_LABEL, &self.manifest));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_text(cert_block: &str) -> String {
        format!(
            "{cert_block}{}",
            encode_block(MANIFEST_LABEL, &[0xd2, 0x84])
        )
    }

    #[test]
    fn header_lines_in_a_certificate_block_are_refused() {
        let plain = encode_block("CERTIFICATE", &[0x30, 0x00]);
        assert!(Bundle::parse(bundle_text(&plain).as_bytes()).is_ok());
        let with_header = plain.replacen("-----\n", "-----\nComment: x\n\n", 1);
        let err = Bundle::parse(bundle_text(&with_header).as_bytes()).unwrap_err();
        assert_eq!(err.reason, Reason::BundleMalformed);
        assert!(err.message.contains("header"), "{}", err.message);
    }

    #[test]
    fn a_private_key_with_headers_is_still_a_private_key() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,0011\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let text = format!(
            "{}{key}",
            bundle_text(&encode_block("CERTIFICATE", &[0x30, 0x00]))
        );
        assert_eq!(
            Bundle::parse(text.as_bytes()).unwrap_err().reason,
            Reason::BundlePrivateKey
        );
    }

    #[test]
    fn base64_with_nonzero_discarded_bits_is_refused() {
        // "AAE=" is [0, 1]; "AAF=" sets a bit past the second byte.
        let ok = "-----BEGIN CERTIFICATE-----\nAAE=\n-----END CERTIFICATE-----\n";
        assert!(Bundle::parse(bundle_text(ok).as_bytes()).is_ok());
        let bad = ok.replace("AAE=", "AAF=");
        assert_eq!(
            Bundle::parse(bundle_text(&bad).as_bytes())
                .unwrap_err()
                .reason,
            Reason::BundleMalformed
        );
    }

    #[test]
    fn a_begin_line_inside_an_open_block_is_refused() {
        let cert = encode_block("CERTIFICATE", &[0x30, 0x00]);
        let unclosed = cert.replace("-----END CERTIFICATE-----\n", "");
        let text = bundle_text(&format!("{unclosed}{cert}"));
        assert_eq!(
            Bundle::parse(text.as_bytes()).unwrap_err().reason,
            Reason::BundleMalformed
        );
    }
}

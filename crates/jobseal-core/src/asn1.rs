//! ASN.1 types of RFC 3820 `ProxyCertInfo` and of jobseal's `JobBinding`
//! extension (`spec/JobBinding.asn1`).

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extension;

use crate::oid;

/// ```text
/// ProxyCertInfo ::= SEQUENCE {
///     pCPathLenConstraint   INTEGER (0..MAX) OPTIONAL,
///     proxyPolicy           ProxyPolicy }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ProxyCertInfo {
    #[asn1(optional = "true")]
    pub path_len_constraint: Option<u32>,
    pub proxy_policy: ProxyPolicy,
}

/// ```text
/// ProxyPolicy ::= SEQUENCE {
///     policyLanguage  OBJECT IDENTIFIER,
///     policy          OCTET STRING OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ProxyPolicy {
    pub policy_language: ObjectIdentifier,
    #[asn1(optional = "true")]
    pub policy: Option<OctetString>,
}

/// The version of `JobBinding` this crate implements.
pub const JOB_BINDING_V1: u32 = 1;

/// ```text
/// JobBinding ::= SEQUENCE {
///     version          INTEGER { v1(1) },
///     manifestDigest   ManifestDigest,
///     permittedUses    SEQUENCE SIZE (1..MAX) OF OBJECT IDENTIFIER,
///     extensions       [0] EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct JobBinding {
    pub version: u32,
    pub manifest_digest: ManifestDigest,
    pub permitted_uses: Vec<ObjectIdentifier>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub extensions: Option<Vec<Extension>>,
}

/// ```text
/// ManifestDigest ::= SEQUENCE {
///     digestAlgorithm  AlgorithmIdentifier,   -- id-sha256, parameters absent
///     digest           OCTET STRING }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ManifestDigest {
    pub digest_algorithm: AlgorithmIdentifierOwned,
    pub digest: OctetString,
}

impl JobBinding {
    /// A v1 binding to a manifest's SHA-256 for identity-switch execution.
    pub fn for_identity_switch(manifest_sha256: &[u8; 32]) -> Result<Self, der::Error> {
        Ok(Self {
            version: JOB_BINDING_V1,
            manifest_digest: ManifestDigest {
                digest_algorithm: AlgorithmIdentifierOwned {
                    oid: oid::SHA256,
                    parameters: None,
                },
                digest: OctetString::new(manifest_sha256.as_slice())?,
            },
            permitted_uses: vec![oid::USE_IDENTITY_SWITCH],
            extensions: None,
        })
    }

    /// Decode from DER, requiring the whole input to be consumed.
    pub fn from_der_strict(bytes: &[u8]) -> Result<Self, der::Error> {
        Self::from_der(bytes)
    }

    /// The bound SHA-256 digest, if the algorithm is SHA-256 and the length fits.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        if self.manifest_digest.digest_algorithm.oid != oid::SHA256 {
            return None;
        }
        // id-sha256 parameters are absent (RFC 5754); a NULL is tolerated as
        // some encoders emit it.
        match &self.manifest_digest.digest_algorithm.parameters {
            None => {}
            Some(p) if der::Tagged::tag(p) == der::Tag::Null && p.value().is_empty() => {}
            Some(_) => return None,
        }
        self.manifest_digest.digest.as_bytes().try_into().ok()
    }
}

/// The keyUsage bits of an encoded KeyUsage extension value, bit 0
/// (digitalSignature) as the lowest bit; `None` if malformed.
pub fn key_usage_bits(ext_value: &[u8]) -> Option<u16> {
    let bits = crate::tlv::read_all(ext_value)?;
    if bits.tag != 0x03 {
        return None;
    }
    let (&unused, bytes) = bits.value.split_first()?;
    if unused > 7 || bytes.len() > 2 || (bytes.is_empty() && unused != 0) {
        return None;
    }
    // DER (X.690 11.2.2): a named bit list without trailing zero bits, so
    // the unused bits are exactly the zero bits after the last one set; a
    // set unused bit would be read by one parser as a usage and ignored by
    // another.
    if let Some(&last) = bytes.last()
        && (last == 0 || u32::from(unused) != last.trailing_zeros())
    {
        return None;
    }
    let mut out = 0u16;
    for (i, b) in bytes.iter().enumerate() {
        for bit in 0..8 {
            if b & (0x80 >> bit) != 0 {
                out |= 1 << (i * 8 + bit);
            }
        }
    }
    Some(out)
}

/// keyUsage digitalSignature.
pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
/// keyUsage keyCertSign.
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn key_usage_must_be_der() {
        // digitalSignature alone, DER.
        assert_eq!(
            key_usage_bits(&[0x03, 0x02, 0x07, 0x80]),
            Some(KU_DIGITAL_SIGNATURE)
        );
        // digitalSignature + keyEncipherment (0xa0: 5 trailing zero bits).
        assert_eq!(key_usage_bits(&[0x03, 0x02, 0x05, 0xa0]), Some(0b101));
        // The same with trailing zero bits counted as used, or a trailing
        // zero byte: not DER.
        assert_eq!(key_usage_bits(&[0x03, 0x02, 0x00, 0x80]), None);
        assert_eq!(key_usage_bits(&[0x03, 0x03, 0x07, 0x80, 0x00]), None);
        // Seven unused bits that are set (one of them keyCertSign).
        assert_eq!(key_usage_bits(&[0x03, 0x02, 0x07, 0xff]), None);
        assert_eq!(key_usage_bits(&[0x03, 0x03, 0x07, 0x80, 0x81]), None);
        // No usage at all.
        assert_eq!(key_usage_bits(&[0x03, 0x01, 0x00]), Some(0));
    }

    #[test]
    fn job_binding_round_trips() {
        let b = JobBinding::for_identity_switch(&[7u8; 32]).unwrap();
        let der = b.to_der().unwrap();
        let back = JobBinding::from_der_strict(&der).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.sha256(), Some([7u8; 32]));
    }

    #[test]
    fn proxy_cert_info_path_len_is_optional() {
        let pci = ProxyCertInfo {
            path_len_constraint: None,
            proxy_policy: ProxyPolicy {
                policy_language: oid::PPL_INHERIT_ALL,
                policy: None,
            },
        };
        let der = pci.to_der().unwrap();
        assert_eq!(ProxyCertInfo::from_der(&der).unwrap(), pci);
        let with_len = ProxyCertInfo {
            path_len_constraint: Some(0),
            ..pci
        };
        let der = with_len.to_der().unwrap();
        assert_eq!(
            ProxyCertInfo::from_der(&der).unwrap().path_len_constraint,
            Some(0)
        );
    }
}

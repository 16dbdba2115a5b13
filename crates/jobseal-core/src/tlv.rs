//! A minimal DER TLV walker, used where exact bytes matter: the signed
//! `TBSCertificate`, names compared and hashed as encoded, and the subject of
//! a new proxy built from its issuer's subject without re-encoding.

/// One DER element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (single-byte tags only).
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element, header included.
    pub raw: &'a [u8],
}

/// Read one element at the start of `input`; return it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tag numbers are not used by X.509
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None; // indefinite or absurd lengths
        }
        let (bytes, tail) = rest.split_at_checked(n)?;
        rest = tail;
        if bytes.first() == Some(&0) {
            return None; // not minimal
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None; // not minimal
        }
        len
    };
    let header_len = input.len() - rest.len();
    let (value, tail) = rest.split_at_checked(len)?;
    let raw = input.get(..header_len + len)?;
    Some((Tlv { tag, value, raw }, tail))
}

/// Read exactly one element that spans all of `input`.
pub fn read_all(input: &[u8]) -> Option<Tlv<'_>> {
    match read(input)? {
        (tlv, []) => Some(tlv),
        _ => None,
    }
}

/// The elements inside a constructed value.
pub fn children(mut value: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read(value)?;
        out.push(tlv);
        value = rest;
    }
    Some(out)
}

/// Encode a DER header for `tag` and `len`, followed by nothing.
pub fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    match (len < 0x80, significant) {
        (true, [short]) => out.push(*short),
        (true, _) => out.push(0),
        (false, _) => {
            // At most 8 length bytes, so the count fits in the low bits.
            out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
            out.extend_from_slice(significant);
        }
    }
    out
}

/// The raw parts of a certificate, as encoded.
#[derive(Clone, Copy, Debug)]
pub struct RawCert<'a> {
    /// The whole `TBSCertificate` element: the bytes the signature covers.
    pub tbs: &'a [u8],
    /// The issuer `Name` element.
    pub issuer: &'a [u8],
    /// The subject `Name` element.
    pub subject: &'a [u8],
    /// The `SubjectPublicKeyInfo` element.
    pub spki: &'a [u8],
}

impl<'a> RawCert<'a> {
    /// Split a DER certificate into its raw parts.
    pub fn split(cert: &'a [u8]) -> Option<Self> {
        let outer = read_all(cert)?;
        let (tbs, _) = read(outer.value)?;
        let mut fields = children(tbs.value)?.into_iter().peekable();
        if fields.peek().map(|t| t.tag) == Some(0xa0) {
            fields.next(); // version
        }
        let _serial = fields.next()?;
        let _signature = fields.next()?;
        let issuer = fields.next()?;
        let _validity = fields.next()?;
        let subject = fields.next()?;
        let spki = fields.next()?;
        Some(Self {
            tbs: tbs.raw,
            issuer: issuer.raw,
            subject: subject.raw,
            spki: spki.raw,
        })
    }
}

/// The raw parts of a CRL (`CertificateList`, RFC 5280 §5.1), as encoded.
#[derive(Clone, Copy, Debug)]
pub struct RawCrl<'a> {
    /// The whole `TBSCertList` element: the bytes the signature covers.
    pub tbs: &'a [u8],
    /// Whether `TBSCertList` carries its (optional) version field.
    pub has_version: bool,
    /// The issuer `Name` element.
    pub issuer: &'a [u8],
}

impl<'a> RawCrl<'a> {
    /// Split a DER CRL into its raw parts.
    pub fn split(crl: &'a [u8]) -> Option<Self> {
        let outer = read_all(crl)?;
        let (tbs, _) = read(outer.value)?;
        let mut fields = children(tbs.value)?.into_iter().peekable();
        // version is an untagged INTEGER, present only in v2 CRLs.
        let has_version = fields.peek().map(|t| t.tag) == Some(0x02);
        if has_version {
            fields.next();
        }
        let _signature = fields.next()?;
        let issuer = fields.next()?;
        Some(Self {
            tbs: tbs.raw,
            has_version,
            issuer: issuer.raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let mut enc = header(0x30, len);
            enc.extend(std::iter::repeat_n(0u8, len));
            let tlv = read_all(&enc).unwrap();
            assert_eq!(tlv.value.len(), len);
        }
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        assert!(read(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_none());
        assert!(read(&[0x30, 0x82, 0x00, 0x80]).is_none());
        assert!(read(&[0x30, 0x80]).is_none());
        assert!(read(&[0x30, 0x05, 0]).is_none());
    }
}

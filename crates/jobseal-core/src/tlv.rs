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

/// The elements inside a constructed value, one at a time, without
/// collecting them: `Some(Err(()))` for a malformed element, then the end.
pub fn iter(value: &[u8]) -> Children<'_> {
    Children { rest: Some(value) }
}

/// Iterator of [`iter`].
#[derive(Clone, Debug)]
pub struct Children<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.filter(|r| !r.is_empty())?;
        match read(rest) {
            Some((tlv, tail)) => {
                self.rest = Some(tail);
                Some(Ok(tlv))
            }
            None => {
                self.rest = None;
                Some(Err(()))
            }
        }
    }
}

/// The first `N` elements inside a constructed value, as [`children`] would
/// give them (every element, also past the first `N`, must be well formed),
/// without allocating; `None` if there are fewer than `N`.
pub fn leading<const N: usize>(value: &[u8]) -> Option<[Tlv<'_>; N]> {
    let empty = Tlv {
        tag: 0,
        value: &[],
        raw: &[],
    };
    let mut out = [empty; N];
    let mut count = 0usize;
    for tlv in iter(value) {
        let tlv = tlv.ok()?;
        if let Some(slot) = out.get_mut(count) {
            *slot = tlv;
        }
        count += 1;
    }
    (count >= N).then_some(out)
}

/// Exactly the `N` elements inside a constructed value; `None` if it holds
/// more or fewer, or any is malformed.
pub fn exactly<const N: usize>(value: &[u8]) -> Option<[Tlv<'_>; N]> {
    let mut rest = value;
    let empty = Tlv {
        tag: 0,
        value: &[],
        raw: &[],
    };
    let mut out = [empty; N];
    for slot in &mut out {
        let (tlv, tail) = read(rest)?;
        *slot = tlv;
        rest = tail;
    }
    rest.is_empty().then_some(out)
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

    /// `iter`, `leading` and `exactly` agree with `children` on well-formed
    /// and malformed contents, also when the bad element is past the ones
    /// asked for.
    #[test]
    fn walkers_agree_with_children() {
        let cases: [&[u8]; 6] = [
            &[],
            &[0x02, 0x01, 0x07],
            &[0x02, 0x01, 0x07, 0x04, 0x00],
            &[0x02, 0x01, 0x07, 0x04, 0x00, 0x05, 0x00],
            &[0x02, 0x01, 0x07, 0x04, 0x05, 0x00],
            &[0x02, 0x01],
        ];
        for value in cases {
            let all = children(value);
            let walked: Result<Vec<_>, ()> = iter(value).collect();
            assert_eq!(walked.ok(), all, "{value:?}");
            let first = |n: usize| {
                all.as_ref()
                    .filter(|v| v.len() >= n)
                    .map(|v| v[..n].to_vec())
            };
            assert_eq!(leading::<1>(value).map(Vec::from), first(1), "{value:?}");
            assert_eq!(leading::<2>(value).map(Vec::from), first(2), "{value:?}");
            let exact = all.clone().filter(|v| v.len() == 2);
            assert_eq!(exactly::<2>(value).map(Vec::from), exact, "{value:?}");
        }
    }
}

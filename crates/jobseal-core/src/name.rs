//! Distinguished names: OpenSSL's canonical form and subject hash (the key of
//! an IGTF CA directory), comparison, and the `/DC=…/CN=…` text grid tools
//! print.

use crate::tlv;

const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const VISIBLE_STRING: u8 = 0x1a;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;

/// One attribute of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// OID contents bytes.
    pub oid: &'a [u8],
    /// The value element as encoded.
    pub value: tlv::Tlv<'a>,
}

/// The RDNs of a `Name` element, each a set of attributes; `None` if the
/// encoding is not a Name.
pub fn rdns(name: &[u8]) -> Option<Vec<Vec<Attribute<'_>>>> {
    let seq = tlv::read_all(name)?;
    if seq.tag != SEQUENCE {
        return None;
    }
    let mut out = Vec::new();
    for set in tlv::iter(seq.value) {
        let set = set.ok()?;
        if set.tag != SET {
            return None;
        }
        let mut attrs = Vec::new();
        for atv in tlv::iter(set.value) {
            let atv = atv.ok()?;
            match (atv.tag, tlv::exactly::<2>(atv.value)?) {
                (SEQUENCE, [oid, value]) if oid.tag == OID && oid_is_der(oid.value) => {
                    attrs.push(Attribute {
                        oid: oid.value,
                        value,
                    })
                }
                _ => return None,
            }
        }
        if attrs.is_empty() {
            return None;
        }
        out.push(attrs);
    }
    Some(out)
}

/// Whether OID contents are DER: every arc in the fewest base-128 digits
/// (no leading 0x80), the last digit complete. A padded arc would print
/// like the minimal one while comparing unequal (§6.8).
fn oid_is_der(contents: &[u8]) -> bool {
    let mut arc_start = true;
    for &b in contents {
        if arc_start && b == 0x80 {
            return false;
        }
        arc_start = b & 0x80 == 0;
    }
    !contents.is_empty() && arc_start
}

/// Decode a directory string to UTF-8, as OpenSSL's `ASN1_STRING_to_UTF8`:
/// UTF8String as UTF-8, the one-byte string types byte for byte (Latin-1),
/// BMPString as strict UCS-2 (no surrogates), UniversalString as UCS-4.
/// `None` if the value cannot be converted.
pub fn string_value(v: &tlv::Tlv<'_>) -> Option<String> {
    match v.tag {
        UTF8_STRING => std::str::from_utf8(v.value).ok().map(str::to_string),
        PRINTABLE_STRING | IA5_STRING | VISIBLE_STRING | T61_STRING => {
            Some(v.value.iter().map(|&b| char::from(b)).collect())
        }
        BMP_STRING => v
            .value
            .chunks(2)
            .map(|c| match c {
                [a, b] => char::from_u32(u32::from(u16::from_be_bytes([*a, *b]))),
                _ => None,
            })
            .collect(),
        UNIVERSAL_STRING => v
            .value
            .chunks(4)
            .map(|c| match c {
                [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Whether the tag is one of the string types OpenSSL canonicalises.
fn is_string_type(tag: u8) -> bool {
    matches!(
        tag,
        UTF8_STRING
            | PRINTABLE_STRING
            | IA5_STRING
            | VISIBLE_STRING
            | T61_STRING
            | BMP_STRING
            | UNIVERSAL_STRING
    )
}

/// OpenSSL's canonical encoding of a name (`x509_name_canon`): string values
/// converted to UTF-8, trimmed, inner whitespace collapsed, ASCII lowercased
/// and re-tagged UTF8String; the RDN sets concatenated without the outer
/// SEQUENCE. Two names match iff their canonical encodings are equal.
pub fn canonical(name: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for rdn in rdns(name)? {
        let mut set = Vec::new();
        for attr in rdn {
            let value = match string_value(&attr.value) {
                // A string type that cannot be converted: the name cannot be read.
                None if is_string_type(attr.value.tag) => return None,
                Some(s) => {
                    let canon = canonical_string(&s);
                    let mut v = tlv::header(UTF8_STRING, canon.len());
                    v.extend_from_slice(canon.as_bytes());
                    v
                }
                _ => attr.value.raw.to_vec(),
            };
            let mut oid = tlv::header(OID, attr.oid.len());
            oid.extend_from_slice(attr.oid);
            let mut atv = tlv::header(SEQUENCE, oid.len() + value.len());
            atv.extend_from_slice(&oid);
            atv.extend_from_slice(&value);
            set.push(atv);
        }
        // DER SET OF: elements sorted by their encodings (OpenSSL re-encodes).
        set.sort();
        let body: Vec<u8> = set.concat();
        out.extend_from_slice(&tlv::header(SET, body.len()));
        out.extend_from_slice(&body);
    }
    Some(out)
}

fn canonical_string(s: &str) -> String {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.trim_matches(is_space).chars() {
        if is_space(c) {
            pending_space = true;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// OpenSSL's `X509_NAME_hash` (the file name stem of an IGTF CA directory).
pub fn openssl_hash(name: &[u8]) -> Option<u32> {
    openssl_hash_of_canonical(&canonical(name)?)
}

/// [`openssl_hash`] of a name already in [`canonical`] form (for callers
/// that keep the canonical form).
pub fn openssl_hash_of_canonical(canon: &[u8]) -> Option<u32> {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, canon);
    let b = d.as_ref();
    Some(u32::from_le_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Whether two encoded names match (canonical comparison, as OpenSSL).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a == b || matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

fn short_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x2a] => "GN",
        [0x55, 0x04, 0x04] => "SN",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        _ => return None,
    })
}

/// The `/DC=org/DC=example/CN=Jane Doe` form grid tools print, made
/// unambiguous (`spec/jobseal.md` §6.8): two names render alike only if they
/// are equal names (§5). In values, `\\`, `/` and `+` are escaped with a
/// backslash, as is a leading `#`; control characters are written `\xHH`; a
/// value that is not a string is `#` and the hex of its DER (RFC 4514). A
/// name without those characters reads as OpenSSL's one-line form.
pub fn to_slash_string(name: &[u8]) -> String {
    let Some(rdns) = rdns(name) else {
        // Never an identity: certificates whose names do not read are
        // refused when parsed.
        return format!("<malformed name #{}>", hex(name));
    };
    let mut out = String::new();
    for rdn in rdns {
        for (i, attr) in rdn.iter().enumerate() {
            out.push(if i == 0 { '/' } else { '+' });
            push_type(&mut out, attr.oid);
            out.push('=');
            match string_value(&attr.value) {
                Some(s) => push_value(&mut out, &s),
                None => {
                    out.push('#');
                    out.push_str(&hex(attr.value.raw));
                }
            }
        }
    }
    out
}

/// An attribute type: its short name, else its dotted OID, else `?` and the
/// hex of the OID's contents (never `=`, `/` or `+`).
fn push_type(out: &mut String, oid: &[u8]) {
    match short_name(oid) {
        Some(s) => out.push_str(s),
        None => match der::asn1::ObjectIdentifier::from_bytes(oid) {
            Ok(o) => out.push_str(&o.to_string()),
            Err(_) => {
                out.push('?');
                out.push_str(&hex(oid));
            }
        },
    }
}

/// A string value, escaped so that the text reads back one way only.
fn push_value(out: &mut String, s: &str) {
    use std::fmt::Write;
    for (i, ch) in s.chars().enumerate() {
        match ch {
            '\\' | '/' | '+' => {
                out.push('\\');
                out.push(ch);
            }
            // `#` first would read as a non-string value.
            '#' if i == 0 => out.push_str("\\#"),
            // Control characters would let a name forge log lines.
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// The `/` form of §6.8 with the escapes of `\\`, `/`, `+` and a leading `#`
/// taken back: the text OpenSSL-era tools wrote for the same name
/// (`\xHH` escapes of control characters are kept). Several names can share
/// it, so it never decides who someone is; deny-lists written in that form
/// (ban files, namespace DENY rules) are matched against it too, so an
/// entry written as grid tools print names still denies.
pub fn unescaped_slash_form(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | '/' | '+' | '#')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// If the last RDN of `name` is a single CN, return the name without it and
/// the CN text.
pub fn split_last_cn(name: &[u8]) -> Option<(Vec<u8>, String)> {
    let seq = tlv::read_all(name)?;
    let sets = tlv::children(seq.value)?;
    let (last, init) = sets.split_last()?;
    let atvs = tlv::children(last.value)?;
    let [atv] = atvs.as_slice() else { return None };
    let parts = tlv::children(atv.value)?;
    let [oid, value] = parts.as_slice() else {
        return None;
    };
    if oid.tag != OID || oid.value != [0x55, 0x04, 0x03] {
        return None;
    }
    let cn = string_value(value)?;
    let body: Vec<u8> = init.iter().flat_map(|t| t.raw.iter().copied()).collect();
    let mut parent = tlv::header(SEQUENCE, body.len());
    parent.extend_from_slice(&body);
    Some((parent, cn))
}

/// `name` with one more RDN holding a single CN (PrintableString if possible).
pub fn append_cn(name: &[u8], cn: &str) -> Option<Vec<u8>> {
    let seq = tlv::read_all(name)?;
    let printable = cn
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let mut value = tlv::header(
        if printable {
            PRINTABLE_STRING
        } else {
            UTF8_STRING
        },
        cn.len(),
    );
    value.extend_from_slice(cn.as_bytes());
    let mut atv_body = vec![OID, 3, 0x55, 0x04, 0x03];
    atv_body.extend_from_slice(&value);
    let mut atv = tlv::header(SEQUENCE, atv_body.len());
    atv.extend_from_slice(&atv_body);
    let mut set = tlv::header(SET, atv.len());
    set.extend_from_slice(&atv);
    let body_len = seq.value.len() + set.len();
    let mut out = tlv::header(SEQUENCE, body_len);
    out.extend_from_slice(seq.value);
    out.extend_from_slice(&set);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    fn enc(s: &str) -> Vec<u8> {
        let n: x509_cert::name::Name = s.parse().unwrap();
        n.to_der().unwrap()
    }

    #[test]
    fn canonical_matching_ignores_case_and_spacing() {
        assert!(same(
            &enc("CN=Jane  Doe,O=Example"),
            &enc("CN=jane doe,O=EXAMPLE")
        ));
        assert!(!same(
            &enc("CN=Jane Doe,O=Example"),
            &enc("CN=John Doe,O=Example")
        ));
    }

    #[test]
    fn a_padded_attribute_type_makes_a_name_unreadable() {
        // CN=x with 2.5.4.12 padded: 55 04 80 0c.
        let padded = [
            0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x04, 0x55, 0x04, 0x80, 0x0c, 0x0c, 0x00,
        ];
        assert_eq!(rdns(&padded), None);
        assert_eq!(canonical(&padded), None);
        let minimal = [
            0x30, 0x0b, 0x31, 0x09, 0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x0c, 0x0c, 0x00,
        ];
        assert!(canonical(&minimal).is_some());
        assert!(!oid_is_der(&[0x55, 0x84]), "an unfinished arc");
    }

    #[test]
    fn unescaped_form_is_what_grid_tools_print() {
        let n = append_cn(&enc("CN=host,O=Example"), "x/y+z\\w").unwrap();
        let text = to_slash_string(&n);
        assert_eq!(text, "/O=Example/CN=host/CN=x\\/y\\+z\\\\w");
        assert_eq!(
            unescaped_slash_form(&text),
            "/O=Example/CN=host/CN=x/y+z\\w"
        );
        let ctl = append_cn(&enc("CN=x,O=Example"), "a\n").unwrap();
        assert_eq!(
            unescaped_slash_form(&to_slash_string(&ctl)),
            "/O=Example/CN=x/CN=a\\x0A"
        );
    }

    #[test]
    fn slash_form_is_in_encoding_order() {
        // RFC 4514 text lists the last RDN first.
        let n = enc("CN=Jane Doe,O=Example,DC=org");
        assert_eq!(to_slash_string(&n), "/DC=org/O=Example/CN=Jane Doe");
    }

    #[test]
    fn control_characters_are_escaped_in_text() {
        let n = enc("CN=x,O=Example");
        let evil = append_cn(&n, "1\npermit: forged").unwrap();
        let text = to_slash_string(&evil);
        assert!(!text.contains('\n'), "{text}");
        assert!(text.ends_with("/CN=1\\x0Apermit: forged"), "{text}");
    }

    #[test]
    fn bmp_surrogates_make_a_name_unreadable() {
        // SEQUENCE { SET { SEQUENCE { CN, BMPString D800 } } }
        let name = [
            0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x1e, 0x02, 0xd8,
            0x00,
        ];
        assert_eq!(canonical(&name), None);
        assert_eq!(openssl_hash(&name), None);
    }

    #[test]
    fn append_then_split_cn() {
        let n = enc("CN=Jane Doe,O=Example");
        let p = append_cn(&n, "12345").unwrap();
        assert_eq!(to_slash_string(&p), "/O=Example/CN=Jane Doe/CN=12345");
        let (parent, cn) = split_last_cn(&p).unwrap();
        assert_eq!(parent, n);
        assert_eq!(cn, "12345");
    }
}

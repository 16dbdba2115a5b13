//! The legacy protocol's answer (VOMS's `XML_Ans_Encode`):
//!
//! ```text
//! <?xml version="1.0" encoding = "US-ASCII"?><vomsans><version>3</version>
//! <error><item><number>1001</number><message>…</message></item>…</error>
//! <bitstr>…</bitstr><ac>BASE64</ac></vomsans>
//! ```
//!
//! and the REST answer of VOMS-Admin and INDIGO IAM (read as the Java
//! client's `RESTVOMSResponse` reads it), standard base64 only:
//!
//! ```text
//! <voms><ac>BASE64</ac><warning>…</warning></voms>
//! <voms><error><code>NoSuchUser</code><message>…</message></error></voms>
//! ```
//!
//! The documents are small and fixed, so they are read by a bounded hand-written
//! reader rather than an XML library: elements, text and the five
//! predefined entities; no DTD, no comments, no CDATA (refused, not
//! skipped). Every limit is checked before anything grows.

use base64::Engine as _;

/// Largest answer read (an AC is a few KiB).
pub(crate) const MAX_ANSWER: usize = 256 * 1024;
/// Deepest nesting (`vomsans/error/item/number` is 4).
const MAX_DEPTH: usize = 6;
/// Most elements in one answer.
const MAX_ELEMENTS: usize = 512;
/// Most error and warning items kept.
const MAX_ITEMS: usize = 32;

/// An error item of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub number: i64,
    /// The REST answer's error code (`NoSuchUser`, …).
    pub code: Option<String>,
    pub message: String,
}

/// What the server answered.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The AC's text as sent (base64 in one of two alphabets).
    pub ac: Option<String>,
    pub errors: Vec<Item>,
    pub warnings: Vec<String>,
}

/// Error numbers above this are errors, below warnings (VOMS `errors.h`).
pub(crate) const ERROR_OFFSET: i64 = 1000;
pub(crate) const ERR_NOT_MEMBER: i64 = 1001;
pub(crate) const ERR_ATTR_EMPTY: i64 = 1002;
pub(crate) const ERR_SUSPENDED: i64 = 1004;
/// What the Java client numbers REST codes it does not know.
const ERR_OTHER: i64 = 1006;

/// The REST codes as numbers, as the Java client maps them.
fn rest_number(code: &str) -> i64 {
    match code {
        "NoSuchUser" => ERR_NOT_MEMBER,
        "SuspendedUser" => ERR_SUSPENDED,
        "BadRequest" => 1005,
        _ => ERR_OTHER,
    }
}

/// State of the reader inside the answer.
#[derive(Default)]
struct Reader {
    root: &'static str,
    stack: Vec<String>,
    code: Option<String>,
    text: String,
    elements: usize,
    number: Option<i64>,
    message: Option<String>,
    answer: Answer,
}

/// Read a legacy answer document.
pub(crate) fn parse(doc: &[u8]) -> Result<Answer, String> {
    parse_root(doc, "vomsans")
}

/// Read a REST answer document.
pub(crate) fn parse_rest(doc: &[u8]) -> Result<Answer, String> {
    parse_root(doc, "voms")
}

fn parse_root(doc: &[u8], root: &'static str) -> Result<Answer, String> {
    if doc.len() > MAX_ANSWER {
        return Err(format!("the answer is larger than {MAX_ANSWER} bytes"));
    }
    let doc = std::str::from_utf8(doc).map_err(|_| "the answer is not text".to_string())?;
    let mut rest = doc.trim_start();
    if let Some(decl) = rest.strip_prefix("<?xml") {
        let end = decl.find("?>").ok_or("the XML declaration is not closed")?;
        rest = decl.get(end + 2..).unwrap_or("");
    }
    let mut r = Reader {
        root,
        ..Reader::default()
    };
    let mut seen_root = false;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(0) => {
                let end = rest.find('>').ok_or("a tag is not closed")?;
                let tag = rest.get(1..end).unwrap_or("");
                rest = rest.get(end + 1..).unwrap_or("");
                r.tag(tag, &mut seen_root)?;
            }
            found => {
                let end = found.unwrap_or(rest.len());
                r.chars(rest.get(..end).unwrap_or(""))?;
                rest = rest.get(end..).unwrap_or("");
            }
        }
    }
    if !seen_root || !r.stack.is_empty() {
        return Err(format!("the answer is not a complete <{root}> document"));
    }
    Ok(r.answer)
}

impl Reader {
    fn tag(&mut self, tag: &str, seen_root: &mut bool) -> Result<(), String> {
        if let Some(name) = tag.strip_prefix('/') {
            return self.close(name.trim());
        }
        if tag.starts_with('!') || tag.starts_with('?') {
            return Err("the answer holds a comment, DTD or processing instruction".into());
        }
        let (tag, empty) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let name = tag.split_ascii_whitespace().next().unwrap_or("");
        if name.is_empty() {
            return Err("an element has no name".into());
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS || self.stack.len() >= MAX_DEPTH {
            return Err("the answer has too many or too deeply nested elements".into());
        }
        if self.stack.is_empty() {
            if *seen_root || name != self.root {
                return Err(format!("unexpected root element <{name}>"));
            }
            *seen_root = true;
        }
        self.stack.push(name.to_string());
        self.text.clear();
        if empty {
            return self.close(name);
        }
        Ok(())
    }

    fn chars(&mut self, s: &str) -> Result<(), String> {
        if self.stack.is_empty() {
            return match s.trim().is_empty() {
                true => Ok(()),
                false => Err("text outside the document".into()),
            };
        }
        if self.text.len() + s.len() > MAX_ANSWER {
            return Err("an element's text is too long".into());
        }
        self.text.push_str(&unescape(s)?);
        Ok(())
    }

    fn close(&mut self, name: &str) -> Result<(), String> {
        match self.stack.pop() {
            Some(open) if open == name => {}
            _ => return Err(format!("</{name}> does not close the open element")),
        }
        let text = std::mem::take(&mut self.text);
        let a = &mut self.answer;
        match name {
            "ac" if a.ac.is_none() => a.ac = Some(text),
            "ac" => return Err("the answer holds two ACs".into()),
            "number" => self.number = text.trim().parse().ok(),
            "message" => self.message = Some(text),
            "code" => self.code = Some(text.trim().to_string()),
            "item" => {
                let item = Item {
                    number: self.number.take().unwrap_or(i64::MAX),
                    code: None,
                    message: self.message.take().unwrap_or_default(),
                };
                if a.errors.len() < MAX_ITEMS {
                    a.errors.push(item);
                }
            }
            // REST: the error element holds its code and message itself.
            "error" if self.code.is_some() => {
                let code = self.code.take().unwrap_or_default();
                let item = Item {
                    number: rest_number(&code),
                    code: Some(code),
                    message: self.message.take().unwrap_or_default(),
                };
                if a.errors.len() < MAX_ITEMS {
                    a.errors.push(item);
                }
            }
            "warning" if a.warnings.len() < MAX_ITEMS => a.warnings.push(text),
            _ => {}
        }
        Ok(())
    }
}

/// The five predefined entities; any other `&` is refused.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i..).unwrap_or("");
        let (ch, len) = [
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&amp;", '&'),
            ("&quot;", '"'),
            ("&apos;", '\''),
        ]
        .iter()
        .find(|(e, _)| after.starts_with(e))
        .map(|(e, c)| (*c, e.len()))
        .ok_or("an unknown entity")?;
        out.push(ch);
        rest = after.get(len..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

/// The AC's bytes. VOMS sends standard base64 in lines when asked for
/// base64, else its own unpadded alphabet (`a–z A–Z 0–9 [ ]`, VOMS's
/// `MyEncode`); like VOMS's `Decode`, a newline tells them apart.
pub(crate) fn decode_ac(text: &str) -> Option<Vec<u8>> {
    if text.contains('\n') {
        return decode_standard(text);
    }
    let compact: String = text
        .trim()
        .chars()
        .map(voms_to_standard)
        .collect::<Option<_>>()?;
    decode_standard(&compact)
}

/// Standard base64, whitespace ignored (the REST answer's AC).
pub(crate) fn decode_standard(text: &str) -> Option<Vec<u8>> {
    let lenient = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let engine = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    engine.decode(compact).ok().filter(|d| !d.is_empty())
}

/// One character of VOMS's own alphabet in the standard one.
fn voms_to_standard(c: char) -> Option<char> {
    const VOMS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789[]";
    const STANDARD: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let i = VOMS.find(c)?;
    STANDARD.get(i..=i)?.chars().next()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer() {
        let doc = b"<?xml version=\"1.0\" encoding = \"US-ASCII\"?><vomsans><version>3</version>\
            <error><item><number>1001</number><message>testvo: User unknown to this VO.</message>\
            </item></error></vomsans>";
        let a = parse(doc).unwrap();
        assert_eq!(a.ac, None);
        assert_eq!(a.errors.len(), 1);
        assert_eq!(a.errors[0].number, ERR_NOT_MEMBER);
        assert_eq!(a.errors[0].message, "testvo: User unknown to this VO.");
    }

    #[test]
    fn rest_answers() {
        let ok = b"<?xml version=\"1.0\"?><voms><ac>AAEC/w==</ac><warning>w</warning></voms>";
        let a = parse_rest(ok).unwrap();
        assert_eq!(
            decode_standard(a.ac.as_deref().unwrap()).unwrap(),
            [0, 1, 2, 255]
        );
        assert_eq!(a.warnings, ["w"]);
        let err =
            b"<voms><error><code>NoSuchUser</code><message>not a member</message></error></voms>";
        let a = parse_rest(err).unwrap();
        assert_eq!(a.errors.len(), 1);
        assert_eq!(a.errors[0].number, ERR_NOT_MEMBER);
        assert_eq!(a.errors[0].code.as_deref(), Some("NoSuchUser"));
        assert_eq!(a.errors[0].message, "not a member");
        assert!(parse_rest(b"<vomsans></vomsans>").is_err());
        assert!(parse(b"<voms></voms>").is_err());
    }

    #[test]
    fn an_ac_answer_both_alphabets() {
        let doc =
            b"<?xml version=\"1.0\"?><vomsans><version>3</version><ac>AAEC\n/w==\n</ac></vomsans>";
        let a = parse(doc).unwrap();
        assert_eq!(decode_ac(a.ac.as_deref().unwrap()).unwrap(), [0, 1, 2, 255]);
        // MyEncode of 00 01 02 ff: the same bits in VOMS's alphabet, unpadded.
        assert_eq!(decode_ac("aaec]W").unwrap(), [0, 1, 2, 255]);
        assert_eq!(decode_ac("a<"), None);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for doc in [
            &b""[..],
            b"<vomsans>",
            b"<vomsans></ac>",
            b"<other></other>",
            b"<vomsans></vomsans><vomsans></vomsans>",
            b"<vomsans><!-- x --></vomsans>",
            b"<vomsans><ac>a</ac><ac>b</ac></vomsans>",
            b"<vomsans>&unknown;</vomsans>",
            b"<vomsans><a><b><c><d><e><f><g></g></f></e></d></c></b></a></vomsans>",
            b"text<vomsans></vomsans>",
            b"<vomsans",
            b"\xff\xfe",
        ] {
            assert!(
                parse(doc).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(doc)
            );
        }
    }

    /// Fuzz-style: every prefix, every one-byte change and random bytes of
    /// real-looking answers never panic and stay bounded.
    #[test]
    fn robust_on_any_input() {
        let doc = b"<?xml version=\"1.0\"?><vomsans><version>3</version><error><item>\
            <number>1001</number><message>a &amp; b</message></item></error><warning>w</warning>\
            <bitstr>x</bitstr><ac>AAEC\n/w==</ac></vomsans>";
        assert!(parse(doc).is_ok());
        for n in 0..doc.len() {
            let _ = parse(&doc[..n]);
            for b in [b'<', b'>', b'/', b'&', b'?', b'!', 0u8, 0xff, b' '] {
                let mut d = doc.to_vec();
                d[n] = b;
                if let Ok(a) = parse(&d) {
                    let _ = a.ac.as_deref().map(decode_ac);
                }
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let d: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"<>/&?!vomsans ac\n;amp"[(x % 21) as usize]
                })
                .collect();
            let _ = parse(&d);
        }
        let huge = vec![b'a'; MAX_ANSWER + 1];
        assert!(parse(&huge).is_err());
        let deep = "<vomsans>".to_string() + &"<a>".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}

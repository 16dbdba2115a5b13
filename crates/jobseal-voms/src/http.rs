//! A bounded reader of one HTTP/1.1 response (RFC 9112), for the REST
//! exchange: status line, header fields, then a body delimited by
//! `Content-Length`, by chunked transfer coding or by the end of the
//! stream. Every size is checked before anything grows; anything else
//! (another transfer coding, a malformed line) is refused, not guessed.

/// Largest header section.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Largest body (an AC answer is a few KiB).
pub(crate) const MAX_BODY: usize = crate::answer::MAX_ANSWER;
/// Largest response read from the connection.
pub(crate) const MAX_RESPONSE: usize = MAX_HEAD + MAX_BODY + 64 * 1024;
/// Most header fields.
const MAX_FIELDS: usize = 100;
/// Most interim (1xx) responses skipped.
const MAX_INTERIM: usize = 4;

/// A complete response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// How the body ends.
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Read a response from `buf`: `Ok(None)` if more bytes are needed (never
/// when `eof`, the end of the stream, is reached).
pub(crate) fn parse(buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    let mut rest = buf;
    for _ in 0..=MAX_INTERIM {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            return match (rest.len() > MAX_HEAD, eof, rest.is_empty()) {
                (true, _, _) => Err(format!("its header is larger than {MAX_HEAD} bytes")),
                (_, true, true) => Err("the server closed the connection without answering".into()),
                (_, true, false) => Err("it is not an HTTP answer, or it is cut".into()),
                _ => Ok(None),
            };
        };
        if end > MAX_HEAD {
            return Err(format!("its header is larger than {MAX_HEAD} bytes"));
        }
        let head = std::str::from_utf8(rest.get(..end).unwrap_or_default())
            .map_err(|_| "its header is not text".to_string())?;
        let body = rest.get(end + 4..).unwrap_or_default();
        let (status, content_type, framing) = head_fields(head)?;
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let framing = match status {
            204 | 304 => Framing::Length(0),
            _ => framing,
        };
        return Ok(read_body(body, framing, eof)?.map(|body| Response {
            status,
            content_type,
            body,
        }));
    }
    Err("too many interim answers".into())
}

/// The status, the content type and the body's framing.
fn head_fields(head: &str) -> Result<(u16, Option<String>, Framing), String> {
    let mut lines = head.split("\r\n");
    let status = status_line(lines.next().unwrap_or_default())?;
    let (mut length, mut chunked, mut content_type) = (None, false, None);
    for (i, line) in lines.enumerate() {
        if i >= MAX_FIELDS {
            return Err("its header has too many fields".into());
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a malformed header line {:?}", clip(line)))?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| format!("a malformed Content-Length {:?}", clip(value)))?;
                if length.is_some_and(|l| l != n) {
                    return Err("two different Content-Lengths".into());
                }
                length = Some(n);
            }
            "transfer-encoding" if value.eq_ignore_ascii_case("chunked") => chunked = true,
            "transfer-encoding" => {
                return Err(format!("an unsupported transfer coding {:?}", clip(value)));
            }
            "content-type" => content_type = Some(clip(value)),
            _ => {}
        }
    }
    // Chunked coding overrides any length (RFC 9112 §6.3).
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) if n > MAX_BODY => {
            return Err(format!(
                "its body ({n} bytes) is larger than {MAX_BODY} bytes"
            ));
        }
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Close,
    };
    Ok((status, content_type, framing))
}

fn status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(format!("it is not an HTTP/1.x answer ({:?})", clip(line)));
    }
    match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..600).contains(&c) => Ok(c),
        _ => Err(format!("a malformed status line {:?}", clip(line))),
    }
}

fn read_body(body: &[u8], framing: Framing, eof: bool) -> Result<Option<Vec<u8>>, String> {
    match framing {
        Framing::Length(n) => match body.get(..n) {
            Some(b) => Ok(Some(b.to_vec())),
            None if eof => Err(format!("its body is cut ({} of {n} bytes)", body.len())),
            None => Ok(None),
        },
        Framing::Chunked => dechunk(body, eof),
        Framing::Close if body.len() > MAX_BODY => {
            Err(format!("its body is larger than {MAX_BODY} bytes"))
        }
        Framing::Close if eof => Ok(Some(body.to_vec())),
        Framing::Close => Ok(None),
    }
}

/// Chunked transfer coding: `size[;ext] CRLF data CRLF` … `0 CRLF`
/// trailers `CRLF`.
fn dechunk(mut rest: &[u8], eof: bool) -> Result<Option<Vec<u8>>, String> {
    let more = |why: &str| match eof {
        true => Err(format!("its chunked body is cut ({why})")),
        false => Ok(None),
    };
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return match rest.len() > 1024 {
                true => Err("a chunk size line is too long".into()),
                false => more("in a chunk size"),
            };
        };
        let size = chunk_size(rest.get(..line_end).unwrap_or_default())?;
        rest = rest.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return trailers(rest, out, eof);
        }
        if out.len().saturating_add(size) > MAX_BODY {
            return Err(format!("its body is larger than {MAX_BODY} bytes"));
        }
        let Some(data) = rest.get(..size) else {
            return more("in a chunk");
        };
        match rest.get(size..size + 2) {
            Some(b"\r\n") => out.extend_from_slice(data),
            Some(_) => return Err("a chunk does not end with CRLF".into()),
            None => return more("after a chunk"),
        }
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, String> {
    let line = std::str::from_utf8(line).map_err(|_| "a chunk size is not text".to_string())?;
    let hex = line.split(';').next().unwrap_or("").trim();
    if hex.is_empty() || hex.len() > 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("a malformed chunk size {:?}", clip(line)));
    }
    usize::from_str_radix(hex, 16).map_err(|e| e.to_string())
}

/// After the last chunk: trailer fields (ignored), then an empty line.
fn trailers(rest: &[u8], body: Vec<u8>, eof: bool) -> Result<Option<Vec<u8>>, String> {
    if rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some() {
        return Ok(Some(body));
    }
    match (eof, rest.len() > MAX_HEAD) {
        (_, true) => Err("its trailer is too large".into()),
        // Some servers close right after the last chunk.
        (true, _) => Ok(Some(body)),
        (false, _) => Ok(None),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most 80 characters of what the server sent, for messages.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn body(r: &[u8]) -> Vec<u8> {
        parse(r, true).unwrap().unwrap().body
    }

    #[test]
    fn framings() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello";
        let resp = parse(r, false).unwrap().unwrap();
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(resp.content_type.as_deref(), Some("text/xml"));
        assert_eq!(parse(&r[..r.len() - 1], false).unwrap(), None);
        assert!(parse(&r[..r.len() - 1], true).is_err());
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(body(c), b"hello");
        assert_eq!(parse(&c[..c.len() - 3], false).unwrap(), None);
        let close = b"HTTP/1.0 500 Oops\r\nServer: x\r\n\r\n<html>";
        assert_eq!(parse(close, false).unwrap(), None);
        assert_eq!(parse(close, true).unwrap().unwrap().status, 500);
        let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n";
        assert_eq!(parse(interim, false).unwrap().unwrap().status, 204);
    }

    #[test]
    fn refusals() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        for r in [
            &b""[..],
            b"<vomsans>",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n",
            big.as_bytes(),
        ] {
            assert!(
                parse(r, true).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(r)
            );
        }
        let huge_head = vec![b'a'; MAX_HEAD + 1];
        assert!(parse(&huge_head, false).is_err());
        let mut chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=MAX_BODY / 4096 {
            chunks.extend_from_slice(b"1000\r\n");
            chunks.extend_from_slice(&[b'a'; 4096]);
            chunks.extend_from_slice(b"\r\n");
        }
        assert!(parse(&chunks, false).is_err());
    }

    /// Every prefix and one-byte change of real-looking answers: no panic.
    #[test]
    fn robust_on_any_input() {
        let doc = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
            3\r\nabc\r\n0\r\nX: y\r\n\r\n";
        assert_eq!(body(doc), b"abc");
        for n in 0..doc.len() {
            for eof in [false, true] {
                let _ = parse(&doc[..n], eof);
            }
            for b in [b'\r', b'\n', b':', b';', b'0', b'f', 0xff, b' '] {
                let mut d = doc.to_vec();
                d[n] = b;
                let _ = parse(&d, true);
            }
        }
    }
}

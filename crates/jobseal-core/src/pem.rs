//! A small, strict reader and writer of concatenated PEM blocks (RFC 7468),
//! with the RFC 1421 headers that legacy encrypted OpenSSL keys carry.

use base64::Engine;

/// One PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemBlock {
    /// The label, e.g. `CERTIFICATE` or `RSA PRIVATE KEY`.
    pub label: String,
    /// RFC 1421 headers such as `Proc-Type` and `DEK-Info`, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// Why a PEM text could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemError(pub String);

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PemError {}

/// Read every PEM block of `text`. Text outside blocks is ignored (as
/// OpenSSL does); a block that is not closed, whose END label differs, or
/// whose body is not base64 is an error.
pub fn parse_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| PemError("the file is not text (PEM expected)".into()))?;
    let mut blocks = Vec::new();
    // One body buffer for every block, as large as the text: no block's
    // base64 can outgrow it, so it is never reallocated.
    let mut body = String::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim_start()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            // Text outside blocks is ignored, but not a boundary line with
            // something before it (a byte-order mark, a NUL): another
            // reader would see the block this one would skip.
            if line.contains("-----BEGIN ") || line.contains("-----END ") {
                return Err(PemError(
                    "a PEM BEGIN or END line has text before or after it".into(),
                ));
            }
            continue;
        };
        let mut headers = Vec::new();
        if body.capacity() == 0 {
            body.reserve_exact(text.len());
        }
        body.clear();
        let mut closed = false;
        let mut in_headers = true;
        for line in lines.by_ref() {
            let line = line.trim();
            if let Some(end) = line
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                if end != label {
                    return Err(PemError(format!(
                        "PEM block BEGIN {label} closed by END {end}"
                    )));
                }
                closed = true;
                break;
            }
            if in_headers {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                    continue;
                }
                in_headers = false;
                if line.is_empty() {
                    continue;
                }
            }
            body.push_str(line);
        }
        if !closed {
            return Err(PemError(format!("PEM block {label} is not closed")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PemError(format!("PEM block {label}: bad base64 ({e})")))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            headers,
            der,
        });
    }
    Ok(blocks)
}

/// Write one PEM block with 64-column base64 lines.
pub fn encode_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_headers() {
        let a = encode_block("CERTIFICATE", &[1, 2, 3]);
        let b = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,0011\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let text = format!("junk\n{a}{b}");
        let blocks = parse_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].der, vec![1, 2, 3]);
        assert_eq!(
            blocks[1].headers[0],
            ("Proc-Type".into(), "4,ENCRYPTED".into())
        );
        assert_eq!(blocks[1].der, vec![0, 1, 2]);
    }

    #[test]
    fn unclosed_or_mismatched_blocks_are_errors() {
        assert!(parse_blocks(b"-----BEGIN A-----\nAAEC\n").is_err());
        assert!(parse_blocks(b"-----BEGIN A-----\nAAEC\n-----END B-----\n").is_err());
        assert!(parse_blocks(b"-----BEGIN A-----\n!!!\n-----END A-----\n").is_err());
    }

    #[test]
    fn a_boundary_line_with_a_prefix_is_an_error_not_text() {
        let block = encode_block("CERTIFICATE", &[1, 2, 3]);
        for prefix in ["\u{feff}", "\0", "x"] {
            let text = format!("{prefix}{block}");
            assert!(parse_blocks(text.as_bytes()).is_err(), "{prefix:?}");
        }
        let stray_end = "text\n-----END CERTIFICATE-----\n";
        assert!(parse_blocks(stray_end.as_bytes()).is_err());
        // Other text outside blocks is still ignored.
        assert_eq!(
            parse_blocks(format!("junk\n{block}").as_bytes())
                .unwrap()
                .len(),
            1
        );
    }
}

//! The REST protocol of VOMS-Admin and INDIGO IAM VOMS AAs, as the Java
//! client (`voms-api-java`'s `RESTProtocol`) speaks it: `GET
//! /generate-ac?fqans=<FQANs>&lifetime=<seconds>` over the same TLS
//! connection setup, answered by a `<voms>` document ([`crate::answer`]).
//! Whether an answer is a VOMS one decides between a final answer and the
//! fallback to the legacy protocol.

use crate::VomsError;
use crate::answer::{self, Answer};
use crate::http::Response;
use crate::request::Request;
use crate::vomses::Server;

/// The HTTP request for `request` to `server`. The FQAN holds only checked
/// characters (letters, digits, `. _ - / =`), all allowed in a query as
/// they are, so it goes unescaped, as the Java client sends it.
pub(crate) fn http_request(
    request: &Request,
    server: &Server,
    lifetime: u64,
) -> Result<String, VomsError> {
    // The same check as the legacy command: an FQAN of this VO.
    request.command(&server.vo)?;
    let fqan = request
        .fqan
        .clone()
        .unwrap_or_else(|| format!("/{}", server.vo));
    Ok(format!(
        "GET /generate-ac?fqans={fqan}&lifetime={lifetime} HTTP/1.1\r\n\
         Host: {}:{}\r\nUser-Agent: jobseal-voms\r\nAccept: text/xml, */*\r\n\
         Connection: close\r\n\r\n",
        server.host, server.port
    ))
}

/// The server's HTTP answer: a VOMS answer (an AC, or VOMS errors, whatever
/// the status), or why it is not one (then the legacy protocol is tried).
pub(crate) fn interpret(response: &Response) -> Result<Answer, String> {
    let status = response.status;
    let answer = answer::parse_rest(&response.body).map_err(|why| {
        format!(
            "HTTP status {status}{}, not a VOMS answer ({why})",
            response
                .content_type
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        )
    })?;
    let has_errors = answer
        .errors
        .iter()
        .any(|e| e.number > answer::ERROR_OFFSET);
    match (status, answer.ac.is_some(), has_errors) {
        (_, _, true) => Ok(answer),
        (200, true, false) => Ok(answer),
        _ => Err(format!(
            "HTTP status {status} with a <voms> document holding neither an AC nor an error"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server {
            alias: "atlas".into(),
            host: "voms.example.org".into(),
            port: 15001,
            dn: "/CN=voms.example.org".into(),
            vo: "atlas".into(),
            origin: "test".into(),
        }
    }

    #[test]
    fn requests() {
        let r = |spec: &str| http_request(&Request::parse(spec).unwrap(), &server(), 3600);
        let first = |spec: &str| r(spec).unwrap().lines().next().unwrap().to_string();
        assert_eq!(
            first("atlas"),
            "GET /generate-ac?fqans=/atlas&lifetime=3600 HTTP/1.1"
        );
        assert_eq!(
            first("atlas:/atlas/higgs/Role=production"),
            "GET /generate-ac?fqans=/atlas/higgs/Role=production&lifetime=3600 HTTP/1.1"
        );
        assert!(
            r("atlas")
                .unwrap()
                .contains("\r\nHost: voms.example.org:15001\r\n")
        );
        assert!(r("atlas:/cms/x").is_err());
    }

    #[test]
    fn answers() {
        let resp = |status: u16, body: &[u8]| Response {
            status,
            content_type: Some("text/xml".into()),
            body: body.to_vec(),
        };
        assert!(interpret(&resp(200, b"<voms><ac>AAEC</ac></voms>")).is_ok());
        let refusal = b"<voms><error><code>NoSuchUser</code><message>m</message></error></voms>";
        assert!(interpret(&resp(400, refusal)).is_ok());
        assert!(interpret(&resp(500, b"<html>Internal error</html>")).is_err());
        assert!(interpret(&resp(500, b"<voms><ac>AAEC</ac></voms>")).is_err());
        assert!(interpret(&resp(200, b"<voms></voms>")).is_err());
        assert!(interpret(&resp(200, b"")).is_err());
    }
}

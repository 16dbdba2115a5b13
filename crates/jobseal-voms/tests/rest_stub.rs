#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The REST protocol against a stub VOMS server (no real server here
//! answers REST: the Debian 2.1.0~rc3 one closes the connection, see
//! `real_server.rs`). The stub is a rustls server with a test CA's host
//! certificate, which is also the AA that signs the ACs it hands out
//! (holder = the user's certificate), as `jobseal-testkit`'s `ac.rs` makes
//! them. Each connection gets the next scripted reply; what the client
//! sent on each is recorded, so a test sees which protocol was spoken.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jobseal_core::time::UnixTime;
use jobseal_core::{name, tlv};
use jobseal_issue::credential::{Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::throwaway::{self, Party};
use jobseal_voms::{Attributes, Options, Protocol, Request, VomsError, fetch};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[allow(dead_code)]
#[path = "../../jobseal-testkit/src/ac.rs"]
mod ac;

const VO: &str = "testvo";
const MAX_BODY: usize = 256 * 1024;

/// What the stub does on one connection, after reading the request.
#[derive(Clone)]
enum Reply {
    /// Wait, then send these bytes and close.
    Send(Duration, Vec<u8>),
    /// Close without answering.
    Close,
    /// Never answer.
    Stall,
    /// Reset the connection once the handshake is over, the request
    /// unread.
    Reset,
}

struct World {
    dir: tempfile::TempDir,
    user: Party,
    aa: Party,
}

fn subject(cert: &[u8]) -> Vec<u8> {
    tlv::RawCert::split(cert).unwrap().subject.to_vec()
}

impl World {
    fn new() -> Self {
        let now = UnixTime::now();
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400;
        let ca = throwaway::ca(
            &[1; 32],
            "CN=REST Test CA,O=jobseal",
            now.minus(day),
            now.plus(30 * day),
        )
        .unwrap();
        let user = throwaway::user(
            &ca,
            &[2; 32],
            "CN=Jane Doe,O=jobseal",
            0x1234,
            now.minus(day),
            now.plus(30 * day),
        )
        .unwrap();
        // The host certificate (CN=localhost) is the AA's.
        let aa = ac::aa(
            &ca,
            &[3; 32],
            3,
            "CN=localhost,O=jobseal",
            (now.minus(day), now.plus(30 * day)),
        )
        .unwrap();
        throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        let lsc = dir.path().join("vomsdir").join(VO);
        std::fs::create_dir_all(&lsc).unwrap();
        std::fs::write(
            lsc.join("localhost.lsc"),
            format!("{}\n{}\n", slash(&aa.cert), slash(&ca.cert)),
        )
        .unwrap();
        Self { dir, user, aa }
    }

    /// An AC for the user, as the server issues it for `vo:/vo/Role=production`.
    fn ac(&self) -> Vec<u8> {
        let now = UnixTime::now();
        ac::AcSpec {
            vo: VO.into(),
            host: "localhost".into(),
            fqans: vec![
                format!("/{VO}/Role=production/Capability=NULL"),
                format!("/{VO}/Role=NULL/Capability=NULL"),
            ],
            generic: Vec::new(),
            holder_name: subject(&self.user.cert),
            holder_serial: vec![0x12, 0x34],
            issuer: subject(&self.aa.cert),
            carried: vec![self.aa.cert.clone()],
            not_before: now.minus(60),
            not_after: now.plus(3600),
            extra_extensions: Vec::new(),
            algorithm: None,
            flip_signature: false,
        }
        .sign(&self.aa.key)
        .unwrap()
    }

    fn cred(&self) -> Credential {
        Credential::from_parts(
            Source::CertKey {
                cert: PathBuf::from("usercert.pem"),
                key: PathBuf::from("userkey.pem"),
            },
            &KeyDer::Pkcs8(self.user.pkcs8.clone()),
            vec![self.user.cert.clone()],
        )
        .unwrap()
    }

    fn options(&self, port: u16, timeout: Duration) -> Options {
        let vomses = self.dir.path().join(format!("vomses-{port}"));
        std::fs::write(
            &vomses,
            format!(
                "\"{VO}\" \"localhost\" \"{port}\" \"{}\" \"{VO}\"\n",
                slash(&self.aa.cert)
            ),
        )
        .unwrap();
        Options {
            vomses: vec![vomses],
            vomsdir: self.dir.path().join("vomsdir"),
            ca_dir: self.dir.path().join("ca"),
            connect_timeout: Duration::from_secs(5),
            timeout,
            lifetime: 3600,
        }
    }

    fn server_config(&self, client_auth: Option<&Party>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_auth {
            None => builder.with_no_client_auth(),
            // Client certificates must chain to `ca`.
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(CertificateDer::from(ca.cert.clone())).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let key = PrivateKeyDer::Pkcs8(self.aa.pkcs8.to_vec().into());
        Arc::new(
            builder
                .with_single_cert(vec![CertificateDer::from(self.aa.cert.clone())], key)
                .unwrap(),
        )
    }

    /// A stub serving `replies`, one per connection; its port and what each
    /// connection's client sent.
    fn stub(&self, replies: Vec<Reply>) -> (u16, Arc<Mutex<Vec<String>>>) {
        self.stub_with(self.server_config(None), replies)
    }

    fn stub_with(
        &self,
        config: Arc<rustls::ServerConfig>,
        replies: Vec<Reply>,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (sock, reply) in listener.incoming().flatten().zip(replies) {
                // Counted at once: a handshake refused by the stub ends
                // the client's exchange before `serve` could record it.
                let i = {
                    let mut log = log.lock().unwrap();
                    log.push(String::new());
                    log.len() - 1
                };
                let (config, log) = (config.clone(), log.clone());
                std::thread::spawn(move || serve(sock, config, reply, &log, i));
            }
        });
        (port, seen)
    }
}

fn slash(cert: &[u8]) -> String {
    name::to_slash_string(&subject(cert))
}

/// One connection: read the request (an HTTP header, or the legacy `0`
/// and document), record it, reply.
fn serve(
    sock: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    reply: Reply,
    log: &Mutex<Vec<String>>,
    i: usize,
) {
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    if matches!(reply, Reply::Reset) {
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                return;
            }
        }
        while tls.conn.wants_write() {
            if tls.conn.write_tls(&mut tls.sock).is_err() {
                return;
            }
        }
        // Closing with the request unread sends a reset.
        std::thread::sleep(Duration::from_millis(300));
        return;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !(got.ends_with(b"\r\n\r\n") || got.ends_with(b"</voms>")) {
        match tls.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    log.lock().unwrap()[i] = String::from_utf8_lossy(&got).into_owned();
    match reply {
        Reply::Send(delay, bytes) => {
            std::thread::sleep(delay);
            let _ = tls.write_all(&bytes);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        Reply::Close => tls.conn.send_close_notify(),
        Reply::Stall => std::thread::sleep(Duration::from_secs(30)),
        Reply::Reset => {}
    }
    let _ = tls.flush();
    // Read until the client closes: closing with its bytes unread would
    // reset the connection under what was sent.
    while matches!(tls.sock.read(&mut buf), Ok(n) if n > 0) {}
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn rest_ac(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><voms><ac>{b64}</ac></voms>").into_bytes()
}

/// The legacy answer with an AC: standard base64 in lines.
fn legacy_ac(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding = \"US-ASCII\"?><vomsans><version>3</version>\
         <ac>{}\n</ac></vomsans>",
        lines.join("\n")
    )
    .into_bytes()
}

const NOT_MEMBER_REST: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><voms><error>\
    <code>NoSuchUser</code><message>User unknown to this VO.</message></error></voms>";

/// No delay before a reply.
fn at_once() -> Duration {
    Duration::ZERO
}

fn ask(w: &World, spec: &str, port: u16, timeout: Duration) -> Result<Attributes, VomsError> {
    fetch(
        &w.cred(),
        &Request::parse(spec).unwrap(),
        &w.options(port, timeout),
    )
}

fn connections(seen: &Mutex<Vec<String>>) -> Vec<String> {
    seen.lock().unwrap().clone()
}

fn is_rest(request: &str) -> bool {
    request.starts_with("GET /generate-ac?fqans=")
}

fn is_legacy(request: &str) -> bool {
    request.starts_with("0<?xml") && request.contains("<command>")
}

const T: Duration = Duration::from_secs(10);

#[test]
fn rest_answer_with_content_length() {
    let w = World::new();
    let (port, seen) = w.stub(vec![Reply::Send(
        at_once(),
        http("200 OK", "Content-Type: text/xml\r\n", &rest_ac(&w.ac())),
    )]);
    let a = ask(&w, "testvo", port, T).unwrap();
    assert_eq!(
        (a.protocol, a.rest_failure.as_deref()),
        (Protocol::Rest, None)
    );
    assert_eq!(a.fqans[0], "/testvo/Role=production/Capability=NULL");
    assert_eq!(a.vo, VO);
    let c = connections(&seen);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("GET /generate-ac?fqans=/testvo&lifetime=3600 HTTP/1.1\r\n"),
        "{c:?}"
    );
    assert!(c[0].contains("\r\nHost: localhost:"), "{c:?}");
}

#[test]
fn rest_answer_chunked_for_a_role() {
    let w = World::new();
    let body = rest_ac(&w.ac());
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(100) {
        chunked.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (port, seen) = w.stub(vec![Reply::Send(at_once(), chunked)]);
    let a = ask(&w, "testvo:/testvo/Role=production", port, T).unwrap();
    assert_eq!(a.protocol, Protocol::Rest);
    let c = connections(&seen);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("GET /generate-ac?fqans=/testvo/Role=production&lifetime=3600 "),
        "{c:?}"
    );
}

#[test]
fn rest_refusal_is_final() {
    let w = World::new();
    // Had the client fallen back, the legacy exchange would succeed.
    let (port, seen) = w.stub(vec![
        Reply::Send(at_once(), http("403 Forbidden", "", NOT_MEMBER_REST)),
        Reply::Send(at_once(), legacy_ac(&w.ac())),
    ]);
    let e = ask(&w, "testvo", port, T).unwrap_err();
    assert!(matches!(e, VomsError::NotMember { .. }), "{e:?}");
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("not a member of VO testvo"), "{text}");
    assert!(text.contains("User unknown to this VO."), "{text}");
    assert_eq!(connections(&seen).len(), 1);
}

/// Answers that are not VOMS REST answers: the legacy protocol is spoken
/// on a second connection and serves the AC.
#[test]
fn non_voms_answers_fall_back_to_legacy() {
    let w = World::new();
    let html = http(
        "500 Internal Server Error",
        "Content-Type: text/html\r\n",
        b"<html><body>Internal error</body></html>",
    );
    let not_found = http("404 Not Found", "", b"no such page");
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "HTTP 500 with HTML",
            Reply::Send(at_once(), html),
            "HTTP status 500",
        ),
        (
            "HTTP 404",
            Reply::Send(at_once(), not_found),
            "HTTP status 404",
        ),
        (
            "garbage",
            Reply::Send(at_once(), b"\x00\x01garbage\r\n\r\n".to_vec()),
            "not an HTTP",
        ),
        (
            "closed",
            Reply::Close,
            "closed the connection without answering",
        ),
        (
            "200 without AC or error",
            Reply::Send(at_once(), http("200 OK", "", b"<voms></voms>")),
            "neither an AC nor an error",
        ),
    ];
    for (what, reply, why) in cases {
        let (port, seen) = w.stub(vec![reply, Reply::Send(at_once(), legacy_ac(&w.ac()))]);
        let a = ask(&w, "testvo", port, T).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.protocol, Protocol::Legacy, "{what}");
        let failure = a.rest_failure.unwrap();
        assert!(failure.contains(why), "{what}: {failure}");
        let c = connections(&seen);
        assert_eq!(c.len(), 2, "{what}: {c:?}");
        assert!(is_rest(&c[0]) && is_legacy(&c[1]), "{what}: {c:?}");
        assert!(
            c[1].contains("<command>G/testvo</command>"),
            "{what}: {c:?}"
        );
    }
}

/// A connection reset under the REST request: the legacy protocol serves.
#[test]
fn reset_connection_falls_back_to_legacy() {
    let w = World::new();
    let (port, seen) = w.stub(vec![
        Reply::Reset,
        Reply::Send(at_once(), legacy_ac(&w.ac())),
    ]);
    let a = ask(&w, "testvo", port, T).unwrap();
    assert_eq!(a.protocol, Protocol::Legacy);
    let failure = a.rest_failure.unwrap();
    assert!(failure.contains("reset"), "{failure}");
    let c = connections(&seen);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(is_legacy(&c[1]), "{c:?}");
}

/// After a fallback, the legacy answer decides: here a refusal, then a
/// server that closes on both.
#[test]
fn fallback_then_legacy_answers() {
    let w = World::new();
    let refusal = b"<?xml version=\"1.0\" encoding = \"US-ASCII\"?><vomsans><version>3</version>\
        <error><item><number>1001</number><message>testvo: User unknown to this VO.</message>\
        </item></error></vomsans>";
    let (port, seen) = w.stub(vec![Reply::Close, Reply::Send(at_once(), refusal.to_vec())]);
    let e = ask(&w, "testvo", port, T).unwrap_err();
    assert!(matches!(e, VomsError::NotMember { .. }), "{e:?}");
    assert_eq!(connections(&seen).len(), 2);

    let (port, seen) = w.stub(vec![Reply::Close, Reply::Close]);
    let e = ask(&w, "testvo", port, T).unwrap_err();
    assert!(matches!(e, VomsError::Protocol { .. }), "{e:?}");
    assert!(!e.to_string().contains('\n'), "{e}");
    assert_eq!(connections(&seen).len(), 2);
}

/// A body larger than the limit is refused, whether announced or streamed,
/// without reading it all; the legacy protocol then serves.
#[test]
fn oversized_rest_answers_are_refused() {
    let w = World::new();
    let announced = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n<voms><ac>",
        MAX_BODY + 1
    )
    .into_bytes();
    let mut streamed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..100 {
        streamed.extend_from_slice(b"1000\r\n");
        streamed.extend_from_slice(&[b'A'; 4096]);
        streamed.extend_from_slice(b"\r\n");
    }
    let mut unframed = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    unframed.extend_from_slice(&vec![b'A'; 2 * MAX_BODY]);
    for (what, bytes) in [
        ("announced", announced),
        ("chunked", streamed),
        ("unframed", unframed),
    ] {
        let (port, seen) = w.stub(vec![
            Reply::Send(at_once(), bytes),
            Reply::Send(at_once(), legacy_ac(&w.ac())),
        ]);
        let a = ask(&w, "testvo", port, T).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.protocol, Protocol::Legacy, "{what}");
        let failure = a.rest_failure.unwrap();
        assert!(failure.contains("larger than"), "{what}: {failure}");
        assert_eq!(connections(&seen).len(), 2, "{what}");
    }
}

#[test]
fn slow_server_under_the_deadline() {
    let w = World::new();
    let answer = http("200 OK", "", &rest_ac(&w.ac()));
    let (port, _) = w.stub(vec![Reply::Send(Duration::from_millis(1500), answer)]);
    let started = Instant::now();
    let a = ask(&w, "testvo", port, Duration::from_secs(6)).unwrap();
    assert_eq!(a.protocol, Protocol::Rest);
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// REST that stalls gets half the time; the legacy protocol the rest.
#[test]
fn stalled_rest_falls_back_within_the_deadline() {
    let w = World::new();
    let (port, seen) = w.stub(vec![
        Reply::Stall,
        Reply::Send(at_once(), legacy_ac(&w.ac())),
    ]);
    let started = Instant::now();
    let a = ask(&w, "testvo", port, Duration::from_secs(4)).unwrap();
    assert_eq!(a.protocol, Protocol::Legacy);
    assert!(a.rest_failure.unwrap().contains("too slow"));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(connections(&seen).len(), 2);

    // Both stall: a timeout, at the deadline.
    let (port, _) = w.stub(vec![Reply::Stall, Reply::Stall]);
    let started = Instant::now();
    let e = ask(&w, "testvo", port, Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(e, VomsError::Timeout { stage, .. } if stage.contains("answer")),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A server that does not accept the user's certificate (it trusts another
/// CA) ends the session with an alert: one line saying so, no fallback.
#[test]
fn certificate_refused_by_the_server() {
    let w = World::new();
    let now_t = UnixTime::now();
    let other_ca = throwaway::ca(
        &[9; 32],
        "CN=Another CA,O=jobseal",
        now_t.minus(86_400),
        now_t.plus(86_400),
    )
    .unwrap();
    let config = w.server_config(Some(&other_ca));
    let (port, seen) = w.stub_with(
        config,
        vec![Reply::Close, Reply::Send(at_once(), legacy_ac(&w.ac()))],
    );
    let e = ask(&w, "testvo", port, T).unwrap_err();
    assert!(matches!(e, VomsError::CertificateRefused { .. }), "{e:?}");
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("did not accept your certificate"), "{text}");
    assert_eq!(connections(&seen).len(), 1);
}

//! One exchange with a VOMS server: TCP, TLS with the user's certificate,
//! then either the legacy protocol (the message `0`, GSI's delegation flag
//! that the server reads and drops, the request document, the answer up to
//! the end of the stream) or one REST request (an HTTP/1.1 `GET`, its
//! answer read by [`crate::http`]). Every wait is bounded by the deadline,
//! every read by a size limit.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use rustls::client::ClientConfig;
use rustls::pki_types::ServerName;

use crate::answer::MAX_ANSWER;
use crate::http;
use crate::vomses::Server;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No TCP connection (refused, unreachable, unknown host).
    Connect(String),
    /// The deadline passed during `stage`.
    Timeout(&'static str),
    /// The TLS handshake or record layer failed.
    Tls(String),
    /// The server sent a TLS alert refusing the user's certificate (or its
    /// CA): the alert's name.
    CertRefused(String),
    /// The connection broke after the handshake, or the answer was too large.
    Io(String),
}

const RESOLVE: &str = "resolving its host name";
const CONNECT: &str = "connecting";
const SEND: &str = "sending the request";
const ANSWER: &str = "waiting for the answer";
/// The stages after the server read a request: a server that stalls there
/// may not speak that protocol. Before, a stall is the server's or the
/// network's, whatever the protocol.
pub(crate) const AFTER_HANDSHAKE: [&str; 2] = [SEND, ANSWER];

/// Run one legacy exchange; the raw answer.
pub(crate) fn run(
    server: &Server,
    config: Arc<ClientConfig>,
    request: &str,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Vec<u8>, Failure> {
    let (mut conn, mut sock) = open(server, config, connect_timeout, deadline)?;
    // Two records: the server peeks at the first to tell GSI's "0" from an
    // HTTP request.
    send(&mut conn, &mut sock, deadline, &[b"0", request.as_bytes()])?;
    receive(&mut conn, &mut sock, deadline, MAX_ANSWER, |_| false)
}

/// Run one REST exchange: `request` is the whole HTTP request; the
/// response once complete (or at the end of the stream). The connection
/// and handshake have until `deadline`, the request and its answer until
/// `answer_deadline`.
pub(crate) fn run_rest(
    server: &Server,
    config: Arc<ClientConfig>,
    request: &str,
    connect_timeout: Duration,
    (deadline, answer_deadline): (Instant, Instant),
) -> Result<Result<http::Response, String>, Failure> {
    let (mut conn, mut sock) = open(server, config, connect_timeout, deadline)?;
    let deadline = answer_deadline.min(deadline);
    send(&mut conn, &mut sock, deadline, &[request.as_bytes()])?;
    // A server may keep the connection open after a complete answer
    // despite `Connection: close`: stop reading once it is complete.
    let raw = receive(&mut conn, &mut sock, deadline, http::MAX_RESPONSE, |b| {
        !matches!(http::parse(b, false), Ok(None))
    })?;
    Ok(http::parse(&raw, true).and_then(|r| r.ok_or_else(|| "the answer is cut".into())))
}

fn open(
    server: &Server,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<(ClientConnection, TcpStream), Failure> {
    let mut sock = connect(server, connect_timeout, deadline)?;
    let name = ServerName::try_from(server.host.clone())
        .map_err(|_| Failure::Connect(format!("{} is not a host name", server.host)))?;
    let mut conn = ClientConnection::new(config, name).map_err(|e| Failure::Tls(e.to_string()))?;
    handshake(&mut conn, &mut sock, deadline)?;
    Ok((conn, sock))
}

/// Send each message in a TLS record of its own.
fn send(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    messages: &[&[u8]],
) -> Result<(), Failure> {
    for message in messages {
        conn.writer()
            .write_all(message)
            .map_err(|e| Failure::Io(e.to_string()))?;
        flush(conn, sock, deadline, SEND)?;
    }
    Ok(())
}

fn remaining(deadline: Instant, stage: &'static str) -> Result<Duration, Failure> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(Failure::Timeout(stage))
}

/// The server's addresses. The system resolver has no timeout of its own:
/// it runs in a thread of its own, abandoned if the deadline passes.
fn resolve(
    server: &Server,
    limit: Duration,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    const STAGE: &str = RESOLVE;
    let (tx, rx) = std::sync::mpsc::channel();
    let (host, port) = (server.host.clone(), server.port);
    std::thread::spawn(move || {
        let found = (host.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.take(16).collect::<Vec<_>>());
        let _ = tx.send(found);
    });
    match rx.recv_timeout(remaining(deadline, STAGE)?.min(limit)) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(Failure::Connect(format!(
            "cannot resolve {}: {e}",
            server.host
        ))),
        Err(_) => Err(Failure::Timeout(STAGE)),
    }
}

fn connect(server: &Server, limit: Duration, deadline: Instant) -> Result<TcpStream, Failure> {
    let addrs = resolve(server, limit, deadline)?;
    let mut last = format!("{} has no address", server.host);
    for addr in addrs {
        let wait = remaining(deadline, CONNECT)?.min(limit);
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(s) => return Ok(s),
            Err(e) if is_timeout(&e) => last = format!("no answer from {addr} within {wait:?}"),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(Failure::Connect(last))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn io_failure(e: io::Error, stage: &'static str) -> Failure {
    if is_timeout(&e) {
        return Failure::Timeout(stage);
    }
    // rustls reports its own errors (alerts, a refused certificate) as
    // InvalidData.
    match e.kind() {
        io::ErrorKind::InvalidData => match e.get_ref().and_then(|i| i.downcast_ref()) {
            Some(tls) => tls_failure(tls),
            None => Failure::Tls(e.to_string()),
        },
        _ => Failure::Io(format!("{stage}: {e}")),
    }
}

/// A TLS error; the alerts by which a server refuses the client's
/// certificate (TLS 1.3 sends them after the client's handshake is over,
/// so they arrive with the first read) are told apart.
fn tls_failure(e: &rustls::Error) -> Failure {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired),
        ) => Failure::CertRefused(format!("{alert:?}")),
        _ => Failure::Tls(e.to_string()),
    }
}

fn flush(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    stage: &'static str,
) -> Result<(), Failure> {
    while conn.wants_write() {
        let wait = remaining(deadline, stage)?;
        sock.set_write_timeout(Some(wait))
            .map_err(|e| io_failure(e, stage))?;
        conn.write_tls(sock).map_err(|e| io_failure(e, stage))?;
    }
    Ok(())
}

/// Read TLS bytes once; `false` at the end of the stream.
fn pump(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    stage: &'static str,
) -> Result<bool, Failure> {
    let wait = remaining(deadline, stage)?;
    sock.set_read_timeout(Some(wait))
        .map_err(|e| io_failure(e, stage))?;
    let n = conn.read_tls(sock).map_err(|e| io_failure(e, stage))?;
    conn.process_new_packets().map_err(|e| tls_failure(&e))?;
    Ok(n > 0)
}

fn handshake(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<(), Failure> {
    const STAGE: &str = "the TLS handshake";
    while conn.is_handshaking() {
        flush(conn, sock, deadline, STAGE)?;
        if conn.is_handshaking() && !pump(conn, sock, deadline, STAGE)? {
            return Err(Failure::Tls(
                "the server closed the connection during the handshake".into(),
            ));
        }
    }
    flush(conn, sock, deadline, STAGE)
}

/// The answer: everything up to the end of the stream, or until
/// `complete` says the bytes read are a whole answer; at most `limit`
/// bytes. The server closes after answering, with or without close_notify;
/// a cut answer fails to parse or its AC fails its signature check.
fn receive(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    limit: usize,
    mut complete: impl FnMut(&[u8]) -> bool,
) -> Result<Vec<u8>, Failure> {
    const STAGE: &str = ANSWER;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len() + n > limit {
                    return Err(Failure::Io(format!(
                        "the answer is larger than {limit} bytes"
                    )));
                }
                out.extend_from_slice(buf.get(..n).unwrap_or_default());
                if complete(&out) {
                    return Ok(out);
                }
            }
            // Data read with the end of the stream is drained first.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && eof => return Ok(out),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                flush(conn, sock, deadline, STAGE)?;
                eof = !pump(conn, sock, deadline, STAGE)?;
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(out),
            Err(e) => return Err(io_failure(e, STAGE)),
        }
    }
}

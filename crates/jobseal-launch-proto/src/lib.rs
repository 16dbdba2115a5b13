//! The launch protocol between `jobseal-exec` (the pilot's client) and
//! `jobseal-launchd` (the site's service), `spec/jobseal.md` §14.14.
//!
//! One Unix stream connection per launch. Every message is a frame: a
//! 4-byte big-endian length, then the body. The client's first frame is the
//! [`Request`]; its descriptors ([`Descriptors`]) travel as one `SCM_RIGHTS`
//! message with the frame's first byte. The service answers with
//! [`Reply`] frames; once the payload runs, the client sends
//! [`ClientMessage::Signal`] frames for the signals it receives.
//!
//! Everything is bounded before it is allocated: frame sizes, list lengths,
//! string sizes and the number of descriptors. A body that does not decode
//! exactly (wrong magic or version, a short or overlong field, trailing
//! bytes) is refused as a whole.
#![forbid(unsafe_code)]

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The request's magic and the protocol version it speaks.
const MAGIC: &[u8; 4] = b"JSL\x01";

/// Largest request body: a bundle (the verifier reads at most 32 MiB) and
/// up to 2 MiB of command line, environment and names.
pub const MAX_REQUEST_BYTES: usize = 34 << 20;
/// Largest frame after the request (replies and signals).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// Most inputs a launch through the service may carry: their descriptors,
/// the three standard streams, the executable and the source proxy fit in
/// one `SCM_RIGHTS` message (the kernel's limit is 253).
pub const MAX_INPUTS: usize = 240;
/// Most descriptors a request may carry.
pub const MAX_DESCRIPTORS: usize = 3 + 1 + MAX_INPUTS + 1;
/// Most arguments, environment entries; longest single string.
const MAX_LIST: usize = 4096;
const MAX_STRING: usize = 256 << 10;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(what: impl Into<String>) -> Result<T, ProtoError> {
    Err(ProtoError(what.into()))
}

/// What the pilot asks for: the gLExec call, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The command as the pilot named it (the payload's `argv[0]`).
    pub argv0: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    /// The client's environment, `NAME=VALUE`. The service passes on only
    /// its whitelist and never acts on any of it.
    pub env: Vec<Vec<u8>>,
    /// The bundle `GLEXEC_CLIENT_CERT` named, as read by the client.
    pub bundle: Vec<u8>,
    /// The manifest's input names the client found and opened, in the order
    /// of their descriptors. A missing input is left out.
    pub inputs: Vec<String>,
    /// Whether a source proxy descriptor follows the inputs.
    pub source_proxy: bool,
    /// `GLEXEC_TARGET_PROXY`, if set.
    pub target_proxy: Option<Vec<u8>>,
}

/// The descriptors of a request, in this order: stdin, stdout, stderr, the
/// sealed executable, one per input, the source proxy.
#[derive(Debug)]
pub struct Descriptors {
    pub stdio: [OwnedFd; 3],
    pub executable: OwnedFd,
    pub inputs: Vec<OwnedFd>,
    pub source_proxy: Option<OwnedFd>,
}

impl Descriptors {
    /// How many descriptors these are.
    pub fn count(&self) -> u64 {
        (4 + self.inputs.len() + usize::from(self.source_proxy.is_some())) as u64
    }

    /// Sort `fds` as `request` says they come; the count must match.
    pub fn sort(request: &Request, fds: Vec<OwnedFd>) -> Result<Self, ProtoError> {
        let want = 4 + request.inputs.len() + usize::from(request.source_proxy);
        if fds.len() != want {
            return bad(format!(
                "{} descriptors sent, {want} expected (3 streams, the executable, {} inputs{})",
                fds.len(),
                request.inputs.len(),
                if request.source_proxy {
                    ", the source proxy"
                } else {
                    ""
                }
            ));
        }
        let mut it = fds.into_iter();
        let mut next = || {
            it.next()
                .ok_or_else(|| ProtoError("descriptor missing".into()))
        };
        let stdio = [next()?, next()?, next()?];
        let executable = next()?;
        let inputs = (0..request.inputs.len())
            .map(|_| next())
            .collect::<Result<Vec<_>, _>>()?;
        let source_proxy = if request.source_proxy {
            Some(next()?)
        } else {
            None
        };
        Ok(Self {
            stdio,
            executable,
            inputs,
            source_proxy,
        })
    }
}

/// What the service tells the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing runs: gLExec's exit code, the reason code and its message.
    Refused {
        exit: u8,
        reason: String,
        message: String,
    },
    /// The payload started (its pid, in the service's namespace).
    Started { pid: u32 },
    /// The payload ended: the exit code the client exits with.
    Exited { exit: u8 },
}

/// What the client sends once the payload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage {
    /// A signal the client received, to forward to the payload.
    Signal(u8),
}

// --- encoding -------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: usize) {
        // Every length written was bounded by the reader's limits, which are
        // far below u32::MAX.
        let v = u32::try_from(v).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len());
        self.0.extend_from_slice(b);
    }
    fn list<T: AsRef<[u8]>>(&mut self, items: &[T]) {
        self.u32(items.len());
        for i in items {
            self.bytes(i.as_ref());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.0.len() {
            return bad("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }
    fn u32(&mut self) -> Result<usize, ProtoError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        usize::try_from(u32::from_be_bytes(a)).or_else(|_| bad("length"))
    }
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, ProtoError> {
        let n = self.u32()?;
        if n > max {
            return bad(format!("a field of {n} bytes (at most {max})"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn list(&mut self, max_items: usize, max_each: usize) -> Result<Vec<Vec<u8>>, ProtoError> {
        let n = self.u32()?;
        if n > max_items {
            return bad(format!("a list of {n} items (at most {max_items})"));
        }
        (0..n).map(|_| self.bytes(max_each)).collect()
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            bad("trailing bytes")
        }
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(MAGIC.to_vec());
        w.bytes(&self.argv0);
        w.list(&self.args);
        w.list(&self.env);
        w.bytes(&self.bundle);
        w.list(&self.inputs);
        w.0.push(u8::from(self.source_proxy));
        match &self.target_proxy {
            None => w.0.push(0),
            Some(p) => {
                w.0.push(1);
                w.bytes(p);
            }
        }
        w.0
    }

    /// Decode a request body exactly; anything else is refused.
    pub fn decode(body: &[u8]) -> Result<Self, ProtoError> {
        let mut r = Reader(body);
        if r.take(4).ok() != Some(MAGIC.as_slice()) {
            return bad("not a jobseal launch request of protocol version 1");
        }
        let argv0 = r.bytes(MAX_STRING)?;
        let args = r.list(MAX_LIST, MAX_STRING)?;
        let env = r.list(MAX_LIST, MAX_STRING)?;
        let bundle = r.bytes(MAX_REQUEST_BYTES)?;
        let inputs = r
            .list(MAX_INPUTS, MAX_STRING)?
            .into_iter()
            .map(|n| String::from_utf8(n).or_else(|_| bad("an input name is not UTF-8")))
            .collect::<Result<Vec<_>, _>>()?;
        let source_proxy = match r.u8()? {
            0 => false,
            1 => true,
            _ => return bad("source proxy flag"),
        };
        let target_proxy = match r.u8()? {
            0 => None,
            1 => Some(r.bytes(MAX_STRING)?),
            _ => return bad("target proxy flag"),
        };
        r.end()?;
        Ok(Self {
            argv0,
            args,
            env,
            bundle,
            inputs,
            source_proxy,
            target_proxy,
        })
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Self::Refused {
                exit,
                reason,
                message,
            } => {
                w.0.extend_from_slice(&[b'R', *exit]);
                w.bytes(reason.as_bytes());
                w.bytes(message.as_bytes());
            }
            Self::Started { pid } => {
                w.0.push(b'S');
                w.0.extend_from_slice(&pid.to_be_bytes());
            }
            Self::Exited { exit } => w.0.extend_from_slice(&[b'X', *exit]),
        }
        w.0
    }

    pub fn decode(body: &[u8]) -> Result<Self, ProtoError> {
        let mut r = Reader(body);
        let text = |b: Vec<u8>| String::from_utf8(b).or_else(|_| bad("not UTF-8"));
        let reply = match r.u8()? {
            b'R' => Self::Refused {
                exit: r.u8()?,
                reason: text(r.bytes(256)?)?,
                message: text(r.bytes(MAX_MESSAGE_BYTES)?)?,
            },
            b'S' => {
                let n = r.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(n);
                Self::Started {
                    pid: u32::from_be_bytes(a),
                }
            }
            b'X' => Self::Exited { exit: r.u8()? },
            _ => return bad("unknown reply"),
        };
        r.end()?;
        Ok(reply)
    }
}

impl ClientMessage {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Signal(s) => vec![b'K', *s],
        }
    }

    pub fn decode(body: &[u8]) -> Result<Self, ProtoError> {
        match body {
            [b'K', s] => Ok(Self::Signal(*s)),
            _ => bad("unknown client message"),
        }
    }
}

// --- framing over the socket ----------------------------------------------

fn frame(body: &[u8]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(body.len() + 4));
    w.u32(body.len());
    w.0.extend_from_slice(body);
    w.0
}

/// Send one frame.
pub fn send(stream: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(&frame(body))
}

/// Send the request frame with its descriptors on its first byte.
pub fn send_request(
    stream: &mut UnixStream,
    request: &Request,
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let bytes = frame(&request.encode());
    let (first, rest) = bytes.split_at(1);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_DESCRIPTORS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other(
            "too many descriptors for one message",
        ));
    }
    let sent = rustix::net::sendmsg(
        stream.as_fd(),
        &[IoSlice::new(first)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != 1 {
        return Err(std::io::Error::other(
            "the request's first byte was not sent",
        ));
    }
    stream.write_all(rest)
}

/// Read one frame of at most `max` bytes, all of it by `deadline`.
pub fn receive_until(
    stream: &mut UnixStream,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReceiveError> {
    let mut len = [0u8; 4];
    read_exact(stream, &mut len, Some(deadline))?;
    body(stream, len, max, Some(deadline))
}

/// Read one frame of at most `max` bytes (no time limit).
pub fn receive(stream: &mut UnixStream, max: usize) -> Result<Vec<u8>, ReceiveError> {
    let mut len = [0u8; 4];
    read_exact(stream, &mut len, None)?;
    body(stream, len, max, None)
}

fn body(
    stream: &mut UnixStream,
    len: [u8; 4],
    max: usize,
    deadline: Option<Instant>,
) -> Result<Vec<u8>, ReceiveError> {
    let n = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if n > max {
        return Err(ReceiveError::Malformed(format!(
            "a frame of {n} bytes (at most {max})"
        )));
    }
    // Grown as bytes arrive: a client announcing 34 MiB and sending
    // nothing costs nothing.
    let mut body = Vec::new();
    let mut chunk = vec![0u8; n.min(64 << 10)];
    while body.len() < n {
        let want = (n - body.len()).min(chunk.len());
        let part = chunk.get_mut(..want).unwrap_or_default();
        read_exact(stream, part, deadline)?;
        body.extend_from_slice(part);
    }
    Ok(body)
}

/// Fill `buf`, each read waiting at most until `deadline`.
fn read_exact(
    stream: &mut UnixStream,
    mut buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<(), ReceiveError> {
    while !buf.is_empty() {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReceiveError::TimedOut);
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(|e| ReceiveError::Io(e.to_string()))?;
        }
        match stream.read(buf) {
            Ok(0) => return Err(ReceiveError::Closed),
            Ok(n) => buf = buf.get_mut(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReceiveError::TimedOut);
            }
            Err(e) => return Err(ReceiveError::Io(e.to_string())),
        }
    }
    Ok(())
}

/// Why a frame could not be had.
#[derive(Debug, PartialEq, Eq)]
pub enum ReceiveError {
    /// The peer closed the connection.
    Closed,
    /// The socket's timeout passed.
    TimedOut,
    Io(String),
    Malformed(String),
}

/// Read the request frame and the descriptors sent with its first byte.
/// More descriptors than [`MAX_DESCRIPTORS`] (a truncated control message)
/// refuse the request; they are closed by the kernel or on drop.
pub fn receive_request(
    stream: &mut UnixStream,
    deadline: Instant,
) -> Result<(Request, Vec<OwnedFd>), ReceiveError> {
    let left = deadline.saturating_duration_since(Instant::now());
    stream
        .set_read_timeout(Some(left.max(std::time::Duration::from_millis(1))))
        .map_err(|e| ReceiveError::Io(e.to_string()))?;
    let mut first = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_DESCRIPTORS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        stream.as_fd(),
        &mut [IoSliceMut::new(&mut first)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| match e {
        rustix::io::Errno::AGAIN => ReceiveError::TimedOut,
        e => ReceiveError::Io(e.to_string()),
    })?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Err(ReceiveError::Closed);
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(ReceiveError::Malformed(format!(
            "more than {MAX_DESCRIPTORS} descriptors"
        )));
    }
    let mut len = [0u8; 4];
    len[0] = first[0];
    read_exact(stream, len.get_mut(1..).unwrap_or_default(), Some(deadline))?;
    let body = body(stream, len, MAX_REQUEST_BYTES + 4096, Some(deadline))?;
    let request = Request::decode(&body).map_err(|e| ReceiveError::Malformed(e.0))?;
    Ok((request, fds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> Request {
        Request {
            argv0: b"./run.sh".to_vec(),
            args: vec![b"--events".to_vec(), b"10".to_vec()],
            env: vec![b"TZ=UTC".to_vec()],
            bundle: b"-----BEGIN CERTIFICATE-----".to_vec(),
            inputs: vec!["data/a.txt".into()],
            source_proxy: true,
            target_proxy: Some(b"/tmp/x".to_vec()),
        }
    }

    #[test]
    fn a_request_round_trips_and_nothing_else_decodes() {
        let r = sample();
        let body = r.encode();
        assert_eq!(Request::decode(&body).unwrap(), r);
        // Every strict prefix is truncated; a byte more is trailing.
        for n in 0..body.len() {
            assert!(Request::decode(&body[..n]).is_err(), "prefix {n}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(Request::decode(&longer).unwrap_err().0, "trailing bytes");
        let mut v2 = body;
        v2[3] = 2;
        assert!(Request::decode(&v2).unwrap_err().0.contains("version 1"));
    }

    #[test]
    fn lengths_are_bounded_before_anything_is_allocated() {
        let mut w = Writer(MAGIC.to_vec());
        w.u32(usize::MAX >> 1);
        let e = Request::decode(&w.0).unwrap_err();
        assert!(e.0.contains("at most"), "{e}");
        let mut w = Writer(MAGIC.to_vec());
        w.bytes(b"x");
        w.u32(MAX_LIST + 1);
        assert!(Request::decode(&w.0).unwrap_err().0.contains("list of"));
    }

    #[test]
    fn replies_and_signals_round_trip() {
        for r in [
            Reply::Refused {
                exit: 203,
                reason: "policy.banned-subject".into(),
                message: "banned".into(),
            },
            Reply::Started { pid: 42 },
            Reply::Exited { exit: 0 },
        ] {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
        let s = ClientMessage::Signal(15);
        assert_eq!(ClientMessage::decode(&s.encode()).unwrap(), s);
        assert!(ClientMessage::decode(b"K").is_err());
    }

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(5)
    }

    #[test]
    fn a_half_sent_request_times_out() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let body = frame(&sample().encode());
        a.write_all(&body[..body.len() / 2]).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        assert_eq!(
            receive_request(&mut b, deadline).unwrap_err(),
            ReceiveError::TimedOut
        );
    }

    #[test]
    fn descriptors_are_sent_with_the_request_and_counted() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let r = sample();
        let files: Vec<std::fs::File> = (0..6)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let fds: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
        send_request(&mut a, &r, &fds).unwrap();
        let (got, received) = receive_request(&mut b, soon()).unwrap();
        assert_eq!(got, r);
        assert_eq!(received.len(), 6);
        let sorted = Descriptors::sort(&got, received).unwrap();
        assert!(sorted.source_proxy.is_some());
        assert_eq!(sorted.inputs.len(), 1);
        // One descriptor short is refused.
        send_request(&mut a, &r, &fds[..5]).unwrap();
        let (got, received) = receive_request(&mut b, soon()).unwrap();
        assert!(Descriptors::sort(&got, received).is_err());
    }
}

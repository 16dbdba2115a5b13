//! `jobseal-exec` as the pilot's client of the site's launch service
//! (`spec/jobseal.md` §14.14). It is the pilot, so it opens what the pilot
//! names with the pilot's own rights: the bundle, the executable (copied
//! into a sealed memfd), the inputs and the source proxy. It passes the
//! descriptors to the service, forwards the signals it receives, and exits
//! with the code the service reports. It holds no privilege and decides
//! nothing.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::config::{DEFAULT_SOCKET, ExecConfig};
use crate::payload::{self, PayloadError};
use crate::proto::{self, ClientMessage, Reply, Request};
use crate::reason::ExecReason;
use crate::{
    EXIT_CLIENT, EXIT_INTERNAL, EXIT_NOT_EXECUTABLE, Fail, MAX_BUNDLE_BYTES, SAFE_PATH, fail,
    one_line, peek_manifest, signals,
};
use jobseal_verify::Reason;

fn env_var<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_os_str())
        .filter(|v| !v.is_empty())
}

/// Open a file the pilot names: a regular file, without blocking on a FIFO;
/// `nofollow`: not through a final symbolic link.
fn open_regular(path: &Path, nofollow: bool) -> std::io::Result<File> {
    let mut flags = rustix::fs::OFlags::NONBLOCK;
    if nofollow {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    if file.metadata()?.file_type().is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, Fail> {
    let shown = path.display();
    let refuse = |e: std::io::Error| {
        Fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            format!("GLEXEC_CLIENT_CERT {shown}: {e}"),
        )
    };
    let file = open_regular(path, true).map_err(refuse)?;
    // gLExec's rule (§14.2): the caller's own file, writable by nobody else.
    let meta = file.metadata().map_err(refuse)?;
    if meta.uid() != rustix::process::getuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(refuse(std::io::Error::other(
            "not the caller's own file, or writable by group or others",
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(refuse)?;
    Ok(bytes)
}

/// The manifest's inputs present in the current directory, opened. A
/// missing one is left out (the service's admission then denies the job
/// as `payload.input-missing`, naming it).
fn open_inputs(bundle: &[u8]) -> Result<Vec<(String, File)>, Fail> {
    let Some(manifest) = peek_manifest(bundle) else {
        return Ok(Vec::new());
    };
    if manifest.inputs.len() > proto::MAX_INPUTS {
        return fail(
            EXIT_CLIENT,
            ExecReason::Request.code(),
            format!(
                "the job has {} inputs; a launch through the service carries at most {}: pack them into an archive input",
                manifest.inputs.len(),
                proto::MAX_INPUTS
            ),
        );
    }
    let mut opened = Vec::new();
    for input in &manifest.inputs {
        match open_regular(Path::new(&input.name), false) {
            Ok(f) => opened.push((input.name.clone(), f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return fail(
                    EXIT_CLIENT,
                    ExecReason::Workdir.code(),
                    format!("input {}: {e}", input.name),
                );
            }
        }
    }
    Ok(opened)
}

/// `NAME=VALUE` for every variable (the service passes on only its
/// whitelist); one too long for the protocol is left out.
fn environment(env: &[(OsString, OsString)]) -> Vec<Vec<u8>> {
    env.iter()
        .map(|(k, v)| {
            let mut pair = k.as_encoded_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_encoded_bytes());
            pair
        })
        .filter(|p| p.len() <= 64 << 10)
        .take(1024)
        .collect()
}

/// Launch `command` with `args` through the service `config` names.
pub fn run(
    config: &ExecConfig,
    command: &OsStr,
    args: &[OsString],
    env: &[(OsString, OsString)],
) -> Result<u8, Fail> {
    let Some(bundle_path) = env_var(env, "GLEXEC_CLIENT_CERT") else {
        return fail(
            EXIT_CLIENT,
            ExecReason::Credential.code(),
            "GLEXEC_CLIENT_CERT is not set",
        );
    };
    let bundle = read_bundle(Path::new(bundle_path))?;
    let search = env_var(env, "PATH").map_or_else(
        || SAFE_PATH.to_string(),
        |p| p.to_string_lossy().into_owned(),
    );
    let Some(executable) = payload::resolve(Path::new(command), &search) else {
        return fail(
            EXIT_NOT_EXECUTABLE,
            ExecReason::NotExecutable.code(),
            format!("{}: command not found", command.to_string_lossy()),
        );
    };
    let sealed = payload::seal_copy(&executable).or_else(|e| match e {
        PayloadError::NotExecutable(m) => {
            fail(EXIT_NOT_EXECUTABLE, ExecReason::NotExecutable.code(), m)
        }
        PayloadError::Internal(m) => fail(EXIT_INTERNAL, Reason::Internal.code(), m),
    })?;
    let inputs = open_inputs(&bundle)?;
    let source_proxy = match env_var(env, "GLEXEC_SOURCE_PROXY") {
        None => None,
        Some(p) => Some(open_regular(Path::new(p), true).or_else(|e| {
            fail(
                EXIT_CLIENT,
                ExecReason::Proxy.code(),
                format!("GLEXEC_SOURCE_PROXY {}: {e}", Path::new(p).display()),
            )
        })?),
    };
    let request = Request {
        argv0: command.as_encoded_bytes().to_vec(),
        args: args.iter().map(|a| a.as_encoded_bytes().to_vec()).collect(),
        env: environment(env),
        bundle,
        inputs: inputs.iter().map(|(n, _)| n.clone()).collect(),
        source_proxy: source_proxy.is_some(),
        target_proxy: env_var(env, "GLEXEC_TARGET_PROXY").map(|p| p.as_encoded_bytes().to_vec()),
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let mut fds: Vec<BorrowedFd<'_>> =
        vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd(), sealed.fd()];
    fds.extend(inputs.iter().map(|(_, f)| f.as_fd()));
    fds.extend(source_proxy.as_ref().map(AsFd::as_fd));

    let socket = config
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let mut stream = UnixStream::connect(&socket).or_else(|e| {
        fail(
            EXIT_INTERNAL,
            ExecReason::ServiceUnavailable.code(),
            format!(
                "cannot reach the launch service at {}: {e}",
                socket.display()
            ),
        )
    })?;
    // Signals caught from now on reach the payload once it runs; they are
    // sent only after the request, whose frames they must not split.
    let caught = signal_hook::iterator::Signals::new(signals::FORWARDED).or_else(|e| {
        fail(
            EXIT_INTERNAL,
            Reason::Internal.code(),
            format!("signal forwarding: {e}"),
        )
    })?;
    let sent = proto::send_request(&mut stream, &request, &fds);
    let forward = stream
        .try_clone()
        .and_then(|s| forward_signals(caught, s))
        .or_else(|e| {
            fail(
                EXIT_INTERNAL,
                Reason::Internal.code(),
                format!("signal forwarding: {e}"),
            )
        })?;
    // Ours are closed: the payload's streams are the service's copies.
    drop((sealed, inputs, source_proxy));
    // A service that refuses before reading (a caller it does not serve)
    // has said why, even if the request could not be sent in full.
    let outcome = match (sent, replies(&mut stream)) {
        (Err(e), Err(_)) => fail(
            EXIT_INTERNAL,
            ExecReason::ServiceUnavailable.code(),
            format!(
                "the launch service at {} did not take the request: {e}",
                socket.display()
            ),
        ),
        (_, outcome) => outcome,
    };
    forward.close();
    outcome
}

/// Wait for the service's verdict and, if the payload runs, its exit.
fn replies(stream: &mut UnixStream) -> Result<u8, Fail> {
    let mut started = None;
    loop {
        let body = match proto::receive(stream, proto::MAX_MESSAGE_BYTES) {
            Ok(b) => b,
            Err(e) => {
                let what = match started {
                    Some(pid) => format!(
                        "the launch service ended while the payload ran (pid {pid}): its end is unknown"
                    ),
                    None => "the launch service ended the launch without a result".into(),
                };
                return fail(
                    EXIT_INTERNAL,
                    ExecReason::ServiceUnavailable.code(),
                    format!("{what} ({e:?})"),
                );
            }
        };
        match Reply::decode(&body) {
            Ok(Reply::Started { pid }) => started = Some(pid),
            Ok(Reply::Exited { exit }) => return Ok(exit),
            Ok(Reply::Refused {
                exit,
                reason,
                message,
            }) => {
                // The service's reason code, passed through as it is.
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{}: {}", one_line(&reason), one_line(&message));
                }
                return Ok(exit);
            }
            Err(e) => {
                return fail(
                    EXIT_INTERNAL,
                    ExecReason::ServiceUnavailable.code(),
                    format!("the launch service's reply: {e}"),
                );
            }
        }
    }
}

/// The thread that sends the signals of [`signals::FORWARDED`] to the
/// service; [`Forwarder::close`] stops it.
struct Forwarder(signal_hook::iterator::Handle);

impl Forwarder {
    fn close(self) {
        self.0.close();
    }
}

fn forward_signals(
    mut caught: signal_hook::iterator::Signals,
    mut stream: UnixStream,
) -> std::io::Result<Forwarder> {
    let handle = caught.handle();
    // Its own stack size: RUST_MIN_STACK in the pilot's environment must
    // not decide whether the launch can start.
    std::thread::Builder::new()
        .name("jobseal-signals".into())
        .stack_size(256 << 10)
        .spawn(move || {
            for signal in caught.forever() {
                let Ok(s) = u8::try_from(signal) else {
                    continue;
                };
                if proto::send(&mut stream, &ClientMessage::Signal(s).encode()).is_err() {
                    break;
                }
            }
        })?;
    Ok(Forwarder(handle))
}

//! jobseal's VOMS client: one VOMS attribute certificate from the VO's VOMS
//! server, asked with the user's end-entity certificate and key, as
//! `voms-proxy-init` asks for it, but without making any proxy: the AC goes
//! into the job-bound proxy that the end-entity key issues itself.
//!
//! - Servers come from the `vomses` files ([`vomses`]); several servers of a
//!   VO are tried in order until one answers; a refusal of membership or
//!   role is final.
//! - REST first (`rest`: `GET /generate-ac`, what VOMS-Admin and IAM
//!   answer), then, if the server does not answer REST the VOMS way, the
//!   legacy VOMS protocol (`exchange`) on a fresh connection, the one
//!   Debian's `voms-server` 2.1.0~rc3 answers (its REST answer is broken),
//!   as `voms-proxy-init` (Java) does. A VOMS refusal over REST is final.
//! - The server is trusted only if its certificate chains to the CA
//!   directory, is for the vomses host and is described by the vomsdir LSC
//!   file; the AC is then checked as a site checks it
//!   (`jobseal_verify::voms::check_ac`: signature, LSC, holder = this
//!   end-entity certificate, validity) and must hold what was asked.
//! - Every wait has a deadline; nothing falls back to sealing without
//!   attributes.
//!
//! This crate is the issuing side's only: no verifier crate depends on it.
#![forbid(unsafe_code)]

mod answer;
mod exchange;
mod http;
mod lsc;
mod request;
mod rest;
mod tls;
pub mod vomses;

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use jobseal_core::time::UnixTime;
use jobseal_issue::Credential;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::PathOptions;
use jobseal_verify::trust::TrustStore;
use jobseal_verify::voms::VomsContext;

pub use request::Request;
pub use vomses::Server;

/// Default wait for a TCP connection to one server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a whole exchange with one server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to ask.
#[derive(Clone, Debug)]
pub struct Options {
    /// vomses files or directories (`--vomses`); empty: the usual places
    /// ([`vomses::default_paths`]).
    pub vomses: Vec<PathBuf>,
    /// The vomsdir with `<vo>/<host>.lsc` files.
    pub vomsdir: PathBuf,
    /// The CA directory.
    pub ca_dir: PathBuf,
    pub connect_timeout: Duration,
    /// The whole exchange with one server, connection included.
    pub timeout: Duration,
    /// AC lifetime asked, in seconds (the server may give less).
    pub lifetime: u64,
}

impl Options {
    /// Defaults from the environment, as the grid tools read it:
    /// `X509_VOMS_DIR`, `X509_CERT_DIR`, else the usual directories.
    pub fn from_env(lifetime: u64) -> Self {
        let dir = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self {
            vomses: Vec::new(),
            vomsdir: dir("X509_VOMS_DIR", jobseal_verify::DEFAULT_VOMS_DIR),
            ca_dir: dir("X509_CERT_DIR", jobseal_verify::DEFAULT_CA_DIR),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            lifetime,
        }
    }
}

/// The attributes obtained: an AC that passed every check of §6.3a for the
/// user's end-entity certificate.
#[derive(Clone, Debug)]
pub struct Attributes {
    /// The AC's DER.
    pub der: Vec<u8>,
    pub vo: String,
    /// In the AA's order (the first is the primary one).
    pub fqans: Vec<String>,
    pub not_after: UnixTime,
    /// The AA (the server's certificate subject).
    pub issuer: String,
    /// `host:port` of the server that answered.
    pub server: String,
    /// The protocol that served the AC.
    pub protocol: Protocol,
    /// Why REST did not serve it, when the legacy protocol did.
    pub rest_failure: Option<String>,
}

/// The VOMS protocols spoken, in the order tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `GET /generate-ac` (VOMS-Admin, INDIGO IAM).
    Rest,
    /// The legacy XML protocol over GSI-style TLS (the C server).
    Legacy,
}

/// Why no attributes were obtained. Each message is one line and says what
/// to fix.
#[non_exhaustive]
#[derive(Debug)]
pub enum VomsError {
    /// The `--voms` argument is wrong.
    Request(String),
    /// A file or directory of the configuration is unusable, or the
    /// credential cannot ask.
    Config(String),
    /// No vomses entry for the VO.
    NoServer {
        vo: String,
        searched: String,
    },
    Unreachable {
        server: String,
        reason: String,
    },
    Timeout {
        server: String,
        stage: &'static str,
        secs: u64,
    },
    /// The server's certificate is not trusted (CA directory, host name,
    /// vomses DN or LSC).
    Untrusted {
        server: String,
        reason: String,
    },
    NotMember {
        server: String,
        vo: String,
        user: String,
        message: String,
    },
    NotGranted {
        server: String,
        wanted: String,
        message: String,
    },
    /// Another refusal of the server (suspended user, database error).
    Refused {
        server: String,
        message: String,
    },
    /// The server ended the TLS session with an alert refusing the user's
    /// certificate or its CA.
    CertificateRefused {
        server: String,
        alert: String,
    },
    /// The AC returned fails the checks a site makes.
    AcRejected {
        server: String,
        reason: String,
    },
    /// The TLS or VOMS protocol failed.
    Protocol {
        server: String,
        reason: String,
    },
    /// Every server of the VO failed (each for its own reason).
    AllFailed {
        vo: String,
        failures: Vec<VomsError>,
    },
}

impl std::fmt::Display for VomsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Request(m) | Self::Config(m) => f.write_str(m),
            Self::NoServer { vo, searched } => write!(
                f,
                "no vomses entry for VO {vo} (looked in {searched}): add the VO's line \
                 (\"{vo}\" \"host\" \"port\" \"server DN\" \"{vo}\", as the VO publishes it) \
                 to ~/.voms/vomses, or name a vomses file with --vomses"
            ),
            Self::Unreachable { server, reason } => write!(
                f,
                "the VOMS server {server} cannot be reached ({reason}): check the vomses entry \
                 and your network, or try again later"
            ),
            Self::Timeout {
                server,
                stage,
                secs,
            } => write!(
                f,
                "the VOMS server {server} is too slow ({stage} took more than {secs} s): \
                 try again later or allow more time with --voms-timeout"
            ),
            Self::Untrusted { server, reason } => {
                write!(f, "the VOMS server {server} is not trusted: {reason}")
            }
            Self::NotMember {
                server,
                vo,
                user,
                message,
            } => write!(
                f,
                "you ({user}) are not a member of VO {vo}: the VOMS server {server} says \
                 \"{message}\"; register with the VO (its VOMS web page) or check which \
                 certificate you sign with"
            ),
            Self::NotGranted {
                server,
                wanted,
                message,
            } => write!(
                f,
                "the VOMS server {server} did not grant {wanted}: \"{message}\"; ask the VO \
                 manager for that group or role, or ask for one you hold"
            ),
            Self::Refused { server, message } => write!(
                f,
                "the VOMS server {server} refused: \"{message}\"; contact the VO's support"
            ),
            Self::CertificateRefused { server, alert } => write!(
                f,
                "the VOMS server {server} did not accept your certificate (TLS alert \
                 {alert}): check that you sign with the certificate registered with the VO, \
                 that it has neither expired nor been revoked, and that its CA is one the VO \
                 accepts"
            ),
            Self::AcRejected { server, reason } => write!(
                f,
                "the attribute certificate from {server} is refused by the vomsdir check: \
                 {reason}"
            ),
            Self::Protocol { server, reason } => {
                write!(
                    f,
                    "the exchange with the VOMS server {server} failed: {reason}"
                )
            }
            Self::AllFailed { vo, failures } => {
                write!(f, "no VOMS server of VO {vo} gave attributes:")?;
                for (i, e) in failures.iter().enumerate() {
                    write!(f, " [{}] {e}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for VomsError {}

impl VomsError {
    /// A refusal that another server of the VO would repeat.
    fn is_final(&self) -> bool {
        matches!(
            self,
            Self::NotMember { .. } | Self::NotGranted { .. } | Self::Request(_)
        )
    }
}

/// Obtain the attributes `request` asks for with the end-entity credential
/// `cred` (its key signs the TLS handshake; nothing is written). One call
/// serves a whole batch of jobs.
pub fn fetch(
    cred: &Credential,
    request: &Request,
    opts: &Options,
) -> Result<Attributes, VomsError> {
    let eec = end_entity(cred)?;
    let paths: Vec<(PathBuf, bool)> = if opts.vomses.is_empty() {
        vomses::default_paths()
    } else {
        opts.vomses.iter().map(|p| (p.clone(), true)).collect()
    };
    let servers = vomses::servers_for(&request.name, &paths)?;
    let trust = TrustStore::open(&opts.ca_dir).map_err(|e| {
        VomsError::Config(format!(
            "the CA directory {} cannot be used ({e}): set X509_CERT_DIR",
            opts.ca_dir.display()
        ))
    })?;
    let expected = Arc::new(tls::Expected {
        trust,
        vomsdir: opts.vomsdir.clone(),
        opts: PathOptions {
            at: UnixTime::now(),
            clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
            algorithms: Default::default(),
        },
    });
    let mut failures = Vec::new();
    for server in &servers {
        match ask(cred, &eec, request, server, &expected, opts) {
            Ok(a) => return Ok(a),
            Err(e) if e.is_final() => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    match <[VomsError; 1]>::try_from(failures) {
        Ok([one]) => Err(one),
        Err(failures) => Err(VomsError::AllFailed {
            vo: request.name.clone(),
            failures,
        }),
    }
}

/// The credential's certificate, which must be an end-entity certificate:
/// the AC's holder, and the issuer of the job-bound proxy.
fn end_entity(cred: &Credential) -> Result<ParsedCert, VomsError> {
    let leaf = cred
        .chain
        .first()
        .ok_or_else(|| VomsError::Config("the credential has no certificate".into()))?;
    let eec = ParsedCert::from_der(leaf.clone(), 0)
        .map_err(|e| VomsError::Config(format!("the credential's certificate: {e}")))?;
    if eec
        .extensions_with(jobseal_core::oid::PROXY_CERT_INFO)
        .next()
        .is_some()
        || eec
            .last_cn()
            .is_some_and(|(cn, of_issuer)| of_issuer && matches!(cn, "proxy" | "limited proxy"))
    {
        return Err(VomsError::Config(format!(
            "--voms asks with your certificate and key, not a proxy ({}): use --cert/--key \
             or ~/.globus/usercert.pem and userkey.pem",
            cred.source
        )));
    }
    Ok(eec)
}

/// How an exchange ran: the server, the credential and the checks.
struct Exchange<'a> {
    cred: &'a Credential,
    eec: &'a ParsedCert,
    request: &'a Request,
    server: &'a Server,
    expected: &'a Arc<tls::Expected>,
    opts: &'a Options,
}

/// Why REST gave no VOMS answer.
enum RestFailure {
    /// The server does not answer REST the VOMS way: try the legacy
    /// protocol (the reason, for [`Attributes::rest_failure`]).
    Fallback(String),
    /// The same failure would end the legacy exchange (unreachable,
    /// untrusted, the user's certificate refused), or a VOMS refusal.
    Final(VomsError),
}

/// Ask one server: REST first, as `voms-proxy-init` (Java) does; if the
/// server does not answer REST the VOMS way, the legacy protocol on a
/// fresh connection, within the same deadline.
fn ask(
    cred: &Credential,
    eec: &ParsedCert,
    request: &Request,
    server: &Server,
    expected: &Arc<tls::Expected>,
    opts: &Options,
) -> Result<Attributes, VomsError> {
    let x = Exchange {
        cred,
        eec,
        request,
        server,
        expected,
        opts,
    };
    // A timeout too large for the clock is a day (no overflow, no panic).
    let now = Instant::now();
    let day = now + Duration::from_secs(24 * 3600);
    let deadline = now.checked_add(opts.timeout).unwrap_or(day);
    // REST's answer may take half the time: a server that does not speak
    // it and waits leaves the legacy exchange the other half.
    let rest_deadline = now.checked_add(opts.timeout / 2).unwrap_or(day);
    let fallback = match x.rest(deadline, rest_deadline) {
        Ok(answer) => return x.finish(&answer, Protocol::Rest, None),
        Err(RestFailure::Final(e)) => return Err(e),
        Err(RestFailure::Fallback(why)) => why,
    };
    let raw = x
        .session(|config| {
            let document = request::document(&request.command(&server.vo)?, opts.lifetime);
            Ok(exchange::run(
                server,
                config,
                &document,
                opts.connect_timeout,
                deadline,
            ))
        })?
        .map_err(|(f, refusal)| failure(server, f, refusal, opts.timeout))?;
    let answer =
        answer::parse(&raw).map_err(|why| protocol(server, format!("its answer: {why}")))?;
    x.finish(&answer, Protocol::Legacy, Some(fallback))
}

impl Exchange<'_> {
    /// One TLS session with the server: `run` gets the client
    /// configuration, in a thread of its own, while this one, which holds
    /// the user's key, answers its signature requests; they end when `run`
    /// drops the configuration. A failure comes with the server check's
    /// refusal, if any.
    fn session<T: Send>(
        &self,
        run: impl FnOnce(Arc<rustls::ClientConfig>) -> Result<Result<T, exchange::Failure>, VomsError>
        + Send,
    ) -> Result<Result<T, (exchange::Failure, Option<String>)>, VomsError> {
        let (requests, serve) = mpsc::channel();
        let (config, refusal) = tls::config(
            &self.cred.chain,
            &self.cred.key,
            requests,
            self.server,
            self.expected.clone(),
        )
        .map_err(|reason| protocol(self.server, reason))?;
        let out = std::thread::scope(|s| {
            let exchange = s.spawn(move || run(config));
            tls::serve_signatures(&self.cred.key, &serve);
            exchange.join()
        })
        .map_err(|_| protocol(self.server, "the exchange thread failed".into()))??;
        let refusal = refusal.lock().ok().and_then(|mut r| r.take());
        Ok(out.map_err(|f| (f, refusal)))
    }

    /// The REST exchange: connected until `deadline`, answered until
    /// `answer_deadline`.
    fn rest(
        &self,
        deadline: Instant,
        answer_deadline: Instant,
    ) -> Result<answer::Answer, RestFailure> {
        let text = rest::http_request(self.request, self.server, self.opts.lifetime)
            .map_err(RestFailure::Final)?;
        let (server, connect) = (self.server, self.opts.connect_timeout);
        let deadlines = (deadline, answer_deadline);
        let response = self
            .session(|config| {
                Ok(exchange::run_rest(
                    server, config, &text, connect, deadlines,
                ))
            })
            .map_err(RestFailure::Final)?
            .map_err(|(f, refusal)| self.rest_fallback(f, refusal))?;
        let response =
            response.map_err(|why| RestFailure::Fallback(format!("its answer: {why}")))?;
        rest::interpret(&response).map_err(RestFailure::Fallback)
    }

    /// Which failures of the REST exchange the legacy one may not repeat:
    /// those where the connection broke or stalled after the handshake
    /// (the server was reached, trusted, and accepted the user's
    /// certificate).
    fn rest_fallback(&self, f: exchange::Failure, refusal: Option<String>) -> RestFailure {
        let server = self.server.address();
        match f {
            exchange::Failure::Io(reason) if refusal.is_none() => {
                RestFailure::Fallback(format!("the exchange with {server} failed: {reason}"))
            }
            exchange::Failure::Timeout(stage)
                if refusal.is_none() && exchange::AFTER_HANDSHAKE.contains(&stage) =>
            {
                RestFailure::Fallback(format!(
                    "the VOMS server {server} is too slow ({stage} took more than {:.1} s)",
                    (self.opts.timeout / 2).as_secs_f64()
                ))
            }
            f => RestFailure::Final(failure(self.server, f, refusal, self.opts.timeout)),
        }
    }

    /// A VOMS answer: its refusals, else its AC checked as a site checks it.
    fn finish(
        &self,
        answer: &answer::Answer,
        protocol_used: Protocol,
        rest_failure: Option<String>,
    ) -> Result<Attributes, VomsError> {
        let server = self.server;
        refusals(answer, server, self.request, &self.eec.subject_dn())?;
        let text = answer.ac.as_deref().ok_or_else(|| {
            protocol(server, "its answer holds neither an AC nor an error".into())
        })?;
        let der = match protocol_used {
            Protocol::Rest => answer::decode_standard(text),
            Protocol::Legacy => answer::decode_ac(text),
        }
        .ok_or_else(|| protocol(server, "the AC in its answer is not base64".into()))?;
        let mut a = check(der, self.eec, self.request, server, self.expected)?;
        a.protocol = protocol_used;
        a.rest_failure = rest_failure;
        Ok(a)
    }
}

fn protocol(server: &Server, reason: String) -> VomsError {
    VomsError::Protocol {
        server: server.address(),
        reason,
    }
}

fn failure(
    server: &Server,
    f: exchange::Failure,
    refusal: Option<String>,
    timeout: Duration,
) -> VomsError {
    let address = server.address();
    if let Some(reason) = refusal {
        return VomsError::Untrusted {
            server: address,
            reason,
        };
    }
    match f {
        exchange::Failure::Connect(reason) => VomsError::Unreachable {
            server: address,
            reason,
        },
        exchange::Failure::Timeout(stage) => VomsError::Timeout {
            server: address,
            stage,
            secs: timeout.as_secs(),
        },
        exchange::Failure::CertRefused(alert) => VomsError::CertificateRefused {
            server: address,
            alert,
        },
        exchange::Failure::Tls(reason) => protocol(server, format!("TLS: {reason}")),
        exchange::Failure::Io(reason) => protocol(server, reason),
    }
}

/// The server's errors, as the person who must act on them reads them.
fn refusals(
    answer: &answer::Answer,
    server: &Server,
    request: &Request,
    user: &str,
) -> Result<(), VomsError> {
    let Some(e) = answer
        .errors
        .iter()
        .find(|e| e.number > answer::ERROR_OFFSET)
    else {
        return Ok(());
    };
    let message = e.message.trim().chars().take(512).collect::<String>();
    let server_name = server.address();
    let default_request = request.fqan.is_none();
    let code = e.code.as_deref();
    // REST codes for a group or role not held (IAM: `NoSuchAttribute`).
    let about_attribute = code.is_some_and(|c| {
        ["Attribute", "Role", "Group", "FQAN", "Fqan"]
            .iter()
            .any(|w| c.contains(w))
    });
    Err(match e.number {
        answer::ERR_NOT_MEMBER
            if code == Some("NoSuchUser")
                || default_request
                || message.contains("unknown to this VO")
                || message.contains("not a member") =>
        {
            VomsError::NotMember {
                server: server_name,
                vo: server.vo.clone(),
                user: user.to_string(),
                message,
            }
        }
        _ if about_attribute => VomsError::NotGranted {
            server: server_name,
            wanted: request.describe(),
            message,
        },
        answer::ERR_NOT_MEMBER | answer::ERR_ATTR_EMPTY => VomsError::NotGranted {
            server: server_name,
            wanted: request.describe(),
            message,
        },
        answer::ERR_SUSPENDED => VomsError::Refused {
            server: server_name,
            message: format!("{message} (your membership is suspended)"),
        },
        _ => VomsError::Refused {
            server: server_name,
            message,
        },
    })
}

/// The AC must pass every check a site makes, for this end-entity
/// certificate, be of the VO asked and hold what was asked.
fn check(
    der: Vec<u8>,
    eec: &ParsedCert,
    request: &Request,
    server: &Server,
    expected: &tls::Expected,
) -> Result<Attributes, VomsError> {
    let ctx = VomsContext {
        trust: &expected.trust,
        voms_dir: &expected.vomsdir,
        opts: &expected.opts,
    };
    let info = jobseal_verify::voms::check_ac(&der, eec, &ctx);
    let rejected = |reason: String| VomsError::AcRejected {
        server: server.address(),
        reason,
    };
    if !info.verified {
        let why = info.error.as_ref().map_or_else(
            || "it did not verify".to_string(),
            |e| format!("{} ({})", e.message, e.code.code()),
        );
        return Err(rejected(format!(
            "{why}; install the VO's LSC files, as it publishes them, in {}/{}/ \
             (or fix the CA directory)",
            expected.vomsdir.display(),
            server.vo
        )));
    }
    if info.vo != server.vo {
        return Err(rejected(format!(
            "it is for VO {}, not {}",
            info.vo, server.vo
        )));
    }
    let not_after = info
        .not_after
        .ok_or_else(|| rejected("it has no validity".into()))?;
    if !request.granted_by(&server.vo, &info.fqans) {
        return Err(VomsError::NotGranted {
            server: server.address(),
            wanted: request.describe(),
            message: format!("the AC holds only {}", info.fqans.join(", ")),
        });
    }
    Ok(Attributes {
        der,
        vo: info.vo,
        fqans: info.fqans,
        not_after,
        issuer: info.issuer,
        server: server.address(),
        protocol: Protocol::Legacy,
        rest_failure: None,
    })
}

//! TLS to a VOMS server: the user's end-entity key signs the handshake, and
//! the server's certificate is trusted only if it chains to the CA
//! directory, names the vomses host and is described by the vomsdir LSC.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use jobseal_issue::SigningKey;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::trust::TrustStore;
use ring::rand::SystemRandom;
use ring::signature as rs;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ResolvesClientCert};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime as TlsTime};
use rustls::sign::{CertifiedKey, Signer};
use rustls::{DigitallySignedStruct, SignatureAlgorithm, SignatureScheme};

use crate::vomses::Server;

/// A handshake signature asked of the thread that holds the user's key.
#[derive(Debug)]
pub(crate) struct SignRequest {
    scheme: SignatureScheme,
    message: Vec<u8>,
    reply: mpsc::SyncSender<Option<Vec<u8>>>,
}

/// Answer signature requests until every sender is gone. The key stays
/// with its owner: rustls wants a `'static` key, the credential is only
/// borrowed, and a private key is never copied.
pub(crate) fn serve_signatures(key: &SigningKey, requests: &mpsc::Receiver<SignRequest>) {
    for r in requests {
        let _ = r.reply.send(sign(key, r.scheme, &r.message));
    }
}

fn sign(key: &SigningKey, scheme: SignatureScheme, msg: &[u8]) -> Option<Vec<u8>> {
    let rng = SystemRandom::new();
    let rsa = |k: &rs::RsaKeyPair, pad: &'static dyn rs::RsaEncoding| {
        let mut sig = vec![0; k.public().modulus_len()];
        k.sign(pad, &rng, msg, &mut sig).ok().map(|()| sig)
    };
    match (key, scheme) {
        (SigningKey::Rsa(k), SignatureScheme::RSA_PSS_SHA256) => rsa(k, &rs::RSA_PSS_SHA256),
        (SigningKey::Rsa(k), SignatureScheme::RSA_PSS_SHA384) => rsa(k, &rs::RSA_PSS_SHA384),
        (SigningKey::Rsa(k), SignatureScheme::RSA_PKCS1_SHA256) => rsa(k, &rs::RSA_PKCS1_SHA256),
        (SigningKey::Rsa(k), SignatureScheme::RSA_PKCS1_SHA384) => rsa(k, &rs::RSA_PKCS1_SHA384),
        (SigningKey::EcdsaP256 { asn1, .. }, SignatureScheme::ECDSA_NISTP256_SHA256)
        | (SigningKey::EcdsaP384 { asn1, .. }, SignatureScheme::ECDSA_NISTP384_SHA384) => {
            asn1.sign(&rng, msg).ok().map(|s| s.as_ref().to_vec())
        }
        (SigningKey::Ed25519(k), SignatureScheme::ED25519) => Some(k.sign(msg).as_ref().to_vec()),
        _ => None,
    }
}

/// The schemes a key can sign with, preferred first.
fn schemes(key: &SigningKey) -> (SignatureAlgorithm, Vec<SignatureScheme>) {
    use SignatureScheme as S;
    match key {
        SigningKey::Rsa(_) => (
            SignatureAlgorithm::RSA,
            vec![
                S::RSA_PSS_SHA256,
                S::RSA_PSS_SHA384,
                S::RSA_PKCS1_SHA256,
                S::RSA_PKCS1_SHA384,
            ],
        ),
        SigningKey::EcdsaP256 { .. } => (SignatureAlgorithm::ECDSA, vec![S::ECDSA_NISTP256_SHA256]),
        SigningKey::EcdsaP384 { .. } => (SignatureAlgorithm::ECDSA, vec![S::ECDSA_NISTP384_SHA384]),
        SigningKey::Ed25519(_) => (SignatureAlgorithm::ED25519, vec![S::ED25519]),
    }
}

/// The user's key as rustls sees it: signing is asked of its owner.
#[derive(Debug)]
struct RemoteKey {
    algorithm: SignatureAlgorithm,
    schemes: Vec<SignatureScheme>,
    requests: mpsc::Sender<SignRequest>,
}

#[derive(Debug)]
struct RemoteSigner {
    scheme: SignatureScheme,
    requests: mpsc::Sender<SignRequest>,
}

impl rustls::sign::SigningKey for RemoteKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = *self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(RemoteSigner {
            scheme,
            requests: self.requests.clone(),
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl Signer for RemoteSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        let failed = || rustls::Error::General("the user's key could not sign".into());
        self.requests
            .send(SignRequest {
                scheme: self.scheme,
                message: message.to_vec(),
                reply,
            })
            .map_err(|_| failed())?;
        answer.recv().ok().flatten().ok_or_else(failed)
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always the user's certificate chain and key.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.key.choose_scheme(schemes).map(|_| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Where the server check leaves why it refused the server.
pub(crate) type Refusal = Arc<Mutex<Option<String>>>;

/// What the server's certificate must be.
#[derive(Debug)]
pub(crate) struct Expected {
    pub trust: TrustStore,
    pub vomsdir: PathBuf,
    pub opts: PathOptions,
}

/// Checks the server's certificate; keeps why it refused, for the message.
#[derive(Debug)]
struct ServerCheck {
    server: Server,
    expected: Arc<Expected>,
    algorithms: WebPkiSupportedAlgorithms,
    refusal: Refusal,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: TlsTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity).chain(intermediates.iter().take(8));
        check_server(chain, &self.server, &self.expected)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|why| {
                if let Ok(mut r) = self.refusal.lock() {
                    *r = Some(why.clone());
                }
                rustls::Error::General(why)
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server's certificate (leaf first): a path to the CA directory, the
/// vomses host among its names, its subject the vomses DN, and an LSC
/// description of it (`vomsdir/<vo>/<host>.lsc`), as the C client demands.
fn check_server<'a>(
    chain: impl Iterator<Item = &'a CertificateDer<'a>>,
    server: &Server,
    expected: &Expected,
) -> Result<(), String> {
    let certs = chain
        .enumerate()
        .map(|(i, c)| ParsedCert::from_der(c.as_ref().to_vec(), i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("its certificate cannot be read: {e}"))?;
    let validated = path::validate(&certs, &expected.trust, &expected.opts).map_err(|e| {
        format!(
            "its certificate is not trusted by the CA directory {}: {e}; install the VO's \
             CA certificates there, or name the right directory with X509_CERT_DIR",
            expected.trust.dir().display()
        )
    })?;
    let leaf = certs.first().ok_or("it sent no certificate")?;
    if validated.end_entity != 0 {
        return Err("it authenticated with a proxy, not a host certificate".into());
    }
    if !names_host(leaf, &server.host) {
        return Err(format!(
            "its certificate {} is not for the host {} (subjectAltName or CN): fix the host \
             in the vomses entry {}",
            leaf.subject_dn(),
            server.host,
            server.origin
        ));
    }
    if leaf.subject_dn() != server.dn {
        return Err(format!(
            "it is {}, but the vomses entry {} says {}: fix the vomses file",
            leaf.subject_dn(),
            server.origin,
            server.dn
        ));
    }
    check_lsc(leaf, server, &expected.vomsdir)
}

/// The LSC file for this server must list its subject, then its issuer.
fn check_lsc(leaf: &ParsedCert, server: &Server, vomsdir: &Path) -> Result<(), String> {
    let file = vomsdir
        .join(&server.vo)
        .join(format!("{}.lsc", server.host));
    let subject = leaf.subject_dn();
    let issuer = leaf.issuer_dn_str();
    let fix = format!(
        "put \"{subject}\" and \"{issuer}\" on its first two lines if the VO publishes this server"
    );
    let descriptions = crate::lsc::read(&file)
        .map_err(|e| format!("the vomsdir check fails: {} {e}; {fix}", file.display()))?;
    let described = descriptions
        .iter()
        .any(|d| matches!(d.as_slice(), [s, i, ..] if *s == subject && i == issuer));
    if described {
        return Ok(());
    }
    Err(format!(
        "the vomsdir check fails: {} does not describe the server's certificate {subject} \
         (issuer {issuer}); {fix}",
        file.display()
    ))
}

/// Whether `host` is a DNS name of the certificate (its dNSNames, or its
/// CN when it has none; `service/host` CNs count as `host`). A wildcard
/// matches one leftmost label.
fn names_host(cert: &ParsedCert, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let sans = dns_names(cert);
    let candidates: Vec<String> = if sans.is_empty() {
        cert.last_cn()
            .map(|(cn, _)| cn.rsplit('/').next().unwrap_or(cn).to_ascii_lowercase())
            .into_iter()
            .collect()
    } else {
        sans
    };
    candidates.iter().any(|n| match n.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain),
        None => *n == host,
    })
}

fn dns_names(cert: &ParsedCert) -> Vec<String> {
    use der::Decode as _;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    cert.extensions_with(jobseal_core::oid::SUBJECT_ALT_NAME)
        .filter_map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
        .flat_map(|san| san.0)
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(d.as_str().to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// A client configuration for one server. Returns where the server check
/// leaves its refusal.
pub(crate) fn config(
    chain: &[Vec<u8>],
    key: &SigningKey,
    requests: mpsc::Sender<SignRequest>,
    server: &Server,
    expected: Arc<Expected>,
) -> Result<(Arc<ClientConfig>, Refusal), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (algorithm, schemes) = schemes(key);
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = Arc::new(RemoteKey {
        algorithm,
        schemes,
        requests,
    });
    let refusal = Arc::new(Mutex::new(None));
    let check = ServerCheck {
        server: server.clone(),
        expected,
        algorithms: provider.signature_verification_algorithms,
        refusal: refusal.clone(),
    };
    let config = ClientConfig::builder_with_provider(provider.clone() as Arc<CryptoProvider>)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(check))
        .with_client_cert_resolver(Arc::new(ClientCert(Arc::new(CertifiedKey::new(
            certs, key,
        )))));
    Ok((Arc::new(config), refusal))
}

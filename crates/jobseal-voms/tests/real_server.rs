#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]
//! The client against a real VOMS server (Debian `voms-server` over
//! MariaDB, in its own network namespace; `jobseal-testkit`'s
//! `voms_server.rs`). `real_voms_server` starts the server, then runs this
//! test binary's `inside_the_namespace` in the server's namespace, where
//! the cases run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobseal_issue::credential::{Credential, Source};
use jobseal_voms::{Options, Protocol, Request, VomsError, fetch};

#[allow(dead_code)]
#[path = "../../jobseal-testkit/src/peers.rs"]
mod peers;
#[allow(dead_code)]
#[path = "../../jobseal-testkit/src/voms_server.rs"]
mod voms_server;

use voms_server::{Pki, VO, VomsServer};

/// Set for the run inside the namespace: the PKI's directory.
const INSIDE: &str = "JOBSEAL_VOMS_TEST_PKI";

#[test]
fn real_voms_server() {
    if !voms_server::available() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("jobseal-voms-")
        .tempdir()
        .unwrap();
    let pki = Pki::new(tmp.path()).unwrap();
    let server = VomsServer::start(&pki).unwrap_or_else(|e| panic!("VOMS server: {e}"));
    let out = server
        .command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "inside_the_namespace",
            "--ignored",
            "--nocapture",
        ])
        .env(INSIDE, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "inside the namespace:\n{stdout}\n{stderr}\n--- voms.log ---\n{}",
        server.log()
    );
    eprintln!("{stderr}");
}

/// A TLS server with the VOMS server's certificate that reads one request
/// and never answers; its port.
fn stalling_tls_server(pki: &Pki) -> u16 {
    use std::io::Read as _;
    let blocks = |p: &Path| jobseal_core::pem::parse_blocks(&std::fs::read(p).unwrap()).unwrap();
    let certs = blocks(&pki.host_cert)
        .into_iter()
        .map(|b| rustls::pki_types::CertificateDer::from(b.der))
        .collect();
    let key = blocks(&pki.host_key).remove(0).der;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = std::sync::Arc::new(config);
    // Every connection (REST, then legacy) stalls.
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf);
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    port
}

fn load(cert: &Path, key: &Path) -> Credential {
    let source = Source::CertKey {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    Credential::load(source, &mut |_| panic!("no passphrase expected")).unwrap()
}

fn options(pki: &Pki, vomses: PathBuf) -> Options {
    Options {
        vomses: vec![vomses],
        vomsdir: pki.vomsdir.clone(),
        ca_dir: pki.ca_dir.clone(),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        lifetime: 3600,
    }
}

fn ask(
    cred: &Credential,
    spec: &str,
    opts: &Options,
) -> Result<jobseal_voms::Attributes, VomsError> {
    fetch(cred, &Request::parse(spec).unwrap(), opts)
}

#[test]
#[ignore = "run by real_voms_server inside the VOMS server's network namespace"]
fn inside_the_namespace() {
    let root = PathBuf::from(std::env::var_os(INSIDE).expect("run by real_voms_server"));
    let pki = Pki::at(&root);
    let opts = options(
        &pki,
        pki.vomses("vomses", "localhost", voms_server::PORT)
            .unwrap(),
    );
    let jane = load(&pki.user_cert, &pki.user_key);

    // Every form voms-proxy-init -voms accepts; the FQAN asked comes first.
    for (spec, first) in [
        ("testvo", "/testvo/Role=NULL/Capability=NULL"),
        (
            "testvo:/testvo/analysis",
            "/testvo/analysis/Role=NULL/Capability=NULL",
        ),
        (
            "testvo:/testvo/analysis/Role=production",
            "/testvo/analysis/Role=production/Capability=NULL",
        ),
        (
            "testvo:/testvo/Role=production",
            "/testvo/Role=production/Capability=NULL",
        ),
    ] {
        let a = ask(&jane, spec, &opts).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(a.vo, VO);
        assert_eq!(
            a.fqans.first().map(String::as_str),
            Some(first),
            "{spec}: {:?}",
            a.fqans
        );
        assert!(
            a.fqans
                .iter()
                .any(|f| f == "/testvo/Role=NULL/Capability=NULL")
        );
        assert_eq!(a.issuer, voms_server::HOST_DN);
        assert!(a.not_after.0 > jobseal_core::time::UnixTime::now().0 + 3000);
        // REST was tried first; this server's REST answer is broken (field
        // notes), which was detected, and the legacy protocol served the AC.
        assert_eq!(a.protocol, Protocol::Legacy, "{spec}");
        let why = a
            .rest_failure
            .as_deref()
            .unwrap_or_else(|| panic!("{spec}: no REST try"));
        eprintln!("{spec}: {:?} (REST: {why})", a.fqans);
    }

    // An EC key signs the TLS handshake as well; the AC's holder is that
    // certificate.
    let jane_ec = load(&pki.user_ec_cert, &pki.user_ec_key);
    let a = ask(&jane_ec, "testvo:/testvo/Role=production", &opts)
        .unwrap_or_else(|e| panic!("EC key: {e}"));
    assert_eq!(
        a.fqans.first().map(String::as_str),
        Some("/testvo/Role=production/Capability=NULL")
    );

    let refused = |cred: &Credential, spec: &str, opts: &Options| -> VomsError {
        let e = ask(cred, spec, opts)
            .err()
            .unwrap_or_else(|| panic!("{spec}: accepted"));
        eprintln!("{spec}: {e}");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        e
    };

    let john = load(&pki.other_cert, &pki.other_key);
    let e = refused(&john, "testvo", &opts);
    assert!(matches!(e, VomsError::NotMember { .. }), "{e:?}");
    assert!(e.to_string().contains(voms_server::OTHER_DN), "{e}");

    let e = refused(&jane, "testvo:/testvo/Role=nosuchrole", &opts);
    assert!(matches!(e, VomsError::NotGranted { .. }), "{e:?}");
    let e = refused(&jane, "testvo:/testvo/nosuchgroup", &opts);
    assert!(matches!(e, VomsError::NotGranted { .. }), "{e:?}");

    // The server's certificate is not the one the LSC describes.
    let bad_vomsdir = root.join("vomsdir-other");
    std::fs::create_dir_all(bad_vomsdir.join(VO)).unwrap();
    std::fs::write(
        bad_vomsdir.join(VO).join("localhost.lsc"),
        format!(
            "/DC=org/DC=example/CN=voms.example.org\n{}\n",
            voms_server::CA_DN
        ),
    )
    .unwrap();
    let e = refused(
        &jane,
        "testvo",
        &Options {
            vomsdir: bad_vomsdir,
            ..opts.clone()
        },
    );
    assert!(matches!(e, VomsError::Untrusted { .. }), "{e:?}");
    assert!(e.to_string().contains("localhost.lsc"), "{e}");

    // No LSC at all.
    let e = refused(
        &jane,
        "testvo",
        &Options {
            vomsdir: root.join("empty"),
            ..opts.clone()
        },
    );
    assert!(matches!(e, VomsError::Untrusted { .. }), "{e:?}");

    // The vomses host is not a name of the certificate.
    let by_ip = pki
        .vomses("vomses-ip", "127.0.0.1", voms_server::PORT)
        .unwrap();
    let e = refused(&jane, "testvo", &options(&pki, by_ip));
    assert!(matches!(e, VomsError::Untrusted { .. }), "{e:?}");

    // The vomses entry names another server DN.
    let wrong_dn = root.join("vomses-wrong-dn");
    std::fs::write(
        &wrong_dn,
        format!(
            "\"testvo\" \"localhost\" \"{}\" \"/DC=org/DC=example/CN=voms.example.org\" \"testvo\"\n",
            voms_server::PORT
        ),
    )
    .unwrap();
    let e = refused(&jane, "testvo", &options(&pki, wrong_dn));
    assert!(matches!(e, VomsError::Untrusted { .. }), "{e:?}");
    assert!(e.to_string().contains("vomses-wrong-dn:1"), "{e}");

    // A CA directory without the server's CA.
    let no_ca = root.join("no-ca");
    std::fs::create_dir_all(&no_ca).unwrap();
    let e = refused(
        &jane,
        "testvo",
        &Options {
            ca_dir: no_ca,
            ..opts.clone()
        },
    );
    assert!(matches!(e, VomsError::Untrusted { .. }), "{e:?}");

    // Nothing listening.
    let dead = pki
        .vomses("vomses-dead", "localhost", voms_server::PORT + 9)
        .unwrap();
    let e = refused(&jane, "testvo", &options(&pki, dead));
    assert!(matches!(e, VomsError::Unreachable { .. }), "{e:?}");

    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let slow = pki.vomses("vomses-slow", "127.0.0.1", port).unwrap();
    let started = Instant::now();
    let e = refused(
        &jane,
        "testvo",
        &Options {
            timeout: Duration::from_secs(2),
            ..options(&pki, slow)
        },
    );
    assert!(matches!(e, VomsError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(held);

    // A server that completes TLS, reads the request and never answers.
    let port = stalling_tls_server(&pki);
    let stalls = pki.vomses("vomses-stalls", "localhost", port).unwrap();
    let started = Instant::now();
    let e = refused(
        &jane,
        "testvo",
        &Options {
            timeout: Duration::from_secs(2),
            ..options(&pki, stalls)
        },
    );
    assert!(
        matches!(e, VomsError::Timeout { stage, .. } if stage.contains("answer")),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Two servers, the first dead: the second answers.
    let both = root.join("vomses-two");
    std::fs::write(
        &both,
        format!(
            "\"testvo\" \"localhost\" \"{}\" \"{}\" \"testvo\"\n\"testvo\" \"localhost\" \"{}\" \"{}\" \"testvo\"\n",
            voms_server::PORT + 9,
            voms_server::HOST_DN,
            voms_server::PORT,
            voms_server::HOST_DN
        ),
    )
    .unwrap();
    assert!(ask(&jane, "testvo", &options(&pki, both)).is_ok());

    // The server is trusted, but its AC names another AA host, for which
    // the vomsdir has no LSC: the AC fails the check a site makes.
    let elsewhere = pki
        .vomses("vomses-elsewhere", "localhost", voms_server::PORT_OTHER_URI)
        .unwrap();
    let e = refused(&jane, "testvo", &options(&pki, elsewhere));
    assert!(matches!(e, VomsError::AcRejected { .. }), "{e:?}");
    assert!(e.to_string().contains(voms_server::OTHER_URI_HOST), "{e}");

    // No entry for the VO.
    let e = refused(&jane, "othervo", &opts);
    assert!(matches!(e, VomsError::NoServer { .. }), "{e:?}");
}

//! Names as identities (issue 18 §2): a name that is not text is written
//! unambiguously, a name that cannot be read is refused, and a refusal
//! names the certificate and the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use jobseal_core::time::UnixTime;
use jobseal_issue::proxy::CertTemplate;
use jobseal_issue::throwaway;
use jobseal_testkit::VECTOR_TIME;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::{Config, Invocation, Reason, Verifier};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

fn check(name: &str) -> jobseal_verify::Decision {
    let dir = vectors();
    let verifier = Verifier::new(Config {
        ca_dir: dir.join("ca"),
        voms_dir: dir.join("vomsdir"),
        ..Config::default()
    })
    .unwrap();
    let job = dir.join(name).join("job");
    let invocation = Invocation {
        executable: job.join("run.sh"),
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: job,
    };
    verifier.check_file(&dir.join(name).join("bundle.pem"), &invocation, VECTOR_TIME)
}

#[test]
fn a_cn_that_is_not_a_string_is_written_as_hex_of_its_der() {
    let d = check("permit-user-subject-cn-not-a-string");
    assert_eq!(d.code(), "permit", "{}", d.message);
    assert_eq!(
        d.identity.unwrap().end_entity,
        "/O=jobseal test vectors/CN=#03020042"
    );
}

#[test]
fn a_cn_that_is_not_utf8_is_refused_naming_the_field() {
    let d = check("deny-cert-user-subject-invalid-utf8");
    assert_eq!(d.reason, Some(Reason::CertMalformed));
    // The job-bound proxy, certificate 0, names the user as its issuer:
    // the first name read.
    assert!(d.message.contains("certificate 0"), "{}", d.message);
    assert!(d.message.contains("issuer name"), "{}", d.message);
}

#[test]
fn a_universal_string_name_says_which_certificate_and_field() {
    let t = UnixTime(1_767_225_600);
    let ca = throwaway::ca(&[3; 32], "CN=Names CA,O=jobseal", t.minus(60), t.plus(60)).unwrap();
    // x509-cert encodes no UniversalString: sign the name as a UTF8String,
    // then change its tag (the signature no longer matters: parsing fails).
    let (_, _, spki) = throwaway::ed25519_from_seed(&[4; 32]).unwrap();
    let mut cert = CertTemplate {
        serial: 9,
        issuer: throwaway::name_der("CN=Names CA,O=jobseal").unwrap(),
        subject: throwaway::name_der("CN=abcU").unwrap(),
        spki,
        not_before: t.minus(60),
        not_after: t.plus(60),
        extensions: throwaway::user_extensions().unwrap(),
    }
    .sign(&ca.key)
    .unwrap();
    let at = cert
        .windows(6)
        .position(|w| {
            w == [0x0c, 0x04, b'a', b'b', b'c', b'U'] || w == [0x13, 0x04, b'a', b'b', b'c', b'U']
        })
        .expect("the CN value");
    cert[at] = 0x1c;
    let e = ParsedCert::from_der(cert, 2).unwrap_err();
    assert_eq!(e.reason, Reason::CertMalformed);
    assert!(e.message.contains("certificate 2"), "{}", e.message);
    assert!(
        e.message.contains("subject name holds a UniversalString"),
        "{}",
        e.message
    );
}

//! In-process benchmarks of the verifier (issue 7). Run with
//! `cargo bench -p jobseal-verify --bench verify`; see BENCHMARKS.md.
//!
//! * `full_verify_voms`: `Verifier::check` of the `permit-voms-verified`
//!   test vector (CA → user → VOMS proxy → job-bound proxy, COSE manifest,
//!   small executable and input) from bytes, with the CA directory, vomsdir
//!   and job files in the page cache.
//! * `signature_limit`: the same bundle's signature verifications alone,
//!   done with ring on the same keys (the floor `full_verify_voms` is held
//!   against).
//! * `ca_dir_scaling`: `full_verify_voms` with the needed CA alone in the
//!   CA directory vs. with 1,000 more.
//! * `manifest_inputs`: parse + binding + manifest check of bundles whose
//!   manifest lists N inputs (payload hashing excluded).
//! * `full_verify_voms_cold`: `full_verify_voms` on a new verifier each time
//!   (nothing kept from an earlier check).
//! * `credential_only`, `payload_files`, `trust_stat_pass`: the check
//!   without step 5, step 5 alone (file I/O of the job), and the `stat`s a
//!   check makes of the trust directories: file I/O reported apart.
//! * `crl_loading`: a check whose CA publishes a CRL of N entries, against
//!   the same check ignoring CRLs: CRL loading reported apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::print_stdout)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use divan::Bencher;
use jobseal_core::manifest::{FileDigest, Manifest};
use jobseal_core::time::UnixTime;
use jobseal_core::{name, sha256, tlv};
use jobseal_issue::credential::{Credential, Source};
use jobseal_issue::throwaway;
use jobseal_verify::parse::{self, ParsedCert};
use jobseal_verify::trust::TrustStore;
use jobseal_verify::{Config, Invocation, Outcome, Verifier, binding, manifest};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

fn main() {
    divan::main();
}

const VECTOR: &str = "permit-voms-verified";
const AT: UnixTime = jobseal_testkit::VECTOR_TIME;

/// The test vectors written out once: `<tmp>/ca`, `<tmp>/vomsdir`,
/// `<tmp>/<vector>/…`, plus a one-CA and a 1,001-CA directory.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bundle: Vec<u8>,
    invocation: Invocation,
    /// CA directory with only the files of the CA the vector needs.
    ca_one: PathBuf,
    /// The same plus 1,000 other CAs.
    ca_many: PathBuf,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let fixture = jobseal_testkit::generate().expect("vectors");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    jobseal_testkit::write_dir(&fixture, &root).unwrap();
    let vdir = root.join(VECTOR);
    let bundle = std::fs::read(vdir.join("bundle.pem")).unwrap();
    let v = fixture.vectors.iter().find(|v| v.name == VECTOR).unwrap();
    let invocation = Invocation {
        executable: vdir.join("job/run.sh"),
        arguments: v.arguments.iter().map(OsString::from).collect(),
        job_dir: vdir.join("job"),
    };
    // The CA of the user (which also issued the AA): its `<hash>.*` files.
    let parsed = parse::parse(&bundle).unwrap();
    let ca_name = parsed.certs.last().unwrap().issuer().to_vec();
    let hash = format!("{:08x}.", name::openssl_hash(&ca_name).unwrap());
    let ca_one = root.join("ca-one");
    let ca_many = root.join("ca-many");
    std::fs::create_dir_all(&ca_one).unwrap();
    std::fs::create_dir_all(&ca_many).unwrap();
    for e in std::fs::read_dir(root.join("ca")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with(&hash) {
            std::fs::copy(e.path(), ca_one.join(e.file_name())).unwrap();
            std::fs::copy(e.path(), ca_many.join(e.file_name())).unwrap();
        }
    }
    for i in 0..1000u32 {
        let mut seed = [0x77u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let ca = throwaway::ca(
            &seed,
            &format!("CN=Bench CA {i},O=jobseal benchmarks"),
            AT.minus(86_400),
            AT.plus(86_400),
        )
        .unwrap();
        throwaway::install_ca(&ca_many, &ca.cert).unwrap();
    }
    Setup {
        _tmp: tmp,
        root,
        bundle,
        invocation,
        ca_one,
        ca_many,
    }
});

fn verifier(ca_dir: &Path) -> Verifier {
    Verifier::new(Config {
        ca_dir: ca_dir.to_path_buf(),
        voms_dir: SETUP.root.join("vomsdir"),
        ..Config::default()
    })
    .unwrap()
}

/// Permit, with one verified VOMS AC: the bench measures the full path.
fn assert_full_permit(v: &Verifier) {
    let d = v.check(&SETUP.bundle, &SETUP.invocation, AT);
    assert!(matches!(d.outcome, Outcome::Permit), "{d:?}");
    let voms = &d.identity.as_ref().unwrap().voms;
    assert!(voms.iter().any(|a| a.verified), "{voms:?}");
}

#[divan::bench]
fn full_verify_voms(b: Bencher<'_, '_>) {
    let v = verifier(&SETUP.root.join("ca"));
    assert_full_permit(&v);
    b.bench(|| v.check(divan::black_box(&SETUP.bundle), &SETUP.invocation, AT));
}

/// `full_verify_voms` with a new verifier for each check (made outside the
/// timing): nothing kept from an earlier check (anchors, policy files and
/// LSC, parsed certificates and ACs): the first check of a process.
#[divan::bench(sample_count = 200)]
fn full_verify_voms_cold(b: Bencher<'_, '_>) {
    b.with_inputs(|| verifier(&SETUP.root.join("ca")))
        .bench_local_refs(|v| v.check(divan::black_box(&SETUP.bundle), &SETUP.invocation, AT));
}

/// Steps 1–4 only: no payload file is opened (the file I/O of step 5 is
/// `payload_files`).
#[divan::bench]
fn credential_only(b: Bencher<'_, '_>) {
    let v = verifier(&SETUP.root.join("ca"));
    assert_full_permit(&v);
    b.bench(|| v.check_credential(divan::black_box(&SETUP.bundle), AT));
}

/// Step 5 alone: open, read and hash the executable and the input.
#[divan::bench]
fn payload_files(b: Bencher<'_, '_>) {
    let parsed = parse::parse(&SETUP.bundle).unwrap();
    let m = manifest::check(&parsed, AT, 300).unwrap();
    b.bench(|| {
        jobseal_verify::payload::check(
            divan::black_box(&m),
            &SETUP.invocation,
            jobseal_verify::InputPolicy::Require,
        )
        .unwrap()
    });
}

/// The `stat`s a check of `full_verify_voms` makes to see a changed trust
/// directory (`<hash>.0`, `.1`, `.namespaces`, `.signing_policy`, `.r0`,
/// the LSC file), alone: the price of seeing every change at the next check.
#[divan::bench]
fn trust_stat_pass(b: Bencher<'_, '_>) {
    let parsed = parse::parse(&SETUP.bundle).unwrap();
    let ca_name = parsed.certs.last().unwrap().issuer().to_vec();
    let hash = name::openssl_hash(&ca_name).unwrap();
    let ca = SETUP.root.join("ca");
    let mut paths: Vec<PathBuf> = ["0", "1", "namespaces", "signing_policy", "r0"]
        .iter()
        .map(|s| ca.join(format!("{hash:08x}.{s}")))
        .collect();
    let lsc = std::fs::read_dir(SETUP.root.join("vomsdir/testvo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("voms.jobseal.test.lsc"))
        .unwrap();
    paths.push(lsc);
    b.bench(|| {
        paths
            .iter()
            .filter(|p| std::fs::metadata(divan::black_box(p)).is_ok())
            .count()
    });
}

/// The vector of a CA that publishes a CRL (and a `.namespaces` file).
const CRL_VECTOR: &str = "permit-ca-with-crl-and-namespaces";
const CRL_CA: &str = "CN=jobseal Test CA with CRL,O=jobseal test vectors";

/// A copy of the vectors' CA directory whose CRL for `CRL_CA` revokes
/// `entries` other serials.
fn ca_dir_with_crl(entries: u64) -> PathBuf {
    let ca = throwaway::ca(
        &[40; 32],
        CRL_CA,
        AT.minus(365 * 86_400),
        AT.plus(9 * 365 * 86_400),
    )
    .unwrap();
    let dir = SETUP.root.join(format!("ca-crl-{entries}"));
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(SETUP.root.join("ca")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        let mut crl =
            jobseal_testkit::crl::CrlTemplate::new(&ca.cert, AT.minus(86_400), AT.plus(7 * 86_400))
                .unwrap();
        for serial in 0..entries {
            crl = crl.revoke(1_000_000 + serial, AT.minus(3_600));
        }
        let subject = tlv::RawCert::split(&ca.cert).unwrap().subject.to_vec();
        let hash = name::openssl_hash(&subject).unwrap();
        std::fs::write(
            dir.join(format!("{hash:08x}.r0")),
            crl.sign_pem(&ca.key).unwrap(),
        )
        .unwrap();
    }
    dir
}

/// CRL loading, apart: `Verifier::check` of a user of a CA whose CRL lists
/// N other certificates (read, parsed, signature verified and searched on
/// every check); `ignored` is the same check with `CrlPolicy::Ignore`.
#[divan::bench(args = ["ignored", "0", "1000", "10000", "100000"], sample_count = 30)]
fn crl_loading(b: Bencher<'_, '_>, entries: &str) {
    let (ca_dir, crl) = match entries {
        "ignored" => (ca_dir_with_crl(0), jobseal_verify::CrlPolicy::Ignore),
        n => (
            ca_dir_with_crl(n.parse().unwrap()),
            jobseal_verify::CrlPolicy::default(),
        ),
    };
    let v = Verifier::new(Config {
        ca_dir,
        voms_dir: SETUP.root.join("vomsdir"),
        crl,
        ..Config::default()
    })
    .unwrap();
    let vdir = SETUP.root.join(CRL_VECTOR);
    let bundle = std::fs::read(vdir.join("bundle.pem")).unwrap();
    let inv = Invocation {
        executable: vdir.join("job/run.sh"),
        arguments: vec!["--events".into(), "1000".into()],
        job_dir: vdir.join("job"),
    };
    let d = v.check(&bundle, &inv, AT);
    assert!(matches!(d.outcome, Outcome::Permit), "{d:?}");
    b.bench(|| v.check(divan::black_box(&bundle), &inv, AT));
}

#[divan::bench(args = ["1 CA", "1001 CAs"])]
fn ca_dir_scaling(b: Bencher<'_, '_>, dir: &str) {
    let v = verifier(if dir == "1 CA" {
        &SETUP.ca_one
    } else {
        &SETUP.ca_many
    });
    assert_full_permit(&v);
    b.bench(|| v.check(divan::black_box(&SETUP.bundle), &SETUP.invocation, AT));
}

/// One signature check: algorithm, public key bits, message, signature.
type SigOp = (
    &'static dyn VerificationAlgorithm,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
);

fn key_bits(spki: &[u8]) -> Vec<u8> {
    jobseal_verify::sig::public_key(spki).unwrap().bits.to_vec()
}

fn x509_alg(alg_der_oid: &der::asn1::ObjectIdentifier) -> &'static dyn VerificationAlgorithm {
    use jobseal_core::oid;
    let a = *alg_der_oid;
    if a == oid::ED25519 {
        &signature::ED25519
    } else if a == oid::SHA256_WITH_RSA {
        &signature::RSA_PKCS1_2048_8192_SHA256
    } else if a == oid::ECDSA_WITH_SHA256 {
        &signature::ECDSA_P256_SHA256_ASN1
    } else {
        panic!("algorithm {a} not in the bench table")
    }
}

fn cert_op(c: &ParsedCert, issuer_spki: &[u8]) -> SigOp {
    (
        x509_alg(&c.cert.signature_algorithm().oid),
        key_bits(issuer_spki),
        c.tbs().to_vec(),
        c.cert.signature().raw_bytes().to_vec(),
    )
}

/// Every signature `full_verify_voms` must check: each certificate of the
/// chain, the AA certificate and the AC, the COSE manifest, and the CA's
/// CRL if it publishes one.
fn signature_ops() -> Vec<SigOp> {
    use der::Decode;
    let parsed = parse::parse(&SETUP.bundle).unwrap();
    let trust = TrustStore::open(&SETUP.root.join("ca")).unwrap();
    let ca_name = parsed.certs.last().unwrap().issuer().to_vec();
    let (_, ca) = trust.candidates(&ca_name).into_iter().next().unwrap();
    let mut ops = Vec::new();
    for (i, c) in parsed.certs.iter().enumerate() {
        let issuer = parsed.certs.get(i + 1).unwrap_or(&ca);
        ops.push(cert_op(c, issuer.spki()));
    }
    // VOMS ACs carried by the proxies.
    for c in &parsed.certs {
        for ext in c.extensions_with(jobseal_core::oid::VOMS_AC_SEQ) {
            for ac_der in jobseal_core::voms::split_ac_seq(ext.extn_value.as_bytes()).unwrap() {
                let ac = jobseal_core::voms::parse_ac(ac_der).unwrap();
                let aa = ParsedCert::from_der(ac.ac_certs[0].clone(), 0).unwrap();
                let alg = spki::AlgorithmIdentifierOwned::from_der(&ac.signature_algorithm)
                    .unwrap()
                    .oid;
                ops.push((x509_alg(&alg), key_bits(aa.spki()), ac.acinfo, ac.signature));
                let (_, aa_ca) = trust.candidates(aa.issuer()).into_iter().next().unwrap();
                ops.push(cert_op(&aa, aa_ca.spki()));
            }
        }
    }
    let env = &parsed.envelope;
    assert!(matches!(
        env.algorithm,
        jobseal_core::cose::SignatureAlgorithm::EdDsa
    ));
    ops.push((
        &signature::ED25519,
        key_bits(parsed.certs[1].spki()),
        env.to_be_signed.clone(),
        env.signature.clone(),
    ));
    let hash = name::openssl_hash(&ca_name).unwrap();
    let crl = SETUP.root.join("ca").join(format!("{hash:08x}.r0"));
    if let Ok(data) = std::fs::read(&crl) {
        let block = jobseal_core::pem::parse_blocks(&data).unwrap().remove(0);
        let outer = tlv::read_all(&block.der).unwrap();
        let parts = tlv::children(outer.value).unwrap();
        let alg_oid = tlv::children(parts[1].value).unwrap()[0].raw;
        let alg = der::asn1::ObjectIdentifier::from_der(alg_oid).unwrap();
        ops.push((
            x509_alg(&alg),
            key_bits(ca.spki()),
            parts[0].raw.to_vec(),
            parts[2].value[1..].to_vec(),
        ));
    }
    ops
}

static OPS: LazyLock<Vec<SigOp>> = LazyLock::new(|| {
    let ops = signature_ops();
    for (alg, key, msg, sig) in &ops {
        UnparsedPublicKey::new(*alg, key).verify(msg, sig).unwrap();
    }
    println!("signature_limit: {} signature verifications", ops.len());
    ops
});

#[divan::bench]
fn signature_limit(b: Bencher<'_, '_>) {
    let ops = &*OPS;
    b.bench(|| {
        for (alg, key, msg, sig) in ops {
            let r = UnparsedPublicKey::new(*alg, divan::black_box(key)).verify(msg, sig);
            divan::black_box(r).unwrap();
        }
    });
}

/// A bundle whose manifest lists `n` inputs, sealed by a throwaway user.
fn bundle_with_inputs(n: usize) -> Vec<u8> {
    let ca = throwaway::ca(
        &[1; 32],
        "CN=Bench CA,O=jobseal",
        AT.minus(9_000),
        AT.plus(9_000),
    )
    .unwrap();
    let user = throwaway::user(
        &ca,
        &[2; 32],
        "CN=Bench User,O=jobseal",
        2,
        AT.minus(9_000),
        AT.plus(9_000),
    )
    .unwrap();
    let cred = Credential {
        source: Source::Proxy(PathBuf::from("bench")),
        key: user.key,
        chain: vec![user.cert, ca.cert],
        voms_ac: None,
    };
    let inputs = (0..n)
        .map(|i| FileDigest {
            name: format!("data/run-{i:06}/events.root"),
            size: i as u64,
            sha256: sha256(&i.to_be_bytes()),
        })
        .collect();
    let m = Manifest {
        job_id: [7; 16],
        executable: FileDigest {
            name: "run.sh".into(),
            size: 3,
            sha256: sha256(b"run"),
        },
        arguments: vec!["--events".into(), "1000".into()],
        environment: None,
        inputs,
        vo: Some("testvo".into()),
        sites: None,
        not_before: AT.minus(300).0,
        not_after: AT.plus(3_600).0,
        created: AT.minus(300).0,
        tool: "jobseal/bench".into(),
        allowed_uses: 1,
    };
    let (bundle, _) = jobseal_issue::job::seal_manifest(&cred, &m, 1).unwrap();
    bundle.to_pem().into_bytes()
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 20)]
fn manifest_inputs(b: Bencher<'_, '_>, n: usize) {
    let bytes = bundle_with_inputs(n);
    b.bench(|| {
        let parsed = parse::parse(divan::black_box(&bytes)).unwrap();
        binding::check(&parsed).unwrap();
        let m = manifest::check(&parsed, AT, 300).unwrap();
        assert_eq!(m.inputs.len(), n);
        m
    });
}

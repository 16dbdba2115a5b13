//! The parsed-anchor cache of `TrustStore` never serves a CA file that has
//! changed since it was parsed: replaced, added or removed files are seen by
//! the next check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use jobseal_core::Reason;
use jobseal_issue::throwaway;
use jobseal_testkit::VECTOR_TIME;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::trust::TrustStore;

const T: jobseal_verify::UnixTime = VECTOR_TIME;
const CA_NAME: &str = "CN=Cache CA,O=jobseal tests";

fn opts() -> PathOptions {
    PathOptions {
        at: T,
        clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
        algorithms: Default::default(),
    }
}

/// Replace `path` the way CA distributions do: write aside, rename over.
fn replace(path: &std::path::Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_replaced_ca_file_is_seen_by_the_next_check() {
    // Two CAs with the same name (a key rollover); the user is B's.
    let a = throwaway::ca(&[0xa1; 32], CA_NAME, T.minus(86_400), T.plus(86_400)).unwrap();
    let b = throwaway::ca(&[0xb2; 32], CA_NAME, T.minus(86_400), T.plus(86_400)).unwrap();
    let user = throwaway::user(
        &b,
        &[0xc3; 32],
        "CN=Cache User,O=jobseal tests",
        7,
        T.minus(3_600),
        T.plus(3_600),
    )
    .unwrap();
    let chain = vec![ParsedCert::from_der(user.cert.clone(), 0).unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let trust = TrustStore::open(dir.path()).unwrap();

    // No CA file yet: untrusted.
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainUntrusted, "{e:?}");

    // A's certificate under the name: B's signature does not verify.
    let file = throwaway::install_ca(dir.path(), &a.cert).unwrap();
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainBadSignature, "{e:?}");
    // Twice, so the second answer comes from the cache.
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainBadSignature, "{e:?}");

    // The file replaced by B's certificate: the next check sees it.
    let b_pem =
        std::fs::read(throwaway::install_ca(&dir.path().join("b"), &b.cert).unwrap()).unwrap();
    replace(&file, &b_pem);
    path::validate(&chain, &trust, &opts()).unwrap();
    path::validate(&chain, &trust, &opts()).unwrap();

    // A back in `<hash>.0`, B added as `<hash>.1`: B is found.
    let a_pem =
        std::fs::read(throwaway::install_ca(&dir.path().join("a"), &a.cert).unwrap()).unwrap();
    let second = file.with_extension("1");
    replace(&file, &a_pem);
    std::fs::write(&second, &b_pem).unwrap();
    path::validate(&chain, &trust, &opts()).unwrap();
    // `<hash>.1` removed: A alone again.
    std::fs::remove_file(&second).unwrap();
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainBadSignature, "{e:?}");

    // Removed: untrusted at once.
    std::fs::remove_file(&file).unwrap();
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainUntrusted, "{e:?}");
}

#[test]
fn an_in_place_rewrite_of_another_size_is_seen() {
    let a = throwaway::ca(&[0xa1; 32], CA_NAME, T.minus(86_400), T.plus(86_400)).unwrap();
    let b = throwaway::ca(&[0xb2; 32], CA_NAME, T.minus(86_400), T.plus(86_400)).unwrap();
    let user = throwaway::user(
        &b,
        &[0xc3; 32],
        "CN=Cache User,O=jobseal tests",
        7,
        T.minus(3_600),
        T.plus(3_600),
    )
    .unwrap();
    let chain = vec![ParsedCert::from_der(user.cert.clone(), 0).unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let trust = TrustStore::open(dir.path()).unwrap();
    let file = throwaway::install_ca(dir.path(), &b.cert).unwrap();
    path::validate(&chain, &trust, &opts()).unwrap();
    // Same inode, truncated and rewritten with A's certificate plus a
    // comment line (another size): denied at once.
    let mut a_pem = b"# rolled over\n".to_vec();
    a_pem.extend(
        std::fs::read(throwaway::install_ca(&dir.path().join("a"), &a.cert).unwrap()).unwrap(),
    );
    std::fs::write(&file, &a_pem).unwrap();
    let e = path::validate(&chain, &trust, &opts()).unwrap_err();
    assert_eq!(e.reason, Reason::ChainBadSignature, "{e:?}");
}

// ---------------------------------------------------------------------------
// Through `Verifier::check`: the per-check view of the CA directory, the
// policy-file, CRL and LSC caches (kept across checks while a `stat` shows
// the same file) and the parsed-certificate and AC caches (keyed by DER).
// One verifier is used for every step: each change must be seen by the
// next check.

mod through_verifier {
    use std::path::{Path, PathBuf};

    use jobseal_core::pem::{encode_block, parse_blocks};
    use jobseal_core::{name, tlv};
    use jobseal_testkit::crl::CrlTemplate;
    use jobseal_testkit::{VECTOR_TIME, generate, write_dir};
    use jobseal_verify::parse::ParsedCert;
    use jobseal_verify::path::PathOptions;
    use jobseal_verify::trust::TrustStore;
    use jobseal_verify::voms::{self, VomsCode, VomsContext};
    use jobseal_verify::{Config, Decision, Invocation, Verifier};

    const T: jobseal_verify::UnixTime = VECTOR_TIME;
    const DAY: u64 = 86_400;
    /// The vectors' CA with a CRL and a `.namespaces` file, and its user.
    const CA_R: &str = "CN=jobseal Test CA with CRL,O=jobseal test vectors";
    const ROSA: &str = "permit-ca-with-crl-and-namespaces";
    const ROSA_SERIAL: u64 = 42;
    const VOMS: &str = "permit-voms-verified";

    fn vectors() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_dir(&generate().unwrap(), dir.path()).unwrap();
        dir
    }

    fn verifier(dir: &Path) -> Verifier {
        Verifier::new(Config {
            ca_dir: dir.join("ca"),
            voms_dir: dir.join("vomsdir"),
            ..Config::default()
        })
        .unwrap()
    }

    fn invocation(dir: &Path, vector: &str) -> Invocation {
        let job = dir.join(vector).join("job");
        Invocation {
            executable: job.join("run.sh"),
            arguments: vec!["--events".into(), "1000".into()],
            job_dir: job,
        }
    }

    fn check(v: &Verifier, dir: &Path, vector: &str) -> Decision {
        let bundle = std::fs::read(dir.join(vector).join("bundle.pem")).unwrap();
        v.check(&bundle, &invocation(dir, vector), T)
    }

    fn code(v: &Verifier, dir: &Path, vector: &str) -> &'static str {
        check(v, dir, vector).code()
    }

    fn ca_r() -> jobseal_issue::throwaway::Party {
        jobseal_issue::throwaway::ca(&[40; 32], CA_R, T.minus(365 * DAY), T.plus(9 * 365 * DAY))
            .unwrap()
    }

    fn ca_r_file(dir: &Path, suffix: &str) -> PathBuf {
        let subject = tlv::RawCert::split(&ca_r().cert).unwrap().subject.to_vec();
        let hash = name::openssl_hash(&subject).unwrap();
        dir.join("ca").join(format!("{hash:08x}.{suffix}"))
    }

    /// Replace by rename, as CA distributions and fetch-crl do.
    fn replace(path: &Path, contents: &[u8]) {
        let tmp = path.with_extension("tmp-new");
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn a_changed_namespaces_file_is_seen_by_the_next_check() {
        let dir = vectors();
        let d = dir.path();
        let v = verifier(d);
        assert_eq!(code(&v, d, ROSA), "permit");
        // Twice: the second check is served from the caches.
        assert_eq!(code(&v, d, ROSA), "permit");
        let file = ca_r_file(d, "namespaces");
        let original = std::fs::read(&file).unwrap();
        let denying = b"TO Issuer SELF DENY Subject \"/O=jobseal test vectors/.*\"\n\
                        TO Issuer SELF PERMIT Subject \"/O=nobody/.*\"\n";
        replace(&file, denying);
        assert_eq!(code(&v, d, ROSA), "chain.namespace-violation");
        assert_eq!(code(&v, d, ROSA), "chain.namespace-violation");
        // Rewritten in place (same inode, another size): seen too.
        std::fs::write(&file, &original).unwrap();
        assert_eq!(code(&v, d, ROSA), "permit");
        std::fs::write(&file, denying).unwrap();
        assert_eq!(code(&v, d, ROSA), "chain.namespace-violation");
        // Removed: only the `.signing_policy` fallback is left, and there is
        // none, so nothing constrains the CA.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(code(&v, d, ROSA), "permit");
        // A new, broken policy file: seen at once.
        std::fs::write(&file, b"TO Issuer SELF PERMIT\n").unwrap();
        assert_eq!(code(&v, d, ROSA), "chain.policy-file-invalid");
    }

    #[test]
    fn a_changed_crl_is_seen_by_the_next_check() {
        let dir = vectors();
        let d = dir.path();
        let v = verifier(d);
        let ca = ca_r();
        let fresh = || CrlTemplate::new(&ca.cert, T.minus(DAY), T.plus(7 * DAY)).unwrap();
        let r0 = ca_r_file(d, "r0");
        assert_eq!(code(&v, d, ROSA), "permit");
        assert_eq!(code(&v, d, ROSA), "permit");
        // A new CRL revoking Rosa, put in place by rename.
        let revoking = fresh()
            .revoke(ROSA_SERIAL, T.minus(3_600))
            .sign_pem(&ca.key)
            .unwrap();
        replace(&r0, &revoking);
        assert_eq!(code(&v, d, ROSA), "chain.revoked");
        assert_eq!(code(&v, d, ROSA), "chain.revoked");
        // The next CRL does not list her.
        replace(&r0, &fresh().sign_pem(&ca.key).unwrap());
        assert_eq!(code(&v, d, ROSA), "permit");
        // A second CRL file of the CA revoking her: `.r1` is looked up too.
        std::fs::write(ca_r_file(d, "r1"), &revoking).unwrap();
        assert_eq!(code(&v, d, ROSA), "chain.revoked");
        std::fs::remove_file(ca_r_file(d, "r1")).unwrap();
        assert_eq!(code(&v, d, ROSA), "permit");
        // No CRL at all: accepted (the CA publishes none now).
        std::fs::remove_file(&r0).unwrap();
        assert_eq!(code(&v, d, ROSA), "permit");
        // A CRL file that appears, expired: seen at once.
        let expired = CrlTemplate::new(&ca.cert, T.minus(9 * DAY), T.minus(2 * DAY))
            .unwrap()
            .sign_pem(&ca.key)
            .unwrap();
        std::fs::write(&r0, &expired).unwrap();
        assert_eq!(code(&v, d, ROSA), "chain.crl-expired");
    }

    fn voms_code(d: &Decision) -> &'static str {
        let voms = &d.identity.as_ref().unwrap().voms;
        assert_eq!(voms.len(), 1, "{voms:?}");
        voms[0].error.as_ref().map_or("verified", |e| e.code.code())
    }

    #[test]
    fn a_changed_lsc_file_is_seen_by_the_next_check() {
        let dir = vectors();
        let d = dir.path();
        let v = verifier(d);
        let lsc = d.join("vomsdir/testvo/voms.jobseal.test.lsc");
        let original = std::fs::read(&lsc).unwrap();
        assert_eq!(voms_code(&check(&v, d, VOMS)), "verified");
        assert_eq!(voms_code(&check(&v, d, VOMS)), "verified");
        // Another AA described, in place (another size).
        std::fs::write(
            &lsc,
            b"/O=jobseal test vectors/CN=another AA\n/O=nowhere/CN=CA\n",
        )
        .unwrap();
        let decision = check(&v, d, VOMS);
        assert_eq!(decision.code(), "permit");
        assert_eq!(voms_code(&decision), "voms.lsc-mismatch");
        // Back, by rename.
        replace(&lsc, &original);
        assert_eq!(voms_code(&check(&v, d, VOMS)), "verified");
        // Removed.
        std::fs::remove_file(&lsc).unwrap();
        assert_eq!(voms_code(&check(&v, d, VOMS)), "voms.no-lsc");
    }

    /// The PEM blocks of a vector's bundle.
    fn blocks(d: &Path, vector: &str) -> Vec<jobseal_core::pem::PemBlock> {
        parse_blocks(&std::fs::read(d.join(vector).join("bundle.pem")).unwrap()).unwrap()
    }

    fn flip_last_byte(der: &mut [u8]) {
        *der.last_mut().unwrap() ^= 0x01;
    }

    fn position(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    #[test]
    fn a_certificate_that_differs_in_one_byte_is_not_served_from_the_cache() {
        let dir = vectors();
        let d = dir.path();
        let v = verifier(d);
        assert_eq!(code(&v, d, VOMS), "permit");
        assert_eq!(code(&v, d, VOMS), "permit");
        // The user certificate (third block) with its signature changed:
        // same subject, serial, key and extensions as the one kept parsed.
        let mut b = blocks(d, VOMS);
        assert_eq!(b.len(), 4, "leaf, VOMS proxy, user certificate, manifest");
        flip_last_byte(&mut b[2].der);
        let tampered: String = b.iter().map(|b| encode_block(&b.label, &b.der)).collect();
        let decision = v.check(tampered.as_bytes(), &invocation(d, VOMS), T);
        assert_eq!(decision.code(), "chain.bad-signature", "{decision:?}");
        // And the genuine one still permits.
        assert_eq!(code(&v, d, VOMS), "permit");
    }

    #[test]
    fn an_ac_or_aa_certificate_that_differs_in_one_byte_is_not_served_from_the_cache() {
        let dir = vectors();
        let d = dir.path();
        let b = blocks(d, VOMS);
        let proxy_der = b[1].der.clone();
        let eec = ParsedCert::from_der(b[2].der.clone(), 2).unwrap();
        let trust = TrustStore::open(&d.join("ca")).unwrap();
        let voms_dir = d.join("vomsdir");
        let opts = PathOptions {
            at: T,
            clock_skew: jobseal_verify::DEFAULT_CLOCK_SKEW,
            algorithms: Default::default(),
        };
        let ctx = VomsContext {
            trust: &trust,
            voms_dir: &voms_dir,
            opts: &opts,
        };
        let run = |der: &[u8]| {
            let proxy = ParsedCert::from_der(der.to_vec(), 1).unwrap();
            let infos = voms::check_certificate(&proxy, &eec, &ctx);
            assert_eq!(infos.len(), 1, "{infos:?}");
            infos[0].error.as_ref().map(|e| e.code)
        };
        assert_eq!(run(&proxy_der), None);
        assert_eq!(run(&proxy_der), None);
        // The AC and its AA certificate, as carried in the proxy.
        let proxy = ParsedCert::from_der(proxy_der.clone(), 1).unwrap();
        let ext = proxy
            .extensions_with(jobseal_core::oid::VOMS_AC_SEQ)
            .next()
            .unwrap();
        let ac_der =
            jobseal_core::voms::split_ac_seq(ext.extn_value.as_bytes()).unwrap()[0].to_vec();
        let ac = jobseal_core::voms::parse_ac(&ac_der).unwrap();
        let aa_der = ac.ac_certs[0].clone();
        // The AC's signature changed (its last byte): not the AC read before.
        let mut tampered = proxy_der.clone();
        let at = position(&tampered, &ac_der) + ac_der.len() - 1;
        tampered[at] ^= 0x01;
        assert_eq!(run(&tampered), Some(VomsCode::BadSignature));
        // The AA certificate's signature changed: not the AA kept parsed,
        // so its path to the CA fails before the AC signature is looked at.
        let mut tampered = proxy_der.clone();
        let at = position(&tampered, &aa_der) + aa_der.len() - 1;
        tampered[at] ^= 0x01;
        assert_eq!(run(&tampered), Some(VomsCode::UntrustedAa));
        assert_eq!(run(&proxy_der), None);
    }
}

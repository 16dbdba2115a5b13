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

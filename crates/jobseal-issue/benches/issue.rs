//! In-process benchmarks of the issuing side (issue 7). Run with
//! `cargo bench -p jobseal-issue --bench issue`; see BENCHMARKS.md.
//!
//! * `seal_one` / `seal_1000`: `seal` (hash the files, build the manifest,
//!   sign it, issue the job-bound proxy) with an in-memory Ed25519 and RSA
//!   credential, one job and 1,000 jobs one after the other.
//! * `sign_limit`: the two signatures a job cannot avoid (COSE manifest and
//!   proxy certificate), done with ring on the same key.
//! * `hash_file_1gib`: `job::hash_file` of a 1 GiB file (written once, in the
//!   temporary directory; set `JOBSEAL_BENCH_HASH_MIB` for another size).
//! * `hash_4_files`: four files of a quarter of that size each, hashed by
//!   `job::hash_files` (one thread per core) and one after the other.
//! * `durable_write` / `durable_write_1000`: a bundle-sized file written
//!   durably alone (write, fsync, rename; the directory fsync after each
//!   file or once at the end), once, and 1,000 times on one or two threads
//!   per core as `jobseal sign --out-dir` does. With `sign_limit_1000_cores`
//!   (the 2,000 RSA signatures on one thread per core) they bound `jobseal
//!   sign` of 1,000 jobs; `seal_1000_cores` is the whole seal without
//!   writes. Files go to `$TMPDIR`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::LazyLock;

use std::sync::atomic::{AtomicU64, Ordering};

use divan::Bencher;
use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Credential, IssuerCheck, Source};
use jobseal_issue::{JobSpec, SealParams, SigningKey, seal, throwaway};

fn main() {
    divan::main();
}

const NOW: UnixTime = UnixTime(1_767_225_600);

struct Setup {
    _tmp: tempfile::TempDir,
    job: JobSpec,
    ed25519: (Credential, IssuerCheck),
    rsa: (Credential, IssuerCheck),
}

/// An RSA-2048 PKCS#1 key made by `openssl genrsa` (ring cannot generate
/// RSA keys); grid users mostly hold RSA-2048 keys.
fn rsa_key(dir: &std::path::Path) -> Option<SigningKey> {
    let pem = dir.join("rsa.pem");
    let der = dir.join("rsa.der");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = run(&[
        "genrsa".as_ref(),
        "-out".as_ref(),
        pem.as_os_str(),
        "2048".as_ref(),
    ]) && run(&[
        "rsa".as_ref(),
        "-in".as_ref(),
        pem.as_os_str(),
        "-traditional".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
        "-out".as_ref(),
        der.as_os_str(),
    ]);
    let key = jobseal_issue::keys::KeyDer::Pkcs1Rsa(std::fs::read(&der).ok()?.into());
    ok.then(|| SigningKey::from_key_der(&key).unwrap())
}

fn credential(user_key: SigningKey, user_spki: Vec<u8>) -> (Credential, IssuerCheck) {
    let ca = throwaway::ca(
        &[1; 32],
        "CN=Bench CA,O=jobseal",
        NOW.minus(9_000),
        NOW.plus(99_000),
    )
    .unwrap();
    let issuer = jobseal_core::tlv::RawCert::split(&ca.cert)
        .unwrap()
        .subject
        .to_vec();
    let cert = jobseal_issue::proxy::CertTemplate {
        serial: 2,
        issuer,
        subject: throwaway::name_der("CN=Bench User,O=jobseal").unwrap(),
        spki: user_spki,
        not_before: NOW.minus(9_000),
        not_after: NOW.plus(99_000),
        extensions: throwaway::user_extensions().unwrap(),
    }
    .sign(&ca.key)
    .unwrap();
    let cred = Credential {
        source: Source::Proxy(PathBuf::from("bench")),
        key: user_key,
        chain: vec![cert, ca.cert],
        voms_ac: None,
    };
    let check = credential::check_issuer(&cred, NOW).unwrap();
    (cred, check)
}

fn spki_of(key: &SigningKey) -> Vec<u8> {
    use der::Encode;
    let alg = key.x509_algorithm();
    let key_alg = match key {
        SigningKey::Rsa(_) => spki::AlgorithmIdentifierOwned {
            oid: jobseal_core::oid::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
        _ => alg,
    };
    spki::SubjectPublicKeyInfoOwned {
        algorithm: key_alg,
        subject_public_key: der::asn1::BitString::from_bytes(key.public_key_bits()).unwrap(),
    }
    .to_der()
    .unwrap()
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("run.sh"),
        b"#!/bin/sh\necho \"analysing $2 events\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/in.txt"), b"run 2026-01\n").unwrap();
    let toml = "executable = \"run.sh\"\narguments = [\"--events\", \"1000\"]\n\
                inputs = [\"data/in.txt\"]\nvo = \"testvo\"\nvalid = \"24h\"\n";
    let job = JobSpec::from_toml(toml, &dir.join("job.toml"), dir).unwrap();
    let (ed, _, ed_spki) = throwaway::ed25519_from_seed(&[2; 32]).unwrap();
    let rsa = rsa_key(dir).expect("openssl genpkey (for the RSA key)");
    let rsa_spki = spki_of(&rsa);
    Setup {
        job,
        ed25519: credential(ed, ed_spki),
        rsa: credential(rsa, rsa_spki),
        _tmp: tmp,
    }
});

fn cred(alg: &str) -> &'static (Credential, IssuerCheck) {
    if alg == "ed25519" {
        &SETUP.ed25519
    } else {
        &SETUP.rsa
    }
}

fn params(i: u64) -> SealParams {
    let mut job_id = [0u8; 16];
    job_id[..8].copy_from_slice(&i.to_be_bytes());
    SealParams {
        now: NOW,
        job_id,
        serial: 1000 + i,
    }
}

#[divan::bench(args = ["ed25519", "rsa2048"])]
fn seal_one(b: Bencher<'_, '_>, alg: &str) {
    let (c, issuer) = cred(alg);
    b.bench(|| seal(c, issuer, &SETUP.job, &params(1)).unwrap());
}

#[divan::bench(args = ["ed25519", "rsa2048"], sample_count = 5, sample_size = 1)]
fn seal_1000(b: Bencher<'_, '_>, alg: &str) {
    let (c, issuer) = cred(alg);
    b.bench(|| {
        for i in 0..1000 {
            divan::black_box(seal(c, issuer, &SETUP.job, &params(i)).unwrap());
        }
    });
}

/// The signatures of one job alone: the COSE manifest and the proxy
/// certificate (the floor of `seal_one`).
#[divan::bench(args = ["ed25519", "rsa2048"])]
fn sign_limit(b: Bencher<'_, '_>, alg: &str) {
    let (c, _) = cred(alg);
    let tbs_cose = vec![0xa5u8; 400];
    let tbs_cert = vec![0x5au8; 700];
    b.bench(|| {
        let s1 = c.key.sign_cose(divan::black_box(&tbs_cose)).unwrap();
        let s2 = c.key.sign_x509(divan::black_box(&tbs_cert)).unwrap();
        (s1, s2)
    });
}

static BIG: LazyLock<(tempfile::TempDir, PathBuf, u64)> = LazyLock::new(|| {
    use std::io::Write;
    let mib: u64 = std::env::var("JOBSEAL_BENCH_HASH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.bin");
    // Real data (not a sparse hole): the page cache holds what is hashed.
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect();
    for _ in 0..mib {
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    (tmp, path, mib << 20)
});

#[divan::bench(sample_count = 3, sample_size = 1)]
fn hash_file_1gib(b: Bencher<'_, '_>) {
    let (_, path, len) = &*BIG;
    b.counter(divan::counter::BytesCount::new(*len))
        .bench(|| jobseal_issue::job::hash_file(path).unwrap());
}

/// Four files of `BIG`'s size / 4, real data.
static FOUR: LazyLock<(tempfile::TempDir, Vec<PathBuf>, u64)> = LazyLock::new(|| {
    let (_, big, len) = &*BIG;
    let tmp = tempfile::tempdir().unwrap();
    let quarter = len / 4;
    let data = std::fs::read(big).unwrap();
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| {
            let p = tmp.path().join(format!("part{i}.bin"));
            let start = usize::try_from(i * quarter).unwrap();
            let end = usize::try_from((i + 1) * quarter).unwrap();
            std::fs::write(&p, &data[start..end]).unwrap();
            p
        })
        .collect();
    (tmp, paths, quarter * 4)
});

#[divan::bench(args = ["hash_files", "one after the other"], sample_count = 3, sample_size = 1)]
fn hash_4_files(b: Bencher<'_, '_>, how: &str) {
    let (_, paths, len) = &*FOUR;
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    b.counter(divan::counter::BytesCount::new(*len)).bench(|| {
        let digests: Vec<(u64, [u8; 32])> = if how == "hash_files" {
            jobseal_issue::job::hash_files(&refs, &|_| {})
                .into_iter()
                .map(Result::unwrap)
                .collect()
        } else {
            refs.iter()
                .map(|p| jobseal_issue::job::hash_file(p).unwrap())
                .collect()
        };
        assert_eq!(digests.len(), 4);
        digests
    });
}

/// A bundle's worth of bytes (RSA-2048 chain and manifest: about 5 KiB).
const BUNDLE_BYTES: usize = 5 * 1024;

/// One bundle written durably: `write_atomic` (file fsync, rename,
/// directory fsync) or `write_atomic_deferred` (the directory fsync left to
/// the caller, once for many files, as `jobseal sign` does).
#[divan::bench(args = ["write_atomic", "deferred dir sync"], sample_count = 100, sample_size = 1)]
fn durable_write(b: Bencher<'_, '_>, how: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = vec![b'b'; BUNDLE_BYTES];
    let n = AtomicU64::new(0);
    b.bench(|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let path = tmp.path().join(format!("job{i}.bundle.pem"));
        if how == "write_atomic" {
            jobseal_issue::fsutil::write_atomic(&path, &data, 0o644).unwrap();
        } else {
            jobseal_issue::fsutil::write_atomic_deferred(&path, &data, 0o644).unwrap();
        }
    });
}

fn on_all_cores(jobs: u64, per_core: usize, one: &(dyn Fn(u64) + Sync)) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from) * per_core;
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    one(i);
                }
            });
        }
    });
}

/// CPU time (user + system) of this process so far, in clock ticks of
/// `/proc/self/stat` (USER_HZ, 100 a second on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field of the line, stime the 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// 1,000 bundles written as `jobseal sign --out-dir` writes them: each
/// file synced and renamed (on `threads` per core), the directory synced
/// once at the end. The directories are removed only after the last
/// sample: files removed just before make the next ones' inode allocation
/// slower (ext4 skips recently freed inodes), which is not the cost of a
/// write. Prints the CPU time of the writes (all threads) per 1,000, the
/// figure `bench/compare.sh` bounds `jobseal sign` with.
#[divan::bench(args = [1, 2], sample_count = 5, sample_size = 1)]
fn durable_write_1000(b: Bencher<'_, '_>, per_core: usize) {
    let data = vec![b'b'; BUNDLE_BYTES];
    let kept = std::sync::Mutex::new(Vec::new());
    let (ticks, samples) = (AtomicU64::new(0), AtomicU64::new(0));
    b.with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|tmp| {
            let start = cpu_ticks();
            on_all_cores(1000, per_core, &|i| {
                let path = tmp.path().join(format!("job{i}.bundle.pem"));
                jobseal_issue::fsutil::write_atomic_deferred(&path, &data, 0o644).unwrap();
            });
            jobseal_issue::fsutil::sync_dir_of(&tmp.path().join("job0.bundle.pem"));
            ticks.fetch_add(cpu_ticks() - start, Ordering::Relaxed);
            samples.fetch_add(1, Ordering::Relaxed);
            kept.lock().unwrap().push(tmp);
        });
    let (ticks, samples) = (ticks.into_inner(), samples.into_inner().max(1));
    println!(
        "durable_write_1000 per_core={per_core}: {:.1} ms CPU per 1,000 writes ({samples} samples)",
        ticks as f64 * 10.0 / samples as f64
    );
}

#[divan::bench(args = ["ed25519", "rsa2048"], sample_count = 5, sample_size = 1)]
fn seal_1000_cores(b: Bencher<'_, '_>, alg: &str) {
    let (c, issuer) = cred(alg);
    b.bench(|| {
        on_all_cores(1000, 1, &|i| {
            divan::black_box(seal(c, issuer, &SETUP.job, &params(i)).unwrap());
        });
    });
}

#[divan::bench(args = ["rsa2048"], sample_count = 5, sample_size = 1)]
fn sign_limit_1000_cores(b: Bencher<'_, '_>, alg: &str) {
    let (c, _) = cred(alg);
    let tbs_cose = vec![0xa5u8; 400];
    let tbs_cert = vec![0x5au8; 700];
    b.bench(|| {
        on_all_cores(1000, 1, &|_| {
            divan::black_box(c.key.sign_cose(&tbs_cose).unwrap());
            divan::black_box(c.key.sign_x509(&tbs_cert).unwrap());
        });
    });
}

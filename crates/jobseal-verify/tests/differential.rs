//! Differential test of step 2 (path validation) against OpenSSL.
//!
//! Generates chains (a root, subordinate CAs in the bundle, the CA directory
//! or both, a user certificate, RFC 3820 proxies of every kind, CRLs),
//! changes one field of one certificate, CRL or directory layout at a time
//! (`differential/chains.rs`), signs everything with the issuer's key, and
//! compares `path::validate` (against a temporary CA directory) with
//!
//!     openssl verify -allow_proxy_certs -attime AT -no-CAfile -no-CAstore \
//!         -CApath DIR [-crl_check_all] [-untrusted REST] LEAF
//!
//! on the same files, both at the same fixed time. jobseal runs as a site
//! would: the default 300 s clock skew and algorithm policy; with CRLs for
//! every CA, `CrlPolicy::Require` against `-crl_check_all`; without, the
//! default policy against no CRL check.
//!
//! Every disagreement has a class, `mutation@target : jobseal : openssl`
//! (`permit` or `deny`). A class must be listed (`mutation@*` lists every
//! target of a mutation), with its argument, in
//! `tests/conformance/differential-classes.tsv` (CONFORMANCE.md, "Differential
//! test against OpenSSL"), or the test fails, naming the class and a case
//! that reproduces it. A class where jobseal permits what OpenSSL denies may
//! only be listed as a deliberate difference (its argument starts with
//! `DELIBERATE`). A long run (`JOBSEAL_DIFF_CASES` ≥ 20000) also fails on a
//! listed class it never saw.
//!
//! Settings (environment):
//! - `JOBSEAL_DIFF_CASES` (default 1200), `JOBSEAL_DIFF_SEED` (default
//!   `0x6a6f627365616c`, decimal or 0x-hex), `JOBSEAL_DIFF_JOBS` (default 2);
//! - `JOBSEAL_DIFF_CASE=N`: run only case N, keep its files and print both
//!   commands and results;
//! - `JOBSEAL_DIFF_VERBOSE=1`: one line per disagreement.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

#[path = "differential/chains.rs"]
mod chains;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chains::{AT, Case};
use jobseal_core::pem;
use jobseal_core::time::UnixTime;
use jobseal_verify::CrlPolicy;
use jobseal_verify::parse::ParsedCert;
use jobseal_verify::path::{self, PathOptions};
use jobseal_verify::sig::AlgorithmPolicy;
use jobseal_verify::trust::TrustStore;

const OPENSSL: &str = "/usr/bin/openssl";
const DEFAULT_SEED: u64 = 0x006a_6f62_7365_616c;
const DEFAULT_CASES: u64 = 1200;
/// A run at least this long checks that every listed class was seen.
const LONG_RUN: u64 = 20_000;
const CLASSES_FILE: &str = "tests/conformance/differential-classes.tsv";

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v}: not a number")))
}

/// What one side decided.
#[derive(Clone, Debug)]
struct Outcome {
    permit: bool,
    /// jobseal's reason code and message, or OpenSSL's error line.
    detail: String,
}

impl Outcome {
    fn word(&self) -> &'static str {
        if self.permit { "permit" } else { "deny" }
    }
}

/// A case written to `dir`: `ca/`, `leaf.pem`, `untrusted.pem`.
fn write_case(built: &chains::Built, dir: &Path) {
    let ca = dir.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    for (name, pem) in &built.dir {
        std::fs::write(ca.join(name), pem).unwrap();
    }
    std::fs::write(
        dir.join("leaf.pem"),
        pem::encode_block("CERTIFICATE", &built.bundle[0]),
    )
    .unwrap();
    if built.bundle.len() > 1 {
        let rest: String = built.bundle[1..]
            .iter()
            .map(|d| pem::encode_block("CERTIFICATE", d))
            .collect();
        std::fs::write(dir.join("untrusted.pem"), rest).unwrap();
    }
}

fn openssl_args(case: &Case, built: &chains::Built, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "verify".into(),
        "-allow_proxy_certs".into(),
        "-attime".into(),
        AT.to_string(),
        "-no-CAfile".into(),
        "-no-CAstore".into(),
        "-CApath".into(),
        dir.join("ca").display().to_string(),
    ];
    if case.crl_mode {
        args.push("-crl_check_all".into());
    }
    if built.bundle.len() > 1 {
        args.push("-untrusted".into());
        args.push(dir.join("untrusted.pem").display().to_string());
    }
    args.push(dir.join("leaf.pem").display().to_string());
    args
}

fn run_openssl(args: &[String]) -> Outcome {
    let out = Command::new(OPENSSL)
        .args(args)
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {OPENSSL}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let permit = out.status.success() && stdout.trim_end().ends_with(": OK");
    let detail = if permit {
        "OK".to_string()
    } else {
        stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| l.starts_with("error "))
            .map(|l| {
                // "error 20 at 0 depth lookup: unable to get local issuer certificate"
                l.to_string()
            })
            .unwrap_or_else(|| format!("{} {}", stdout.trim(), stderr.trim()))
    };
    Outcome { permit, detail }
}

fn run_jobseal(case: &Case, built: &chains::Built, dir: &Path) -> Outcome {
    let result = (|| {
        let certs = built
            .bundle
            .iter()
            .enumerate()
            .map(|(i, d)| ParsedCert::from_der(d.clone(), i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut trust = TrustStore::open(&dir.join("ca"))?;
        trust.crl = if case.crl_mode {
            CrlPolicy::Require
        } else {
            CrlPolicy::default()
        };
        let opts = PathOptions {
            at: UnixTime(AT),
            clock_skew: 300,
            algorithms: AlgorithmPolicy::default(),
        };
        path::validate(&certs, &trust, &opts)
    })();
    match result {
        Ok(_) => Outcome {
            permit: true,
            detail: "permit".into(),
        },
        Err(e) => Outcome {
            permit: false,
            detail: format!("{}: {}", e.reason.code(), e.message),
        },
    }
}

struct CaseResult {
    index: u64,
    mutation: String,
    shape: String,
    jobseal: Outcome,
    openssl: Outcome,
}

impl CaseResult {
    fn class(&self) -> Option<String> {
        (self.jobseal.permit != self.openssl.permit).then(|| {
            format!(
                "{} : {} : {}",
                self.mutation,
                self.jobseal.word(),
                self.openssl.word()
            )
        })
    }
}

fn run_case(seed: u64, index: u64, dir: &Path) -> (CaseResult, Vec<String>) {
    let case = chains::generate(seed, index);
    let built = case.build();
    write_case(&built, dir);
    let args = openssl_args(&case, &built, dir);
    let openssl = run_openssl(&args);
    let jobseal = run_jobseal(&case, &built, dir);
    (
        CaseResult {
            index,
            mutation: case.mutation.clone(),
            shape: case.shape.clone(),
            jobseal,
            openssl,
        },
        args,
    )
}

/// Where a reproducing case is kept.
fn keep_dir(seed: u64, index: u64) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("differential")
        .join(format!("seed-{seed:#x}-case-{index}"))
}

/// Write case `index` again to a kept directory; the command to reproduce.
fn keep_case(seed: u64, index: u64) -> (PathBuf, CaseResult, String) {
    let dir = keep_dir(seed, index);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (r, args) = run_case(seed, index, &dir);
    let cmd = format!("{OPENSSL} {}", args.join(" "));
    (dir, r, cmd)
}

/// The checked-in classes: class → argument.
fn load_classes() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CLASSES_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    let mut header = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if !header {
            assert_eq!(
                cols,
                ["class", "argument"],
                "{}:{}: the header must be class<TAB>argument",
                path.display(),
                n + 1
            );
            header = true;
            continue;
        }
        let [class, argument] = cols.as_slice() else {
            panic!(
                "{}:{}: expected 2 tab-separated columns",
                path.display(),
                n + 1
            );
        };
        assert!(
            !argument.trim().is_empty(),
            "{}:{}: a class needs its argument",
            path.display(),
            n + 1
        );
        let parts: Vec<&str> = class.split(" : ").collect();
        assert!(
            parts.len() == 3
                && matches!(parts[1], "permit" | "deny")
                && matches!(parts[2], "permit" | "deny")
                && parts[1] != parts[2],
            "{}:{}: a class is `mutation@target : permit|deny : deny|permit`",
            path.display(),
            n + 1
        );
        assert!(
            parts[1] == "deny" || argument.starts_with("DELIBERATE"),
            "{}:{}: {class} is a permit where OpenSSL denies: it may only be listed as a \
             deliberate, argued difference (argument starting with DELIBERATE)",
            path.display(),
            n + 1
        );
        assert!(
            out.insert((*class).to_string(), (*argument).to_string())
                .is_none(),
            "{}:{}: {class} is listed twice",
            path.display(),
            n + 1
        );
    }
    assert!(header, "{}: no header line", path.display());
    out
}

fn check_openssl() {
    let out = Command::new(OPENSSL).arg("version").output();
    match out {
        Ok(o) if o.status.success() => {
            eprintln!(
                "differential: {}",
                String::from_utf8_lossy(&o.stdout).trim()
            );
        }
        _ => panic!(
            "{OPENSSL} is missing or does not run: the differential test needs the Debian package \
             `openssl` (apt-get install -y openssl)"
        ),
    }
}

#[test]
fn differential_against_openssl() {
    if jobseal_testkit::peers::require(OPENSSL, "openssl").is_none() {
        return;
    }
    check_openssl();
    let seed = env_u64("JOBSEAL_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    if let Some(index) = env_u64("JOBSEAL_DIFF_CASE") {
        let (dir, r, cmd) = keep_case(seed, index);
        eprintln!(
            "differential: seed {seed:#x} case {index}\n  mutation: {}\n  chain: {}\n  files: {}\n  jobseal: {}\n  openssl: {}\n  {cmd}",
            r.mutation,
            r.shape,
            dir.display(),
            r.jobseal.detail,
            r.openssl.detail
        );
        return;
    }
    let cases = env_u64("JOBSEAL_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let jobs = env_u64("JOBSEAL_DIFF_JOBS").unwrap_or(2).max(1);
    let verbose = std::env::var_os("JOBSEAL_DIFF_VERBOSE").is_some();
    let classes = load_classes();
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<CaseResult>> = Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= cases {
                        break;
                    }
                    let dir = tempfile::tempdir().unwrap();
                    let (r, _) = run_case(seed, index, dir.path());
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.index);
    assert_eq!(results.len() as u64, cases, "every case ran");

    // Figures.
    let mut per_mutation: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut seen: BTreeMap<String, (u64, &CaseResult)> = BTreeMap::new();
    let mut agree_permit = 0u64;
    let mut agree_deny = 0u64;
    for r in &results {
        let m = r.mutation.split('@').next().unwrap_or("").to_string();
        let e = per_mutation.entry(m).or_default();
        e.0 += 1;
        match r.class() {
            None if r.jobseal.permit => agree_permit += 1,
            None => agree_deny += 1,
            Some(class) => {
                e.1 += 1;
                if verbose {
                    eprintln!(
                        "differential: case {}: {class}\n    jobseal: {}\n    openssl: {}",
                        r.index, r.jobseal.detail, r.openssl.detail
                    );
                }
                seen.entry(class).or_insert((0, r)).0 += 1;
            }
        }
    }
    eprintln!(
        "differential: seed {seed:#x}, {cases} cases in {:.1} s: {agree_permit} agree on permit, \
         {agree_deny} agree on deny, {} disagree in {} classes",
        started.elapsed().as_secs_f64(),
        cases - agree_permit - agree_deny,
        seen.len()
    );
    let untouched: Vec<&String> = per_mutation.keys().collect();
    let never: Vec<&&str> = chains::MUTATIONS
        .iter()
        .filter(|m| !untouched.iter().any(|u| u == m))
        .collect();
    if !never.is_empty() {
        eprintln!("differential: mutations not drawn in this run: {never:?}");
    }
    // A listed `mutation@* : … : …` covers every target of the mutation.
    let listed_as = |class: &str| -> Option<String> {
        if classes.contains_key(class) {
            return Some(class.to_string());
        }
        let (head, rest) = class.split_once(" : ")?;
        let (m, _) = head.split_once('@')?;
        let wild = format!("{m}@* : {rest}");
        classes.contains_key(&wild).then_some(wild)
    };
    for (class, (count, r)) in &seen {
        let status = if listed_as(class).is_some() {
            "listed"
        } else {
            "NOT LISTED"
        };
        eprintln!(
            "differential: {count:6}  {class}  [{status}; e.g. case {}: jobseal {} / openssl {}]",
            r.index, r.jobseal.detail, r.openssl.detail
        );
    }

    // Unlisted classes fail, with a reproducing case each.
    let mut failures = Vec::new();
    for (class, (count, r)) in &seen {
        if listed_as(class).is_some() {
            continue;
        }
        let (dir, again, cmd) = keep_case(seed, r.index);
        let wrongful = if r.jobseal.permit {
            "WRONGFUL PERMIT: jobseal permits what OpenSSL denies. "
        } else {
            ""
        };
        failures.push(format!(
            "{wrongful}unlisted class `{class}` ({count} case(s)); reproduce with \
             JOBSEAL_DIFF_SEED={seed:#x} JOBSEAL_DIFF_CASE={} cargo test -p jobseal-verify --test differential -- --nocapture\n  \
             chain: {}\n  files: {}\n  jobseal: {}\n  openssl: {}\n  {cmd}",
            r.index,
            again.shape,
            dir.display(),
            again.jobseal.detail,
            again.openssl.detail,
        ));
    }
    // Listed classes not seen: reported; in a long run, a failure.
    let used: std::collections::BTreeSet<String> =
        seen.keys().filter_map(|c| listed_as(c)).collect();
    let unseen: Vec<&String> = classes.keys().filter(|c| !used.contains(*c)).collect();
    for c in &unseen {
        eprintln!("differential: listed class not seen in this run: {c}");
    }
    if cases >= LONG_RUN {
        for c in &unseen {
            failures.push(format!(
                "listed class `{c}` was not seen in a long run of {cases} cases: remove it from {CLASSES_FILE} \
                 and from CONFORMANCE.md, or explain why it is rare"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differential test against OpenSSL: {} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

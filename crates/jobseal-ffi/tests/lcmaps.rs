//! The LCMAPS plugin (`lcmaps/lcmaps_jobseal.c`, linked with the static C
//! API into `lcmaps_jobseal.so`) in the real LCMAPS framework of Debian
//! (`liblcmaps0`), driven as gLExec drives it (`lcmaps/driver.c`:
//! `lcmaps_run_with_pem_and_return_account`), with the policy
//! `jobseal -> localaccount`; and the plugin's own checks driven directly
//! (`tests/c/lcmaps_plugin_test.c`) with run variables the real framework
//! cannot be made to give here (FQANs: Debian's libvomsapi cannot verify
//! the vectors' attribute certificates).
//!
//! The checked-in vectors are valid at `verify_at` (2026-01-01), and the
//! plugin always checks at the current time, as it must: the runs over
//! them are made under libfaketime (package `faketime`), which sets the
//! clock of the driver process only. Bundles sealed now are checked at the
//! real time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use jobseal_admit::admit::Checker;

/// Vectors LCMAPS refuses itself before any plugin runs, and why.
const REFUSED_BY_LCMAPS: &[(&str, &str)] = &[
    (
        "deny-cert-truncated",
        "LCMAPS cannot read the PEM chain, so it runs no plugin",
    ),
    (
        "deny-cert-user-subject-invalid-utf8",
        "OpenSSL does not load a name that is not UTF-8: LCMAPS runs no plugin",
    ),
    (
        "deny-bundle-pem-header-line",
        "OpenSSL's PEM reader does not read a CERTIFICATE block with RFC 1421 headers: LCMAPS runs no plugin",
    ),
];

/// Vectors the Rust API permits and LCMAPS refuses (failing closed): the
/// outcome LCMAPS gives, and why. `.ci/one-behaviour` lists them too.
const STRICTER_IN_LCMAPS: &[(&str, &str, &str)] = &[
    (
        "permit-bundle-pem-whitespace",
        "none",
        "LCMAPS's PEM reader (OpenSSL) does not trim lines (§4 does): it cannot read the chain and runs no plugin",
    ),
    (
        "permit-user-subject-cn-not-a-string",
        "lcmaps.identity-mismatch",
        "OpenSSL writes the BIT STRING CN as text (CN=B), jobseal as #03020042 (§6.8): the plugin refuses a DN it cannot match",
    ),
];

/// The account the test grid-mapfile maps every user to.
const ACCOUNT: &str = "nobody";

/// Where Debian (or another layout) may keep the LCMAPS modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/lcmaps",
    "/usr/lib/x86_64-linux-gnu/lcmaps",
    "/usr/lib64/lcmaps",
];

/// The first of [`MODULE_DIRS`] that holds `lcmaps_localaccount.mod`.
fn modules_dir() -> PathBuf {
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("lcmaps_localaccount.mod").exists())
        .expect("no LCMAPS modules directory with lcmaps_localaccount.mod")
}

fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("missing Debian packages: faketime (apt-get install -y faketime)")
    })
}

/// The LCMAPS peers, or false once the test has been reported skipped.
fn require_packages() -> bool {
    // Where the modules are, or where Debian puts them (to name the package).
    let module = |m: &str| {
        MODULE_DIRS
            .iter()
            .map(|d| Path::new(d).join(m))
            .find(|p| p.exists())
            .unwrap_or_else(|| Path::new("/usr/lib/lcmaps").join(m))
            .display()
            .to_string()
    };
    let localaccount = module("lcmaps_localaccount.mod");
    let verify_proxy = module("lcmaps_verify_proxy.mod");
    require(&[
        ("/usr/include/lcmaps/lcmaps_modules.h", "liblcmaps-dev"),
        (
            "/usr/include/lcmaps/lcmaps_return_account_from_pem.h",
            "liblcmaps-dev",
        ),
        ("verify-proxy-tool", "lcmaps-plugins-verify-proxy"),
        ("faketime", "faketime"),
        (&localaccount, "lcmaps-plugins-basic-localaccount"),
        (&verify_proxy, "lcmaps-plugins-verify-proxy"),
    ])
}

struct Built {
    plugin: PathBuf,
    driver: PathBuf,
    /// `lcmaps_accept.so`: a plugin that accepts every credential.
    accept: PathBuf,
    /// `tests/c/lcmaps_plugin_test.c` linked with the plugin.
    plugin_test: PathBuf,
}

/// Build the plugin, the driver and the test programs into `dir`.
fn build(dir: &Path) -> Built {
    let lib = lib_dir();
    let crate_dir = crate_dir();
    let plugin = dir.join("lcmaps_jobseal.so");
    let mut args: Vec<String> = vec![
        "-shared".into(),
        "-fPIC".into(),
        "-std=c11".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        format!("-I{}", crate_dir.join("include").display()),
        "-o".into(),
        plugin.display().to_string(),
        crate_dir
            .join("lcmaps/lcmaps_jobseal.c")
            .display()
            .to_string(),
        lib.join("libjobseal_ffi.a").display().to_string(),
        // The plugin exports the LCMAPS interface only: the C API and Rust
        // inside it stay private, whatever else the process loads.
        "-Wl,--exclude-libs,ALL".into(),
        // And holds only what it runs: no SQLite, no rustls (admission's).
        "-Wl,--gc-sections".into(),
    ];
    args.extend(NATIVE_STATIC_LIBS.iter().map(|s| s.to_string()));
    cc(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let driver = dir.join("driver");
    cc(&[
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
        driver.to_str().unwrap(),
        crate_dir.join("lcmaps/driver.c").to_str().unwrap(),
        "-llcmaps",
    ]);
    let accept = dir.join("lcmaps_accept.so");
    cc(&[
        "-shared",
        "-fPIC",
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
        accept.to_str().unwrap(),
        crate_dir.join("lcmaps/accept.c").to_str().unwrap(),
    ]);
    let plugin_test = dir.join("lcmaps_plugin_test");
    cc(&[
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        // The plugin calls this program's lcmaps_log.
        "-rdynamic",
        "-o",
        plugin_test.to_str().unwrap(),
        crate_dir
            .join("tests/c/lcmaps_plugin_test.c")
            .to_str()
            .unwrap(),
        plugin.to_str().unwrap(),
        "-llcmaps",
        &format!("-Wl,-rpath,{}", dir.display()),
    ]);
    Built {
        plugin,
        driver,
        accept,
        plugin_test,
    }
}

/// The dynamic symbols `so` defines.
fn exported(so: &Path) -> Vec<String> {
    let o = run(Command::new("nm").args(["-D", "--defined-only"]).arg(so));
    assert!(o.status.success(), "nm failed");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect()
}

/// The README's command that builds the plugin, its `\\` continuations
/// folded, split into words (it has no quoting).
fn readme_plugin_command() -> Vec<String> {
    let readme = std::fs::read_to_string(crate_dir().join("../../README.md")).unwrap();
    let mut lines = readme.lines().map(str::trim);
    let first = lines
        .find(|l| l.starts_with("cc -shared") && l.contains("lcmaps_jobseal.so"))
        .expect("README.md has no `cc -shared ... lcmaps_jobseal.so` command");
    let mut command = String::new();
    let mut line = first;
    while let Some(folded) = line.strip_suffix('\\') {
        command.push_str(folded);
        line = lines
            .next()
            .expect("README.md: a continuation with no next line");
    }
    command.push_str(line);
    command.split_whitespace().map(String::from).collect()
}

/// Build the plugin with the README's command, here: into `out`, against
/// the static library of this build, with `--gc-sections` or without.
fn build_as_the_readme_does(out: &Path, gc_sections: bool) -> PathBuf {
    let lib = lib_dir().join("libjobseal_ffi.a");
    let words = readme_plugin_command();
    assert!(
        words.iter().any(|w| w == "-Wl,--gc-sections"),
        "the README's plugin build has no -Wl,--gc-sections: {words:?}"
    );
    let args: Vec<String> = words[1..]
        .iter()
        .filter(|w| gc_sections || *w != "-Wl,--gc-sections")
        .map(|w| match w.as_str() {
            "lcmaps_jobseal.so" => out.display().to_string(),
            "target/release/libjobseal_ffi.a" => lib.display().to_string(),
            _ => w.clone(),
        })
        .collect();
    let o = run(Command::new(&words[0])
        .args(&args)
        .current_dir(crate_dir().join("../..")));
    assert!(
        o.status.success(),
        "{words:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

/// The symbols of `so` (all of them: it is not stripped) that mention
/// SQLite or rustls.
fn storage_symbols(so: &Path) -> Vec<String> {
    let o = run(Command::new("nm").arg(so));
    assert!(o.status.success(), "nm {} failed", so.display());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("sqlite3") || l.contains("rustls")
        })
        .map(String::from)
        .collect()
}

/// The plugin only checks (steps 1–4 and 6): built as the README says, it
/// links no SQLite (the replay store) and no rustls (the Redis store's
/// TLS), which only admission uses. Without `--gc-sections` the same
/// build holds both: the check can see them.
#[test]
fn the_plugin_links_neither_sqlite_nor_rustls() {
    if !require(&[
        ("/usr/include/lcmaps/lcmaps_modules.h", "liblcmaps-dev"),
        ("nm", "binutils"),
        ("cc", "gcc"),
    ]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let plugin = build_as_the_readme_does(&tmp.path().join("lcmaps_jobseal.so"), true);
    let found = storage_symbols(&plugin);
    assert!(
        found.is_empty(),
        "the plugin holds SQLite or rustls code ({} symbols), e.g.:\n{}",
        found.len(),
        found[..found.len().min(10)].join("\n")
    );
    let whole = build_as_the_readme_does(&tmp.path().join("whole.so"), false);
    assert!(
        !storage_symbols(&whole).is_empty(),
        "without --gc-sections the plugin should hold SQLite and rustls: nm finds none"
    );
}

#[derive(Clone)]
struct Case {
    name: String,
    bundle: PathBuf,
    /// The code the plugin must log, or "none".
    code: String,
    /// The account LCMAPS must return, or "-".
    account: String,
    record: bool,
}

fn cases_tsv(cases: &[Case]) -> String {
    let mut s = String::new();
    for c in cases {
        writeln!(
            s,
            "{}\t{}\t{}\t{}\t{}",
            field(&c.name),
            field(&c.bundle.display().to_string()),
            field(&c.code),
            field(&c.account),
            u8::from(c.record)
        )
        .unwrap();
    }
    s
}

/// An lcmaps.db: the module path, the plugin `entries` (name, module and
/// arguments) and the `policies` (name, rules), in that order.
fn lcmaps_db_with(
    dir: &Path,
    file: &str,
    entries: &[(&str, String)],
    policies: &[(&str, &[&str])],
) -> PathBuf {
    let path = dir.join(format!("{file}.db"));
    // Quoted: a path holding `-` (or another operator) is a syntax error
    // unquoted.
    let mut text = format!("path = \"{}\"\n\n", modules_dir().display());
    for (name, module) in entries {
        writeln!(text, "{name} = \"{module}\"").unwrap();
    }
    for (name, rules) in policies {
        write!(text, "\n{name}:\n").unwrap();
        for rule in *rules {
            writeln!(text, "{rule}").unwrap();
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn localaccount_entry(gridmap: &Path) -> (&'static str, String) {
    (
        "localaccount",
        format!("lcmaps_localaccount.mod -gridmapfile {}", gridmap.display()),
    )
}

/// An lcmaps.db with one policy `name: first -> localaccount`.
fn lcmaps_db(dir: &Path, name: &str, first: (&str, String), gridmap: &Path) -> PathBuf {
    let rule = format!("{} -> localaccount", first.0);
    lcmaps_db_with(
        dir,
        name,
        &[first, localaccount_entry(gridmap)],
        &[(name, &[rule.as_str()])],
    )
}

/// The jobseal entry, with `-credential-only` as the plugin requires.
fn jobseal_entry(plugin: &Path, ca: &Path, voms: &Path, policy: &Path) -> (&'static str, String) {
    let (name, args) = jobseal_entry_without_flag(plugin, ca, voms, policy);
    (
        name,
        args.replacen(" -cadir", " -credential-only -cadir", 1),
    )
}

fn jobseal_entry_without_flag(
    plugin: &Path,
    ca: &Path,
    voms: &Path,
    policy: &Path,
) -> (&'static str, String) {
    (
        "jobseal",
        format!(
            "{} -cadir {} -vomsdir {} -policy {}",
            plugin.display(),
            ca.display(),
            voms.display(),
            policy.display()
        ),
    )
}

/// `FAKETIME` for an instant: the clock stands still there.
fn faketime_at(t: jobseal_core::time::UnixTime) -> String {
    t.to_rfc3339()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// How the driver runs.
#[derive(Default)]
struct Opts<'a> {
    /// `FAKETIME` (libfaketime), or the real time.
    fake_time: Option<&'a str>,
    /// Where the driver writes the decisions it records.
    decisions_out: Option<&'a Path>,
    /// More environment variables.
    env: Vec<(&'static str, PathBuf)>,
}

impl<'a> Opts<'a> {
    fn at(t: &'a str) -> Self {
        Self {
            fake_time: Some(t),
            ..Self::default()
        }
    }
}

/// Run the driver over `cases` under `db`, naming the policy `policy`
/// (`None`: no policy, as gLExec without one configured); its exit
/// status, stdout and stderr, and the LCMAPS log. `label` names the files.
fn drive_raw(
    driver: &Path,
    dir: &Path,
    db: &Path,
    label: &str,
    policy: Option<&str>,
    cases: &[Case],
    opts: &Opts<'_>,
) -> (Option<i32>, String, String) {
    let tsv = dir.join(format!("{label}-cases.tsv"));
    std::fs::write(&tsv, cases_tsv(cases)).unwrap();
    let log = dir.join(format!("{label}.log"));
    let mut cmd = Command::new(driver);
    cmd.arg(&log)
        .arg(policy.unwrap_or("-"))
        .arg(&tsv)
        .env("LCMAPS_DB_FILE", db)
        .env("LCMAPS_DEBUG_LEVEL", "4")
        .env_remove("LCMAPS_POLICY_NAME")
        .env_remove("JOBSEAL_LCMAPS_DECISIONS_OUT");
    if let Some(t) = opts.fake_time {
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", t)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    if let Some(out) = opts.decisions_out {
        cmd.env("JOBSEAL_LCMAPS_DECISIONS_OUT", out);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let o = run(&mut cmd);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    (o.status.code(), output, log_text)
}

/// Run the driver over `cases` under the policy `policy_name` of `db`,
/// which must pass; its output, and the LCMAPS log.
fn drive(
    driver: &Path,
    dir: &Path,
    db: &Path,
    policy_name: &str,
    cases: &[Case],
    opts: &Opts<'_>,
) -> (String, String) {
    let (code, out, log) = drive_raw(driver, dir, db, policy_name, Some(policy_name), cases, opts);
    assert!(
        code == Some(0),
        "the LCMAPS driver failed (exit {code:?}):\n{out}\nlog:\n{log}"
    );
    (out, log)
}

fn case(name: &str, bundle: &Path, code: &str, account: &str, record: bool) -> Case {
    Case {
        name: name.into(),
        bundle: bundle.to_path_buf(),
        code: code.into(),
        account: account.into(),
        record,
    }
}

#[test]
fn the_lcmaps_plugin_in_the_real_framework() {
    if !require_packages() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let built = build(t);
    let (plugin, driver) = (&built.plugin, &built.driver);

    let symbols = exported(plugin);
    for f in [
        "plugin_initialize",
        "plugin_introspect",
        "plugin_run",
        "plugin_verify",
        "plugin_terminate",
    ] {
        assert!(symbols.iter().any(|s| s == f), "{f} is not exported");
    }
    let leaked: Vec<&String> = symbols
        .iter()
        .filter(|s| s.starts_with("jobseal_") || s.starts_with("_ZN") || s.starts_with("_R"))
        .collect();
    assert!(leaked.is_empty(), "the plugin exports {leaked:?}");

    // The vectors, at their time, under the policy every binding uses.
    let vs = vectors();
    let policy = t.join("policy.toml");
    write_private(&policy, VECTOR_POLICY);
    let checker = checker(&vs, &policy);
    let mut cases = Vec::new();
    let mut expected_decisions = String::new();
    let mut users = BTreeMap::new();
    let mut payload_only = Vec::new();
    for v in &vs.list {
        let d = rust_check_credential(&checker, &vs, v);
        if let Some((_, why)) = REFUSED_BY_LCMAPS.iter().find(|(n, _)| *n == v.name) {
            assert!(!d.is_permit(), "{}", v.name);
            eprintln!("{}: not judged by the plugin: {why}", v.name);
            cases.push(case(&v.name, &v.bundle, "none", "-", false));
            continue;
        }
        if let Some((_, outcome, why)) = STRICTER_IN_LCMAPS.iter().find(|(n, ..)| *n == v.name) {
            assert!(d.is_permit(), "{}: {}", v.name, d.code());
            eprintln!("{}: refused in LCMAPS, permitted by jobseal: {why}", v.name);
            cases.push(case(&v.name, &v.bundle, outcome, "-", false));
            continue;
        }
        if d.is_permit() {
            users.insert(d.identity.as_ref().unwrap().end_entity.clone(), ACCOUNT);
            cases.push(case(&v.name, &v.bundle, "permit", ACCOUNT, true));
        } else {
            cases.push(case(&v.name, &v.bundle, d.code(), "-", true));
        }
        if v.expected.starts_with("payload.") {
            // Step 5 is the launcher's: the credential alone is fine, and
            // the plugin maps it.
            assert!(d.is_permit(), "{}: {}", v.name, d.code());
            payload_only.push(v.name.clone());
        } else {
            assert_eq!(d.code(), v.expected, "{}: credential-only check", v.name);
        }
        writeln!(expected_decisions, "{}\t{}", v.name, d.code()).unwrap();
    }
    let mut lines: Vec<&str> = expected_decisions.lines().collect();
    lines.sort_unstable();
    let expected_decisions: String = lines.iter().map(|l| format!("{l}\n")).collect();

    // Bundles sealed now, under a CA of their own: a permit, a tampered
    // manifest, and a user certificate that OpenSSL takes for a CA
    // (keyUsage keyCertSign without basicConstraints), so that LCMAPS
    // would map the proxy's DN rather than the user's.
    let fresh = Fresh::new();
    let good = fresh.seal("good", &["--events", "1000"]);
    let tampered = t.join("tampered.bundle.pem");
    let text = std::fs::read_to_string(&good).unwrap();
    let body = text.find("-----BEGIN JOBSEAL MANIFEST-----").unwrap() + 33 + 40;
    let mut bytes = text.into_bytes();
    bytes[body] = if bytes[body] == b'A' { b'B' } else { b'A' };
    std::fs::write(&tampered, &bytes).unwrap();
    let fresh_checker = Checker::new(
        jobseal_verify::Config {
            ca_dir: fresh.ca_dir(),
            voms_dir: vs.voms_dir.clone(),
            ..jobseal_verify::Config::default()
        },
        jobseal_policy::Policy::load(&policy).unwrap(),
    )
    .unwrap();
    let check_now = |c: &Checker, p: &Path| {
        c.check_credential_at(
            &std::fs::read(p).unwrap(),
            jobseal_core::time::UnixTime::now(),
        )
    };
    let good_d = check_now(&fresh_checker, &good);
    assert!(good_d.is_permit(), "{}", good_d.message);
    let tampered_d = check_now(&fresh_checker, &tampered);
    assert!(!tampered_d.is_permit());
    users.insert(
        good_d.identity.as_ref().unwrap().end_entity.clone(),
        ACCOUNT,
    );

    let odd = Fresh::with_user("CN=Oscar Odd,O=jobseal", Some(&[0x03, 0x02, 0x02, 0x84]));
    let odd_bundle = odd.seal("odd", &["--events", "1000"]);
    let odd_checker = Checker::new(
        jobseal_verify::Config {
            ca_dir: odd.ca_dir(),
            voms_dir: vs.voms_dir.clone(),
            ..jobseal_verify::Config::default()
        },
        jobseal_policy::Policy::load(&policy).unwrap(),
    )
    .unwrap();
    let odd_d = check_now(&odd_checker, &odd_bundle);
    assert!(
        odd_d.is_permit(),
        "jobseal refuses the odd user: {}",
        odd_d.message
    );
    let odd_identity = odd_d.identity.as_ref().unwrap();
    // Both the user's DN and the proxy's are in the grid-mapfile: only the
    // plugin's identity check stands between LCMAPS and mapping the proxy.
    users.insert(odd_identity.end_entity.clone(), ACCOUNT);
    users.insert(odd_identity.subject.clone(), ACCOUNT);

    let gridmap = t.join("grid-mapfile");
    let mut g = String::new();
    for (dn, account) in &users {
        writeln!(g, "\"{dn}\" {account}").unwrap();
    }
    std::fs::write(&gridmap, g).unwrap();

    // 1. Every vector, through the real framework, at the vectors' time.
    let db = lcmaps_db(
        t,
        "glexec",
        jobseal_entry(plugin, &vs.ca_dir, &vs.voms_dir, &policy),
        &gridmap,
    );
    let decisions_out = decisions_file("JOBSEAL_LCMAPS_DECISIONS_OUT", "lcmaps.tsv")
        .unwrap_or_else(|| t.join("lcmaps-decisions.tsv"));
    let at = faketime_at(vs.at);
    let (out, _) = drive(
        driver,
        t,
        &db,
        "glexec",
        &cases,
        &Opts {
            fake_time: Some(&at),
            decisions_out: Some(&decisions_out),
            ..Opts::default()
        },
    );
    eprintln!("{}", out.lines().last().unwrap_or_default());
    let recorded = cases.iter().filter(|c| c.record).count();
    assert!(
        out.contains(&format!("lcmaps: {} cases, ", cases.len()))
            && out.contains(&format!("{recorded} recorded, 0 failed")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&decisions_out).unwrap(),
        expected_decisions,
        "the plugin's decisions differ from the Rust API's"
    );
    eprintln!(
        "lcmaps: {} vectors judged by the plugin as the Rust API's credential-only check \
         (of which {} with a payload mismatch, mapped: the payload is the launcher's check); \
         {} refused by LCMAPS itself",
        recorded,
        payload_only.len(),
        REFUSED_BY_LCMAPS.len()
    );

    // 2. A banned user is denied although the grid-mapfile maps them; the
    //    others are still mapped.
    let alice = vs
        .list
        .iter()
        .find(|v| v.name == "permit-direct-from-user-certificate")
        .unwrap();
    let bob = vs
        .list
        .iter()
        .find(|v| v.name == "permit-intermediate-ca")
        .unwrap();
    let alice_dn = rust_check(&checker, &vs, alice)
        .identity
        .unwrap()
        .end_entity;
    let ban_policy = t.join("ban.toml");
    write_private(
        &ban_policy,
        &format!("{VECTOR_POLICY}[ban]\nsubjects = [{alice_dn:?}]\n"),
    );
    let db = lcmaps_db(
        t,
        "ban",
        jobseal_entry(plugin, &vs.ca_dir, &vs.voms_dir, &ban_policy),
        &gridmap,
    );
    drive(
        driver,
        t,
        &db,
        "ban",
        &[
            case(
                "alice-banned",
                &alice.bundle,
                "policy.banned-subject",
                "-",
                false,
            ),
            case("bob-not-banned", &bob.bundle, "permit", ACCOUNT, false),
        ],
        &Opts::at(&at),
    );

    // 3. verify-proxy, the plugin this one replaces, rejects the job-bound
    //    proxy that the jobseal plugin accepts: in LCMAPS and as a tool.
    let db = lcmaps_db(
        t,
        "verifyproxy",
        (
            "verifyproxy",
            format!(
                "lcmaps_verify_proxy.mod -certdir {} --discard_private_key_absence",
                vs.ca_dir.display()
            ),
        ),
        &gridmap,
    );
    let (_, log) = drive(
        driver,
        t,
        &db,
        "verifyproxy",
        &[case(
            "alice-verify-proxy",
            &alice.bundle,
            "none",
            "-",
            false,
        )],
        &Opts::at(&at),
    );
    assert!(log.contains("unhandled critical extension"), "{log}");
    let copy = t.join("alice.pem");
    std::fs::copy(&alice.bundle, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(Command::new("faketime")
        .arg(&at)
        .arg("verify-proxy-tool")
        .arg(&copy)
        .env("X509_CERT_DIR", &vs.ca_dir));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !o.status.success() && text.contains("unhandled critical extension"),
        "verify-proxy-tool: {:?} {text}",
        o.status.code()
    );

    // 4. Now, at the real time: a fresh bundle is mapped, a tampered one is
    //    not; a bundle whose user certificate LCMAPS misreads is refused by
    //    the plugin's identity check although jobseal permits it.
    let db = lcmaps_db(
        t,
        "now",
        jobseal_entry(plugin, &fresh.ca_dir(), &vs.voms_dir, &policy),
        &gridmap,
    );
    drive(
        driver,
        t,
        &db,
        "now",
        &[
            case("fresh", &good, "permit", ACCOUNT, false),
            case("fresh-tampered", &tampered, tampered_d.code(), "-", false),
        ],
        &Opts::default(),
    );
    let db = lcmaps_db(
        t,
        "odd",
        jobseal_entry(plugin, &odd.ca_dir(), &vs.voms_dir, &policy),
        &gridmap,
    );
    let (_, log) = drive(
        driver,
        t,
        &db,
        "odd",
        &[case(
            "odd-user",
            &odd_bundle,
            "lcmaps.identity-mismatch",
            "-",
            false,
        )],
        &Opts::default(),
    );
    assert!(
        log.contains(&format!("would map the DN \"{}\"", odd_identity.subject)),
        "{log}"
    );
}

/// `dn` (jobseal's §6.8 form) as OpenSSL's `X509_NAME_oneline` writes it,
/// and so LCMAPS and its grid-mapfile: bytes outside 0x20–0x7E as `\xHH`.
fn oneline(dn: &str) -> String {
    let mut s = String::new();
    for b in dn.bytes() {
        if (0x20..=0x7e).contains(&b) {
            s.push(char::from(b));
        } else {
            write!(s, "\\x{b:02X}").unwrap();
        }
    }
    s
}

fn write_gridmap(path: &Path, dns: &[&str]) {
    let text: String = dns
        .iter()
        .map(|dn| format!("\"{dn}\" {ACCOUNT}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_lcmaps_plugin_configuration_and_identity_checks() {
    if !require_packages() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let built = build(t);
    let driver = &built.driver;
    let vs = vectors();
    let policy = t.join("policy.toml");
    write_private(&policy, VECTOR_POLICY);
    let checker = checker(&vs, &policy);
    let at = faketime_at(vs.at);
    let vector = |n: &str| vs.list.iter().find(|v| v.name == n).unwrap();
    let dn_of = |v: &Vector| rust_check(&checker, &vs, v).identity.unwrap().end_entity;
    let alice = vector("permit-direct-from-user-certificate");
    let bob = vector("permit-intermediate-ca");
    let voms = vector("permit-voms-verified");
    let (alice_dn, bob_dn, voms_dn) = (dn_of(alice), dn_of(bob), dn_of(voms));
    let gridmap = t.join("grid-mapfile");
    write_gridmap(&gridmap, &[&alice_dn, &bob_dn, &voms_dn]);

    // 1. Without -credential-only, plugin_initialize fails, and with it
    //    lcmaps_init: nothing is mapped.
    let db = lcmaps_db(
        t,
        "noflag",
        jobseal_entry_without_flag(&built.plugin, &vs.ca_dir, &vs.voms_dir, &policy),
        &gridmap,
    );
    let (code, out, log) = drive_raw(
        driver,
        t,
        &db,
        "noflag",
        Some("noflag"),
        &[case("alice", &alice.bundle, "none", "-", false)],
        &Opts::at(&at),
    );
    assert!(
        code == Some(2)
            && out.contains("lcmaps_init failed")
            && log.contains("refusing to start without -credential-only")
            && log.contains("does NOT check the payload"),
        "exit {code:?}: {out}\nlog:\n{log}"
    );

    // 2. Two policies in one lcmaps.db. When gLExec names no policy, LCMAPS
    //    runs the next policy after a failed one: a jobseal deny falls
    //    through to `other`, which maps the banned user. Safe: gLExec names
    //    the policy, or jobseal heads every policy of the file.
    let ban_policy = t.join("ban.toml");
    write_private(
        &ban_policy,
        &format!("{VECTOR_POLICY}[ban]\nsubjects = [{alice_dn:?}]\n"),
    );
    let entries = [
        jobseal_entry(&built.plugin, &vs.ca_dir, &vs.voms_dir, &ban_policy),
        ("accept", built.accept.display().to_string()),
        localaccount_entry(&gridmap),
    ];
    let banned = |account: &str| {
        case(
            "alice-banned",
            &alice.bundle,
            "policy.banned-subject",
            account,
            false,
        )
    };
    let bob_case = case("bob", &bob.bundle, "permit", ACCOUNT, false);
    let hazard = lcmaps_db_with(
        t,
        "two-policies",
        &entries,
        &[
            ("glexec", &["jobseal -> localaccount"]),
            ("other", &["accept -> localaccount"]),
        ],
    );
    let (code, out, log) = drive_raw(
        driver,
        t,
        &hazard,
        "two-policies-unnamed",
        None,
        &[banned(ACCOUNT)],
        &Opts::at(&at),
    );
    assert!(
        code == Some(0)
            && log.contains("Starting policy: other")
            && log.contains("lcmaps_accept-plugin_run(): accepted"),
        "the hazard: a jobseal deny falls through to the next policy: exit {code:?}: {out}\nlog:\n{log}"
    );
    eprintln!(
        "lcmaps: two policies, none named: the banned user is mapped by the next policy \
         (the configuration docs/lcmaps.md forbids)"
    );
    let (code, out, log) = drive_raw(
        driver,
        t,
        &hazard,
        "two-policies-named",
        Some("glexec"),
        &[banned("-"), bob_case.clone()],
        &Opts::at(&at),
    );
    assert!(
        code == Some(0) && !log.contains("Starting policy: other"),
        "gLExec names the policy: exit {code:?}: {out}\nlog:\n{log}"
    );
    let headed = lcmaps_db_with(
        t,
        "jobseal-heads-every-policy",
        &entries,
        &[
            ("glexec", &["jobseal -> localaccount"]),
            ("other", &["jobseal -> accept", "accept -> localaccount"]),
        ],
    );
    let (code, out, log) = drive_raw(
        driver,
        t,
        &headed,
        "jobseal-heads-every-policy",
        None,
        &[banned("-"), bob_case],
        &Opts::at(&at),
    );
    assert!(
        code == Some(0) && !log.contains("lcmaps_accept-plugin_run(): accepted"),
        "jobseal heads every policy: exit {code:?}: {out}\nlog:\n{log}"
    );

    // 3. A user whose DN is not ASCII: LCMAPS names it in OpenSSL's
    //    one-line form (`\xC3\x89`), jobseal in UTF-8; the plugin compares
    //    the one-line forms, and the user is mapped.
    let utf8 = Fresh::with_user("CN=\u{c9}mile Zo\u{eb},O=jobseal", None);
    let utf8_bundle = utf8.seal("utf8", &["--events", "1000"]);
    let fresh_checker = |f: &Fresh| {
        Checker::new(
            jobseal_verify::Config {
                ca_dir: f.ca_dir(),
                voms_dir: vs.voms_dir.clone(),
                ..jobseal_verify::Config::default()
            },
            jobseal_policy::Policy::load(&policy).unwrap(),
        )
        .unwrap()
    };
    let now = |c: &Checker, p: &Path| {
        c.check_credential_at(
            &std::fs::read(p).unwrap(),
            jobseal_core::time::UnixTime::now(),
        )
    };
    let d = now(&fresh_checker(&utf8), &utf8_bundle);
    assert!(d.is_permit(), "{}", d.message);
    let utf8_dn = d.identity.unwrap().end_entity;
    assert_eq!(utf8_dn, "/O=jobseal/CN=\u{c9}mile Zo\u{eb}");
    let utf8_oneline = oneline(&utf8_dn);
    assert_eq!(utf8_oneline, "/O=jobseal/CN=\\xC3\\x89mile Zo\\xC3\\xAB");
    let utf8_gridmap = t.join("utf8-grid-mapfile");
    write_gridmap(&utf8_gridmap, &[&utf8_oneline]);
    let db = lcmaps_db(
        t,
        "utf8",
        jobseal_entry(&built.plugin, &utf8.ca_dir(), &vs.voms_dir, &policy),
        &utf8_gridmap,
    );
    let (_, log) = drive(
        driver,
        t,
        &db,
        "utf8",
        &[case("utf8-user", &utf8_bundle, "permit", ACCOUNT, false)],
        &Opts::default(),
    );
    assert!(log.contains(&utf8_oneline), "{log}");

    //    A '/' inside a value: OpenSSL 3 writes it `\/`, and so does jobseal
    //    (§6.8): the forms match and the user is mapped by the grid-mapfile
    //    entry in that form only.
    let slash = Fresh::with_user("CN=ops/robot,O=jobseal", None);
    let slash_bundle = slash.seal("slash", &["--events", "1000"]);
    let d = now(&fresh_checker(&slash), &slash_bundle);
    assert!(d.is_permit(), "{}", d.message);
    let slash_dn = d.identity.unwrap().end_entity;
    assert_eq!(slash_dn, "/O=jobseal/CN=ops\\/robot");
    let slash_gridmap = t.join("slash-grid-mapfile");
    write_gridmap(&slash_gridmap, &[&slash_dn]);
    let db = lcmaps_db(
        t,
        "slash",
        jobseal_entry(&built.plugin, &slash.ca_dir(), &vs.voms_dir, &policy),
        &slash_gridmap,
    );
    let (_, log) = drive(
        driver,
        t,
        &db,
        "slash",
        &[case("slash-user", &slash_bundle, "permit", ACCOUNT, false)],
        &Opts::default(),
    );
    assert!(log.contains("/O=jobseal/CN=ops\\/robot"), "{log}");

    // 4. FQANs through the real framework, with LCMAPS (libvomsapi) pointed
    //    at the vectors' VOMS directory. Debian's libvomsapi cannot verify
    //    their (Ed25519-signed) attribute certificates: LCMAPS then gives no
    //    FQAN, and the user is mapped without. Should it ever verify them,
    //    the plugin must see and accept the two FQANs jobseal verified.
    let db = lcmaps_db(
        t,
        "voms",
        jobseal_entry(&built.plugin, &vs.ca_dir, &vs.voms_dir, &policy),
        &gridmap,
    );
    let (_, log) = drive(
        driver,
        t,
        &db,
        "voms",
        &[case("voms", &voms.bundle, "permit", ACCOUNT, false)],
        &Opts {
            fake_time: Some(&at),
            env: vec![
                ("LCMAPS_X509_VOMS_DIR", vs.voms_dir.clone()),
                ("LCMAPS_X509_CERT_DIR", vs.ca_dir.clone()),
            ],
            ..Opts::default()
        },
    );
    if log.contains("Cannot verify AC signature") {
        assert!(
            log.contains("LCMAPS gives the FQAN count -1, jobseal verified 2"),
            "{log}"
        );
        eprintln!(
            "lcmaps: libvomsapi cannot verify the vectors' attribute certificates: LCMAPS \
             gives no FQAN; the FQAN checks are driven by lcmaps_plugin_test"
        );
    } else {
        assert!(
            log.contains("LCMAPS gives the FQAN count 2, jobseal verified 2"),
            "{log}"
        );
    }

    // 5. The plugin's checks with run variables set by hand: FQAN lists
    //    that are missing, inconsistent or not verified; another DN; no
    //    PEM; initialisation without -credential-only.
    let fqans = ["/testvo", "/testvo/analysis/Role=production"];
    let o = run(Command::new(&built.plugin_test)
        .arg(&voms.bundle)
        .arg(oneline(&voms_dn))
        .args(fqans)
        .arg(&vs.ca_dir)
        .arg(&vs.voms_dir)
        .arg(&policy)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", &at)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"));
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{}", out.lines().last().unwrap_or_default());
    assert!(
        o.status.success() && out.contains(", 0 failed"),
        "lcmaps_plugin_test (exit {:?}):\n{out}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

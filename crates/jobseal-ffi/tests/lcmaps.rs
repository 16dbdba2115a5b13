//! The LCMAPS plugin (`lcmaps/lcmaps_jobseal.c`, linked with the static C
//! API into `lcmaps_jobseal.so`) in the real LCMAPS framework of Debian
//! (`liblcmaps0`), driven as gLExec drives it (`lcmaps/driver.c`:
//! `lcmaps_run_with_pem_and_return_account`), with the policy
//! `jobseal -> localaccount`.
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
const REFUSED_BY_LCMAPS: &[(&str, &str)] = &[(
    "deny-cert-truncated",
    "LCMAPS cannot read the PEM chain, so it runs no plugin",
)];

/// The account the test grid-mapfile maps every user to.
const ACCOUNT: &str = "nobody";

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn modules_dir() -> PathBuf {
    first_existing(&[
        "/usr/lib/lcmaps",
        "/usr/lib/x86_64-linux-gnu/lcmaps",
        "/usr/lib64/lcmaps",
    ])
    .filter(|d| d.join("lcmaps_localaccount.mod").exists())
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

fn require_packages() {
    require(&[
        ("/usr/include/lcmaps/lcmaps_modules.h", "liblcmaps-dev"),
        (
            "/usr/include/lcmaps/lcmaps_return_account_from_pem.h",
            "liblcmaps-dev",
        ),
        ("/usr/bin/verify-proxy-tool", "lcmaps-plugins-verify-proxy"),
        ("/usr/bin/faketime", "faketime"),
    ]);
    let dir = first_existing(&["/usr/lib/lcmaps", "/usr/lib/x86_64-linux-gnu/lcmaps"]);
    let has = |m: &str| dir.as_ref().is_some_and(|d| d.join(m).exists());
    let mut missing = Vec::new();
    if !has("lcmaps_localaccount.mod") {
        missing.push("lcmaps-plugins-basic-localaccount");
    }
    if !has("lcmaps_verify_proxy.mod") {
        missing.push("lcmaps-plugins-verify-proxy");
    }
    assert!(
        missing.is_empty(),
        "missing Debian packages: {0} (apt-get install -y {0})",
        missing.join(" ")
    );
}

/// Build the plugin and the driver into `dir`.
fn build(dir: &Path) -> (PathBuf, PathBuf) {
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
    (plugin, driver)
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

/// An lcmaps.db with one policy `name: first -> localaccount`.
fn lcmaps_db(dir: &Path, name: &str, first: (&str, String), gridmap: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.db"));
    std::fs::write(
        &path,
        format!(
            "path = {}\n\n{} = \"{}\"\nlocalaccount = \"lcmaps_localaccount.mod -gridmapfile {}\"\n\n{name}:\n{} -> localaccount\n",
            modules_dir().display(),
            first.0,
            first.1,
            gridmap.display(),
            first.0,
        ),
    )
    .unwrap();
    path
}

fn jobseal_entry(plugin: &Path, ca: &Path, voms: &Path, policy: &Path) -> (&'static str, String) {
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

/// Run the driver over `cases`; its stdout, and the LCMAPS log.
fn drive(
    driver: &Path,
    dir: &Path,
    db: &Path,
    policy_name: &str,
    cases: &[Case],
    fake_time: Option<&str>,
    decisions_out: Option<&Path>,
) -> (String, String) {
    let tsv = dir.join(format!("{policy_name}-cases.tsv"));
    std::fs::write(&tsv, cases_tsv(cases)).unwrap();
    let log = dir.join(format!("{policy_name}.log"));
    let mut cmd = Command::new(driver);
    cmd.arg(&log)
        .arg(policy_name)
        .arg(&tsv)
        .env("LCMAPS_DB_FILE", db)
        .env("LCMAPS_DEBUG_LEVEL", "4")
        .env_remove("LCMAPS_POLICY_NAME")
        .env_remove("JOBSEAL_LCMAPS_DECISIONS_OUT");
    if let Some(t) = fake_time {
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", t)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    if let Some(out) = decisions_out {
        cmd.env("JOBSEAL_LCMAPS_DECISIONS_OUT", out);
    }
    let o = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        o.status.success(),
        "the LCMAPS driver failed (exit {:?}):\n{stdout}{}\nlog:\n{log_text}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    (stdout, log_text)
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
    require_packages();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (plugin, driver) = build(t);

    let symbols = exported(&plugin);
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
        jobseal_entry(&plugin, &vs.ca_dir, &vs.voms_dir, &policy),
        &gridmap,
    );
    let decisions_out = decisions_file("JOBSEAL_LCMAPS_DECISIONS_OUT", "lcmaps.tsv")
        .unwrap_or_else(|| t.join("lcmaps-decisions.tsv"));
    let at = faketime_at(vs.at);
    let (out, _) = drive(
        &driver,
        t,
        &db,
        "glexec",
        &cases,
        Some(&at),
        Some(&decisions_out),
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
        jobseal_entry(&plugin, &vs.ca_dir, &vs.voms_dir, &ban_policy),
        &gridmap,
    );
    drive(
        &driver,
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
        Some(&at),
        None,
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
        &driver,
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
        Some(&at),
        None,
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
        jobseal_entry(&plugin, &fresh.ca_dir(), &vs.voms_dir, &policy),
        &gridmap,
    );
    drive(
        &driver,
        t,
        &db,
        "now",
        &[
            case("fresh", &good, "permit", ACCOUNT, false),
            case("fresh-tampered", &tampered, tampered_d.code(), "-", false),
        ],
        None,
        None,
    );
    let db = lcmaps_db(
        t,
        "odd",
        jobseal_entry(&plugin, &odd.ca_dir(), &vs.voms_dir, &policy),
        &gridmap,
    );
    let (_, log) = drive(
        &driver,
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
        None,
        None,
    );
    assert!(
        log.contains(&format!("would map the DN \"{}\"", odd_identity.subject)),
        "{log}"
    );
}

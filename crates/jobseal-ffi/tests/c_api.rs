//! The C API from C: `tests/c/api_test.c`, compiled with the system `cc`
//! against the static library (run under valgrind when it is installed; in
//! CI it must be) and against the shared library through the `jobseal.pc`
//! pkg-config file, over every test vector, with the Rust API's decisions
//! to agree with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `jobseal.pc` from its template, for a library installed under `prefix`.
fn render_pc(prefix: &Path) -> String {
    std::fs::read_to_string(crate_dir().join("jobseal.pc.in"))
        .unwrap()
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@LIBDIR@", prefix.join("lib").to_str().unwrap())
        .replace("@INCLUDEDIR@", prefix.join("include").to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
}

/// The vectors as `api_test.c` reads them, with the Rust API's decisions,
/// and the sorted `NAME<TAB>CODE` lines it must write.
fn vectors_tsv(vs: &Vectors, policy: &Path) -> (String, String) {
    let checker = checker(vs, policy);
    let mut tsv = String::new();
    let mut decisions = Vec::new();
    // Permits sealed by the user's certificate and under a proxy: both
    // values of jobseal_decision_issued_by_end_entity are compared.
    let mut by_end_entity = [0_usize; 2];
    for v in &vs.list {
        let d = rust_check(&checker, vs, v);
        if let (true, Some(i)) = (d.is_permit(), d.identity.as_ref()) {
            by_end_entity[usize::from(i.issued_by_end_entity)] += 1;
        }
        let c = rust_check_credential(&checker, vs, v);
        // The Rust API, under the test policy, agrees with vectors.json.
        assert_eq!(d.code(), v.expected, "{}: the Rust API disagrees", v.name);
        let identity = d.identity.as_ref();
        let fqans: Vec<&str> = identity
            .map(|i| {
                i.voms
                    .iter()
                    .filter(|x| x.verified)
                    .flat_map(|x| x.fqans.iter().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        assert!(fqans.iter().all(|f| !f.contains('|')));
        let or_dash = |s: Option<&str>| s.unwrap_or("-").to_string();
        let mut fields = vec![
            v.name.clone(),
            v.expected.clone(),
            v.bundle.display().to_string(),
            v.executable.display().to_string(),
            v.job_dir.display().to_string(),
            d.code().to_string(),
            or_dash(identity.map(|i| i.end_entity.as_str())),
            or_dash(d.job.as_ref().map(|j| j.job_id.as_str())),
            or_dash(d.manifest_sha256.as_deref()),
            if fqans.is_empty() {
                "-".to_string()
            } else {
                fqans.join("|")
            },
            c.code().to_string(),
            identity.is_some_and(|i| i.issued_by_end_entity).to_string(),
        ];
        fields.extend(v.arguments.iter().cloned());
        for f in &fields {
            field(f);
        }
        writeln!(tsv, "{}", fields.join("\t")).unwrap();
        decisions.push(format!("{}\t{}\n", v.name, d.code()));
    }
    assert!(by_end_entity.iter().all(|n| *n > 0), "{by_end_entity:?}");
    decisions.sort();
    (tsv, decisions.concat())
}

/// Copy the files of `from` into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn valgrind() -> Option<PathBuf> {
    peers::find("valgrind")
}

#[test]
fn the_c_api_from_c() {
    if !require(&[("pkg-config", "pkg-config")]) {
        return;
    }
    let lib = lib_dir();
    let include = crate_dir().join("include");
    let source = crate_dir().join("tests/c/api_test.c");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // Inputs: the vectors with the Rust API's decisions, a policy, and
    // bundles sealed now for admission.
    let vs = vectors();
    let policy = t.join("policy.toml");
    write_private(&policy, VECTOR_POLICY);
    let (tsv, expected_decisions) = vectors_tsv(&vs, &policy);
    std::fs::write(t.join("vectors.tsv"), &tsv).unwrap();
    let fresh = Fresh::new();
    let args = ["--events", "1000"];
    let mut fresh_tsv = String::new();
    for name in ["first", "second", "third"] {
        let bundle = fresh.seal(name, &args);
        let mut fields = vec![
            bundle.display().to_string(),
            fresh.executable().display().to_string(),
            fresh.job_dir().display().to_string(),
        ];
        fields.extend(args.iter().map(|a| a.to_string()));
        writeln!(fresh_tsv, "{}", fields.join("\t")).unwrap();
    }
    std::fs::write(t.join("fresh.tsv"), fresh_tsv).unwrap();

    // Static: the test binary links libjobseal_ffi.a.
    let static_bin = t.join("api_test_static");
    let mut cc_args: Vec<String> = vec![
        "-std=c11".into(),
        "-g".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pthread".into(),
        format!("-I{}", include.display()),
        "-o".into(),
        static_bin.display().to_string(),
        source.display().to_string(),
        lib.join("libjobseal_ffi.a").display().to_string(),
    ];
    cc_args.extend(NATIVE_STATIC_LIBS.iter().map(|s| s.to_string()));
    cc(&cc_args.iter().map(String::as_str).collect::<Vec<_>>());

    // Shared: installed under a prefix as the README says, found through
    // jobseal.pc.
    let prefix = t.join("prefix");
    std::fs::create_dir_all(prefix.join("include")).unwrap();
    std::fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
    std::os::unix::fs::symlink(include.join("jobseal.h"), prefix.join("include/jobseal.h"))
        .unwrap();
    std::os::unix::fs::symlink(
        lib.join("libjobseal_ffi.so"),
        prefix.join("lib/libjobseal_ffi.so"),
    )
    .unwrap();
    std::fs::write(prefix.join("lib/pkgconfig/jobseal.pc"), render_pc(&prefix)).unwrap();
    let pc = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .args(["--cflags", "--libs", "jobseal"]));
    assert!(
        pc.status.success(),
        "pkg-config jobseal: {}",
        String::from_utf8_lossy(&pc.stderr)
    );
    let pc_flags = String::from_utf8(pc.stdout).unwrap();
    assert!(pc_flags.contains("-ljobseal_ffi"), "{pc_flags}");
    let dynamic_bin = t.join("api_test_dynamic");
    let mut cc_args: Vec<String> = vec![
        "-std=c11".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pthread".into(),
        "-o".into(),
        dynamic_bin.display().to_string(),
        source.display().to_string(),
    ];
    cc_args.extend(pc_flags.split_whitespace().map(String::from));
    cc_args.push(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
    cc(&cc_args.iter().map(String::as_str).collect::<Vec<_>>());

    // For the relative-path test: host/ (its CA directory as certs/, the
    // one that trusts the fresh bundles) and job/ (a rogue certs/: the
    // vectors' CAs, which do not), one pair per run.
    let chdir_root = |name: &str| -> PathBuf {
        let root = t.join(name);
        copy_dir(&fresh.ca_dir(), &root.join("host/certs"));
        std::fs::create_dir_all(root.join("host/vomsdir")).unwrap();
        write_private(&root.join("host/policy.toml"), VECTOR_POLICY);
        copy_dir(&vs.ca_dir, &root.join("job/certs"));
        root
    };
    let c_args = |state: &Path, root: &Path| -> Vec<String> {
        vec![
            t.join("vectors.tsv").display().to_string(),
            vs.ca_dir.display().to_string(),
            vs.voms_dir.display().to_string(),
            policy.display().to_string(),
            vs.at.0.to_string(),
            state.display().to_string(),
            fresh.ca_dir().display().to_string(),
            t.join("fresh.tsv").display().to_string(),
            root.display().to_string(),
        ]
    };

    // The static build, under valgrind where it is installed (required in
    // CI). It writes the decisions where JOBSEAL_DECISIONS_OUT says.
    let decisions_out =
        decisions_file("JOBSEAL_DECISIONS_OUT", "c.tsv").unwrap_or_else(|| t.join("decisions.tsv"));
    let state = t.join("state-static");
    let mut cmd = match valgrind() {
        Some(vg) => {
            let mut c = Command::new(vg);
            c.args([
                "--quiet",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
            ])
            .arg(&static_bin)
            // Fewer threads: valgrind runs them one at a time.
            .env("JOBSEAL_C_TEST_THREADS", "2");
            c
        }
        None => {
            assert!(
                !ci(),
                "valgrind is not installed: CI runs the C tests under valgrind \
                 (apt-get install -y valgrind)"
            );
            // Says SKIPPED for this part (fails under JOBSEAL_REQUIRE_PEERS).
            peers::require_for("under valgrind", "valgrind", "valgrind");
            Command::new(&static_bin)
        }
    };
    let o = run(cmd
        .args(c_args(&state, &chdir_root("chdir-static")))
        .env("JOBSEAL_DECISIONS_OUT", &decisions_out));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!(
        "static{}: {}",
        if valgrind().is_some() {
            ", valgrind"
        } else {
            ""
        },
        out.trim()
    );
    assert!(
        o.status.success(),
        "the C test failed (exit {:?}; 99 is a valgrind error):\n{out}{err}",
        o.status.code()
    );
    let summary = format!(
        "c api: {} vectors run, {} agree",
        vs.list.len(),
        vs.list.len()
    );
    assert!(out.contains(&summary), "expected '{summary}' in: {out}");
    assert!(out.contains(", 0 failed"), "{out}");
    let written = std::fs::read_to_string(&decisions_out).unwrap();
    assert_eq!(
        written, expected_decisions,
        "the decisions file differs from the Rust API's"
    );

    // The shared build, plainly.
    let state = t.join("state-dynamic");
    // Its runpath alone finds the library: cargo's LD_LIBRARY_PATH (which
    // wins over a runpath) may hold an older libjobseal_ffi.so of the
    // target directory's.
    let o = run(Command::new(&dynamic_bin)
        .env_remove("LD_LIBRARY_PATH")
        .args(c_args(&state, &chdir_root("chdir-dynamic")))
        .env("JOBSEAL_DECISIONS_OUT", t.join("decisions-dynamic.tsv")));
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("shared: {}", out.trim());
    assert!(
        o.status.success(),
        "the C test (shared library) failed:\n{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(t.join("decisions-dynamic.tsv")).unwrap(),
        expected_decisions
    );
}

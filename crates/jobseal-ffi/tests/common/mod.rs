//! What the C tests share: the built C libraries, the system C compiler,
//! the checked-in vectors with the Rust API's decisions, and bundles sealed
//! now (for admission).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    dead_code
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jobseal_admit::admit::Checker;
use jobseal_core::time::UnixTime;
use jobseal_issue::credential::{self, Credential, Source};
use jobseal_issue::keys::KeyDer;
use jobseal_issue::{JobSpec, SealParams, seal, throwaway};
use jobseal_policy::Policy;
use jobseal_verify::{Config, Decision, Invocation};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn vectors_dir() -> PathBuf {
    crate_dir().join("../../test-vectors")
}

/// Whether this is CI (`CI` set and not "false"/"0"/empty).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The directory holding `libjobseal_ffi.a` and `libjobseal_ffi.so`. The
/// library target has the `rlib` crate type as well, so cargo builds it,
/// with its C crate types, into the `deps` directory next to this test
/// binary, in the same `cargo test` run: no nested cargo, and never stale.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    for name in ["libjobseal_ffi.a", "libjobseal_ffi.so"] {
        assert!(
            dir.join(name).is_file(),
            "{} is missing: the C tests link against the library cargo builds \
             next to the test binary (crate-type cdylib, staticlib, rlib)",
            dir.join(name).display()
        );
    }
    dir
}

/// Where a suite writes its `NAME<TAB>CODE` decisions: the file named by
/// `var`, else `name` in the directory `JOBSEAL_DECISIONS_DIR`, else none.
/// Its directory is made if missing (the suites run in any order).
pub fn decisions_file(var: &str, name: &str) -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let file = nonempty(var)
        .map(PathBuf::from)
        .or_else(|| nonempty("JOBSEAL_DECISIONS_DIR").map(|d| PathBuf::from(d).join(name)))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    Some(file)
}

/// What a Rust staticlib needs from the system on glibc Linux
/// (`rustc --print native-static-libs`).
pub const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// Run a command; its output (panics if it cannot start).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Compile with the system C compiler, failing with its messages.
pub fn cc(args: &[&str]) {
    let o = run(Command::new("cc").args(args));
    assert!(
        o.status.success(),
        "cc {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Test peers (`jobseal-testkit`'s rule): a missing Debian package makes a
/// test say SKIPPED and return, or fail under `JOBSEAL_REQUIRE_PEERS=1`.
#[path = "../../../jobseal-testkit/src/peers.rs"]
pub mod peers;

/// Whether every peer (program or absolute path, Debian package) is there;
/// if not, the test has been reported skipped (or failed) and must return.
#[track_caller]
pub fn require(what: &[(&str, &str)]) -> bool {
    peers::require_all(what)
}

/// Write a file readable by its owner only (policy files must not be
/// writable by group or others).
pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The site policy every binding is tested under: the built-in policy with
/// this site's name, so that the vector that names target sites is
/// admitted; under it the checker gives every vector its expected code.
pub const VECTOR_POLICY: &str = "site = \"NIKHEF-ELPROD\"\n";

/// One vector of `test-vectors/vectors.json`, with absolute paths.
#[derive(Debug)]
pub struct Vector {
    pub name: String,
    pub expected: String,
    pub bundle: PathBuf,
    pub executable: PathBuf,
    pub job_dir: PathBuf,
    pub arguments: Vec<String>,
}

pub struct Vectors {
    pub ca_dir: PathBuf,
    pub voms_dir: PathBuf,
    pub at: UnixTime,
    pub list: Vec<Vector>,
}

pub fn vectors() -> Vectors {
    let dir = vectors_dir();
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).unwrap()).unwrap();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_string();
    let list = index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            name: s(v, "name"),
            expected: s(v, "expected"),
            bundle: dir.join(s(v, "bundle")),
            executable: dir.join(s(v, "executable")),
            job_dir: dir.join(s(v, "job_dir")),
            arguments: v["arguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        })
        .collect();
    Vectors {
        ca_dir: dir.join(s(&index, "ca_dir")),
        voms_dir: dir.join(s(&index, "voms_dir")),
        at: UnixTime::parse_rfc3339(index["verify_at"].as_str().unwrap()).unwrap(),
        list,
    }
}

/// The Rust API (`Checker`) over the vectors' trust configuration under the
/// policy in `policy_file`.
pub fn checker(v: &Vectors, policy_file: &Path) -> Checker {
    Checker::new(
        Config {
            ca_dir: v.ca_dir.clone(),
            voms_dir: v.voms_dir.clone(),
            ..Config::default()
        },
        Policy::load(policy_file).unwrap(),
    )
    .unwrap()
}

pub fn invocation(v: &Vector) -> Invocation {
    Invocation {
        executable: v.executable.clone(),
        arguments: v.arguments.iter().map(Into::into).collect(),
        job_dir: v.job_dir.clone(),
    }
}

/// The Rust API's decision on a vector (steps 1–6).
pub fn rust_check(c: &Checker, vs: &Vectors, v: &Vector) -> Decision {
    c.check_at(&std::fs::read(&v.bundle).unwrap(), &invocation(v), vs.at)
}

/// The Rust API's decision on a vector's credential (steps 1–4, 6).
pub fn rust_check_credential(c: &Checker, vs: &Vectors, v: &Vector) -> Decision {
    c.check_credential_at(&std::fs::read(&v.bundle).unwrap(), vs.at)
}

/// A field of a tab-separated line: no tab, no newline.
pub fn field(s: &str) -> &str {
    assert!(
        !s.contains(['\t', '\n']),
        "field {s:?} holds a tab or newline"
    );
    s
}

/// A throwaway CA and user, and jobs sealed now under them.
pub struct Fresh {
    pub dir: tempfile::TempDir,
    cred: Credential,
}

impl Fresh {
    pub fn new() -> Self {
        Self::with_user("CN=Cecilia Caller,O=jobseal", None)
    }

    /// A user `subject` whose certificate has the key usage `key_usage`
    /// (the DER BIT STRING) instead of digitalSignature|keyEncipherment.
    pub fn with_user(subject: &str, key_usage: Option<&[u8]>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = UnixTime::now();
        let ca = throwaway::ca(
            &[21; 32],
            "CN=FFI Test CA,O=jobseal",
            now.minus(86_400),
            now.plus(365 * 86_400),
        )
        .unwrap();
        let user = match key_usage {
            None => throwaway::user(
                &ca,
                &[22; 32],
                subject,
                3,
                now.minus(86_400),
                now.plus(30 * 86_400),
            )
            .unwrap(),
            Some(ku) => {
                let (key, pkcs8, spki) = throwaway::ed25519_from_seed(&[23; 32]).unwrap();
                let cert = jobseal_issue::proxy::CertTemplate {
                    serial: 4,
                    issuer: jobseal_core::tlv::RawCert::split(&ca.cert)
                        .unwrap()
                        .subject
                        .to_vec(),
                    subject: throwaway::name_der(subject).unwrap(),
                    spki,
                    not_before: now.minus(86_400),
                    not_after: now.plus(30 * 86_400),
                    extensions: vec![
                        jobseal_issue::proxy::extension(jobseal_core::oid::KEY_USAGE, true, ku)
                            .unwrap(),
                    ],
                }
                .sign(&ca.key)
                .unwrap();
                throwaway::Party { key, pkcs8, cert }
            }
        };
        throwaway::install_ca(&dir.path().join("ca"), &ca.cert).unwrap();
        let cred = Credential::from_parts(
            Source::Proxy(dir.path().join("user")),
            &KeyDer::Pkcs8(user.pkcs8.clone()),
            vec![user.cert.clone()],
        )
        .unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        let exe = job.join("run.sh");
        std::fs::write(&exe, "#!/bin/sh\necho \"$@\"\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, cred }
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    pub fn job_dir(&self) -> PathBuf {
        self.dir.path().join("job")
    }

    pub fn executable(&self) -> PathBuf {
        self.job_dir().join("run.sh")
    }

    /// Seal `job/run.sh ARGS` now; the bundle's path.
    pub fn seal(&self, name: &str, args: &[&str]) -> PathBuf {
        let now = UnixTime::now();
        let toml = self.job_dir().join(format!("{name}.toml"));
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &toml,
            format!(
                "executable = \"run.sh\"\narguments = [{}]\nvalid = \"1h\"\n",
                quoted.join(", ")
            ),
        )
        .unwrap();
        let issuer = credential::check_issuer(&self.cred, now).unwrap();
        let job = JobSpec::from_toml_file(&toml).unwrap();
        let sealed = seal(&self.cred, &issuer, &job, &SealParams::random(now).unwrap()).unwrap();
        let out = self.dir.path().join(format!("{name}.bundle.pem"));
        std::fs::write(&out, sealed.bundle.to_pem()).unwrap();
        out
    }
}

//! A real VOMS server for tests: Debian's `voms-server` with
//! `voms-mysql-plugin` over MariaDB, on loopback only.
//!
//! The server has no listen-address option (it binds 0.0.0.0), so it runs
//! in a network namespace of its own (`unshare --net`, only `lo` up), with
//! MariaDB beside it (Unix socket, no networking). Clients reach it by
//! running inside that namespace: [`VomsServer::command`] wraps a program
//! in `nsenter --net=…`. Needs root (CI runs tests as root); without root,
//! or without a package, the test is reported SKIPPED, or fails under
//! `JOBSEAL_REQUIRE_PEERS` (see `peers.rs`).
//!
//! The VO `testvo`: groups `/testvo` and `/testvo/analysis`, role
//! `production` in both; Jane Doe ([`Pki::user_cert`]) is a member of both
//! groups and holds the role in both; John Outsider ([`Pki::other_cert`])
//! is not a member. The PKI (RSA-2048, made with `openssl`) has one CA, the
//! two users and the host certificate `CN=localhost` (`DNS:localhost`).
//! The vomsdir has `testvo/localhost.lsc`.
//!
//! This file uses only `std` and `peers.rs`: tests include it with
//! `#[path = ".../jobseal-testkit/src/voms_server.rs"] mod voms_server;`
//! next to `mod peers;`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers;

/// The test VO.
pub const VO: &str = "testvo";
pub const CA_DN: &str = "/DC=org/DC=example/CN=Example VOMS Test CA";
pub const USER_DN: &str = "/DC=org/DC=example/CN=Jane Doe";
pub const OTHER_DN: &str = "/DC=org/DC=example/CN=John Outsider";
pub const HOST_DN: &str = "/DC=org/DC=example/CN=localhost";
/// The port the server listens on, inside its namespace.
pub const PORT: u16 = 15000;
/// A second server of the same VO and database whose ACs name another host
/// (`-uri voms.example.org:15001`): its TLS certificate passes the
/// `localhost.lsc` check, its ACs need `voms.example.org.lsc`.
pub const PORT_OTHER_URI: u16 = 15001;
/// The host its ACs name.
pub const OTHER_URI_HOST: &str = "voms.example.org";

/// The programs and files needed, with their Debian packages.
pub const NEEDS: &[(&str, &str)] = &[
    ("/usr/sbin/voms", "voms-server"),
    ("/usr/lib/voms/libvomsmysql.so", "voms-mysql-plugin"),
    ("/usr/share/voms/voms-mysql.data", "voms-mysql-plugin"),
    ("/usr/sbin/mariadbd", "mariadb-server"),
    ("mariadb-install-db", "mariadb-server"),
    ("mariadb", "mariadb-server"),
    ("openssl", "openssl"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
    ("ip", "iproute2"),
    ("ss", "iproute2"),
];

/// Whether the real server can run here; if not, the test is reported
/// skipped (or fails under `JOBSEAL_REQUIRE_PEERS`).
#[track_caller]
pub fn available() -> bool {
    if !peers::require_all(NEEDS) {
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        return true;
    }
    let suite = peers::current_test();
    assert!(
        !peers::required(),
        "{suite}: needs root (a network namespace for the VOMS server); {} is set",
        peers::REQUIRE_ENV
    );
    let line = format!(
        "SKIPPED {suite}: needs root (the VOMS server runs in its own network namespace); \
         run scripts/test as root to run it\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// The test PKI, in files.
#[derive(Debug)]
pub struct Pki {
    pub root: PathBuf,
    /// IGTF-style: `<hash>.0` (both the current and the old MD5 hash).
    pub ca_dir: PathBuf,
    pub user_cert: PathBuf,
    pub user_key: PathBuf,
    /// Jane's second certificate, with a P-256 key.
    pub user_ec_cert: PathBuf,
    pub user_ec_key: PathBuf,
    pub other_cert: PathBuf,
    pub other_key: PathBuf,
    pub host_cert: PathBuf,
    pub host_key: PathBuf,
    /// `testvo/localhost.lsc`.
    pub vomsdir: PathBuf,
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[user_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[host_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost
authorityKeyIdentifier = keyid
";

/// Run a command to success under a timeout; its stdout.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} timed out"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

impl Pki {
    /// The paths of a PKI made under `root` by [`Pki::new`].
    pub fn at(root: &Path) -> Pki {
        let f = |name: &str| root.join(name);
        Pki {
            root: root.to_path_buf(),
            ca_dir: f("certificates"),
            user_cert: f("user.pem"),
            user_key: f("user.key"),
            user_ec_cert: f("user-ec.pem"),
            user_ec_key: f("user-ec.key"),
            other_cert: f("other.pem"),
            other_key: f("other.key"),
            host_cert: f("host.pem"),
            host_key: f("host.key"),
            vomsdir: f("vomsdir"),
        }
    }

    /// Make the PKI under `root`.
    pub fn new(root: &Path) -> Result<Pki, String> {
        let cnf = root.join("openssl.cnf");
        fs::write(&cnf, OPENSSL_CNF).map_err(|e| e.to_string())?;
        let ca_cert = root.join("ca.pem");
        let ca_key = root.join("ca.key");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
            ])
            .args(["-subj", CA_DN, "-extensions", "ca_ext", "-config"])
            .arg(&cnf)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert))?;
        let ca_dir = root.join("certificates");
        fs::create_dir_all(&ca_dir).map_err(|e| e.to_string())?;
        // The server's OpenSSL looks the CA up by the current hash; keep the
        // old MD5 one too, for the Java tools (field notes).
        for hash in ["-subject_hash", "-subject_hash_old"] {
            let h = run(Command::new("openssl")
                .args(["x509", "-noout", hash, "-in"])
                .arg(&ca_cert))?;
            fs::copy(&ca_cert, ca_dir.join(format!("{}.0", h.trim())))
                .map_err(|e| e.to_string())?;
        }
        let issue = |name: &str, dn: &str, ext: &str, serial: u32, key_args: &[&str]| {
            let (cert, key, csr) = (
                root.join(format!("{name}.pem")),
                root.join(format!("{name}.key")),
                root.join(format!("{name}.csr")),
            );
            run(Command::new("openssl")
                .args(["req", "-new", "-nodes", "-sha256", "-subj", dn])
                .args(key_args)
                .arg("-config")
                .arg(&cnf)
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr))?;
            set_mode(&key, 0o600)?;
            run(Command::new("openssl")
                .args(["x509", "-req", "-sha256", "-days", "30", "-set_serial"])
                .arg(serial.to_string())
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&cnf)
                .args(["-extensions", ext])
                .arg("-out")
                .arg(&cert))?;
            Ok::<_, String>((cert, key))
        };
        let rsa: &[&str] = &["-newkey", "rsa:2048"];
        let (user_cert, user_key) = issue("user", USER_DN, "user_ext", 0x1001, rsa)?;
        let (other_cert, other_key) = issue("other", OTHER_DN, "user_ext", 0x1002, rsa)?;
        let (host_cert, host_key) = issue("host", HOST_DN, "host_ext", 0x1003, rsa)?;
        // Jane again, with an EC key (a second certificate of hers).
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        let (user_ec_cert, user_ec_key) = issue("user-ec", USER_DN, "user_ext", 0x1004, &ec)?;
        let vomsdir = root.join("vomsdir");
        fs::create_dir_all(vomsdir.join(VO)).map_err(|e| e.to_string())?;
        fs::write(
            vomsdir.join(VO).join("localhost.lsc"),
            format!("{HOST_DN}\n{CA_DN}\n"),
        )
        .map_err(|e| e.to_string())?;
        Ok(Pki {
            root: root.to_path_buf(),
            ca_dir,
            user_cert,
            user_key,
            user_ec_cert,
            user_ec_key,
            other_cert,
            other_key,
            host_cert,
            host_key,
            vomsdir,
        })
    }

    /// A vomses file naming the server at `host:port`.
    pub fn vomses(&self, name: &str, host: &str, port: u16) -> Result<PathBuf, String> {
        let path = self.root.join(name);
        fs::write(
            &path,
            format!("\"{VO}\" \"{host}\" \"{port}\" \"{HOST_DN}\" \"{VO}\"\n"),
        )
        .map_err(|e| e.to_string())?;
        Ok(path)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

/// The running server: a namespace holder, MariaDB and voms, all in the
/// holder's network namespace. Dropping it ends every process of that
/// namespace (only this harness's) and the holder.
#[derive(Debug)]
pub struct VomsServer {
    holder: Child,
    netns: PathBuf,
    dir: PathBuf,
}

const DB: &str = "voms_testvo";
const DB_USER: &str = "voms_testvo";

impl VomsServer {
    /// Start MariaDB and voms for `pki` in a new network namespace.
    pub fn start(pki: &Pki) -> Result<VomsServer, String> {
        let dir = pki.root.join("server");
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // `sleep` itself is the namespace's first process: its pid names it.
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare --net: {e}"))?;
        let netns = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
        let server = VomsServer { holder, netns, dir };
        server.wait_for_namespace()?;
        run(server.command("ip").args(["link", "set", "lo", "up"]))?;
        server.start_mariadb()?;
        server.load_schema()?;
        server.start_voms(pki, PORT, "localhost")?;
        server.start_voms(pki, PORT_OTHER_URI, OTHER_URI_HOST)?;
        Ok(server)
    }

    /// The server's network namespace (`/proc/<pid>/ns/net`).
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// `program` run inside the server's network namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns.display()))
            .arg(program);
        c
    }

    /// The server's log (voms, port [`PORT`]), for failure messages.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(self.dir.join(format!("voms-{PORT}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn wait_for_namespace(&self) -> Result<(), String> {
        let own = fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        wait_until(Duration::from_secs(10), "the network namespace", || {
            fs::read_link(&self.netns).is_ok_and(|ns| ns != own)
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mysql.sock")
    }

    fn start_mariadb(&self) -> Result<(), String> {
        let data = self.dir.join("db");
        run(Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .args(["--auth-root-authentication-method=normal"])
            .arg(format!("--datadir={}", data.display())))?;
        let log = fs::File::create(self.dir.join("mariadb.log")).map_err(|e| e.to_string())?;
        self.command("/usr/sbin/mariadbd")
            .args(["--no-defaults", "--user=root", "--skip-networking"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadb.pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("mariadbd: {e}"))?;
        wait_until(Duration::from_secs(60), "MariaDB", || {
            self.sql(None, "SELECT 1").is_ok()
        })
    }

    fn sql(&self, db: Option<&str>, statements: &str) -> Result<String, String> {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "-u", "root", "-S"])
            .arg(self.socket());
        if let Some(db) = db {
            c.args(["-D", db]);
        }
        run(c.args(["-e", statements]))
    }

    /// The schema of the MySQL plugin and the test VO (what voms_install_db
    /// would do, had it read OpenSSL 3's DNs). Version 2: the plugin then
    /// reads users from `usr` and CAs from `ca`.
    fn load_schema(&self) -> Result<(), String> {
        let schema = fs::read_to_string("/usr/share/voms/voms-mysql.data")
            .map_err(|e| format!("/usr/share/voms/voms-mysql.data: {e}"))?;
        self.sql(None, &format!("CREATE DATABASE {DB}"))?;
        self.sql(Some(DB), &schema)?;
        self.sql(Some(DB), &format!(
            "CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY 'querypw';
             GRANT SELECT, LOCK TABLES ON {DB}.* TO '{DB_USER}'@'localhost';
             FLUSH PRIVILEGES;
             INSERT INTO ca VALUES (1, '/O=VOMS/O=System/CN=Dummy Certificate Authority', 'dummy');
             INSERT INTO ca VALUES (2, '/O=VOMS/O=System/CN=Authorization Manager Attributes', 'authz');
             INSERT INTO ca VALUES (3, '/O=VOMS/O=System/CN=VOMS Group', 'group');
             INSERT INTO ca VALUES (4, '/O=VOMS/O=System/CN=VOMS Role', 'role');
             INSERT INTO ca VALUES (5, '/O=VOMS/O=System/CN=VOMS Capability', 'capability');
             INSERT INTO ca VALUES (6, '{CA_DN}', 'Example VOMS Test CA');
             INSERT INTO admins VALUES (1, '/O=VOMS/O=System/CN=Local Database Administrator', '', 1);
             INSERT INTO groups VALUES (1, '/{VO}', 1, 1);
             INSERT INTO groups VALUES (2, '/{VO}/analysis', 1, 1);
             INSERT INTO roles VALUES (1, 'VO-Admin');
             INSERT INTO roles VALUES (2, 'production');
             INSERT INTO usr VALUES (1, '{USER_DN}', 6, 'Jane Doe', 'jane@example.org', NULL);
             INSERT INTO m (userid, gid, rid, cid) VALUES (1, 1, NULL, NULL), (1, 2, NULL, NULL),
                 (1, 1, 2, NULL), (1, 2, 2, NULL);
             INSERT INTO seqnumber VALUES ('00');
             INSERT INTO version (version) VALUES (2);"
        ))?;
        Ok(())
    }

    fn start_voms(&self, pki: &Pki, port: u16, uri_host: &str) -> Result<(), String> {
        let pass = self.dir.join("voms.pass");
        fs::write(&pass, "querypw\n").map_err(|e| e.to_string())?;
        // voms refuses a password file of any other mode.
        set_mode(&pass, 0o640)?;
        let log = self.dir.join(format!("voms-{port}.log"));
        let uri = format!("{uri_host}:{port}");
        let port = port.to_string();
        // `-foreground` still forks: the listener is found by its port.
        run(self
            .command("/usr/sbin/voms")
            .env("X509_CERT_DIR", &pki.ca_dir)
            .args(["-foreground", "-vo", VO, "-port", &port, "-uri", &uri])
            .args(["-dbname", DB, "-username", DB_USER, "-loglevel", "6"])
            .args(["-sqlloc", "/usr/lib/voms/libvomsmysql.so", "-mysql-socket"])
            .arg(self.socket())
            .arg("-passfile")
            .arg(&pass)
            .arg("-x509_user_cert")
            .arg(&pki.host_cert)
            .arg("-x509_user_key")
            .arg(&pki.host_key)
            .arg("-x509_cert_dir")
            .arg(&pki.ca_dir)
            .arg("-logfile")
            .arg(&log))?;
        wait_until(Duration::from_secs(30), "voms listening", || {
            run(self
                .command("ss")
                .args(["-Hltn", &format!("sport = :{port}")]))
            .is_ok_and(|o| o.contains("LISTEN"))
        })
        .map_err(|e| format!("{e}\n{}", fs::read_to_string(&log).unwrap_or_default()))
    }

    /// Pids of the processes in the server's namespace, holder included.
    fn processes(&self) -> Vec<u32> {
        let Ok(ns) = fs::read_link(&self.netns) else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n == ns))
            .collect()
    }
}

impl Drop for VomsServer {
    fn drop(&mut self) {
        // Only this harness's processes live in the namespace.
        let holder = self.holder.id();
        for pid in self.processes().into_iter().filter(|p| *p != holder) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not ready within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

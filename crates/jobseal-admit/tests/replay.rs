//! Replay stores (spec §6.7.2): node-local SQLite and site-wide Redis, each
//! against the same semantics, plus a 64-process race on each (issue 13 §7).
//!
//! The Redis tests start their own `redis-server` (TCP on a free localhost
//! port, a unix socket with an ACL user, or TLS with a CA made here by the
//! `openssl` CLI). Without `redis-server` or `openssl` they say SKIPPED and
//! return (`peers`, from `jobseal-testkit`); under `JOBSEAL_REQUIRE_PEERS=1`
//! (`scripts/test`, CI) they fail. A `redis-server` without TLS always fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobseal_admit::replay::{DEFAULT_GRACE_SECS, RedisStore, ReplayKey, ReplayStore, SqliteStore};
use jobseal_core::Reason;
use jobseal_core::time::UnixTime;
use jobseal_verify::DEFAULT_CLOCK_SKEW;

#[allow(dead_code)]
#[path = "../../jobseal-testkit/src/peers.rs"]
mod peers;

/// The test peers: (program, Debian package).
const REDIS: (&str, &str) = ("redis-server", "redis-server");
const OPENSSL: (&str, &str) = ("openssl", "openssl");

/// A fixed "now" for the SQLite tests, whose expiry follows the caller's clock.
const T0: u64 = 1_900_000_000;

fn key(user: &str, job: u8) -> ReplayKey {
    ReplayKey::derive(
        &format!("/DC=org/DC=example/CN={user}"),
        &format!("{job:02x}").repeat(16),
        &"5a".repeat(32),
    )
    .unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<T, jobseal_core::Error>) -> Reason {
    r.unwrap_err().reason
}

/// The semantics every store shares; `now` is the time the store is asked
/// at (Redis expires by its own clock, so callers pass the real time there).
fn check_counting(store: &dyn ReplayStore, now: UnixTime) {
    let exp = now.plus(3600);
    // One use permitted, the second and every later one refused.
    let k = key("Alice", 1);
    assert_eq!(store.record_use(&k, 1, exp, now).unwrap(), 1);
    for _ in 0..3 {
        let e = store.record_use(&k, 1, exp, now).unwrap_err();
        assert_eq!(e.reason, Reason::ReplayJobIdUsed, "{e}");
    }
    // max_uses = 3 allows exactly three.
    let k = key("Alice", 2);
    for n in 1..=3 {
        assert_eq!(store.record_use(&k, 3, exp, now).unwrap(), n);
    }
    assert_eq!(
        code(store.record_use(&k, 3, exp, now)),
        Reason::ReplayJobIdUsed
    );
    // Another user with the same job id is another key.
    assert_eq!(store.record_use(&key("Bob", 1), 1, exp, now).unwrap(), 1);
    assert_eq!(
        code(store.record_use(&key("Bob", 1), 1, exp, now)),
        Reason::ReplayJobIdUsed
    );
    // max_uses 0 admits nothing (fail closed).
    assert_eq!(
        code(store.record_use(&key("Carol", 1), 0, exp, now)),
        Reason::ReplayJobIdUsed
    );
    // A job that has already expired is a caller fault, not a record.
    assert_eq!(
        code(store.record_use(&key("Dave", 1), 1, now.minus(1), now)),
        Reason::Internal
    );
}

// ---------------------------------------------------------------------------
// Key derivation

#[test]
fn key_binds_user_job_and_manifest() {
    let j = "00112233445566778899aabbccddeeff";
    let d = "ab".repeat(32);
    let a = ReplayKey::derive("/CN=A", j, &d).unwrap();
    assert_eq!(a, ReplayKey::derive("/CN=A", j, &d).unwrap());
    assert_ne!(a, ReplayKey::derive("/CN=B", j, &d).unwrap());
    assert_ne!(a, ReplayKey::derive("/CN=A", &"01".repeat(16), &d).unwrap());
    assert_ne!(a, ReplayKey::derive("/CN=A", j, &"cd".repeat(32)).unwrap());
    // Only the canonical spelling: never two keys for one job.
    assert!(ReplayKey::derive("/CN=A", &j.to_uppercase(), &d).is_err());
    assert!(ReplayKey::derive("/CN=A", &j[1..], &d).is_err());
    assert!(ReplayKey::derive("/CN=A", j, &d[2..]).is_err());
    // Known answer for the derivation written in the spec.
    let mut pre = b"jobseal replay key v1\0".to_vec();
    pre.extend_from_slice(&5u64.to_be_bytes());
    pre.extend_from_slice(b"/CN=A");
    pre.extend_from_slice(&[
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);
    pre.extend_from_slice(&[0xab; 32]);
    let want = ring::digest::digest(&ring::digest::SHA256, &pre);
    assert_eq!(a.as_bytes().as_slice(), want.as_ref());
    assert_eq!(a.to_hex().len(), 64);
}

// ---------------------------------------------------------------------------
// SQLite

#[test]
fn sqlite_counts_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("replay.sqlite")).unwrap();
    check_counting(&store, UnixTime(T0));
    // Uses are durable: a new process (a new connection) sees them.
    drop(store);
    let again = SqliteStore::open(dir.path().join("replay.sqlite")).unwrap();
    assert_eq!(
        code(again.record_use(&key("Alice", 1), 1, UnixTime(T0 + 3600), UnixTime(T0))),
        Reason::ReplayJobIdUsed
    );
}

#[test]
fn sqlite_expiry_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let exp = UnixTime(T0 + 100);
    let later = UnixTime(T0 + 100_000);

    // Without grace: kept through not-after (inclusive), gone after it.
    let store = SqliteStore::open(dir.path().join("a.sqlite"))
        .unwrap()
        .with_grace(0);
    let k = key("Alice", 1);
    assert_eq!(store.record_use(&k, 1, exp, UnixTime(T0)).unwrap(), 1);
    assert_eq!(
        code(store.record_use(&k, 1, exp, exp)),
        Reason::ReplayJobIdUsed
    );
    // Purged once both the clock and the store's high-water mark (the
    // latest time an earlier admission saw) are past not-after plus the
    // skew: a clock that may still come back within the skew keeps it.
    let past = exp.plus(DEFAULT_CLOCK_SKEW + 1);
    store.record_use(&key("Bob", 1), 1, later, past).unwrap();
    assert_eq!(store.record_use(&k, 1, later, past).unwrap(), 1);

    // With the default grace: kept for DEFAULT_GRACE_SECS more.
    let store = SqliteStore::open(dir.path().join("b.sqlite")).unwrap();
    let (k1, k2) = (key("Alice", 2), key("Alice", 3));
    for k in [&k1, &k2] {
        assert_eq!(store.record_use(k, 1, exp, UnixTime(T0)).unwrap(), 1);
    }
    let kept = exp.plus(DEFAULT_GRACE_SECS + DEFAULT_CLOCK_SKEW);
    store.record_use(&key("Bob", 1), 1, later, kept).unwrap();
    assert_eq!(
        code(store.record_use(&k1, 1, later, kept)),
        Reason::ReplayJobIdUsed
    );
    let gone = exp.plus(DEFAULT_GRACE_SECS + DEFAULT_CLOCK_SKEW + 1);
    store.record_use(&key("Bob", 2), 1, later, gone).unwrap();
    assert_eq!(store.record_use(&k2, 1, later, gone).unwrap(), 1);
}

/// Issue 13 §1: job A is admitted; the clock jumps 25 h ahead and
/// admissions of other jobs run on it (on the old code they purged A's
/// record: its not-after plus grace had passed on that clock); the clock
/// comes back and A is presented again. It must never be admitted twice:
/// the store keeps a high-water mark of the time it has seen, purges only
/// up to the previous mark less the skew, and refuses a clock behind the
/// mark by more than the skew (`replay.clock-went-back`) until real time
/// catches up.
#[test]
fn sqlite_a_clock_that_jumps_never_admits_a_job_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let a = key("Alice", 1);
    let a_exp = UnixTime(T0 + 3600);
    assert_eq!(store.record_use(&a, 1, a_exp, UnixTime(T0)).unwrap(), 1);
    // 25 h ahead: other jobs, several admissions, several processes.
    let jump = UnixTime(T0 + 25 * 3600);
    for n in 2..5 {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(
            s.record_use(&key("Bob", n), 1, jump.plus(3600), jump)
                .unwrap(),
            1
        );
    }
    // The clock comes back: A is refused, whatever the process.
    for at in [T0 + 10, T0 + 3600] {
        let s = SqliteStore::open(&path).unwrap();
        let r = s.record_use(&a, 1, a_exp, UnixTime(at));
        assert!(r.is_err(), "job A admitted twice after a clock jump: {r:?}");
        let e = r.unwrap_err();
        assert_eq!(e.reason, Reason::ReplayClockWentBack, "{e}");
        assert!(e.message.contains("high-water mark"), "{e}");
        assert!(e.message.contains(&jump.to_rfc3339()), "{e}");
        assert!(e.message.contains(&UnixTime(at).to_rfc3339()), "{e}");
    }
    // A clock back by at most the skew (300 s) is still accepted.
    let back = jump.minus(DEFAULT_CLOCK_SKEW);
    assert_eq!(
        code(store.record_use(&key("Bob", 2), 1, jump.plus(3600), back)),
        Reason::ReplayJobIdUsed
    );
    assert_eq!(
        code(store.record_use(&key("Bob", 9), 1, jump.plus(3600), back.minus(1))),
        Reason::ReplayClockWentBack
    );
    // A refusal counts nothing: Bob's job 9 is still unused.
    assert_eq!(
        store
            .record_use(&key("Bob", 9), 1, jump.plus(3600), back)
            .unwrap(),
        1
    );
}

/// A clock that runs ahead once purges nothing on that admission: the purge
/// goes up to the earlier of the clock and the previous high-water mark, less
/// the skew; a record is purged only when no clock the store still accepts
/// could admit its job.
#[test]
fn sqlite_a_clock_ahead_purges_only_up_to_the_previous_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.sqlite");
    let store = SqliteStore::open(&path).unwrap().with_grace(0);
    let rows = || -> i64 {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("SELECT count(*) FROM replay", [], |r| r.get(0))
            .unwrap()
    };
    let exp = UnixTime(T0 + 100);
    store
        .record_use(&key("Alice", 1), 1, exp, UnixTime(T0))
        .unwrap();
    let jump = UnixTime(T0 + 100_000);
    store
        .record_use(&key("Alice", 2), 1, jump.plus(10), jump)
        .unwrap();
    assert_eq!(rows(), 2, "the first admission on a clock ahead purged");
    // The next one purges up to the mark (the jumped time) less the skew.
    store
        .record_use(&key("Alice", 3), 1, jump.plus(10), jump)
        .unwrap();
    assert_eq!(rows(), 2);
}

#[test]
fn sqlite_file_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/jobseal/replay.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    store
        .record_use(&key("Alice", 1), 1, UnixTime(T0 + 10), UnixTime(T0))
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&dir.path().join("state/jobseal")), 0o700);
    assert_eq!(mode(&path), 0o600);
    // The WAL and its index copy the database file's mode.
    for side in ["replay.sqlite-wal", "replay.sqlite-shm"] {
        assert_eq!(
            mode(&dir.path().join("state/jobseal").join(side)),
            0o600,
            "{side}"
        );
    }
}

#[test]
fn sqlite_unavailable_is_a_deny() {
    let dir = tempfile::tempdir().unwrap();
    let unavailable = |p: PathBuf| {
        let e = SqliteStore::open(&p).unwrap_err();
        assert_eq!(
            e.reason,
            Reason::ReplayStoreUnavailable,
            "{}: {e}",
            p.display()
        );
        e.message
    };
    // A regular file where the state directory should be.
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    unavailable(dir.path().join("file/replay.sqlite"));
    // A directory, or a file that is not a database.
    std::fs::create_dir(dir.path().join("isdir")).unwrap();
    unavailable(dir.path().join("isdir"));
    std::fs::write(dir.path().join("garbage"), vec![0x42; 8192]).unwrap();
    unavailable(dir.path().join("garbage"));
    // World-writable, or a symbolic link: someone else could erase uses.
    let ww = dir.path().join("ww.sqlite");
    std::fs::write(&ww, b"").unwrap();
    std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(unavailable(ww).contains("world-writable"));
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    assert!(unavailable(dir.path().join("link")).contains("symbolic link"));
    // A directory we may not write. Root ignores modes, so only as a user.
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        unavailable(ro.join("replay.sqlite"));
    } else {
        eprintln!("running as root: the unwritable-directory case is covered by the cases above");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn sqlite_race_64_processes() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh path: the children also race to create the database.
    let spec = format!("sqlite|{}", dir.path().join("race/replay.sqlite").display());
    let r = race(&spec, 64, 1, UnixTime(T0));
    println!("sqlite race, max_uses 1: {r:?}");
    assert_eq!((r.admitted, r.refused, r.other), (1, 63, 0), "{r:?}");
    let r = race(&spec.replace("race/", "race3/"), 64, 3, UnixTime(T0));
    println!("sqlite race, max_uses 3: {r:?}");
    assert_eq!((r.admitted, r.refused, r.other), (3, 61, 0), "{r:?}");
}

// ---------------------------------------------------------------------------
// Redis

struct RedisServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl RedisServer {
    /// A server on a free localhost port, no authentication.
    fn tcp() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(s) = Self::start(&format!("bind 127.0.0.1\nport {port}\n"), port, None) {
                return s;
            }
        }
        panic!("redis-server did not start on a free port");
    }

    /// A server on a unix socket only, whose default user is off and whose
    /// `jobseal` user has exactly the ACL spec §6.7.2 recommends.
    fn unix_acl() -> Self {
        let cfg = "port 0\nunixsocketperm 700\nuser default off\n\
                   user jobseal on >s3cret ~jobseal:replay:* resetchannels -@all +eval +time +incr +pttl +pexpireat +get +set +info +select +ping\n";
        Self::start(cfg, 0, Some("unix:///SOCK?user=jobseal&pass=s3cret"))
            .expect("redis-server on a unix socket")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn unix_url(&self, query: &str) -> String {
        format!("unix://{}{query}", self.socket().display())
    }

    fn start(extra: &str, port: u16, ping_url: Option<&str>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let cfg = format!(
            "daemonize no\nsave \"\"\nappendonly yes\ndir {d}\nlogfile {d}/redis.log\nunixsocket {d}/redis.sock\n{extra}"
        );
        std::fs::write(dir.path().join("redis.conf"), cfg).unwrap();
        let child = match Command::new("redis-server")
            .arg(dir.path().join("redis.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("missing redis-server: apt-get install redis-server")
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut s = Self { child, dir, port };
        let url = match ping_url {
            Some(u) => u.replace("/SOCK", &s.socket().display().to_string()),
            None => s.url(),
        };
        let probe = RedisStore::new(&url).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if probe.ping().is_ok() {
                return Some(s);
            }
            if s.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(s.dir.path().join("redis.log")).unwrap_or_default();
                eprintln!("redis-server did not come up:\n{log}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn redis_tcp_counts_uses() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::tcp();
    let store = RedisStore::new(&server.url()).unwrap();
    check_counting(&store, UnixTime::now());
    // Another database is another namespace, selected with SELECT.
    let db2 = RedisStore::new(&format!("{}/2", server.url())).unwrap();
    let now = UnixTime::now();
    assert_eq!(
        db2.record_use(&key("Alice", 1), 1, now.plus(60), now)
            .unwrap(),
        1
    );
}

#[test]
fn redis_expiry_is_honoured() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::tcp();
    let store = RedisStore::new(&server.url()).unwrap().with_grace(0);
    let now = UnixTime::now();
    let exp = now.plus(1);
    let k = key("Alice", 1);
    assert_eq!(store.record_use(&k, 1, exp, now).unwrap(), 1);
    assert_eq!(
        code(store.record_use(&k, 1, exp, now)),
        Reason::ReplayJobIdUsed
    );
    // Redis drops the record once not-after (inclusive) has passed.
    while UnixTime::now() <= exp {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let now = UnixTime::now();
    assert_eq!(store.record_use(&k, 1, now.plus(60), now).unwrap(), 1);
    // The default grace keeps it an hour longer: still refused.
    let store = RedisStore::new(&server.url()).unwrap();
    let k = key("Alice", 2);
    assert_eq!(store.record_use(&k, 1, now, now).unwrap(), 1);
    assert_eq!(
        code(store.record_use(&k, 1, now, now)),
        Reason::ReplayJobIdUsed
    );
}

#[test]
fn redis_unix_socket_with_acl_user() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::unix_acl();
    let now = UnixTime::now();
    let store = RedisStore::new(&server.unix_url("?user=jobseal&pass=s3cret&db=1")).unwrap();
    check_counting(&store, now);
    // Wrong password, or none: the default user is off.
    for q in ["?user=jobseal&pass=wrong", "", "?pass=s3cret"] {
        let store = RedisStore::new(&server.unix_url(q)).unwrap();
        let e = store
            .record_use(&key("Alice", 9), 1, now.plus(60), now)
            .unwrap_err();
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{q}: {e}");
        assert!(!e.message.contains("s3cret"), "{e}");
    }
}

#[test]
fn redis_unavailable_is_a_prompt_deny() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let now = UnixTime::now();
    let t = Duration::from_millis(300);
    let deny = |store: &RedisStore| {
        let start = Instant::now();
        let e = store
            .record_use(&key("Alice", 1), 1, now.plus(60), now)
            .unwrap_err();
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
        e.message
    };
    // Nothing listens on the port.
    let port = free_port();
    deny(
        &RedisStore::new(&format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .with_timeout(t),
    );
    // A missing socket.
    deny(&RedisStore::new("unix:///nonexistent/redis.sock").unwrap());
    // A server that accepts and never answers: the read timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", silent.local_addr().unwrap().port());
    deny(&RedisStore::new(&url).unwrap().with_timeout(t));
    // A server that went away after it had been working.
    let server = RedisServer::tcp();
    let store = RedisStore::new(&server.url()).unwrap().with_timeout(t);
    assert_eq!(
        store
            .record_use(&key("Alice", 2), 1, now.plus(60), now)
            .unwrap(),
        1
    );
    drop(server);
    deny(&store);
    // A database Redis does not have: SELECT fails, nothing is counted.
    let server = RedisServer::tcp();
    let msg = deny(&RedisStore::new(&format!("{}/99", server.url())).unwrap());
    assert!(msg.contains("SELECT"), "{msg}");
}

/// One connection: read the request, answer with `reply`, hang up.
fn fake_server(reply: &'static [u8]) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    url
}

#[test]
fn redis_replies_are_parsed_strictly() {
    let now = UnixTime::now();
    let long: &'static [u8] = Box::leak(vec![b'+'; 10_000].into_boxed_slice());
    for reply in [
        &b":1\n"[..],
        b":01\r\n",
        b":-1\r\n",
        b":0\r\n",
        b":+1\r\n",
        b": 1\r\n",
        b":99999999999999999999\r\n",
        b"$1\r\n1\r\n",
        b"*1\r\n:1\r\n",
        b"+OK\r\n",
        b"-ERR no\r\n",
        b":1",
        b"",
        long,
    ] {
        let store = RedisStore::new(&fake_server(reply))
            .unwrap()
            .with_accept_volatile(true)
            .with_timeout(Duration::from_millis(300));
        let r = store.record_use(&key("Alice", 1), 1, now.plus(60), now);
        assert_eq!(
            code(r),
            Reason::ReplayStoreUnavailable,
            "{:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(20)])
        );
    }
    // And the well-formed answer is taken.
    let store = RedisStore::new(&fake_server(b":2\r\n"))
        .unwrap()
        .with_accept_volatile(true);
    assert_eq!(
        code(store.record_use(&key("Alice", 1), 1, now.plus(60), now)),
        Reason::ReplayJobIdUsed
    );
    // INFO's bulk replies are bounded and strict too.
    for reply in [
        &b"$-1\r\n"[..],
        b"$01\r\nx\r\n",
        b"$100000\r\n",
        b"$3\r\nab\r\n",
        b"$2\r\nab\n\n",
        b"$\r\n",
    ] {
        let store = RedisStore::new(&fake_server(reply))
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        let r = store.record_use(&key("Alice", 1), 1, now.plus(60), now);
        assert_eq!(
            code(r),
            Reason::ReplayStoreUnavailable,
            "{:?}",
            String::from_utf8_lossy(reply)
        );
    }
    // A well-formed INFO that does not say what it must is unsafe.
    let store = RedisStore::new(&fake_server(
        b"$11\r\n# Nothing\r\n\r\n$11\r\n# Nothing\r\n\r\n",
    ))
    .unwrap();
    assert_eq!(
        code(store.record_use(&key("Alice", 1), 1, now.plus(60), now)),
        Reason::ReplayStoreUnsafe
    );
}

#[test]
fn redis_urls() {
    let s = RedisStore::new("redis://u%40x:p%3Aw@example.org:6380/3").unwrap();
    assert_eq!(s.server(), "redis://example.org:6380/3");
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("u@x") && !dbg.contains("p:w") && dbg.contains("redacted"),
        "{dbg}"
    );
    assert_eq!(
        RedisStore::new("redis://:pw@[::1]").unwrap().server(),
        "redis://[::1]:6379/0"
    );
    assert_eq!(
        RedisStore::new("redis://localhost/").unwrap().server(),
        "redis://localhost:6379/0"
    );
    assert_eq!(
        RedisStore::new("unix:///run/redis.sock?user=j&pass=s%26t&db=2")
            .unwrap()
            .server(),
        "unix:///run/redis.sock?db=2"
    );
    for bad in [
        "http://h",
        "h:6379",
        "redis://",
        "redis://h:0",
        "redis://h:70000",
        "redis://h:x",
        "redis://a:b:6379",
        "redis://h/x",
        "redis://h?db=1",
        "redis://user@h",
        "redis://h%zz",
        "redis://:p%4@h",
        "redis://:p%zz@h",
        "unix://rel.sock",
        "unix:///s?foo=1",
        "unix:///s?user=u",
        "unix:///s?db=1&db=x",
    ] {
        let e = RedisStore::new(bad).unwrap_err();
        assert_eq!(e.reason, Reason::ConfigInvalid, "{bad}");
    }
}

#[test]
fn redis_race_64_processes() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::tcp();
    let now = UnixTime::now();
    let r = race(&format!("redis|{}", server.url()), 64, 1, now);
    println!("redis race (tcp), max_uses 1: {r:?}");
    assert_eq!((r.admitted, r.refused, r.other), (1, 63, 0), "{r:?}");
    let r = race(&format!("redis|{}/1", server.url()), 64, 3, now);
    println!("redis race (tcp), max_uses 3: {r:?}");
    assert_eq!((r.admitted, r.refused, r.other), (3, 61, 0), "{r:?}");
}

// ---------------------------------------------------------------------------
// The race: this test binary, run as N child processes.

const CHILD_ENV: &str = "JOBSEAL_REPLAY_RACE_CHILD";

#[derive(Debug)]
#[allow(dead_code)] // printed
struct RaceResult {
    admitted: usize,
    refused: usize,
    other: usize,
    /// From the start signal to the last child's exit.
    elapsed: Duration,
    others: Vec<String>,
}

fn race(spec: &str, n: usize, max_uses: u64, now: UnixTime) -> RaceResult {
    let barrier = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..n)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "race_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, spec)
                .env("RACE_ID", i.to_string())
                .env("RACE_DIR", barrier.path())
                .env("RACE_MAX", max_uses.to_string())
                .env("RACE_NOW", now.0.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Wait until every child has opened its store, then start them at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(barrier.path()).unwrap().count() < n {
        assert!(Instant::now() < deadline, "children did not get ready");
        // A child that died before the barrier (e.g. could not open its store).
        if let Some(i) = children
            .iter_mut()
            .position(|c| c.try_wait().unwrap().is_some())
        {
            let out = children.swap_remove(i).wait_with_output().unwrap();
            panic!(
                "a child exited before the start: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    std::fs::write(barrier.path().join("go"), b"").unwrap();
    let (mut admitted, mut refused, mut others) = (0, 0, Vec::new());
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // libtest prints "test race_child ... " on the same line.
        match stdout
            .lines()
            .find_map(|l| l.split_once("RACE-RESULT ").map(|(_, r)| r.trim()))
        {
            Some("ok") => admitted += 1,
            Some("replay.job-id-used") => refused += 1,
            other => others.push(format!(
                "{other:?} {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }
    RaceResult {
        admitted,
        refused,
        other: others.len(),
        elapsed: start.elapsed(),
        others,
    }
}

/// The child side of [`race`]; does nothing in a normal test run.
#[test]
fn race_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let dir = PathBuf::from(var("RACE_DIR"));
    let max: u64 = var("RACE_MAX").parse().unwrap();
    let now = UnixTime(var("RACE_NOW").parse().unwrap());
    let store: Box<dyn ReplayStore> = match spec.split_once('|').unwrap() {
        ("sqlite", path) => Box::new(SqliteStore::open(path).unwrap()),
        ("redis", url) => Box::new(RedisStore::new(url).unwrap()),
        _ => panic!("bad spec {spec}"),
    };
    std::fs::write(dir.join(format!("ready-{}", var("RACE_ID"))), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_micros(200));
    }
    let r = store.record_use(&key("Racer", 7), max, now.plus(3600), now);
    match r {
        Ok(_) => println!("RACE-RESULT ok"),
        Err(e) => println!("RACE-RESULT {}", e.reason.code()),
    }
}

// ---------------------------------------------------------------------------
// Regressions of the hostile review

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// C3: a database (or -wal/-shm) someone else owns or may read, or in a
/// directory others may write, is refused.
#[test]
fn sqlite_foreign_or_open_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |p: &Path, what: &str| {
        let e = SqliteStore::open(p).expect_err(what);
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{what}: {e}");
        e.message
    };
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    // A sticky world-writable directory, as /tmp.
    let d = dir.path().join("sticky");
    std::fs::create_dir(&d).unwrap();
    mode(&d, 0o1777);
    let m = refused(&d.join("replay.sqlite"), "open directory");
    assert!(m.contains("writable by group or others"), "{m}");
    // A database readable by the group.
    let d = dir.path().join("grp");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("replay.sqlite"), b"").unwrap();
    mode(&d.join("replay.sqlite"), 0o640);
    refused(&d.join("replay.sqlite"), "group-readable database");
    // A -wal file planted with a loose mode.
    let d = dir.path().join("wal");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("replay.sqlite-wal"), b"").unwrap();
    mode(&d.join("replay.sqlite-wal"), 0o644);
    refused(&d.join("replay.sqlite"), "loose -wal");
    if !is_root() {
        eprintln!("not root: the foreign-owner cases need chown");
        return;
    }
    // Pre-created by another user, with the right mode.
    let d = dir.path().join("foreign");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("replay.sqlite"), b"").unwrap();
    mode(&d.join("replay.sqlite"), 0o600);
    std::os::unix::fs::chown(d.join("replay.sqlite"), Some(NOBODY), None).unwrap();
    let m = refused(&d.join("replay.sqlite"), "foreign database");
    assert!(m.contains("owned by uid 65534"), "{m}");
    // A -shm of another user.
    let d = dir.path().join("foreign-shm");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("replay.sqlite-shm"), b"").unwrap();
    mode(&d.join("replay.sqlite-shm"), 0o600);
    std::os::unix::fs::chown(d.join("replay.sqlite-shm"), Some(NOBODY), None).unwrap();
    refused(&d.join("replay.sqlite"), "foreign -shm");
    // A directory of another user.
    let d = dir.path().join("foreign-dir");
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(NOBODY), None).unwrap();
    refused(&d.join("replay.sqlite"), "foreign directory");
    // And a private one is fine.
    let d = dir.path().join("ok");
    SqliteStore::open(d.join("replay.sqlite")).unwrap();
}

/// H3: connecting to a unix socket whose backlog is full blocks forever in
/// the kernel; the store gives up at its deadline.
#[test]
fn redis_unix_connect_has_a_deadline() {
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("full.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // Fill the backlog (never accepted); the filler's last connect blocks.
    let made = Arc::new(AtomicUsize::new(0));
    {
        let (made, sock) = (made.clone(), sock.clone());
        std::thread::spawn(move || {
            let mut keep = Vec::new();
            while let Ok(s) = UnixStream::connect(&sock) {
                keep.push(s);
                made.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let mut last = usize::MAX;
    while made.load(Ordering::SeqCst) != last {
        last = made.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
    }
    let store = RedisStore::new(&format!("unix://{}", sock.display()))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let e = store.ping().unwrap_err();
    assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
    // The connect itself timed out (not a read after a connect).
    assert!(e.message.contains("cannot connect"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    drop(listener);
}

/// H4: the timeout bounds the whole exchange, not each read: a server that
/// drips its reply byte by byte is a deny.
#[test]
fn redis_slow_drip_reply_is_a_deny() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            for b in b":1\r\n" {
                std::thread::sleep(Duration::from_millis(150));
                if s.write_all(&[*b]).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let now = UnixTime::now();
    let store = RedisStore::new(&url)
        .unwrap()
        .with_accept_volatile(true)
        .with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let e = store
        .record_use(&key("Alice", 1), 1, now.plus(60), now)
        .unwrap_err();
    assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
    assert!(
        start.elapsed() < Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
}

/// H6: an expiry already past by the server's clock (a server clock ahead
/// of the node's) would delete the key on every use; it is refused instead.
#[test]
fn redis_expiry_in_the_past_by_the_server_clock_is_refused() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::unix_acl();
    let store = RedisStore::new(&server.unix_url("?user=jobseal&pass=s3cret"))
        .unwrap()
        .with_grace(0);
    // The node believes it is 100 s earlier than the server does.
    let node_now = UnixTime::now().minus(100);
    for _ in 0..2 {
        let e = store
            .record_use(&key("Alice", 7), 1, node_now, node_now)
            .unwrap_err();
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
        assert!(e.message.contains("past"), "{e}");
    }
    // Nothing was counted: a valid expiry counts from 1.
    let now = UnixTime::now();
    assert_eq!(
        store
            .record_use(&key("Alice", 7), 1, now.plus(60), now)
            .unwrap(),
        1
    );
}

/// Send one command to a Redis server over TCP, read one reply line.
fn redis_raw(port: u16, args: &[&str]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Issue 13 §1 for Redis: the node's clock and the server's must agree
/// within the skew, and a server clock behind the high-water mark it keeps
/// (it expired keys on a clock that ran ahead, then came back) is refused;
/// nothing is counted either way.
#[test]
fn redis_clocks_that_disagree_or_went_back_are_refused() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let server = RedisServer::tcp();
    let store = RedisStore::new(&server.url()).unwrap();
    let k = key("Alice", 1);
    // The node 400 s behind, then 400 s ahead of the server (skew 300 s).
    for node in [UnixTime::now().minus(400), UnixTime::now().plus(400)] {
        let e = store.record_use(&k, 1, node.plus(3600), node).unwrap_err();
        assert_eq!(e.reason, Reason::ReplayClockWentBack, "{e}");
        assert!(e.message.contains("differ by more than the skew"), "{e}");
    }
    let now = UnixTime::now();
    assert_eq!(store.record_use(&k, 1, now.plus(3600), now).unwrap(), 1);
    // The server's clock was 25 h ahead at an earlier admission: its mark.
    let mark = (UnixTime::now().0 + 25 * 3600) * 1000;
    assert_eq!(
        redis_raw(
            server.port,
            &["SET", "jobseal:replay:v1:clock", &mark.to_string()]
        ),
        "+OK\r\n"
    );
    let now = UnixTime::now();
    let e = store
        .record_use(&key("Alice", 2), 1, now.plus(3600), now)
        .unwrap_err();
    assert_eq!(e.reason, Reason::ReplayClockWentBack, "{e}");
    assert!(e.message.contains("high-water mark"), "{e}");
    // The mark is never lowered by a clock behind it, and nothing counted.
    assert_eq!(
        redis_raw(server.port, &["GET", "jobseal:replay:v1:clock"]),
        format!("${}\r\n{mark}\r\n", mark.to_string().len())
    );
    assert_eq!(
        redis_raw(
            server.port,
            &[
                "EXISTS",
                &format!("jobseal:replay:v1:{}", key("Alice", 2).to_hex())
            ]
        ),
        ":0\r\n"
    );
    // A mark within the skew is fine.
    let mark = (UnixTime::now().0 + 200) * 1000;
    redis_raw(
        server.port,
        &["SET", "jobseal:replay:v1:clock", &mark.to_string()],
    );
    let now = UnixTime::now();
    assert_eq!(
        store
            .record_use(&key("Alice", 2), 1, now.plus(3600), now)
            .unwrap(),
        1
    );
}

/// Issue 13 §2: a Redis server that can lose use records (no AOF: a
/// restart forgets them; an eviction policy: a full server drops them) is
/// refused before anything is counted, unless the site policy accepts it.
#[test]
fn redis_that_can_forget_uses_is_refused() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    let start = |extra: &str| {
        for _ in 0..5 {
            let port = free_port();
            let cfg = format!("bind 127.0.0.1\nport {port}\n{extra}");
            if let Some(s) = RedisServer::start(&cfg, port, None) {
                return s;
            }
        }
        panic!("redis-server did not start");
    };
    let now = UnixTime::now();
    for (extra, says) in [
        ("appendonly no\n", "AOF is off"),
        ("maxmemory-policy allkeys-lru\n", "allkeys-lru"),
        (
            "appendonly no\nmaxmemory-policy volatile-ttl\n",
            "volatile-ttl",
        ),
    ] {
        let server = start(extra);
        let store = RedisStore::new(&server.url()).unwrap();
        let k = key("Alice", 1);
        for _ in 0..2 {
            let e = store.record_use(&k, 1, now.plus(60), now).unwrap_err();
            assert_eq!(e.reason, Reason::ReplayStoreUnsafe, "{extra}: {e}");
            assert!(e.message.contains(says), "{e}");
            assert!(e.message.contains("accept_volatile"), "{e}");
        }
        // Nothing was counted.
        assert_eq!(
            redis_raw(
                server.port,
                &["EXISTS", &format!("jobseal:replay:v1:{}", k.to_hex())]
            ),
            ":0\r\n"
        );
        // Accepted by the site: counted as usual.
        let store = store.with_accept_volatile(true);
        assert_eq!(store.record_use(&k, 1, now.plus(60), now).unwrap(), 1);
        assert_eq!(
            code(store.record_use(&k, 1, now.plus(60), now)),
            Reason::ReplayJobIdUsed
        );
    }
    // AOF on and noeviction (the test servers' default): accepted.
    let server = RedisServer::tcp();
    let store = RedisStore::new(&server.url()).unwrap();
    assert_eq!(
        store
            .record_use(&key("Bob", 1), 1, now.plus(60), now)
            .unwrap(),
        1
    );
}

/// M2: `redis+unix://` is the same as `unix://`; no error quotes a password.
#[test]
fn redis_unix_alias_and_no_password_in_errors() {
    if !peers::require_all(&[REDIS]) {
        return;
    }
    assert_eq!(
        RedisStore::new("redis+unix:///run/redis.sock?db=2")
            .unwrap()
            .server(),
        "unix:///run/redis.sock?db=2"
    );
    let server = RedisServer::unix_acl();
    let url = server
        .unix_url("?user=jobseal&pass=s3cret")
        .replacen("unix://", "redis+unix://", 1);
    check_counting(&RedisStore::new(&url).unwrap(), UnixTime::now());
    for bad in [
        "redis://user:hunter2secret",
        "redis://:hunter2secret",
        "redis://h:hunter2secret",
        "unix:///s?passhunter2secret",
        "redis+unix:///s?hunter2secret",
        "unix:///s?pass=a&pass=hunter2secret",
    ] {
        let e = RedisStore::new(bad).unwrap_err();
        assert_eq!(e.reason, Reason::ConfigInvalid, "{bad}");
        assert!(!e.message.contains("hunter2"), "{bad}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Redis over TLS (rediss://)

/// A test CA, a server certificate it issued (SAN DNS:localhost and
/// IP:127.0.0.1) and an unrelated CA, made with the `openssl` CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=jobseal test {ca}"),
            );
            let mut a = vec![
                "req", "-x509", "-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem,
            ];
            a.extend(ec);
            a.extend([
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&a);
        }
        let mut a = vec![
            "req",
            "-new",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        a.extend(ec);
        openssl(&a);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// A redis-server listening with TLS only on 127.0.0.1:`port` (no plain
/// TCP port), the default user open and a `jobseal` user with a password.
fn tls_server(pki: &Pki) -> RedisServer {
    for _ in 0..5 {
        let port = free_port();
        let cfg = format!(
            "bind 127.0.0.1\nport 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
             tls-ca-cert-file {}\ntls-auth-clients no\n\
             user jobseal on >s3cret ~jobseal:replay:* resetchannels -@all +eval +time +incr +pttl +pexpireat +get +set +info +select +ping\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem"),
        );
        let ping = format!("rediss://localhost:{port}/?ca={}", pki.path("ca.pem"));
        if let Some(s) = RedisServer::start(&cfg, port, Some(&ping)) {
            return s;
        }
    }
    // start() printed the server's log; a build without TLS refuses the
    // tls-* directives. Never a skip: the TLS store must be tested.
    panic!(
        "redis-server did not come up with TLS (is it built with TLS support? \
         `redis-server --tls-port` needs BUILD_TLS=yes); see its log above"
    );
}

/// Admission over TLS against a real server: one use admitted, the second
/// refused; the server name may be the DNS name or the IP of the SAN.
#[test]
fn rediss_counts_uses_with_the_site_ca() {
    if !peers::require_all(&[REDIS, OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let server = tls_server(&pki);
    let ca = pki.path("ca.pem");
    let store = RedisStore::new(&format!("rediss://localhost:{}/?ca={ca}", server.port)).unwrap();
    assert_eq!(
        store.server(),
        format!("rediss://localhost:{}/0", server.port)
    );
    let now = UnixTime::now();
    let k = key("Alice", 1);
    assert_eq!(store.record_use(&k, 1, now.plus(60), now).unwrap(), 1);
    let e = store.record_use(&k, 1, now.plus(60), now).unwrap_err();
    assert_eq!(e.reason, Reason::ReplayJobIdUsed, "{e}");
    check_counting(
        &RedisStore::new(&format!("rediss://127.0.0.1:{}/3?ca={ca}", server.port)).unwrap(),
        now,
    );
}

/// ACL user and password over TLS; a wrong password is a deny that never
/// quotes it.
#[test]
fn rediss_with_acl_user() {
    if !peers::require_all(&[REDIS, OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let server = tls_server(&pki);
    let ca = pki.path("ca.pem");
    let url = |ui: &str| format!("rediss://{ui}@localhost:{}/1?ca={ca}", server.port);
    check_counting(
        &RedisStore::new(&url("jobseal:s3cret")).unwrap(),
        UnixTime::now(),
    );
    let now = UnixTime::now();
    let e = RedisStore::new(&url("jobseal:wrongpw"))
        .unwrap()
        .record_use(&key("Alice", 9), 1, now.plus(60), now)
        .unwrap_err();
    assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
    assert!(
        e.message.contains("AUTH") && !e.message.contains("wrongpw"),
        "{e}"
    );
}

/// Fail closed: a server certificate from another CA, plain RESP to the TLS
/// port, and a TLS peer that never answers are each a prompt deny.
#[test]
fn rediss_failures_are_a_prompt_deny() {
    if !peers::require_all(&[REDIS, OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let server = tls_server(&pki);
    let now = UnixTime::now();
    let t = Duration::from_millis(500);
    let deny = |url: &str| {
        let store = RedisStore::new(url).unwrap().with_timeout(t);
        let start = Instant::now();
        let e = store
            .record_use(&key("Alice", 1), 1, now.plus(60), now)
            .unwrap_err();
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{url}: {e}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{url}: took {:?}",
            start.elapsed()
        );
        e.message
    };
    let p = server.port;
    let msg = deny(&format!(
        "rediss://localhost:{p}/?ca={}",
        pki.path("other-ca.pem")
    ));
    assert!(msg.contains("TLS"), "{msg}");
    deny(&format!("redis://127.0.0.1:{p}"));
    deny(&format!("redis://:s3cret@127.0.0.1:{p}"));
    // Accepts and never speaks TLS: the handshake has the deadline too.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let sp = silent.local_addr().unwrap().port();
    deny(&format!(
        "rediss://127.0.0.1:{sp}/?ca={}",
        pki.path("ca.pem")
    ));
}

/// `rediss://` URLs: only `ca=` (absolute, once); a CA bundle that cannot
/// be read or holds no certificate is config.invalid, without the password.
#[test]
fn rediss_urls() {
    if !peers::require_all(&[OPENSSL]) {
        return;
    }
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    let s = RedisStore::new(&format!("rediss://u:p%3Fw@[::1]:6380/2?ca={ca}")).unwrap();
    assert_eq!(s.server(), "rediss://[::1]:6380/2");
    assert!(!format!("{s:?}").contains("p?w"));
    std::fs::write(pki.dir.path().join("notpem"), "hello\n").unwrap();
    // Without ca=, the system bundle; missing, it is a configuration error.
    let system = RedisStore::new("rediss://redis.example.org");
    if Path::new(jobseal_admit::replay::DEFAULT_CA_BUNDLE).is_file() {
        let dbg = format!("{:?}", system.unwrap());
        assert!(
            dbg.contains(jobseal_admit::replay::DEFAULT_CA_BUNDLE),
            "{dbg}"
        );
    } else {
        assert_eq!(code(system), Reason::ConfigInvalid);
    }
    for bad in [
        format!("rediss://h?ca={}", pki.path("nonexistent.pem")),
        format!("rediss://h?ca={}", pki.path("notpem")),
        format!("rediss://h?ca={}", pki.dir.path().display()),
        "rediss://h?ca=ca.pem".to_owned(),
        format!("rediss://h?ca={ca}&ca={ca}"),
        format!("rediss://h?ca={ca}&db=1"),
        format!("rediss://h?ca={ca}#x"),
        format!("rediss://user@h?ca={ca}"),
        format!("rediss://:hunter2secret@h:x?ca={ca}"),
        format!(
            "rediss://:hunter2secret@h?ca={}",
            pki.path("nonexistent.pem")
        ),
        format!("redis://h?ca={ca}"),
    ] {
        let e = RedisStore::new(&bad).unwrap_err();
        assert_eq!(e.reason, Reason::ConfigInvalid, "{bad}: {e}");
        assert!(!e.message.contains("hunter2"), "{bad}: {e}");
    }
}

/// Issue 13 §4: a state directory that is, or goes through, a symbolic
/// link is refused with a message that names the link (SQLite's own says
/// only "unable to open").
#[test]
fn a_state_directory_through_a_link_is_refused_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for path in [link.join("replay.sqlite"), link.join("sub/replay.sqlite")] {
        let Err(e) = SqliteStore::open(&path) else {
            panic!("{} was opened through a link", path.display());
        };
        assert_eq!(e.reason, Reason::ReplayStoreUnavailable, "{e}");
        assert!(
            e.message.contains("is a symbolic link") && e.message.contains("link"),
            "{e}"
        );
    }
    // Refused before anything was created through the link.
    assert!(!real.join("sub").exists());
}

//! One-time jobs: the replay stores (`spec/jobseal.md` §6.7.2, step 7).
//!
//! Admission records each use of a job under a [`ReplayKey`] in a
//! [`ReplayStore`]: [`SqliteStore`] on the node (the default) or
//! [`RedisStore`] for the whole site. Any store failure is a deny
//! (`replay.store-unavailable`), never a silent fallback to "not recorded".

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason};
use jobseal_verify::decision::{Identity, JobInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::fsown;

/// How long a record outlives the manifest's not-after by default. Covers
/// clocks that disagree between worker nodes (and the Redis server, whose
/// clock expires site-wide records): a node whose clock lags still finds the
/// record while it would accept the manifest.
pub const DEFAULT_GRACE_SECS: u64 = 3600;

/// The whole exchange with Redis (connect, AUTH, SELECT, EVAL) must finish
/// within this: a dead or slow server is a prompt deny.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// How far a clock may be behind the time a store has already seen (its
/// high-water mark) before admissions stop (`replay.clock-went-back`): the
/// verifier's default skew, which the site policy's `clock_skew` replaces.
pub const DEFAULT_SKEW_SECS: u64 = jobseal_verify::DEFAULT_CLOCK_SKEW;

/// How long a SQLite writer waits for another process's transaction.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL size after which an admission checkpoints and empties the WAL.
/// Every process rebuilds the WAL index from the whole WAL when it opens
/// the database (SQLite's index does not outlive the last connection), and
/// an admission adds two 4 KiB pages: about 15 admissions per checkpoint,
/// which balances that rebuild against the checkpoint's three syncs
/// (`benches/durable.rs`, `replay_process`).
const WAL_CHECKPOINT_BYTES: u64 = 128 * 1024;

/// How long that checkpoint waits for other processes' transactions; it is
/// skipped (and done by a later admission) if they take longer.
const WAL_CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// Expired rows deleted per admission, so one admission never does
/// unbounded work.
const PURGE_BATCH: i64 = 1000;

/// Domain separation tag of the key derivation (§6.7.2).
const KEY_DOMAIN: &[u8] = b"jobseal replay key v1\0";

/// Redis key prefix; the documented ACL grants exactly `~jobseal:replay:*`.
const REDIS_KEY_PREFIX: &str = "jobseal:replay:v1:";

/// The Redis key of the high-water mark of the server's clock (ms), under
/// the same prefix (a use key is 64 hex digits, never `clock`).
const REDIS_CLOCK_KEY: &str = "jobseal:replay:v1:clock";

/// Latest expiry we ask Redis for (year 9999, in ms): larger values overflow
/// its expiry arithmetic and would be an error, i.e. a deny.
const REDIS_MAX_EXPIRY_MS: u64 = 253_402_300_799_999;

/// CA bundle for `rediss://` when the URL names none.
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Largest CA bundle we read (a system bundle is a few hundred KiB).
const MAX_CA_BUNDLE: u64 = 8 << 20;

/// Longest bulk reply we read from Redis (an `INFO` section is about 2 KiB).
const REDIS_MAX_BULK: usize = 64 * 1024;

/// Longest reply line we read from Redis: replies are short integers,
/// `+OK` or an error message; anything longer is not our protocol.
const REDIS_MAX_LINE: u64 = 4096;

/// INCR + PEXPIREAT, atomic because Redis runs a script without interleaving.
/// The expiry is set only while the key has none (the first use), so it is
/// never shortened by a later call. A PEXPIREAT in the past would delete the
/// key, so that every use counted as the first: an expiry that is not in the
/// future by the server's clock (a server clock ahead of ours) is an error,
/// checked before anything is counted. `replicate_commands` lets Redis 3.2
/// to 4 write after TIME (later versions always do).
///
/// Clocks (issue 13 §1): the server keeps the high-water mark of its own
/// clock in KEYS[2] (no expiry), raised before any check so that every
/// attempt leaves it; a server clock behind it by more than the skew
/// (ARGV[3], ms) has gone back after expiring keys on a clock that ran ahead,
/// and the node's clock (ARGV[2], ms) must agree with the server's within the
/// skew. Either is an error reply starting `JOBSEAL clock`
/// (`replay.clock-went-back`), checked before anything is counted.
const REDIS_SCRIPT: &str = "if redis.replicate_commands then redis.replicate_commands() end\n\
local t = redis.call('TIME')\n\
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n\
local skew = tonumber(ARGV[3])\n\
local mark = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n\
if now > mark then redis.call('SET', KEYS[2], string.format('%.0f', now)) end\n\
if now + skew < mark then return redis.error_reply('JOBSEAL clock: the server clock is ' .. string.format('%.0f', mark - now) .. ' ms behind its high-water mark ' .. string.format('%.0f', mark)) end\n\
local node = tonumber(ARGV[2])\n\
if node + skew < now or node > now + skew then return redis.error_reply('JOBSEAL clock: the node clock ' .. string.format('%.0f', node) .. ' and the server clock ' .. string.format('%.0f', now) .. ' (ms) differ by more than the skew') end\n\
if tonumber(ARGV[1]) <= now then return redis.error_reply('JOBSEAL expiry is in the past by the server clock') end\n\
local n = redis.call('INCR', KEYS[1])\n\
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end\n\
return n\n";

/// The key a use is recorded under: it binds the user and the exact job, so
/// another user cannot use up (or take over) someone else's job id.
///
/// `SHA-256("jobseal replay key v1\0" || u64be(len(dn)) || dn || job_id[16] || manifest_sha256[32])`
/// with `dn` the end-entity subject in the one-line form of §6.8 (UTF-8).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// Derive the key from the end-entity subject and the job id and manifest
    /// digest in their §6.8 forms (32 and 64 lowercase hex digits). Any other
    /// form is refused: two spellings of one job must never give two keys.
    pub fn derive(
        end_entity: &str,
        job_id_hex: &str,
        manifest_sha256_hex: &str,
    ) -> Result<Self, Error> {
        let job_id: [u8; 16] = decode_lower_hex(job_id_hex).ok_or_else(|| {
            Error::new(
                Reason::Internal,
                "replay key: the job id is not 32 lowercase hex digits",
            )
        })?;
        let digest: [u8; 32] = decode_lower_hex(manifest_sha256_hex).ok_or_else(|| {
            Error::new(
                Reason::Internal,
                "replay key: the manifest digest is not 64 lowercase hex digits",
            )
        })?;
        let dn_len = u64::try_from(end_entity.len())
            .map_err(|_| Error::new(Reason::Internal, "replay key: subject too long"))?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(KEY_DOMAIN);
        ctx.update(&dn_len.to_be_bytes());
        ctx.update(end_entity.as_bytes());
        ctx.update(&job_id);
        ctx.update(&digest);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Ok(Self(out))
    }

    /// The key of a verified job.
    pub fn for_job(identity: &Identity, job: &JobInfo) -> Result<Self, Error> {
        Self::derive(&identity.end_entity, &job.job_id, &job.manifest_sha256)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        jobseal_core::manifest::hex(&self.0)
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({})", self.to_hex())
    }
}

fn decode_lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N.checked_mul(2)? {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nib(*hi)?, nib(*lo)?),
            _ => return None,
        };
        *o = hi << 4 | lo;
    }
    Some(out)
}

/// Where uses are counted.
pub trait ReplayStore: Send + Sync {
    /// Atomically count one more use of `key` and return the uses so far,
    /// this one included. More than `max_uses` → `replay.job-id-used`; the
    /// count still grows, so no later attempt succeeds either. The record is
    /// kept until `expires` (the manifest's not-after, inclusive) plus the
    /// store's grace. A store that cannot do this → `replay.store-unavailable`.
    fn record_use(
        &self,
        key: &ReplayKey,
        max_uses: u64,
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<u64, Error>;
}

fn unavailable(msg: impl Into<String>) -> Error {
    Error::new(Reason::ReplayStoreUnavailable, msg)
}

/// A record for a job that has already expired would be dropped at once and
/// so protect nothing; the verifier denies such a job earlier, so reaching
/// this is a caller fault.
fn check_not_expired(expires: UnixTime, now: UnixTime) -> Result<(), Error> {
    if now > expires {
        return Err(Error::new(
            Reason::Internal,
            format!(
                "replay record requested for a job that expired at {}",
                expires.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

fn judge(uses: u64, max_uses: u64) -> Result<u64, Error> {
    if uses > max_uses {
        return Err(Error::new(
            Reason::ReplayJobIdUsed,
            format!("the job has already been admitted (use {uses} of at most {max_uses})"),
        ));
    }
    Ok(uses)
}

// ---------------------------------------------------------------------------
// Node-local: SQLite

/// Node-local store: one SQLite database (WAL mode) shared by every verifier
/// process of the node. Stops replays on this node only (§6.7.2).
pub struct SqliteStore {
    path: PathBuf,
    // rusqlite's Connection is not Sync; admissions in one process take turns.
    conn: Mutex<rusqlite::Connection>,
    grace: u64,
    skew: u64,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("grace", &self.grace)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

/// The name SQLite is given for `path`: absolute, so that it is never read
/// as a `file:` URI (a relative path such as `file:x?vfs=…/replay.sqlite`
/// would be, by a SQLite built with SQLITE_USE_URI, as libsqlite3-sys
/// builds it by default: the workspace's build leaves that option out, a
/// build from outside the repository does not).
fn sqlite_name(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| {
        unavailable(format!(
            "replay database {}: cannot make the path absolute: {e}",
            path.display()
        ))
    })
}

impl SqliteStore {
    /// Open (or create) the database at `path`. Missing parent directories
    /// are created 0700, a new database file 0600. Refused (anyone who can
    /// write the file can erase uses): a symbolic link; a file that is not
    /// regular, not owned by the effective uid or open to group or others
    /// (and the same for existing `-wal` and `-shm` files); a directory not
    /// owned by root or the effective uid, or writable by group or others.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let shown = path.display().to_string();
        let fail = |what: &str, e: &dyn fmt::Display| {
            unavailable(format!("replay database {shown}: {what}: {e}"))
        };
        let refuse = |m: String| unavailable(format!("replay database: {m}"));
        let euid = fsown::euid().map_err(refuse)?;

        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // SQLite opens the name without following links (NOFOLLOW) and says
        // only "unable to open": name the link a person must replace.
        if let Some(link) = sqlite_name(&dir)?
            .ancestors()
            .find(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
        {
            return Err(refuse(format!(
                "{shown}: {} is a symbolic link; give the state directory by its real path (no link on the way)",
                link.display()
            )));
        }
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| fail("cannot create its directory", &e))?;
        }
        fsown::check_dir(&dir, euid).map_err(refuse)?;
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            fsown::check_owned_file(&m, &path, euid).map_err(refuse)?;
        }
        // Create it ourselves: SQLite would use 0644 (less the umask), and
        // its -wal and -shm files copy the database file's mode. O_NOFOLLOW:
        // a link planted after the check above is not followed either.
        let held = fsown::open_nofollow(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            &path,
        )
        .and_then(|f| f.metadata())
        .map_err(|e| fail("cannot open", &e))?;
        check_private(&held, &path, euid)?;
        Self::check_sides(&path, euid)?;

        // No URI flag: a path is a path, never a `file:` URI with options.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = rusqlite::Connection::open_with_flags(sqlite_name(&path)?, flags)
            .map_err(|e| fail("cannot open", &e))?;
        // SQLite opened the path again: it must still be the file checked.
        match std::fs::symlink_metadata(&path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
            Ok(_) => {
                return Err(unavailable(format!(
                    "replay database {shown} was replaced while it was being opened"
                )));
            }
            Err(e) => return Err(fail("cannot stat", &e)),
        }
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)
            .map_err(|e| fail("cannot set the busy timeout", &e))?;
        // Processes that open a fresh database together can see SQLITE_BUSY
        // where SQLite does not call the busy handler (switching to WAL, WAL
        // recovery): retry the whole setup, which is idempotent.
        retry_busy(|| Self::setup(&mut conn, &shown))?;
        Self::check_sides(&path, euid)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            grace: DEFAULT_GRACE_SECS,
            skew: DEFAULT_SKEW_SECS,
        })
    }

    /// The `-wal` and `-shm` files, where they exist, pass the same checks
    /// as the database: whoever can write them can change the database.
    fn check_sides(path: &Path, euid: u32) -> Result<(), Error> {
        for side in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_os_string();
            name.push(side);
            let p = PathBuf::from(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) => check_private(&m, &p, euid)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(unavailable(format!(
                        "replay database {}: cannot stat: {e}",
                        p.display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn setup(conn: &mut rusqlite::Connection, shown: &str) -> Result<(), SqlFail> {
        let fail = |what: &str, e: rusqlite::Error| {
            SqlFail::new(format!("replay database {shown}: {what}"), e)
        };
        // WAL: readers and the single writer do not block each other, and
        // many processes share the file safely (on a local filesystem).
        // The pragmas are fixed statements (what rusqlite's `pragma_update`
        // would build, without its SQL builder's code in every admission).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| fail("cannot enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // SQLite reports the old mode when another connection kept it
            // from switching: try again until the busy timeout.
            return Err(SqlFail {
                busy: true,
                error: unavailable(format!(
                    "replay database {shown}: journal mode is {mode}, not WAL"
                )),
            });
        }
        // FULL: a committed use survives a power loss; NORMAL could forget
        // the last uses and so allow their replay.
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(|e| fail("cannot set synchronous=FULL", e))?;
        // No checkpoint when the connection closes: each admission is one
        // short process, and a checkpoint on close cost it four more syncs
        // (WAL, database, and the new WAL's header and directory, as the
        // WAL was deleted and made again each time). Durability does not
        // change: a use is durable once its COMMIT returned, i.e. once its
        // WAL frames were synced (FULL); whoever opens the database next
        // replays the WAL, and a checkpoint (`trim_wal`) syncs the WAL
        // before it writes the database, and the database before the WAL
        // is cut. The WAL (and -shm) stay in place, with the database's mode
        // and owner, and pass the same checks.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(|e| fail("cannot keep the WAL on close", e))?;
        {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| fail("cannot lock", e))?;
            let version: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| fail("cannot read the schema version", e))?;
            // Version 2 adds the clock's high-water mark (one row, id 1):
            // a version 1 database is upgraded in place, its uses kept.
            const CLOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS clock (
                     id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                     high_water INTEGER NOT NULL
                 );
                 PRAGMA user_version = 2;";
            match version {
                0 => {
                    tx.execute_batch(
                        "CREATE TABLE IF NOT EXISTS replay (
                             key BLOB PRIMARY KEY NOT NULL,
                             uses INTEGER NOT NULL,
                             keep_until INTEGER NOT NULL
                         ) WITHOUT ROWID;
                         CREATE INDEX IF NOT EXISTS replay_keep_until ON replay (keep_until);",
                    )
                    .and_then(|()| tx.execute_batch(CLOCK_TABLE))
                    .map_err(|e| fail("cannot create the schema", e))?;
                }
                1 => {
                    tx.execute_batch(CLOCK_TABLE)
                        .map_err(|e| fail("cannot upgrade the schema", e))?;
                }
                2 => {}
                v => {
                    return Err(unavailable(format!(
                        "replay database {shown}: unknown schema version {v}"
                    ))
                    .into());
                }
            }
            tx.commit()
                .map_err(|e| fail("cannot commit the schema", e))?;
        }
        Ok(())
    }

    /// Keep records `secs` past the manifest's not-after (default
    /// [`DEFAULT_GRACE_SECS`]).
    pub fn with_grace(mut self, secs: u64) -> Self {
        self.grace = secs;
        self
    }

    /// How far the clock may be behind the store's high-water mark
    /// (default [`DEFAULT_SKEW_SECS`]; the site policy's `clock_skew`).
    pub fn with_skew(mut self, secs: u64) -> Self {
        self.skew = secs;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A regular file (not a link), owned by `euid`, with no group or other
/// access.
fn check_private(m: &std::fs::Metadata, path: &Path, euid: u32) -> Result<(), Error> {
    fsown::check_owned_file(m, path, euid)
        .map_err(|msg| unavailable(format!("replay database: {msg}")))?;
    let mode = m.mode() & 0o7777;
    if mode & 0o077 != 0 {
        let what = if mode & 0o002 != 0 {
            "world-writable"
        } else {
            "open to group or others"
        };
        return Err(unavailable(format!(
            "replay database {} is {what} (mode {mode:o}); it must be 0600",
            path.display()
        )));
    }
    Ok(())
}

/// A SQLite failure; busy or locked ones are worth another try.
struct SqlFail {
    busy: bool,
    error: Error,
}

impl SqlFail {
    fn new(what: String, e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Self {
            busy,
            error: unavailable(format!("{what}: {e}")),
        }
    }
}

impl From<Error> for SqlFail {
    fn from(error: Error) -> Self {
        Self { busy: false, error }
    }
}

/// Run `f` again while it fails busy, for at most the busy timeout. Safe:
/// each attempt is a whole transaction, and a failed COMMIT commits nothing.
fn retry_busy<T>(mut f: impl FnMut() -> Result<T, SqlFail>) -> Result<T, Error> {
    let deadline = Instant::now() + SQLITE_BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(SqlFail { busy: true, .. }) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e.error),
        }
    }
}

/// The deny of a clock behind the store's high-water mark: the message
/// gives both times, so the audit record shows the jump.
fn clock_went_back(now: UnixTime, mark: i64, skew: u64, shown: &str) -> Error {
    let mark_t = UnixTime(u64::try_from(mark).unwrap_or(0));
    Error::new(
        Reason::ReplayClockWentBack,
        format!(
            "replay database {shown}: the clock ({}) is {} s behind the store's high-water mark \
             ({}), more than the skew of {skew} s: records purged at the later time could be \
             admitted again; nothing is admitted until the clock passes {}",
            now.to_rfc3339(),
            mark_t.0.saturating_sub(now.0),
            mark_t.to_rfc3339(),
            mark_t.minus(skew).to_rfc3339(),
        ),
    )
}

/// SQLite integers are i64: clamp, which only ever keeps a record longer.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// One admission's transaction: purge, count, commit.
    fn count(
        conn: &mut rusqlite::Connection,
        key: &ReplayKey,
        keep_until: i64,
        (now, skew): (UnixTime, u64),
        shown: &str,
    ) -> Result<i64, SqlFail> {
        let fail = |e: rusqlite::Error| SqlFail::new(format!("replay database {shown}"), e);
        // IMMEDIATE takes the write lock up front: no read-then-upgrade
        // deadlock between processes, and the busy timeout applies.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        // The clock (issue 13 §1): the high-water mark is the latest time
        // any admission has seen. A clock behind it by more than the skew
        // has gone back, and records purged on the later time could belong
        // to jobs admissible at this one: refuse, counting nothing (the
        // transaction is rolled back), until real time catches up.
        let mark: i64 = tx
            .query_row("SELECT high_water FROM clock WHERE id = 1", [], |r| {
                r.get(0)
            })
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(0),
                e => Err(e),
            })
            .map_err(fail)?;
        let at = to_i64(now.0);
        if at.saturating_add(to_i64(skew)) < mark {
            return Err(clock_went_back(now, mark, skew, shown).into());
        }
        // Purge only what no accepted clock could still admit: records kept
        // until before the earlier of now and the previous mark, less the
        // skew. Every later admission runs at a clock of at least the mark
        // less the skew, and a job is admissible only up to its not-after,
        // which is at most its record's keep_until. A clock that ran ahead
        // therefore purges nothing on its first admission, and a clock that
        // comes back after purging on it is refused above.
        let cutoff = at.min(mark).saturating_sub(to_i64(skew));
        // Purge: the keys of at most PURGE_BATCH expired records, then each
        // record by its key. Statements that need no temporary b-tree: a
        // `DELETE … WHERE key IN (SELECT … LIMIT n)` and a `RETURNING`
        // clause each made SQLite build one, with a page cache of its own
        // (about 85 KiB of heap each), in every admission.
        let expired = {
            let mut select = tx
                .prepare("SELECT key FROM replay WHERE keep_until < ?1 LIMIT ?2")
                .map_err(fail)?;
            let keys = select
                .query_map(rusqlite::params![cutoff, PURGE_BATCH], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .map_err(fail)?;
            keys.collect::<Result<Vec<_>, _>>().map_err(fail)?
        };
        if !expired.is_empty() {
            let mut delete = tx
                .prepare("DELETE FROM replay WHERE key = ?1")
                .map_err(fail)?;
            for k in &expired {
                delete.execute([k]).map_err(fail)?;
            }
        }
        // Count, then read the count back in the same transaction (the
        // write lock is held since BEGIN IMMEDIATE: it is this use's count).
        tx.execute(
            "INSERT INTO replay (key, uses, keep_until) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET
                 uses = min(uses + 1, 9223372036854775807),
                 keep_until = max(keep_until, excluded.keep_until)",
            rusqlite::params![key.as_bytes().as_slice(), keep_until],
        )
        .map_err(fail)?;
        let uses: i64 = tx
            .query_row(
                "SELECT uses FROM replay WHERE key = ?1",
                [key.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .map_err(fail)?;
        // Raise the mark in the same transaction as the use: never lowered.
        tx.execute(
            "INSERT INTO clock (id, high_water) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET high_water = max(high_water, excluded.high_water)",
            [at],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(uses)
    }

    /// Once the use is durable: if the WAL has grown past
    /// [`WAL_CHECKPOINT_BYTES`], copy it into the database and empty it
    /// (`wal_checkpoint(TRUNCATE)`). SQLite's automatic checkpoint does not
    /// do this across processes: the index a new process rebuilds does not
    /// know what was copied already, so the WAL would never be reused and
    /// each commit would copy all of it again. Best effort: a failure
    /// leaves the WAL for a later admission and changes nothing recorded.
    fn trim_wal(conn: &rusqlite::Connection, path: &Path) {
        let mut wal = path.as_os_str().to_os_string();
        wal.push("-wal");
        let big = std::fs::symlink_metadata(&wal).is_ok_and(|m| m.len() > WAL_CHECKPOINT_BYTES);
        if !big || conn.busy_timeout(WAL_CHECKPOINT_WAIT).is_err() {
            return;
        }
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = conn.busy_timeout(SQLITE_BUSY_TIMEOUT);
    }
}

impl ReplayStore for SqliteStore {
    fn record_use(
        &self,
        key: &ReplayKey,
        max_uses: u64,
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<u64, Error> {
        check_not_expired(expires, now)?;
        let shown = self.path.display().to_string();
        let keep_until = to_i64(expires.0.saturating_add(self.grace));
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| unavailable(format!("replay database {shown}: connection poisoned")))?;
        let uses =
            retry_busy(|| Self::count(&mut conn, key, keep_until, (now, self.skew), &shown))?;
        Self::trim_wal(&conn, &self.path);
        let uses = u64::try_from(uses).map_err(|_| {
            unavailable(format!("replay database {shown}: corrupt use count {uses}"))
        })?;
        judge(uses, max_uses)
    }
}

// ---------------------------------------------------------------------------
// Site-wide: Redis
//
// A minimal RESP2 client rather than the `redis` crate: we need AUTH, SELECT,
// PING and EVAL with integer, status and error replies only. About 150 lines
// we can read and test, strict and bounded parsing, explicit timeouts on
// every socket operation, and no client library's dependency tree to compile
// and trust in the process that decides whether a job runs. TLS (`rediss://`)
// is rustls on the ring provider (ring is already a dependency; no aws-lc, no
// built-in roots), TLS 1.2 or 1.3, over the same deadline-bound socket.

/// Where the Redis server is.
#[derive(Clone, PartialEq, Eq)]
enum RedisAddr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// Address, user, password, database.
type ParsedUrl = (RedisAddr, Option<String>, Option<String>, u32);

/// Site-wide store on Redis: one counter per key, with an absolute expiry,
/// shared by every worker node of the site (§6.7.2).
#[derive(Clone)]
pub struct RedisStore {
    addr: RedisAddr,
    user: Option<String>,
    password: Option<String>,
    db: u32,
    timeout: Duration,
    grace: u64,
    skew: u64,
    accept_volatile: bool,
    tls: Option<Tls>,
}

/// What a `rediss://` connection needs; built once, when the URL is parsed.
#[derive(Clone)]
struct Tls {
    ca: PathBuf,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl fmt::Debug for RedisStore {
    // Never print the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.server())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .field("skew", &self.skew)
            .field("accept_volatile", &self.accept_volatile)
            .field("ca", &self.tls.as_ref().map(|t| &t.ca))
            .finish()
    }
}

/// The client configuration for `rediss://`: ring only, TLS 1.2 and 1.3,
/// the server's chain verified against the certificates in `ca` (PEM) and
/// its name against `host`. Problems here are configuration errors.
fn tls_setup(host: &str, ca: PathBuf) -> Result<Tls, Error> {
    let shown = ca.display().to_string();
    let fail = |what: &str| config_error(format!("redis TLS: CA bundle {shown}: {what}"));
    let mut pem = Vec::new();
    std::fs::File::open(&ca)
        .and_then(|f| f.take(MAX_CA_BUNDLE + 1).read_to_end(&mut pem))
        .map_err(|e| fail(&format!("cannot read: {e}")))?;
    if u64::try_from(pem.len()).unwrap_or(u64::MAX) > MAX_CA_BUNDLE {
        return Err(fail("too large"));
    }
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&format!("bad PEM: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    // A system bundle may hold a certificate webpki cannot use; skipping it
    // only narrows what is trusted. None usable is an error.
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail("no usable CA certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(format!("redis TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| config_error("redis URL: the host is not a valid TLS server name"))?;
    Ok(Tls {
        ca,
        config: Arc::new(config),
        name,
    })
}

fn config_error(msg: impl Into<String>) -> Error {
    Error::new(Reason::ConfigInvalid, msg)
}

/// Decode `%XX` escapes strictly; the result must be UTF-8.
fn percent_decode(s: &str, what: &str) -> Result<String, Error> {
    let bad = || config_error(format!("redis URL: bad %-escape in the {what}"));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return Err(bad());
            }
            out.push(v);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn parse_db(s: &str) -> Result<u32, Error> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(config_error(format!(
            "redis URL: bad database number {s:?}"
        )));
    }
    s.parse()
        .map_err(|_| config_error(format!("redis URL: bad database number {s:?}")))
}

impl RedisStore {
    /// Parse a URL; nothing is contacted yet. Forms:
    /// `redis://[user:password@]host[:port][/db]` (password alone:
    /// `redis://:password@host`), and
    /// `unix:///path/to.sock[?user=U&pass=P&db=N]` (or `redis+unix://`, the
    /// same). `%XX` escapes are decoded in the user, password and socket
    /// path. `rediss://[user:password@]host[:port][/db][?ca=/path/ca.pem]`
    /// is TLS, the server verified against the PEM CA bundle `ca` (default
    /// [`DEFAULT_CA_BUNDLE`]), which is read here. Errors are
    /// `config.invalid` and never quote the URL (it may hold the password).
    pub fn new(url: &str) -> Result<Self, Error> {
        let mut tls = None;
        let (addr, user, password, db) = if let Some(rest) = url.strip_prefix("redis://") {
            Self::parse_tcp(rest)?
        } else if let Some(rest) = url.strip_prefix("rediss://") {
            let (rest, ca) = Self::parse_tls_query(rest)?;
            let parsed = Self::parse_tcp(rest)?;
            // Never fall back to plain TCP for a rediss:// URL.
            let RedisAddr::Tcp { host, .. } = &parsed.0 else {
                return Err(config_error("redis URL: rediss:// needs a host"));
            };
            let ca = ca.unwrap_or_else(|| PathBuf::from(DEFAULT_CA_BUNDLE));
            tls = Some(tls_setup(host, ca)?);
            parsed
        } else if let Some(rest) = url
            .strip_prefix("unix://")
            .or_else(|| url.strip_prefix("redis+unix://"))
        {
            Self::parse_unix(rest)?
        } else {
            return Err(config_error(
                "redis URL: expected redis://[user:password@]host[:port][/db], \
                 rediss://[user:password@]host[:port][/db][?ca=/path/ca.pem] or \
                 unix:///path/to.sock (or redis+unix:///path/to.sock)",
            ));
        };
        if user.is_some() && password.is_none() {
            return Err(config_error(
                "redis URL: a user needs a password (AUTH user password)",
            ));
        }
        Ok(Self {
            addr,
            user,
            password,
            db,
            timeout: DEFAULT_REDIS_TIMEOUT,
            grace: DEFAULT_GRACE_SECS,
            skew: DEFAULT_SKEW_SECS,
            accept_volatile: false,
            tls,
        })
    }

    /// Split off a `rediss://` URL's query: only `ca=<absolute path>`, once.
    /// Split at the first `?`: a `?` in the password must be `%3F`.
    fn parse_tls_query(rest: &str) -> Result<(&str, Option<PathBuf>), Error> {
        let Some((rest, query)) = rest.split_once('?') else {
            return Ok((rest, None));
        };
        if query.contains('#') {
            return Err(config_error("redis URL: a fragment is not supported"));
        }
        let mut ca = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("ca", v)) if ca.is_none() => {
                    let p = PathBuf::from(percent_decode(v, "CA path")?);
                    if !p.is_absolute() {
                        return Err(config_error(
                            "redis URL: ca= needs an absolute path to a PEM CA bundle",
                        ));
                    }
                    ca = Some(p);
                }
                _ => {
                    return Err(config_error(
                        "redis URL: rediss:// takes one query parameter, ca=/path/ca.pem",
                    ));
                }
            }
        }
        Ok((rest, ca))
    }

    fn parse_tcp(rest: &str) -> Result<ParsedUrl, Error> {
        if rest.contains(['?', '#']) {
            return Err(config_error(
                "redis URL: query and fragment are not supported",
            ));
        }
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (authority, db) = match hostpart.split_once('/') {
            Some((a, "")) => (a, 0),
            Some((a, d)) => (a, parse_db(d)?),
            None => (hostpart, 0),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| config_error("redis URL: unclosed [ in the host"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| config_error("redis URL: bad port"))?,
                    ),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        // A colon only inside brackets (IPv6); names and IPv4 have none.
        let bracketed = authority.starts_with('[');
        let valid_host = !host.is_empty()
            && host.bytes().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, b'.' | b'-' | b'_')
                    || (bracketed && c == b':')
            });
        if !valid_host {
            // Not quoted: in a malformed URL the "host" may be a password.
            return Err(config_error("redis URL: bad host"));
        }
        let port = match port {
            None => 6379,
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| config_error("redis URL: bad port"))?,
            Some(_) => return Err(config_error("redis URL: bad port")),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some(("", pw)) => (None, Some(percent_decode(pw, "password")?)),
                Some((u, pw)) => (
                    Some(percent_decode(u, "user")?),
                    Some(percent_decode(pw, "password")?),
                ),
                None => (Some(percent_decode(ui, "user")?), None),
            },
        };
        Ok((
            RedisAddr::Tcp {
                host: host.to_owned(),
                port,
            },
            user.filter(|u| !u.is_empty()),
            password,
            db,
        ))
    }

    fn parse_unix(rest: &str) -> Result<ParsedUrl, Error> {
        if rest.contains('#') {
            return Err(config_error("redis URL: a fragment is not supported"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if !path.starts_with('/') {
            return Err(config_error(
                "redis URL: unix:// needs an absolute socket path (unix:///path)",
            ));
        }
        let path = PathBuf::from(percent_decode(path, "socket path")?);
        let (mut user, mut password, mut db) = (None, None, 0);
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| config_error("redis URL: a query parameter without ="))?;
            match k {
                "user" if user.is_none() => user = Some(percent_decode(v, "user")?),
                "pass" | "password" if password.is_none() => {
                    password = Some(percent_decode(v, "password")?)
                }
                "db" => db = parse_db(v)?,
                _ => {
                    let k: String = k.chars().take(16).collect();
                    return Err(config_error(format!(
                        "redis URL: unknown or repeated parameter {k:?} (user, pass, db)"
                    )));
                }
            }
        }
        Ok((
            RedisAddr::Unix(path),
            user.filter(|u| !u.is_empty()),
            password,
            db,
        ))
    }

    /// The time one admission may take with the server, connect included
    /// (default [`DEFAULT_REDIS_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keep records `secs` past the manifest's not-after (default
    /// [`DEFAULT_GRACE_SECS`]).
    pub fn with_grace(mut self, secs: u64) -> Self {
        self.grace = secs;
        self
    }

    /// How far the node's and the server's clocks may differ, and the
    /// server's clock be behind its high-water mark (default
    /// [`DEFAULT_SKEW_SECS`]; the site policy's `clock_skew`).
    pub fn with_skew(mut self, secs: u64) -> Self {
        self.skew = secs;
        self
    }

    /// Admit with a server that can lose use records (no AOF, or an
    /// eviction policy other than `noeviction`): the site policy's
    /// `[replay.redis] accept_volatile`. Default: refused with
    /// `replay.store-unsafe`.
    pub fn with_accept_volatile(mut self, accept: bool) -> Self {
        self.accept_volatile = accept;
        self
    }

    /// What the server says of its persistence and eviction (`INFO
    /// persistence`, `INFO memory`): `Err(replay.store-unsafe)` when it can
    /// lose use records (AOF off, or keys evictable), or cannot tell.
    fn check_safe(c: &mut RedisConn) -> Result<(), Error> {
        let mut problems = Vec::new();
        let info = |c: &mut RedisConn, section: &str| -> Result<String, Error> {
            match c.command(&[b"INFO", section.as_bytes()])? {
                Reply::Bulk(text) => Ok(text),
                other => Err(other.unexpected(&c.server, "INFO")),
            }
        };
        let field = |text: &str, name: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let persistence = info(c, "persistence")?;
        match field(&persistence, "aof_enabled").as_deref() {
            Some("1") => {}
            Some(_) => problems.push(
                "AOF is off (appendonly no): a restart forgets the uses since the last snapshot"
                    .to_string(),
            ),
            None => problems.push("INFO persistence does not say whether AOF is on".into()),
        }
        let memory = info(c, "memory")?;
        match field(&memory, "maxmemory_policy").as_deref() {
            Some("noeviction") => {}
            Some(p) => {
                let p: String = p.chars().take(32).collect();
                problems.push(format!(
                    "maxmemory-policy is {p}, not noeviction: a full server evicts uses"
                ))
            }
            None => problems.push("INFO memory does not say the maxmemory-policy".into()),
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            Reason::ReplayStoreUnsafe,
            format!(
                "{}: the replay store can lose use records ({}); configure appendonly yes and \
                 maxmemory-policy noeviction, or accept it in the site policy \
                 ([replay.redis] accept_volatile = true)",
                c.server,
                problems.join("; ")
            ),
        ))
    }

    /// The server, for messages (no credentials).
    pub fn server(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.addr {
            RedisAddr::Tcp { host, port } if host.contains(':') => {
                format!("{scheme}://[{host}]:{port}/{}", self.db)
            }
            RedisAddr::Tcp { host, port } => format!("{scheme}://{host}:{port}/{}", self.db),
            RedisAddr::Unix(p) => format!("unix://{}?db={}", p.display(), self.db),
        }
    }

    /// Connect, authenticate, select the database and PING: a health check
    /// for start-up and diagnostics.
    pub fn ping(&self) -> Result<(), Error> {
        let mut c = self.connect(Instant::now() + self.timeout)?;
        c.command(&[b"PING"])?
            .expect_status(&c.server, "PONG", "PING")
    }

    /// Connect and log in; every step must be done by `deadline`.
    fn connect(&self, deadline: Instant) -> Result<RedisConn, Error> {
        let server = self.server();
        let stream = match &self.addr {
            RedisAddr::Tcp { host, port } => {
                // Name resolution has no timeout in std; use an address or a
                // name in /etc/hosts for a site-critical store.
                let addrs = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| unavailable(format!("{server}: cannot resolve: {e}")))?;
                let mut last = None;
                let mut found = None;
                for a in addrs {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match TcpStream::connect_timeout(&a, left) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = found.ok_or_else(|| match last {
                    Some(e) => unavailable(format!("{server}: cannot connect: {e}")),
                    None => unavailable(format!("{server}: cannot connect: no address")),
                })?;
                // Small request/reply exchanges: do not wait for Nagle.
                s.set_nodelay(true)
                    .map_err(|e| unavailable(format!("{server}: {e}")))?;
                Stream::Tcp(s)
            }
            RedisAddr::Unix(p) => Stream::Unix(
                connect_unix(p, deadline)
                    .map_err(|e| unavailable(format!("{server}: cannot connect: {e}")))?,
            ),
        };
        let timed = Timed { stream, deadline };
        let io = match &self.tls {
            None => Conn::Plain(timed),
            Some(tls) => Conn::Tls(Box::new(Self::handshake(tls, timed, &server)?)),
        };
        let mut c = RedisConn {
            server,
            io: BufReader::new(io),
        };
        if let Some(pw) = &self.password {
            let reply = match &self.user {
                Some(u) => c.command(&[b"AUTH", u.as_bytes(), pw.as_bytes()])?,
                None => c.command(&[b"AUTH", pw.as_bytes()])?,
            };
            reply.expect_status(&c.server, "OK", "AUTH")?;
        }
        if self.db != 0 {
            // Sequential, not pipelined: a failed SELECT must not let the
            // script run on database 0.
            c.command(&[b"SELECT", self.db.to_string().as_bytes()])?
                .expect_status(&c.server, "OK", "SELECT")?;
        }
        Ok(c)
    }

    /// The TLS handshake, over the deadline-bound socket: every read and
    /// write of it waits at most the time left.
    fn handshake(
        tls: &Tls,
        mut sock: Timed,
        server: &str,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, Timed>, Error> {
        let mut conn = rustls::ClientConnection::new(Arc::clone(&tls.config), tls.name.clone())
            .map_err(|e| unavailable(format!("{server}: TLS: {e}")))?;
        while conn.is_handshaking() {
            let moved = conn
                .complete_io(&mut sock)
                .map_err(|e| unavailable(format!("{server}: TLS handshake: {e}")))?;
            // No progress while still handshaking would spin: give up.
            if moved == (0, 0) && conn.is_handshaking() {
                return Err(unavailable(format!("{server}: TLS handshake stalled")));
            }
        }
        Ok(rustls::StreamOwned::new(conn, sock))
    }
}

impl ReplayStore for RedisStore {
    fn record_use(
        &self,
        key: &ReplayKey,
        max_uses: u64,
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<u64, Error> {
        check_not_expired(expires, now)?;
        // The record lives through the whole not-after second, plus grace.
        let expiry_ms = expires
            .0
            .saturating_add(self.grace)
            .saturating_add(1)
            .saturating_mul(1000)
            .min(REDIS_MAX_EXPIRY_MS);
        let redis_key = format!("{REDIS_KEY_PREFIX}{}", key.to_hex());
        // One deadline for the whole admission, not one per read.
        let mut c = self.connect(Instant::now() + self.timeout)?;
        // Before counting: a server that can forget uses is refused unless
        // the site policy accepts it (then every audit record says so).
        if !self.accept_volatile {
            Self::check_safe(&mut c)?;
        }
        // EVAL, not EVALSHA: one round trip either way for a one-shot
        // connection, and no NOSCRIPT fallback path after a restart/failover.
        // The node's clock, for the server to compare with its own. The
        // expiry above is absolute (the manifest's not-after), never derived
        // from this clock, and Redis applies it by the server's clock.
        let node_ms = now.0.saturating_mul(1000).min(REDIS_MAX_EXPIRY_MS);
        let skew_ms = self.skew.saturating_mul(1000).min(REDIS_MAX_EXPIRY_MS);
        let reply = c.command(&[
            b"EVAL",
            REDIS_SCRIPT.as_bytes(),
            b"2",
            redis_key.as_bytes(),
            REDIS_CLOCK_KEY.as_bytes(),
            expiry_ms.to_string().as_bytes(),
            node_ms.to_string().as_bytes(),
            skew_ms.to_string().as_bytes(),
        ])?;
        let n = match reply {
            Reply::Int(n) => n,
            Reply::Error(e) if e.starts_with("JOBSEAL clock") => {
                return Err(Error::new(
                    Reason::ReplayClockWentBack,
                    format!(
                        "{}: {} (node clock {}, skew {} s)",
                        c.server,
                        e.trim_start_matches("JOBSEAL "),
                        now.to_rfc3339(),
                        self.skew
                    ),
                ));
            }
            other => return Err(other.unexpected(&c.server, "EVAL")),
        };
        let uses = u64::try_from(n)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| unavailable(format!("{}: EVAL returned the count {n}", c.server)))?;
        judge(uses, max_uses)
    }
}

/// `UnixStream::connect` has no timeout (it blocks while the server's
/// backlog is full): connect in a helper thread and stop waiting at
/// `deadline`. A connection made too late is dropped by the helper.
fn connect_unix(path: &Path, deadline: Instant) -> std::io::Result<UnixStream> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let p = path.to_path_buf();
    std::thread::Builder::new()
        .name("jobseal-redis-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(p));
        })?;
    match rx.recv_timeout(left) {
        Ok(r) => r,
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the time allowed for the exchange with Redis is over",
    )
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A stream whose every read and write waits at most until `deadline`: a
/// server that answers byte by byte cannot stretch the exchange.
struct Timed {
    stream: Stream,
    deadline: Instant,
}

impl Timed {
    /// The time left, set as the socket's read and write timeout.
    fn arm(&self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        match &self.stream {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        match &mut self.stream {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        match &mut self.stream {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// The connection as RESP sees it: plain, or TLS over the same
/// deadline-bound socket.
enum Conn {
    Plain(Timed),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

struct RedisConn {
    server: String,
    io: BufReader<Conn>,
}

/// The RESP2 replies we accept; bulk strings and arrays are not among them.
enum Reply {
    Status(String),
    Int(i64),
    Error(String),
    /// A bulk string (`INFO` only), UTF-8, at most [`REDIS_MAX_BULK`] bytes.
    Bulk(String),
}

impl Reply {
    fn expect_status(self, server: &str, want: &str, cmd: &str) -> Result<(), Error> {
        match self {
            Reply::Status(s) if s == want => Ok(()),
            other => Err(other.unexpected(server, cmd)),
        }
    }

    fn unexpected(self, server: &str, cmd: &str) -> Error {
        match self {
            Reply::Error(e) => unavailable(format!("{server}: {cmd} failed: {e}")),
            Reply::Status(s) => unavailable(format!("{server}: {cmd}: unexpected reply +{s}")),
            Reply::Int(n) => unavailable(format!("{server}: {cmd}: unexpected reply :{n}")),
            Reply::Bulk(_) => unavailable(format!("{server}: {cmd}: unexpected bulk reply")),
        }
    }
}

impl RedisConn {
    fn command(&mut self, args: &[&[u8]]) -> Result<Reply, Error> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        let stream = self.io.get_mut();
        stream
            .write_all(&req)
            .and_then(|()| stream.flush())
            .map_err(|e| unavailable(format!("{}: write: {e}", self.server)))?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Reply, Error> {
        let mut line = Vec::new();
        let n = (&mut self.io)
            .take(REDIS_MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| unavailable(format!("{}: read: {e}", self.server)))?;
        if n == 0 {
            return Err(unavailable(format!("{}: connection closed", self.server)));
        }
        if line.first() == Some(&b'$') {
            return self.read_bulk(&line);
        }
        parse_reply_line(&line)
            .ok_or_else(|| unavailable(format!("{}: malformed reply", self.server)))
    }
}

impl RedisConn {
    /// The body of a bulk reply whose header is `line` (`$<len>` CRLF):
    /// a canonical length of at most [`REDIS_MAX_BULK`], then exactly that
    /// many bytes of UTF-8 and CRLF. A null bulk (`$-1`) is malformed.
    fn read_bulk(&mut self, line: &[u8]) -> Result<Reply, Error> {
        let malformed = || unavailable(format!("{}: malformed reply", self.server));
        let digits = line
            .strip_prefix(b"$")
            .and_then(|l| l.strip_suffix(b"\r\n"))
            .ok_or_else(malformed)?;
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || !digits.starts_with(b"0"))
            && digits.len() <= 9;
        if !canonical {
            return Err(malformed());
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(malformed)?;
        if len > REDIS_MAX_BULK {
            return Err(unavailable(format!("{}: reply too long", self.server)));
        }
        let mut body = vec![0u8; len + 2];
        self.io
            .read_exact(&mut body)
            .map_err(|e| unavailable(format!("{}: read: {e}", self.server)))?;
        if body.split_off(len) != b"\r\n" {
            return Err(malformed());
        }
        String::from_utf8(body)
            .map(Reply::Bulk)
            .map_err(|_| malformed())
    }
}

/// One RESP2 line of type `+`, `-` or `:` ending in CRLF. Strict: no bare
/// LF, no control characters, integers in canonical form.
fn parse_reply_line(line: &[u8]) -> Option<Reply> {
    let body = line.strip_suffix(b"\r\n")?;
    let (&kind, rest) = body.split_first()?;
    if rest.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return None;
    }
    let text = std::str::from_utf8(rest).ok()?;
    match kind {
        b'+' => Some(Reply::Status(text.to_owned())),
        b'-' => Some(Reply::Error(text.chars().take(300).collect())),
        b':' => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            let canonical = !digits.is_empty()
                && digits.bytes().all(|c| c.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
                && text != "-0";
            if !canonical {
                return None;
            }
            text.parse().ok().map(Reply::Int)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key(n: u32) -> ReplayKey {
        ReplayKey::derive("/CN=WAL test", &format!("{n:032x}"), &"5a".repeat(32)).unwrap()
    }

    fn wal_len(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// The bundled SQLite is built with the workspace's options
    /// (`.cargo/config.toml`, LIBSQLITE3_FLAGS, forced over the
    /// environment's; cargo must run inside the repository to read it):
    /// file names are never URIs,
    /// no extension can be loaded, the unused virtual tables are left out
    /// and a connection sets up no lookaside pool or page-cache block.
    #[test]
    fn the_bundled_sqlite_has_the_workspace_compile_options() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        let options = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let has = |o: &str| {
            options
                .iter()
                .any(|x| x == o || x.strip_prefix(o).is_some_and(|v| v.starts_with('=')))
        };
        for want in [
            "OMIT_LOAD_EXTENSION",
            "DEFAULT_PCACHE_INITSZ=0",
            "DEFAULT_LOOKASIDE=1200,0",
        ] {
            assert!(has(want), "{want} missing: {options:?}");
        }
        for unwanted in [
            "USE_URI",
            "ENABLE_LOAD_EXTENSION",
            "ENABLE_FTS3",
            "ENABLE_FTS5",
            "ENABLE_RTREE",
        ] {
            assert!(!has(unwanted), "{unwanted} present: {options:?}");
        }
    }

    /// SQLite is never handed a name it could read as a URI: a relative
    /// path that begins with `file:` is made absolute, the same file.
    #[test]
    fn sqlite_is_given_absolute_names() {
        let cwd = std::env::current_dir().unwrap();
        let name = sqlite_name(Path::new("file:x?vfs=unix-none/replay.sqlite")).unwrap();
        assert!(name.is_absolute(), "{name:?}");
        assert!(!name.to_string_lossy().starts_with("file:"), "{name:?}");
        assert_eq!(name, cwd.join("file:x?vfs=unix-none/replay.sqlite"));
        let abs = Path::new("/var/lib/jobseal/replay.sqlite");
        assert_eq!(sqlite_name(abs).unwrap(), abs);
    }

    /// Each admission deletes at most PURGE_BATCH expired records, and only
    /// expired ones.
    #[test]
    fn the_purge_is_bounded_and_takes_only_expired_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.sqlite");
        let store = SqliteStore::open(&path).unwrap().with_grace(0);
        let t0 = 1_780_000_000;
        let (soon, late) = (UnixTime(t0 + 10), UnixTime(t0 + 1_000_000));
        for n in 0..2500 {
            store.record_use(&key(n), 1, soon, UnixTime(t0)).unwrap();
        }
        for n in 2500..2600 {
            store.record_use(&key(n), 1, late, UnixTime(t0)).unwrap();
        }
        let rows = || -> i64 {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.query_row("SELECT count(*) FROM replay", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(), 2600);
        // Past not-after plus the skew; the first admission at that time
        // only raises the high-water mark (it purges up to the previous one).
        let after = UnixTime(t0 + 11 + DEFAULT_SKEW_SECS);
        store.record_use(&key(8999), 1, late, after).unwrap();
        assert_eq!(rows(), 2601);
        // A new record each time: 1000 expired ones go, one comes.
        store.record_use(&key(9000), 1, late, after).unwrap();
        assert_eq!(rows(), 1602);
        store.record_use(&key(9001), 1, late, after).unwrap();
        assert_eq!(rows(), 603);
        store.record_use(&key(9002), 1, late, after).unwrap();
        assert_eq!(rows(), 104);
        // The records not yet expired are all still counted.
        for n in 2500..2600 {
            let e = store.record_use(&key(n), 1, late, after).unwrap_err();
            assert_eq!(e.reason, Reason::ReplayJobIdUsed, "{n}: {e}");
        }
    }

    /// One process per admission, as `jobseal admit` runs: the WAL left by
    /// each (no checkpoint on close) stays short, and no use is lost.
    #[test]
    fn the_wal_stays_short_and_every_use_counts_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.sqlite");
        let (now, expires) = (UnixTime(1_780_000_000), UnixTime(1_780_086_400));
        let mut longest = 0;
        for n in 0..100 {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.record_use(&key(n), 1, expires, now).unwrap(), 1);
            drop(store);
            longest = longest.max(wal_len(&path));
        }
        // Cut once past the limit: at most one admission's frames beyond it.
        assert!(longest <= WAL_CHECKPOINT_BYTES + 16 * 1024, "{longest}");
        let store = SqliteStore::open(&path).unwrap();
        for n in 0..100 {
            let e = store.record_use(&key(n), 1, expires, now).unwrap_err();
            assert_eq!(e.reason, Reason::ReplayJobIdUsed, "{n}: {e}");
        }
    }
}

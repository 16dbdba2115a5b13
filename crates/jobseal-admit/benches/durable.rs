//! The durable writes of an admission, apart from the verifier (issue 7).
//! Run with `cargo bench -p jobseal-admit --bench durable`; see
//! BENCHMARKS.md. Files live in a temporary directory under `$TMPDIR` (set
//! it to the filesystem whose syncs you want measured).
//!
//! * `replay_process`: what one `jobseal admit` process does for step 7:
//!   open the SQLite store, count a use (one transaction, synced), close.
//!   `steady` on a database that has seen many admissions (its WAL
//!   between checkpoints), `fresh` on a new one; `steady, open only`
//!   opens and closes without counting.
//! * `replay_warm`: one more use on a store kept open (a long-lived
//!   caller: LCMAPS, the C or Python API).
//! * `audit_append`: one audit record appended (lock, read the head, one
//!   write, `fdatasync`), on a log kept open.
//! * `sync_floor`: the syscalls alone: an O_APPEND write of a 1.8 KiB line
//!   plus `fdatasync`, and a 4 KiB write plus `fsync` — one durable append,
//!   the least a durable record can cost on this filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use divan::Bencher;
use jobseal_admit::audit::{AuditLog, AuditOptions, AuditRecord, What, Where, Who};
use jobseal_admit::replay::{ReplayKey, ReplayStore, SqliteStore};
use jobseal_core::time::UnixTime;

fn main() {
    divan::main();
}

const NOW: UnixTime = UnixTime(1_780_000_000);

static N: AtomicU64 = AtomicU64::new(0);

/// A key never used before.
fn next_key() -> ReplayKey {
    let n = N.fetch_add(1, Ordering::Relaxed);
    ReplayKey::derive(
        "/DC=org/DC=example/CN=Bench User",
        &format!("{n:032x}"),
        &"5a".repeat(32),
    )
    .unwrap()
}

fn record_one(store: &SqliteStore) {
    let uses = store
        .record_use(&next_key(), 1, NOW.plus(86_400), NOW)
        .unwrap();
    assert_eq!(uses, 1);
}

#[divan::bench(args = ["fresh", "steady", "steady, open only"], sample_count = 60, sample_size = 1)]
fn replay_process(b: Bencher<'_, '_>, state: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.sqlite");
    if state.starts_with("steady") {
        // Many admissions before: the database as a worker node keeps it.
        let store = SqliteStore::open(&path).unwrap();
        for _ in 0..1000 {
            record_one(&store);
        }
    }
    b.with_inputs(|| {
        if state == "fresh" {
            let _ = std::fs::remove_file(&path);
            for side in ["replay.sqlite-wal", "replay.sqlite-shm"] {
                let _ = std::fs::remove_file(dir.path().join(side));
            }
        }
    })
    .bench_local_values(|()| {
        let store = SqliteStore::open(&path).unwrap();
        if state != "steady, open only" {
            record_one(&store);
        }
    });
}

#[divan::bench(sample_count = 60, sample_size = 1)]
fn replay_warm(b: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("replay.sqlite")).unwrap();
    record_one(&store);
    b.bench_local(|| record_one(&store));
}

fn record() -> AuditRecord {
    let dn = "/DC=org/DC=example/O=Example/CN=Jane Doe";
    AuditRecord {
        v: 1,
        seq: 0,
        line: 0,
        prev: String::new(),
        time: NOW.to_rfc3339(),
        outcome: "permit".into(),
        reason: None,
        message: "the job may run".into(),
        who: Who {
            end_entity: Some(dn.to_string()),
            subject: Some(format!("{dn}/CN=123")),
            issuer: Some(dn.to_string()),
            issued_by_end_entity: Some(true),
            ca: Some("/DC=org/DC=example/CN=Example CA".into()),
            serials: vec!["1a2b3c".into(), "1001".into()],
            voms: Vec::new(),
        },
        what: What {
            job_id: Some(format!("{:032x}", 7)),
            manifest_sha256: Some(format!("{:064x}", 7)),
            executable: Some("./analysis.sh".into()),
            arguments: vec!["--events".into(), "1000".into()],
            ..What::default()
        },
        place: Where::current(Some("BENCH-SITE".into())),
        jobseal: "bench".into(),
        replay: None,
        launch: None,
    }
}

#[divan::bench(sample_count = 60, sample_size = 1)]
fn audit_append(b: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path().join("audit.jsonl"), AuditOptions::default()).unwrap();
    log.append(record()).unwrap();
    b.bench_local(|| log.append(record()).unwrap());
}

#[divan::bench(args = ["append+fdatasync", "4k+fsync"], sample_count = 60, sample_size = 1)]
fn sync_floor(b: Bencher<'_, '_>, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("floor");
    let line = vec![b'x'; 1800];
    if what == "append+fdatasync" {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        b.bench_local(|| {
            f.write_all(&line).unwrap();
            f.sync_data().unwrap();
        });
    } else {
        let f = std::fs::File::create(&path).unwrap();
        let page = vec![b'y'; 4096];
        let at = AtomicU64::new(0);
        b.bench_local(|| {
            // A new page each time, as a WAL commit writes new frames.
            let off = at.fetch_add(4096, Ordering::Relaxed) % (64 << 20);
            f.write_all_at(&page, off).unwrap();
            f.sync_all().unwrap();
        });
    }
}

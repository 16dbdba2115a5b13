//! The audit trail: chain, tamper detection, rotation, syslog anchoring and
//! concurrent writers (issue 4, §3 and the audit figure of §4).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobseal_admit::audit::{
    self, AuditLog, AuditOptions, AuditRecord, Filter, ProblemKind, RecordContext, SyslogOptions,
    What, Where, Who,
};
use jobseal_core::time::UnixTime;
use jobseal_core::{Error, Reason};
use jobseal_verify::Decision;

const DN: &str = "/DC=org/DC=example/O=Example/CN=Jane Doe";

fn rec(i: u64, dn: &str) -> AuditRecord {
    AuditRecord {
        v: 1,
        seq: 0,
        line: 0,
        prev: String::new(),
        time: UnixTime(1_780_000_000 + i).to_rfc3339(),
        outcome: if i.is_multiple_of(3) {
            "deny".into()
        } else {
            "permit".into()
        },
        reason: i
            .is_multiple_of(3)
            .then(|| "payload.executable-mismatch".to_string()),
        message: format!("decision {i}"),
        who: Who {
            end_entity: Some(dn.to_string()),
            subject: Some(format!("{dn}/CN=123")),
            issuer: Some(dn.to_string()),
            issued_by_end_entity: Some(true),
            ca: Some("/DC=org/DC=example/CN=Example CA".into()),
            serials: vec![format!("{i:x}"), "1001".into()],
            voms: Vec::new(),
        },
        what: What {
            job_id: Some(format!("{i:032x}")),
            manifest_sha256: Some(format!("{i:064x}")),
            executable: Some("./analysis.sh".into()),
            arguments: vec!["--events".into(), "1000".into()],
            ..What::default()
        },
        place: Where::current(Some("TEST-SITE".into())),
        jobseal: "test".into(),
        replay: None,
        launch: None,
    }
}

fn write_log(dir: &Path, n: u64) -> (PathBuf, String) {
    let path = dir.join("log/audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let mut head = String::new();
    for i in 1..=n {
        head = log.append(rec(i, DN)).unwrap();
    }
    (path, head)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// Issue 13 §2: a site that accepts a Redis server that can lose uses says
/// so in every record (`replay`), and such records chain and verify.
#[test]
fn an_accepted_volatile_replay_store_is_in_every_record() {
    let redis = jobseal_policy::Policy::from_toml(
        "[replay]\nstore = \"redis\"\nredis_url = \"redis://h\"\n[replay.redis]\naccept_volatile = true\n",
        Path::new("/nonexistent/policy.toml"),
    )
    .unwrap();
    let note = jobseal_admit::admit::replay_note(&redis).unwrap();
    assert!(jobseal_admit::admit::replay_note(&jobseal_policy::Policy::default()).is_none());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for i in 0..3 {
        let mut r = rec(i, "/DC=org/DC=example/CN=Alice");
        r.replay = Some(note.clone());
        log.append(r).unwrap();
    }
    for l in lines(&path) {
        assert!(
            l.contains(r#""jobseal":"test","replay":{"store":"redis","accept_volatile":true}"#),
            "{l}"
        );
    }
    assert!(audit::verify_file(&[&path], None).is_ok());
}

#[test]
fn round_trip_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = write_log(dir.path(), 12);
    let report = audit::verify_file(&[&path], None);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 12);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(12)));
    assert_eq!(report.head.as_deref(), Some(head.as_str()));
    assert!(!report.starts_mid_chain);
    assert!(audit::verify_file(&[&path], Some(&format!("12:{head}"))).is_ok());
    assert!(audit::verify_file(&[&path], Some(&head)).is_ok());

    // Permissions: file 0640, directory 0750.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(path.parent().unwrap()), 0o750);

    // The line format: chain fields first, compact JSON.
    let first = &lines(&path)[0];
    assert!(first.starts_with(&format!(
        "{{\"v\":1,\"seq\":1,\"line\":1,\"prev\":\"{}\"",
        audit::GENESIS
    )));
    assert_eq!(audit::line_hash(lines(&path)[11].as_bytes()), head);

    let all = audit::show(&[&path], &Filter::default()).unwrap();
    assert_eq!(all.records.len(), 12);
    let job = Filter {
        job_id: Some(format!("{:032X}", 7)),
        ..Filter::default()
    };
    let found = audit::show(&[&path], &job).unwrap();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].record.seq, 7);
    let window = Filter {
        dn: Some(DN.into()),
        since: Some(UnixTime(1_780_000_003)),
        until: Some(UnixTime(1_780_000_006)),
        ..Filter::default()
    };
    let seqs: Vec<u64> = audit::show(&[&path], &window)
        .unwrap()
        .records
        .iter()
        .map(|s| s.record.seq)
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    let nobody = Filter {
        dn: Some("/CN=Nobody".into()),
        ..Filter::default()
    };
    assert!(audit::show(&[&path], &nobody).unwrap().records.is_empty());
}

/// The figure: deleting, editing or reordering any one of 200 records is
/// reported naming that record.
#[test]
fn any_single_tampering_of_200_records_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = write_log(dir.path(), 200);
    let original = lines(&path);
    let anchor = format!("200:{head}");
    let bad = dir.path().join("tampered.jsonl");
    let check =
        |lines: &[String], anchor: Option<&str>, kinds: &[ProblemKind], seq: u64, what: &str| {
            write_lines(&bad, lines);
            let r = audit::verify_file(&[&bad], anchor);
            let p = r.problem.unwrap_or_else(|| panic!("{what}: not detected"));
            assert!(kinds.contains(&p.kind), "{what}: {p:?}");
            assert_eq!(p.seq, Some(seq), "{what}: {p:?}");
        };
    let (mut deleted, mut edited, mut reordered) = (0, 0, 0);
    for p in 1..=200u64 {
        let i = (p - 1) as usize;
        // Delete record p.
        let mut l = original.clone();
        l.remove(i);
        if p < 200 {
            check(&l, None, &[ProblemKind::Missing], p, &format!("delete {p}"));
        }
        check(
            &l,
            Some(&anchor),
            &[ProblemKind::Missing, ProblemKind::Truncated],
            p,
            &format!("delete {p} (anchor)"),
        );
        deleted += 1;

        // Edit record p (one byte of its message).
        let mut l = original.clone();
        let needle = format!("\"message\":\"decision {p}\"");
        assert!(l[i].contains(&needle));
        l[i] = l[i].replace(&needle, &format!("\"message\":\"decision {p}.\""));
        if p < 200 {
            check(&l, None, &[ProblemKind::Altered], p, &format!("edit {p}"));
        }
        check(
            &l,
            Some(&anchor),
            &[ProblemKind::Altered],
            p,
            &format!("edit {p} (anchor)"),
        );
        edited += 1;

        // Reorder: swap p with its successor, and move p to the end.
        if p < 200 {
            let mut l = original.clone();
            l.swap(i, i + 1);
            check(
                &l,
                Some(&anchor),
                &[ProblemKind::Reordered],
                p,
                &format!("swap {p}"),
            );
            let mut l = original.clone();
            let moved = l.remove(i);
            l.push(moved);
            check(
                &l,
                None,
                &[ProblemKind::Reordered],
                p,
                &format!("move {p} to the end"),
            );
            reordered += 1;
        }
    }
    // A changed prev field names the record that carries it.
    let mut l = original.clone();
    let at = l[99].find("\"prev\":\"").unwrap() + 8;
    let flipped = if &l[99][at..=at] == "0" { "1" } else { "0" };
    l[99].replace_range(at..=at, flipped);
    check(&l, None, &[ProblemKind::Altered], 100, "prev of 100");
    // A malformed line.
    let mut l = original.clone();
    l[41] = "{not json".into();
    write_lines(&bad, &l);
    let p = audit::verify_file(&[&bad], None).problem.unwrap();
    assert_eq!((p.kind, p.line), (ProblemKind::Malformed, 42));
    println!(
        "figure: 200-record log: each of {deleted} deletions, {edited} edits and {reordered} reorderings \
         (swap and move) named the record"
    );
}

#[test]
fn truncated_tail_is_detected_against_the_anchor_only() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = write_log(dir.path(), 50);
    let mut l = lines(&path);
    l.truncate(47);
    write_lines(&path, &l);
    // Honest: without an anchor a shorter chain is still a valid chain.
    assert!(audit::verify_file(&[&path], None).is_ok());
    let r = audit::verify_file(&[&path], Some(&format!("50:{head}")));
    let p = r.problem.unwrap();
    assert_eq!(
        (p.kind, p.seq, p.line),
        (ProblemKind::Truncated, Some(48), 48)
    );
    let p = audit::verify_file(&[&path], Some(&head)).problem.unwrap();
    assert_eq!(p.kind, ProblemKind::Truncated);
    // An older anchor still matches a longer log.
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let h48 = log.append(rec(48, DN)).unwrap();
    log.append(rec(49, DN)).unwrap();
    assert!(audit::verify_file(&[&path], Some(&format!("48:{h48}"))).is_ok());
    assert!(
        audit::verify_file(&[&path], Some("48:nothex"))
            .problem
            .is_some()
    );
}

#[test]
fn rotation_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let opts = AuditOptions {
        max_file_bytes: 4000,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    let mut head = String::new();
    for i in 1..=60 {
        head = log.append(rec(i, DN)).unwrap();
    }
    let files = audit::chain_files(&path).unwrap();
    assert!(files.len() > 3, "{files:?}");
    assert_eq!(files.last().unwrap(), &path);
    let r = audit::verify_file(&files, Some(&format!("60:{head}")));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        (r.records, r.first_seq, r.last_seq),
        (60, Some(1), Some(60))
    );
    // Each file starts at line 1 and continues the previous file's head.
    for pair in files.windows(2) {
        let last = lines(&pair[0]).pop().unwrap();
        let first: AuditRecord = serde_json::from_str(&lines(&pair[1])[0]).unwrap();
        assert_eq!(first.line, 1);
        assert_eq!(first.prev, audit::line_hash(last.as_bytes()));
    }
    // The newest files alone verify as a continuation.
    let r = audit::verify_file(&files[2..], None);
    assert!(r.is_ok() && r.starts_mid_chain, "{r:?}");
    // A missing middle file is named.
    let mut without = files.clone();
    let gone = without.remove(1);
    let first_gone: AuditRecord = serde_json::from_str(&lines(&gone)[0]).unwrap();
    let p = audit::verify_file(&without, None).problem.unwrap();
    assert_eq!(
        (p.kind, p.seq),
        (ProblemKind::Missing, Some(first_gone.seq))
    );
    // Deleting the first line of a rotated file is named too.
    let mut l = lines(&files[1]);
    let first: AuditRecord = serde_json::from_str(&l.remove(0)).unwrap();
    write_lines(&files[1], &l);
    let p = audit::verify_file(&files, None).problem.unwrap();
    assert_eq!(
        (p.kind, p.seq, p.line),
        (ProblemKind::Missing, Some(first.seq), 1)
    );
}

#[test]
fn a_torn_tail_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_log(dir.path(), 3);
    let mut text = fs::read(&path).unwrap();
    text.extend_from_slice(b"{\"v\":1,\"seq\":4");
    fs::write(&path, text).unwrap();
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let e = log.append(rec(4, DN)).unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable, "{e}");
    let p = audit::verify_file(&[&path], None).problem.unwrap();
    assert_eq!((p.kind, p.line), (ProblemKind::Malformed, 4));
}

#[test]
fn unwritable_or_loose_logs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    let e = AuditLog::open(&path, AuditOptions::default()).unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable);
    let e = AuditLog::open(
        dir.path().join("audit.jsonl/sub/x"),
        AuditOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable);
}

#[test]
fn secrets_and_environment_values_are_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let d = Decision::from_error(Error::new(
        Reason::PayloadArgumentsMismatch,
        "the arguments [\"--token=s3cr\\\"et\", \"--pass\", \"hunter22\"] are not the signed arguments []",
    ));
    let ctx = RecordContext {
        executable: Some("./run.sh".into()),
        arguments: Some(vec![
            "--token=s3cr\"et".into(),
            "--pass".into(),
            "hunter22".into(),
        ]),
        environment: vec!["API_KEY=zzzvalue".into(), "HOME".into()],
        site: Some("TEST-SITE".into()),
        secret_names: vec!["token".into(), "PASS".into()],
        launch: None,
    };
    let r = AuditRecord::from_decision(&d, &ctx);
    assert_eq!(r.what.environment, ["API_KEY", "HOME"]);
    assert_eq!(r.reason.as_deref(), Some("payload.arguments-mismatch"));
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.append(r).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    for secret in ["s3cr", "hunter22", "zzzvalue"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains("\"site\":\"TEST-SITE\""));
}

fn recv_all(sock: &UnixDatagram) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    out
}

fn sd_param<'a>(msg: &'a str, name: &str) -> &'a str {
    let start = msg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    let end = msg[start..].find('"').unwrap();
    &msg[start..start + end]
}

#[test]
fn syslog_anchors_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let listener = UnixDatagram::bind(&sock_path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let path = dir.path().join("audit.jsonl");
    let opts = AuditOptions {
        syslog: Some(SyslogOptions {
            socket: sock_path.clone(),
            ..SyslogOptions::default()
        }),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    let heads: Vec<String> = (1..=3).map(|i| log.append(rec(i, DN)).unwrap()).collect();
    let msgs = recv_all(&listener);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    // authpriv (10): permit is notice (85), deny warning (84).
    assert!(msgs[0].starts_with("<85>1 "), "{}", msgs[0]);
    assert!(msgs[2].starts_with("<84>1 "), "{}", msgs[2]);
    for (i, m) in msgs.iter().enumerate() {
        assert!(
            m.contains(" jobseal ") && m.contains(" audit [jobseal@32473 "),
            "{m}"
        );
        assert!(m.contains(&format!("dn={DN}")), "{m}");
        assert_eq!(sd_param(m, "seq"), (i + 1).to_string());
        assert_eq!(sd_param(m, "head"), heads[i]);
    }
    // The anchor from the last message verifies the file, and catches its truncation.
    let anchor = format!(
        "{}:{}",
        sd_param(&msgs[2], "seq"),
        sd_param(&msgs[2], "head")
    );
    assert!(audit::verify_file(&[&path], Some(&anchor)).is_ok());
    let mut l = lines(&path);
    l.pop();
    write_lines(&path, &l);
    let p = audit::verify_file(&[&path], Some(&anchor)).problem.unwrap();
    assert_eq!((p.kind, p.seq), (ProblemKind::Truncated, Some(3)));
}

#[test]
fn syslog_failure_denies_when_required_and_counts_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let nowhere = dir.path().join("no-such.sock");
    let required = AuditOptions {
        syslog: Some(SyslogOptions {
            socket: nowhere.clone(),
            ..SyslogOptions::default()
        }),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, required).unwrap();
    let e = log.append(rec(1, DN)).unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable, "{e}");
    // The permit is on file, and withdrawn by the next record.
    let records = audit::show(&[&path], &Filter::default()).unwrap().records;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].record.outcome, "permit");
    assert_eq!(records[1].record.outcome, "deny");
    assert_eq!(
        records[1].record.reason.as_deref(),
        Some("audit.unavailable")
    );
    assert!(audit::verify_file(&[&path], None).is_ok());

    let optional = AuditOptions {
        syslog: Some(SyslogOptions {
            socket: nowhere,
            required: false,
            ..SyslogOptions::default()
        }),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, optional).unwrap();
    log.append(rec(2, DN)).unwrap();
    assert_eq!(log.syslog_failures(), 1);
    assert!(audit::verify_file(&[&path], None).is_ok());
}

#[test]
fn threads_share_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let log = &log;
            s.spawn(move || {
                for i in 0..100 {
                    log.append(rec(t * 1000 + i, DN)).unwrap();
                }
            });
        }
    });
    let r = audit::verify_file(&[&path], None);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!((r.records, r.last_seq), (400, Some(400)));
}

const CHILD_ENV: &str = "JOBSEAL_AUDIT_TEST_CHILD";
const PROCESSES: u64 = 8;
const PER_PROCESS: u64 = 1250;

/// Child mode of `concurrent_processes_never_fork_the_chain`: a no-op
/// unless started by it. Two threads per process, so threads and processes
/// contend at once.
#[test]
fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (id, path) = spec.split_once(':').unwrap();
    let id: u64 = id.parse().unwrap();
    let opts = AuditOptions {
        max_file_bytes: 1024 * 1024,
        // This test is about the chain, not latency: on a loaded CI machine
        // 16 writers fsyncing each record can starve one past the default
        // 10 s (which then fails that writer's append, closed).
        lock_timeout: Duration::from_secs(600),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(path, opts).unwrap();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let log = &log;
            s.spawn(move || {
                for i in 0..PER_PROCESS / 2 {
                    let mut r = rec(i, &format!("/DC=org/DC=example/CN=writer {id}"));
                    r.message = format!("writer {id} thread {t} record {i}");
                    log.append(r).unwrap();
                }
            });
        }
    });
}

/// The figure: 10,000 decisions from 8 concurrent processes (2 threads
/// each, rotating at 1 MiB) → one unbroken chain, seq 1..10000. fsync per
/// record is kept (about 0.15 ms here).
#[test]
fn concurrent_processes_never_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.jsonl");
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|id| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--test-threads=1", "--quiet"])
                .env(CHILD_ENV, format!("{id}:{}", path.display()))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let elapsed = start.elapsed();
    let files = audit::chain_files(&path).unwrap();
    let r = audit::verify_file(&files, None);
    assert!(r.is_ok(), "{r:?}");
    let total = PROCESSES * PER_PROCESS;
    assert_eq!(
        (r.records, r.first_seq, r.last_seq),
        (total, Some(1), Some(total))
    );
    let all = audit::show(&files, &Filter::default()).unwrap();
    assert!(all.malformed.is_empty());
    let seqs: Vec<u64> = all.records.iter().map(|s| s.record.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    for id in 0..PROCESSES {
        let mine = Filter {
            dn: Some(format!("/DC=org/DC=example/CN=writer {id}")),
            ..Filter::default()
        };
        assert_eq!(
            audit::show(&files, &mine).unwrap().records.len() as u64,
            PER_PROCESS
        );
    }
    println!(
        "figure: {total} decisions from {PROCESSES} processes x 2 threads in {:.1} s \
         ({} files after rotation): verify passes, seq 1..{total}, no fork, head {}",
        elapsed.as_secs_f64(),
        files.len(),
        r.head.unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------
// Regressions of the hostile review

/// C2: an anchor older than the first record of the files read compares
/// nothing, so it must not pass as a match (a forged log would).
#[test]
fn an_anchor_before_the_files_is_not_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // One record per file: the current file holds seq 5 as its line 1.
    let opts = AuditOptions {
        max_file_bytes: 1,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    let mut heads = Vec::new();
    for i in 1..=5 {
        heads.push(log.append(rec(i, DN)).unwrap());
    }
    let anchor2 = format!("2:{}", heads[1]);
    let r = audit::verify_file(&[&path], Some(&anchor2));
    let p = r
        .problem
        .clone()
        .expect("an anchor before the files must not pass");
    assert_eq!((p.kind, p.seq), (ProblemKind::AnchorNotInFiles, Some(2)));
    assert!(
        p.message
            .contains("the anchored record seq 2 is not in the files; the chain starts at seq 5"),
        "{}",
        p.message
    );
    assert!(!r.anchor_checked);
    assert!(r.starts_mid_chain);
    assert!(
        r.notes().iter().any(|n| n.contains("mid-way at seq 5")),
        "{r:?}"
    );
    // The whole chain, or an anchor inside the files, is compared.
    let all = audit::chain_files(&path).unwrap();
    let r = audit::verify_file(&all, Some(&anchor2));
    assert!(
        r.is_ok() && r.anchor_checked && !r.starts_mid_chain,
        "{r:?}"
    );
    assert!(r.notes().is_empty());
    let r = audit::verify_file(&[&path], Some(&format!("5:{}", heads[4])));
    assert!(r.is_ok() && r.anchor_checked, "{r:?}");
}

/// C5: a huge environment is capped, and a record still too large is
/// written as a minimal record instead of failing after the replay use.
#[test]
fn oversized_records_are_written_minimal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let d = Decision::from_error(Error::new(
        Reason::PayloadArgumentsMismatch,
        "x".repeat(100_000),
    ));
    let ctx = RecordContext {
        environment: (0..100_000).map(|i| format!("VAR_{i:020}=v")).collect(),
        ..RecordContext::default()
    };
    let r = AuditRecord::from_decision(&d, &ctx);
    assert!(r.what.environment_truncated);
    assert!(r.what.environment.len() <= 1024);
    assert!(r.message.len() <= 4096);
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    log.append(r).unwrap();
    // 256 sites of 16 KiB: 4 MiB, beyond any cap of the record builder.
    let mut big = rec(2, DN);
    big.what.sites = Some(vec!["s".repeat(16 * 1024); 256]);
    big.message = "m".repeat(50_000);
    log.append(big).unwrap();
    let l = lines(&path);
    assert_eq!(l.len(), 2);
    assert!(l.iter().all(|x| x.len() <= audit::MAX_RECORD_BYTES));
    let shown = audit::show(&[&path], &Filter::default()).unwrap();
    let m = &shown.records[1].record;
    assert!(m.message.starts_with("minimal record"), "{}", m.message);
    assert_eq!(m.who.end_entity.as_deref(), Some(DN));
    assert_eq!(m.what.job_id, Some(format!("{:032x}", 2)));
    assert_eq!(m.what.manifest_sha256, Some(format!("{:064x}", 2)));
    assert_eq!((m.seq, m.outcome.as_str()), (2, "permit"));
    assert!(m.what.sites.is_none());
    assert!(audit::verify_file(&[&path], None).is_ok());
}

/// H1: a lock held by someone else makes the append fail after the lock
/// timeout instead of hanging; the lock file is private.
#[test]
fn a_held_lock_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let lock_path = dir.path().join("audit.jsonl.lock");
    // A lock file left 0640 by an older version is tightened.
    fs::write(&lock_path, "").unwrap();
    fs::set_permissions(&lock_path, fs::Permissions::from_mode(0o640)).unwrap();
    let opts = AuditOptions {
        lock_timeout: Duration::from_millis(300),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    let mode = fs::metadata(&lock_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let holder = fs::File::open(&lock_path).unwrap();
    holder.lock_shared().unwrap();
    let start = Instant::now();
    let e = log.append(rec(1, DN)).unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable, "{e}");
    assert!(e.message.contains("still held"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(holder);
    log.append(rec(1, DN)).unwrap();
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// C3: symbolic links, files of other owners and an open directory are
/// refused, for the log, the lock file and the newest rotated file.
#[test]
fn links_foreign_owners_and_open_directories_are_refused() {
    let refused = |path: &Path, what: &str| {
        let r = AuditLog::open(path, AuditOptions::default()).and_then(|l| l.append(rec(1, DN)));
        let e = r.expect_err(what);
        assert_eq!(e.reason, Reason::AuditUnavailable, "{what}: {e}");
        e.message
    };
    let dir = tempfile::tempdir().unwrap();
    // A symbolic link as the log, and as the lock file.
    let target = dir.path().join("elsewhere");
    fs::write(&target, "").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let d1 = dir.path().join("d1");
    fs::create_dir(&d1).unwrap();
    std::os::unix::fs::symlink(&target, d1.join("audit.jsonl")).unwrap();
    refused(&d1.join("audit.jsonl"), "symlinked log");
    let d2 = dir.path().join("d2");
    fs::create_dir(&d2).unwrap();
    std::os::unix::fs::symlink(&target, d2.join("audit.jsonl.lock")).unwrap();
    refused(&d2.join("audit.jsonl"), "symlinked lock");
    // A group- or world-writable directory (even sticky, like /tmp).
    let d3 = dir.path().join("d3");
    fs::create_dir(&d3).unwrap();
    fs::set_permissions(&d3, fs::Permissions::from_mode(0o1777)).unwrap();
    let m = refused(&d3.join("audit.jsonl"), "open directory");
    assert!(m.contains("writable by group or others"), "{m}");
    // The newest rotated file as a symbolic link: the chain head is not read
    // through it.
    let d4 = dir.path().join("d4");
    fs::create_dir(&d4).unwrap();
    {
        let log = AuditLog::open(d4.join("audit.jsonl"), AuditOptions::default()).unwrap();
        log.append(rec(1, DN)).unwrap();
    }
    fs::rename(d4.join("audit.jsonl"), dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("moved"), d4.join("audit.jsonl.1")).unwrap();
    refused(&d4.join("audit.jsonl"), "symlinked rotated file");
    if !is_root() {
        eprintln!("not root: the foreign-owner cases need chown");
        return;
    }
    // A log, or a lock file, owned by another user.
    let d5 = dir.path().join("d5");
    fs::create_dir(&d5).unwrap();
    fs::write(d5.join("audit.jsonl"), "").unwrap();
    std::os::unix::fs::chown(d5.join("audit.jsonl"), Some(NOBODY), None).unwrap();
    let m = refused(&d5.join("audit.jsonl"), "foreign log");
    assert!(m.contains("owned by uid 65534"), "{m}");
    let d6 = dir.path().join("d6");
    fs::create_dir(&d6).unwrap();
    fs::write(d6.join("audit.jsonl.lock"), "").unwrap();
    std::os::unix::fs::chown(d6.join("audit.jsonl.lock"), Some(NOBODY), None).unwrap();
    refused(&d6.join("audit.jsonl"), "foreign lock");
    // A directory owned by another user.
    let d7 = dir.path().join("d7");
    fs::create_dir(&d7).unwrap();
    std::os::unix::fs::chown(&d7, Some(NOBODY), None).unwrap();
    let m = refused(&d7.join("audit.jsonl"), "foreign directory");
    assert!(m.contains("owned by uid 65534"), "{m}");
}

/// L2: the rotated suffix cannot wrap or saturate onto an existing file.
#[test]
fn rotation_suffix_overflow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let opts = AuditOptions {
        max_file_bytes: 1,
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    log.append(rec(1, DN)).unwrap();
    let last = dir.path().join(format!("audit.jsonl.{}", u64::MAX));
    fs::write(&last, "kept\n").unwrap();
    let e = log.append(rec(2, DN)).unwrap_err();
    assert_eq!(e.reason, Reason::AuditUnavailable, "{e}");
    assert_eq!(fs::read_to_string(&last).unwrap(), "kept\n");
    assert_eq!(lines(&path).len(), 1);
}

/// Issue 13 §4: a log that does not exist, or that holds no record, is not
/// an intact chain; an emptied log checked against an anchor names the
/// file; a FIFO in place of the log is refused, not waited for.
#[test]
fn a_missing_empty_or_special_log_is_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    // (A missing directory is an error of chain_files already.)
    assert!(audit::chain_files(dir.path().join("none/audit.jsonl")).is_err());
    let missing = dir.path().join("audit.jsonl");
    let files = audit::chain_files(&missing).unwrap();
    let p = audit::verify_file(&files, None).problem.unwrap();
    assert_eq!(p.kind, ProblemKind::Empty, "{}", p.message);
    let (path, head) = write_log(dir.path(), 3);
    fs::write(&path, "").unwrap();
    for anchor in [None, Some(format!("3:{head}"))] {
        let p = audit::verify_file(&[&path], anchor.as_deref())
            .problem
            .unwrap();
        assert_eq!(p.kind, ProblemKind::Empty, "{}", p.message);
        assert_eq!(p.file, path);
        assert!(p.message.contains("audit.jsonl"), "{}", p.message);
    }
    let fifo = dir.path().join("fifo.jsonl");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let p = audit::verify_file(&[&fifo], None).problem.unwrap();
    assert_eq!(p.kind, ProblemKind::Unreadable, "{}", p.message);
    assert!(p.message.contains("FIFO"), "{}", p.message);
}

/// Issue 13 §4: when a record cannot be written (a torn log, a full disk),
/// syslog still hears of the decision: `head="unrecorded"` and the note
/// that says what was decided and whether the use was spent.
#[test]
fn syslog_hears_of_a_decision_the_log_could_not_record() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let listener = UnixDatagram::bind(&sock_path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let path = dir.path().join("audit.jsonl");
    let opts = AuditOptions {
        syslog: Some(SyslogOptions {
            socket: sock_path.clone(),
            ..SyslogOptions::default()
        }),
        ..AuditOptions::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    log.append(rec(1, DN)).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, b"{\"torn\":").unwrap();
    let record = rec(2, DN);
    assert!(log.append(record.clone()).is_err());
    log.report_unrecorded(
        &record,
        "the decision reached was permit, not recorded; its use was spent",
    );
    let msgs = recv_all(&listener);
    let last = msgs.last().unwrap();
    assert_eq!(sd_param(last, "head"), "unrecorded", "{last}");
    assert!(
        last.ends_with(
            "NOT RECORDED: the decision reached was permit, not recorded; its use was spent"
        ),
        "{last}"
    );
}

//! `jobseal audit verify` and `jobseal audit show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jobseal_admit::audit::{self, Filter};
use jobseal_verify::UnixTime;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the hash chain: report the first broken, reordered, missing or
    /// malformed record, and against an anchor a truncated tail.
    /// Exit 0: intact; 1: a problem; 2: usage error.
    Verify {
        /// The audit log (its rotated predecessors are found beside it).
        file: PathBuf,
        /// A chain head from syslog (`SEQ:HASH` or `HASH`).
        #[arg(long, value_name = "HASH")]
        anchor: Option<String>,
    },
    /// Print the records that match (who, what, where, when).
    Show {
        /// The audit log.
        file: PathBuf,
        /// End-entity DN, exactly.
        #[arg(long)]
        dn: Option<String>,
        /// Job id.
        #[arg(long)]
        job: Option<String>,
        /// At or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// `permit` or `deny`.
        #[arg(long)]
        outcome: Option<String>,
        /// One JSON record per line (as stored).
        #[arg(long)]
        json: bool,
    },
}

fn time(s: &Option<String>) -> Result<Option<UnixTime>, String> {
    s.as_deref()
        .map(|t| UnixTime::parse_rfc3339(t).ok_or_else(|| format!("{t:?} is not an RFC 3339 time")))
        .transpose()
}

pub fn run(args: &AuditArgs) -> ExitCode {
    match &args.command {
        AuditCommand::Verify { file, anchor } => {
            let files = match audit::chain_files(file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("jobseal: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let report = audit::verify_file(&files, anchor.as_deref());
            for note in report.notes() {
                println!("audit: note: {note}");
            }
            match &report.problem {
                None => {
                    println!(
                        "audit: intact: {} record(s) in {} file(s), seq {}..{}, head {}{}",
                        report.records,
                        report.files,
                        report.first_seq.unwrap_or(0),
                        report.last_seq.unwrap_or(0),
                        report.head.as_deref().unwrap_or("-"),
                        if report.anchor_checked {
                            ", anchor matches"
                        } else {
                            ""
                        }
                    );
                    ExitCode::SUCCESS
                }
                Some(p) => {
                    let at = if p.file.as_os_str().is_empty() {
                        String::new()
                    } else {
                        format!(" at {}:{}", p.file.display(), p.line)
                    };
                    println!(
                        "audit: {:?}{at}{}: {}",
                        p.kind,
                        p.seq.map(|s| format!(" (record {s})")).unwrap_or_default(),
                        p.message
                    );
                    ExitCode::FAILURE
                }
            }
        }
        AuditCommand::Show {
            file,
            dn,
            job,
            since,
            until,
            outcome,
            json,
        } => {
            let filter = match (time(since), time(until)) {
                (Ok(since), Ok(until)) => Filter {
                    dn: dn.clone(),
                    job_id: job.clone(),
                    since,
                    until,
                    outcome: outcome.clone(),
                },
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("jobseal: {e}");
                    return ExitCode::from(2);
                }
            };
            let shown = audit::chain_files(file).and_then(|files| audit::show(&files, &filter));
            match shown {
                Ok(result) => {
                    for s in &result.records {
                        let r = &s.record;
                        if *json {
                            println!("{}", serde_json::to_string(r).unwrap_or_default());
                        } else {
                            println!(
                                "{} {} {:<7} {} job {} {} {}",
                                r.time,
                                r.seq,
                                r.outcome,
                                r.reason.as_deref().unwrap_or("-"),
                                r.what.job_id.as_deref().unwrap_or("-"),
                                r.who.end_entity.as_deref().unwrap_or("-"),
                                r.what.executable.as_deref().unwrap_or("-"),
                            );
                        }
                    }
                    for (f, line) in &result.malformed {
                        eprintln!(
                            "jobseal: {}:{line} is not a record: run `jobseal audit verify`",
                            f.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("jobseal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

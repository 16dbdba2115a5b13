//! Checks made on every job of a task before anything is signed, so that a
//! batch reports all its problems at once and no job is sealed that the
//! site is certain to refuse or fail.
//!
//! Each problem is one line that names the job file, the field and what is
//! wrong: `w25.toml: the input "in25.txt" in25.txt cannot be read: …`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::IssueError;
use crate::credential::IssuerCheck;
use crate::job::JobSpec;

/// How much a problem stops a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Sealed, with a warning: some sites refuse the job, others do not (a
    /// VO the credential does not prove is refused only where the site
    /// checks VOs).
    Warning,
    /// Not sealed unless forced (`--force`): the site is certain to fail it
    /// (an executable it cannot execute), but the user may know better.
    Refusal,
    /// Never sealed: a file that cannot be read, a job file that is wrong.
    Error,
}

/// What is wrong with one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// One line naming the job file, the field and what is wrong.
    pub message: String,
    pub severity: Severity,
}

impl Problem {
    /// A problem that keeps the job from being sealed.
    pub fn error(message: String) -> Self {
        Self {
            message,
            severity: Severity::Error,
        }
    }

    /// Whether it keeps the job from being sealed, forced or not.
    pub fn blocks(&self, force: bool) -> bool {
        match self.severity {
            Severity::Warning => false,
            Severity::Refusal => !force,
            Severity::Error => true,
        }
    }
}

/// Whether `path` can be hashed: present, readable, a regular file. Opened
/// as the sealing opens it (without blocking on a FIFO).
fn unreadable(job: &JobSpec, what: &str, path: &Path) -> Option<Problem> {
    let e = jobseal_core::files::open_regular(path).err()?;
    Some(Problem::error(format!(
        "{}: {what} {} cannot be read: {e}",
        job.source.display(),
        path.display()
    )))
}

/// The job's files: every one that cannot be read, in the job's order.
pub fn file_problems(job: &JobSpec) -> Vec<Problem> {
    let mut out: Vec<Problem> = unreadable(job, "the executable", &job.executable)
        .into_iter()
        .collect();
    for (name, path) in &job.inputs {
        out.extend(unreadable(job, &format!("the input {name:?}"), path));
    }
    if out.is_empty()
        && let Some(p) = not_executable(job)
    {
        out.push(p);
    }
    out
}

/// An executable without an execute bit fails at the site with 126.
fn not_executable(job: &JobSpec) -> Option<Problem> {
    let mode = std::fs::metadata(&job.executable)
        .ok()?
        .permissions()
        .mode();
    (mode & 0o111 == 0).then(|| Problem {
        severity: Severity::Refusal,
        message: format!(
            "{}: the executable {} is not executable (mode {:04o}), so the site cannot run it (exit 126): \
             run chmod +x {}",
            job.source.display(),
            job.executable.display(),
            mode & 0o7777,
            job.executable.display()
        ),
    })
}

/// The job's VO against the credential's VOMS attributes: a job of VO
/// `atlas` needs a proxy with `atlas` attributes at every site that checks
/// VOs (`policy.vo-not-accepted`); a site that does not check VOs runs it,
/// so this is a warning.
pub fn vo_problem(job: &JobSpec, issuer: &IssuerCheck) -> Option<Problem> {
    let vo = job.vo.as_deref()?;
    if issuer.voms.iter().any(|ac| ac.vo == vo) {
        return None;
    }
    let carried: Vec<&str> = issuer.voms.iter().map(|ac| ac.vo.as_str()).collect();
    let has = if carried.is_empty() {
        "no VOMS attributes".to_string()
    } else {
        format!("VOMS attributes of {} only", carried.join(", "))
    };
    Some(Problem {
        severity: Severity::Warning,
        message: format!(
            "{}: vo = {vo:?}, but the credential carries {has}, so sites that check VOs refuse the job \
             (policy.vo-not-accepted): seal with --voms {vo} (voms= in Python), or make a proxy \
             with voms-proxy-init -voms {vo}",
            job.source.display()
        ),
    })
}

/// One error carrying every problem, one per line (the CLI prints them
/// all; Python raises it).
pub fn combined(problems: &[Problem]) -> IssueError {
    let lines: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    IssueError::Job(lines.join("\n"))
}

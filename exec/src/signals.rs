//! Run the payload as our child and forward signals to it (gLExec's linger
//! mode): a signal sent to the launcher's pid alone must reach the payload,
//! not kill the launcher and leave the payload orphaned.

use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process, waitid};
use signal_hook::consts::signal::{
    SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGXCPU,
};
use signal_hook::iterator::Signals;

/// gLExec's set: the termination signals, the user signals, and the batch
/// system's time limits (SIGALRM, SIGXCPU).
pub const FORWARDED: [i32; 8] = [
    SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU,
];

/// Where a caught signal goes.
#[derive(Debug)]
enum Target {
    /// Caught before the payload existed: sent as soon as it does.
    NotYet(Vec<Signal>),
    Running(Pid),
    /// Exited (not yet reaped): its pid must not be signalled any more.
    Gone,
}

/// Whether all of `pid`'s uids (real, effective, saved, filesystem) are
/// `uid`, or it is the trampoline still switching (all 0).
pub fn runs_only_as(pid: Pid, uid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw_nonzero()))
    else {
        return false;
    };
    jobseal_core::procstatus::ids(&status, "Uid:")
        .is_some_and(|ids| ids == [uid; 4] || ids == [0; 4])
}

/// Why the payload could not be run to its end.
#[derive(Debug)]
pub enum RunError {
    /// Forwarding could not be set up; nothing ran.
    Setup(String),
    /// The spawn failed (exec, or the identity change in the child).
    Spawn(std::io::Error),
    /// The payload ran, but its status could not be had.
    Wait(String),
}

/// Spawn `cmd`, forward [`FORWARDED`] to it until it exits, and return its
/// status. Nothing runs unless forwarding is in place first.
/// `forward_as`: the (uid, gid) of the payload in identity-switching mode.
/// The forwarder stays root (a thread with the target's uids would let any
/// process of the target account signal or re-limit the whole launcher),
/// but it forwards only while all four of the payload's uids are the
/// target's: a payload that runs a setuid program does not become
/// signalable by the pilot through the launcher.
// The local launcher reports on its own stderr (gLExec's contract).
#[allow(clippy::print_stderr)]
pub fn run_forwarding(
    cmd: &mut Command,
    forward_as: Option<(u32, u32)>,
) -> Result<ExitStatus, RunError> {
    // Catch before spawning, so no signal falls between spawn and forwarding.
    let mut signals =
        Signals::new(FORWARDED).map_err(|e| RunError::Setup(format!("catching signals: {e}")))?;
    let handle = signals.handle();
    let target = Arc::new(Mutex::new(Target::NotYet(Vec::new())));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let forwarder = {
        let target = Arc::clone(&target);
        std::thread::Builder::new()
            .name("forward-signals".into())
            .spawn(move || {
                let _ = ready_tx.send(Ok(()));
                for raw in signals.forever() {
                    let Some(signal) = Signal::from_named_raw(raw) else {
                        continue;
                    };
                    let mut t = target.lock().unwrap_or_else(PoisonError::into_inner);
                    match &mut *t {
                        Target::NotYet(pending) => pending.push(signal),
                        // The payload may have exited and not been reaped
                        // yet: ESRCH is not an error then.
                        Target::Running(pid) => {
                            if forward_as.is_none_or(|(uid, _)| runs_only_as(*pid, uid)) {
                                let _ = kill_process(*pid, signal);
                            }
                        }
                        Target::Gone => {}
                    }
                }
            })
            .map_err(|e| {
                handle.close();
                RunError::Setup(format!("starting the signal thread: {e}"))
            })?
    };
    let stop = |forwarder: std::thread::JoinHandle<()>| {
        handle.close();
        // The thread never panics; if it somehow did, there is nothing to undo.
        let _ = forwarder.join();
    };

    // Nothing runs unless the forwarder holds the right credentials.
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(m)) => {
            stop(forwarder);
            return Err(RunError::Setup(m));
        }
        Err(_) => {
            stop(forwarder);
            return Err(RunError::Setup("the signal thread ended".into()));
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            stop(forwarder);
            return Err(RunError::Spawn(e));
        }
    };
    let pid = Pid::from_child(&child);
    {
        let mut t = target.lock().unwrap_or_else(PoisonError::into_inner);
        if let Target::NotYet(pending) = &*t {
            for signal in pending {
                let _ = kill_process(pid, *signal);
            }
        }
        *t = Target::Running(pid);
    }

    // Wait without reaping: until forwarding stops, the pid stays the
    // payload's and cannot be reused by an unrelated process.
    let waited = loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(Errno::INTR) => continue,
            other => break other,
        }
    };
    *target.lock().unwrap_or_else(PoisonError::into_inner) = Target::Gone;
    stop(forwarder);
    if let Err(e) = waited {
        // Still reap it below (wait blocks until it exits), but say why
        // forwarding stopped early.
        eprintln!("internal.error: waiting for the payload: {e}");
    }
    child
        .wait()
        .map_err(|e| RunError::Wait(format!("waiting for the payload: {e}")))
}

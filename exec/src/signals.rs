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
/// `forward_as`: the (uid, gid) whose rights the forwarding thread takes
/// before it forwards anything, so that a privileged launcher never signals
/// with root's rights (a payload that runs a setuid program must not become
/// signalable by the pilot through the launcher).
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
                let switched = forward_as.map_or(Ok(()), |(uid, gid)| {
                    use rustix::process::{Gid, Uid};
                    let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
                    rustix::thread::set_thread_groups(&[g])
                        .and_then(|()| rustix::thread::set_thread_res_gid(g, g, g))
                        .and_then(|()| rustix::thread::set_thread_res_uid(u, u, u))
                        .map_err(|e| format!("the signal thread cannot become uid {uid}: {e}"))
                });
                let failed = switched.is_err();
                let _ = ready_tx.send(switched);
                if failed {
                    return;
                }
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
                            let _ = kill_process(*pid, signal);
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

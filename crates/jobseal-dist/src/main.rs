//! `jobseal-dist OUT_DIR`: the generated files of the packages (scripts/dist).
//!
//! - `OUT_DIR/man/man1/jobseal.1` and one page per subcommand
//!   (`jobseal-verify.1`, `jobseal-audit-verify.1`, …), from the clap
//!   definitions of `jobseal` (`jobseal_cli::command`), with `clap_mangen`;
//! - `OUT_DIR/man/man8/jobseal-exec.8`: the launcher has no options to parse
//!   (spec §14.2), so its page is a clap command written here for the page
//!   alone, with the environment, files and exit codes of `docs/jobseal-exec.md`;
//! - `OUT_DIR/man/man8/jobseal-launchd.8`: the launch service (spec §14.14),
//!   whose `[--config FILE]` and `--version` are parsed by hand, likewise a
//!   clap command written here for its page;
//! - `OUT_DIR/completions/{jobseal.bash,_jobseal,jobseal.fish}`, with
//!   `clap_complete`.
//!
//! A separate crate, so that building `jobseal` never builds these.
// A generator run by a script reports on stderr.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: jobseal-dist OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(written) => {
            for p in written {
                eprintln!("jobseal-dist: wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jobseal-dist: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let man1 = out.join("man/man1");
    let man8 = out.join("man/man8");
    let comp = out.join("completions");
    for d in [&man1, &man8, &comp] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }

    let mut cli = jobseal_cli::command();
    cli.build();
    man_pages(&cli, "jobseal", &man1, &mut written)?;
    let exec = exec_command();
    write_man(
        &exec,
        &man8.join("jobseal-exec.8"),
        "8",
        EXEC_SECTIONS,
        &mut written,
    )?;
    write_man(
        &launchd_command(),
        &man8.join("jobseal-launchd.8"),
        "8",
        LAUNCHD_SECTIONS,
        &mut written,
    )?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = jobseal_cli::command();
        let p = clap_complete::generate_to(shell, &mut cmd, "jobseal", &comp)
            .map_err(|e| format!("{shell} completion: {e}"))?;
        written.push(p);
    }
    Ok(written)
}

/// A page for `cmd` named `name`, then one for each subcommand
/// (`name-sub`), recursively; clap's own `help` subcommand gets none.
fn man_pages(
    cmd: &Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), String> {
    // The page's title and NAME are the dashed name; its synopsis keeps the
    // words the user types (`jobseal audit verify`), which build() set.
    // (clap without its `string` feature names commands with &'static str;
    // a generator that runs once can leak a few.)
    let page = cmd.clone().name(&*name.to_string().leak());
    write_man(&page, &dir.join(format!("{name}.1")), "1", "", written)?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        man_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

fn write_man(
    cmd: &Command,
    path: &Path,
    section: &str,
    extra_roff: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(section)
        .source(concat!("jobseal ", env!("CARGO_PKG_VERSION")))
        .manual("jobseal")
        .render(&mut buf)
        .and_then(|()| buf.write_all(extra_roff.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, buf).map_err(|e| format!("{}: {e}", path.display()))?;
    written.push(path.to_path_buf());
    Ok(())
}

/// `jobseal-exec`, described for its man page only: the launcher itself
/// parses no options (spec §14.2).
fn exec_command() -> Command {
    Command::new("jobseal-exec")
        .version(jobseal_cli::VERSION)
        .about("gLExec-compatible launcher: admits a sealed job, then runs exactly what was admitted")
        .long_about(
            "jobseal-exec takes gLExec's place on a worker node, with gLExec's contract. The \
             job named by GLEXEC_CLIENT_CERT is admitted (chain, binding, manifest and payload \
             checks, site policy, replay record, audit record) before anything runs, and what \
             runs is exactly the bytes that were hashed. With mode = \"service\" in \
             /etc/jobseal/exec.toml, jobseal-exec is an unprivileged client of the site's \
             launch service, jobseal-launchd(8): it opens the bundle, the executable (copied \
             into a sealed memfd), the inputs and the source proxy with the pilot's own \
             rights and hands them to the service, which admits the job and runs the payload \
             under the local account the verified user maps to, in a fresh working directory \
             holding the verified inputs, inside the pilot's batch cgroup. In logging-only \
             mode (as shipped) it admits the job itself and runs the payload under the \
             caller's uid, with a replay database and audit log the caller owns. The setuid \
             identity-switching launcher is retired: installed setuid root, or with \
             mode = \"identity-switching\", it exits 202 and runs nothing. It never falls \
             back to running the payload anyway.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .override_usage("GLEXEC_CLIENT_CERT=BUNDLE jobseal-exec COMMAND [ARGS...]\n       jobseal-exec --version")
        .arg(
            Arg::new("COMMAND")
                .required(true)
                .help("The signed executable: a name with `/` is a path, any other is looked up in PATH. An argument starting with `-` is refused (201), whatever it is, except a lone --version."),
        )
        .arg(
            Arg::new("ARGS")
                .action(ArgAction::Append)
                .num_args(0..)
                .help("The signed arguments, compared with the manifest verbatim and passed to the payload."),
        )
}

/// The sections of `jobseal-exec.8` after clap_mangen's (roff).
const EXEC_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
\fBGLEXEC_CLIENT_CERT\fR
The job's bundle: a regular file, not reached through a final symbolic link. In logging-only mode it must also be owned by the caller and writable by nobody else.
.TP
\fBGLEXEC_SOURCE_PROXY\fR, \fBGLEXEC_TARGET_PROXY\fR
A proxy to copy for the payload (mode 0600), and where. Through the launch service the copy goes into the payload's working directory only, under a plain name that is not an input's [x509up], and the source must be a valid proxy chain of the admitted user to a trusted CA, holding exactly its own private key. In logging-only mode the destination is any absolute path [/tmp/x509up_u<uid>].
.TP
\fBJOBSEAL_EXEC_CONFIG\fR
Another configuration file; honoured only when jobseal-exec is not privileged (logging-only mode, and the client of service mode).
.PP
Every other variable is ignored for the launcher's own decisions (X509_CERT_DIR, X509_VOMS_DIR and JOBSEAL_POLICY included). The payload's environment is cleared except TZ, X509_USER_PROXY (never the pilot's through the launch service), GLEXEC_* and the configured env_whitelist; PATH is reset to /usr/local/bin:/usr/bin:/bin; then the user's signed environment, HOME, USER, LOGNAME, JOBSEAL_WORKDIR and the copied proxy's X509_USER_PROXY are set.
.SH FILES
.TP
\fB/etc/jobseal/exec.toml\fR
The configuration (mode, socket, policy, CA and VOMS directories, users, mappings, work_root, limits). Root-owned and writable by nobody else; readable by the pilots in service mode.
.TP
\fB/run/jobseal/launch.sock\fR
The launch service's socket (service mode; the configuration's socket).
.TP
\fB/etc/jobseal/policy.toml\fR
The site policy (see \fBjobseal-admit\fR(1)).
.TP
\fB/var/lib/jobseal\fR, \fB/var/log/jobseal\fR
The replay database and the audit log of the launch service.
.TP
\fB/var/lib/jobseal/work\fR
The default work root of the launch service (mode 0711, root-owned).
.SH EXIT STATUS
The payload's own status when it ran (128+\fIs\fR if signal \fIs\fR killed it); 201 client error (usage, credential, proxy, request, unsealed executable); 202 internal or configuration error (service unavailable or busy, working directory, cgroup); 203 authorisation error (denied, caller not allowed, not mapped); 204 the payload itself returned 201 to 204; 126 the command could not be executed. Every exit other than the payload's writes one line \fIreason.code: message\fR on stderr.
.SH LAUNCH SERVICE
To run payloads under the users' mapped accounts, set mode = "service", users = [...] and a mapping in /etc/jobseal/exec.toml, then start the service: systemctl enable --now jobseal-launchd (see \fBjobseal-launchd\fR(8)). jobseal-exec stays mode 0755 and becomes the service's client; a setuid jobseal-exec exits 202 and runs nothing. If the service cannot be reached the client exits 202 (exec.service-unavailable): it never falls back to another mode.
.SH SETUID INSTALLATION (RETIRED)
The identity-switching mode of a setuid-root jobseal-exec is retired: a jobseal-exec installed setuid root, or configured with mode = "identity-switching", exits 202 (config.invalid) with one line naming the fix, and runs nothing; run by root it refuses every mode. To move over, set mode = "service", start jobseal-launchd, and remove the setuid bit:
.PP
.nf
    dpkg-statoverride --remove /usr/sbin/jobseal-exec
    chmod 0755 /usr/sbin/jobseal-exec
.fi
.PP
(on EL: chmod 0755 /usr/sbin/jobseal-exec, and drop the rule of your configuration management). Mapping, pools, policy and directories stay as they are.
.SH SEE ALSO
\fBjobseal-launchd\fR(8), \fBjobseal\fR(1), \fBjobseal-admit\fR(1), /usr/share/doc/jobseal-exec/jobseal-exec.md, spec/jobseal.md section 14.
"#;

/// `jobseal-launchd`, described for its man page only: it parses its two
/// arguments by hand (`exec/src/bin/jobseal-launchd.rs`).
fn launchd_command() -> Command {
    Command::new("jobseal-launchd")
        .version(jobseal_cli::VERSION)
        .about("the site's launch service: admits sealed jobs for jobseal-exec and runs them under the mapped accounts")
        .long_about(
            "jobseal-launchd is the root service that jobseal-exec(8) is the client of when \
             /etc/jobseal/exec.toml says mode = \"service\". It listens on a Unix socket; each \
             pilot's jobseal-exec connects, and hands over the descriptors it opened with the \
             pilot's own rights (standard streams, the executable sealed in a memfd, the \
             inputs, the source proxy). The service identifies the caller by the kernel's \
             word (SO_PEERCRED, a pidfd, the caller's cgroup v2), serves only the accounts in \
             `users`, and checks everything that can fail for a reason knowable in advance \
             before the job's use is spent: the sealed executable, the credential, a fresh \
             working directory with the inputs copied from the descriptors, the payload, the \
             mapping and the target account, the working directory's reachability, and the \
             source proxy as a credential. It then admits the job (site policy, replay record, \
             audit record), and starts the payload itself: an environment built from nothing, \
             the mapped account's ids and groups, the [limits] of the configuration, a new \
             session, the caller's cgroup. It forwards the signals the client receives, and \
             kills the payload's process group if the client goes. It runs in the \
             foreground and logs its start-up on stderr.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .override_usage("jobseal-launchd [--config FILE]\n       jobseal-launchd --version")
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("The configuration file [default: /etc/jobseal/exec.toml]. It must be root-owned and writable by nobody else, and say mode = \"service\" and a non-empty users."),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Print `jobseal-launchd VERSION (commit COMMIT)` and exit 0; alone only."),
        )
}

/// The sections of `jobseal-launchd.8` after clap_mangen's (roff).
const LAUNCHD_SECTIONS: &str = r#".SH CONFIGURATION
The service reads /etc/jobseal/exec.toml (or --config FILE) once, at start; restart it after a change (the site policy and the grid-mapfile are read at each launch). Besides the fields of \fBjobseal-exec\fR(8):
.TP
\fBmode = "service"\fR
Required.
.TP
\fBusers\fR
The pilot accounts served, as /etc/passwd names or numeric uids; required and not empty. Any other caller gets 203 (exec.caller-not-allowed), not recorded.
.TP
\fBsocket\fR, \fBsocket_group\fR, \fBsocket_mode\fR
The socket [/run/jobseal/launch.sock], its group (a group of /etc/group) [root's] and its mode as octal text ["0666"]. The service replaces a stale socket at start.
.TP
\fB[limits]\fR
The payload's resource limits: cpu, fsize, data, stack, core, nproc, nofile, memlock, as, each a number (soft and hard) or "unlimited". A limit not listed is the service's own, never the pilot's.
.TP
\fBwork_root\fR
Where working directories are made [/var/lib/jobseal/work]: root-owned, not writable by group or others, and every directory above it searchable by the mapped accounts (mode 0711), else each launch is refused with 202 (exec.workdir) before its use is spent.
.SH SYSTEMD
The package installs jobseal-launchd.service, not enabled. Enable and start it with
.PP
.nf
    systemctl enable --now jobseal-launchd
.fi
.PP
It runs as root with RuntimeDirectory=jobseal (0755), NoNewPrivileges=yes, ProtectSystem=full (the gridmapdir /etc/grid-security/gridmapdir kept writable), PrivateTmp=no, Restart=on-failure and LimitNOFILE=65536. Payloads are its children and inherit these settings; change them with systemctl edit jobseal-launchd. There is no socket activation. Stopping or restarting the service ends the supervision of the payloads it runs: restart it when the node is drained.
.SH EXIT STATUS
It runs until it is stopped. 1: it could not start (not root, descriptors other than 0-2 inherited, an invalid configuration, a socket it cannot bind), with one line on stderr; 2: a usage error. Start it with descriptors 0-2 only, as systemd does.
.SH FILES
.TP
\fB/etc/jobseal/exec.toml\fR
The configuration.
.TP
\fB/run/jobseal/launch.sock\fR
The default socket.
.TP
\fB/var/lib/jobseal\fR, \fB/var/log/jobseal\fR
The replay database and the audit log (unless state_dir or the policy says otherwise).
.TP
\fB/var/lib/jobseal/work\fR
The default work root.
.TP
\fB/usr/lib/systemd/system/jobseal-launchd.service\fR
The systemd unit.
.SH SEE ALSO
\fBjobseal-exec\fR(8), \fBjobseal-admit\fR(1), \fBsystemd.exec\fR(5), /usr/share/doc/jobseal-exec/jobseal-exec.md, spec/jobseal.md section 14.14.
"#;

//! `jobseal-dist OUT_DIR`: the generated files of the packages (scripts/dist).
//!
//! - `OUT_DIR/man/man1/jobseal.1` and one page per subcommand
//!   (`jobseal-verify.1`, `jobseal-audit-verify.1`, …), from the clap
//!   definitions of `jobseal` (`jobseal_cli::command`), with `clap_mangen`;
//! - `OUT_DIR/man/man8/jobseal-exec.8`: the launcher has no options to parse
//!   (spec §14.2), so its page is a clap command written here for the page
//!   alone, with the environment, files and exit codes of `docs/jobseal-exec.md`;
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
            "jobseal-exec takes gLExec's place on a worker node. It admits the job named by \
             GLEXEC_CLIENT_CERT (chain, binding, manifest and payload checks, site policy, \
             replay record, audit record) before anything runs, then runs exactly the bytes \
             it hashed: in logging-only mode under the caller's uid, or, installed setuid \
             root, in identity-switching mode under the local account the verified user \
             maps to, in a fresh working directory holding the verified inputs. It never \
             falls back to running the payload anyway.",
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
The job's bundle: a regular file (not a symbolic link) owned by the caller and writable by nobody else.
.TP
\fBGLEXEC_SOURCE_PROXY\fR, \fBGLEXEC_TARGET_PROXY\fR
A proxy to copy for the payload, and where (written as the target user, mode 0600).
.TP
\fBJOBSEAL_EXEC_CONFIG\fR
Another configuration file; honoured only when the launcher is not privileged.
.PP
Every other variable is ignored for the launcher's own decisions (X509_CERT_DIR, X509_VOMS_DIR and JOBSEAL_POLICY included). The payload's environment is cleared except TZ, X509_USER_PROXY, GLEXEC_* and the configured env_whitelist; PATH is reset to /usr/local/bin:/usr/bin:/bin.
.SH FILES
.TP
\fB/etc/jobseal/exec.toml\fR
The configuration (mode, policy, CA and VOMS directories, users, mappings, work_root). Privileged, it must be root-owned and writable by nobody else.
.TP
\fB/etc/jobseal/policy.toml\fR
The site policy (see \fBjobseal-admit\fR(1)).
.TP
\fB/var/lib/jobseal\fR, \fB/var/log/jobseal\fR
The replay database and the audit log of a privileged launcher.
.TP
\fB/var/lib/jobseal/work\fR
The default work root of identity-switching mode (mode 0711, root-owned).
.SH EXIT STATUS
The payload's own status when it ran; 201 client error (usage, credential, descriptor); 202 internal or configuration error; 203 authorisation error (denied, not mapped); 204 the payload itself returned 201 to 204; 126 the command could not be executed. Every exit other than the payload's writes one line \fIreason.code: message\fR on stderr.
.SH SETUID INSTALLATION
The package installs /usr/sbin/jobseal-exec mode 0755, so it runs in logging-only mode. To switch identities, set mode = "identity-switching" and users = [...] in /etc/jobseal/exec.toml, then make the binary setuid root with a statoverride that survives upgrades:
.PP
.nf
    dpkg-statoverride --update --add root root 4755 /usr/sbin/jobseal-exec
.fi
.PP
(on EL: chmod 4755 /usr/sbin/jobseal-exec, or a %verify-aware configuration management rule). A privileged launcher configured for logging-only mode exits 202 and runs nothing.
.SH SEE ALSO
\fBjobseal\fR(1), \fBjobseal-admit\fR(1), /usr/share/doc/jobseal-exec/jobseal-exec.md, spec/jobseal.md section 14.
"#;

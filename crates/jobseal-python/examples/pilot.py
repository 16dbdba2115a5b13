#!/usr/bin/env python3
"""A pilot admits a sealed job with jobseal right before it launches the payload.

    pilot.py [--ca-dir DIR] [--voms-dir DIR] [--policy FILE] [--state-dir DIR]
             [--job-dir DIR] BUNDLE -- EXECUTABLE [ARGS...]

Exit status: the payload's, or 1 when jobseal denies the job, with one line
``reason.code: message`` on stderr (nothing is run, under any identity).

A real pilot builds one ``jobseal.Verifier`` at start-up and calls ``admit``
for every job it pulls. ``admit`` checks the payload's bytes on disk at that
moment; a pilot that lets the job's owner change the job directory between
admission and execution should use ``jobseal-exec`` instead (spec section 8.6).
"""

import argparse
import os
import subprocess
import sys
from typing import List, Optional

import jobseal


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ca-dir", help="default: $X509_CERT_DIR or /etc/grid-security/certificates")
    p.add_argument("--voms-dir", help="default: $X509_VOMS_DIR or /etc/grid-security/vomsdir")
    p.add_argument("--policy", help="site policy; default: $JOBSEAL_POLICY or /etc/jobseal/policy.toml")
    p.add_argument("--state-dir", help="replay database and audit log")
    p.add_argument("--job-dir", default=".", help="where the job's inputs are (default: .)")
    p.add_argument("bundle", help="the job bundle (GLEXEC_CLIENT_CERT)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- EXECUTABLE [ARGS...]")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the payload to run after --")

    # Admit and run the same file: an absolute path, not one PATH or the
    # payload's working directory could resolve differently.
    command = [os.path.abspath(command[0])] + command[1:]

    try:
        # from_env: what is not given comes from X509_CERT_DIR, X509_VOMS_DIR
        # and JOBSEAL_POLICY (refused if this process were setuid).
        verifier = jobseal.Verifier.from_env(
            ca_dir=args.ca_dir,
            voms_dir=args.voms_dir,
            policy=args.policy,
            state_dir=args.state_dir,
        )
    except jobseal.ConfigError as e:  # the site is misconfigured: run nothing
        print(f"pilot: {e}", file=sys.stderr)
        return 1

    decision = verifier.admit(args.bundle, command, job_dir=args.job_dir)
    if not decision.permitted:
        print(f"{decision.code}: {decision.message}", file=sys.stderr)
        return 1
    print(f"pilot: admitted job {decision.job_id} of {decision.dn}", file=sys.stderr)
    return subprocess.run(command, cwd=args.job_dir).returncode


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Seal the jobs of DIRAC-style JDL files before submitting them.

    seal_jdl.py [--proxy FILE] [--out-dir DIR] [--keep-going] JOB.jdl...

Each JDL's ``Executable``, ``Arguments`` (one string, split as a shell
would) and local ``InputSandbox`` files (those other than the executable;
``LFN:`` entries are fetched by the pilot, not sealed) become one job,
sealed with the credential ``jobseal sign`` would use. The bundle of
``name.jdl`` is ``name.bundle.pem``: submit it with the job (in its
InputSandbox), and the pilot hands it to the site. Every JDL is checked
before anything is sealed; with ``--keep-going`` the good ones are sealed
anyway. Exit status: 0 when every job was sealed, else 1.
"""

import argparse
import pathlib
import re
import shlex
import sys
from typing import Dict, List, Optional, Union

import jobseal

Value = Union[str, List[str]]


def parse_jdl(text: str) -> Dict[str, Value]:
    """The attributes of a JDL: ``Name = "text";`` or ``Name = {"a", "b"};``
    (names case-insensitive, as in DIRAC's ClassAd reader)."""
    attributes: Dict[str, Value] = {}
    body = re.sub(r"^\s*\[|\]\s*$", "", text.strip())
    for name, value in re.findall(r"(\w+)\s*=\s*(\{[^}]*\}|\"[^\"]*\"|[^;]+)\s*;", body):
        value = value.strip()
        if value.startswith("{"):
            attributes[name.lower()] = re.findall(r"\"([^\"]*)\"", value)
        else:
            attributes[name.lower()] = value.strip('"')
    return attributes


def job_of_jdl(path: pathlib.Path) -> Dict[str, object]:
    """The jobseal job of one JDL file (paths relative to its directory)."""
    jdl = parse_jdl(path.read_text())
    executable = str(jdl.get("executable", ""))
    sandbox = jdl.get("inputsandbox", [])
    files = [sandbox] if isinstance(sandbox, str) else sandbox
    # DIRAC puts sandbox files in the job's working directory under their
    # file names: the JDL's directory holds them so, next to the executable.
    inputs = [f for f in files if not f.upper().startswith("LFN:") and f != executable]
    job: Dict[str, object] = {
        "executable": executable,
        "arguments": shlex.split(str(jdl.get("arguments", ""))),
        "inputs": inputs,
        "base_dir": path.parent,
        "name": str(path),
    }
    vo = jdl.get("virtualorganization")
    if isinstance(vo, str):
        job["vo"] = vo
    return job


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--proxy", help="default: as jobseal sign finds the credential")
    p.add_argument("--out-dir", type=pathlib.Path, help="default: next to each JDL")
    p.add_argument("--keep-going", action="store_true", help="seal the good jobs anyway")
    p.add_argument("jdl", nargs="+", type=pathlib.Path)
    args = p.parse_args(argv)
    try:
        cred = jobseal.Credential(proxy=args.proxy)
        print(f"sealing as {cred.identity} with {cred.source}", file=sys.stderr)
        results = cred.seal_many([job_of_jdl(j) for j in args.jdl], keep_going=args.keep_going)
    except jobseal.SealError as e:
        print(f"seal_jdl: {e}", file=sys.stderr)
        return 1
    failed = 0
    for jdl, result in zip(args.jdl, results):
        if isinstance(result, jobseal.JobError):
            failed += 1
            print(f"seal_jdl: {result}", file=sys.stderr)
            continue
        out_dir = args.out_dir or jdl.parent
        out = out_dir / (jdl.stem + ".bundle.pem")
        result.write(out)
        print(f"sealed job {result.job_id} of {jdl} -> {out}", file=sys.stderr)
    print(f"seal_jdl: {len(results) - failed} of {len(results)} job(s) sealed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

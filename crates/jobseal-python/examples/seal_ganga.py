"""Seal a Ganga-style job before it is submitted.

In a Ganga session (``ganga``), after the job is defined::

    from seal_ganga import seal_ganga_job
    cred = jobseal.Credential()                # once: one passphrase for every job
    j = Job(name="analysis",
            application=Executable(exe=File("run.sh"), args=["--events", "1000"],
                                   env={"ATHENA_CORES": "8"}),
            inputfiles=[LocalFile("data/in.txt")], backend=Dirac())
    bundle = seal_ganga_job(cred, j, vo="atlas")
    j.inputfiles.append(LocalFile(str(bundle)))  # the bundle travels with the job
    j.submit()

Only the attributes used here are read (duck typing): ``application.exe``
(a ``File`` with ``.name``, or a path), ``application.args``,
``application.env``, ``inputfiles`` (``LocalFile``: ``.namePattern`` and
``.localDir``), ``name`` and ``id``.
"""

import os
import pathlib
from typing import Any, List, Optional

import jobseal


def _path(obj: Any, base: pathlib.Path) -> pathlib.Path:
    """A Ganga ``File``/``LocalFile`` or a plain path, as a local path."""
    name = getattr(obj, "namePattern", None) or getattr(obj, "name", None) or obj
    local_dir = getattr(obj, "localDir", None) or base
    return pathlib.Path(local_dir, os.fspath(name))


def seal_ganga_job(
    cred: jobseal.Credential,
    job: Any,
    *,
    vo: Optional[str] = None,
    sites: Optional[List[str]] = None,
    base_dir: Optional[pathlib.Path] = None,
    out_dir: Optional[pathlib.Path] = None,
) -> pathlib.Path:
    """Seal ``job``; returns the path of its bundle (``<name>-<id>.bundle.pem``)."""
    base = base_dir or pathlib.Path.cwd()
    app = job.application
    exe = _path(app.exe, base)
    inputs = [_path(f, base) for f in getattr(job, "inputfiles", [])]
    for i in inputs:
        # Ganga and DIRAC put sandbox files in the job's working directory
        # under their file names: what is sealed must be found there so.
        if i.resolve().parent != exe.resolve().parent:
            raise ValueError(f"{i}: keep the job's input files next to its executable {exe}")
    sealed = cred.seal(
        exe.name,
        [str(a) for a in getattr(app, "args", [])],
        # The site finds the executable and inputs in one job directory,
        # under their file names: seal them under those names.
        inputs=[i.name for i in inputs],
        environment=dict(getattr(app, "env", {}) or {}) or None,
        vo=vo,
        sites=sites,
        base_dir=exe.parent,
        name=f"ganga job {getattr(job, 'id', '?')} ({getattr(job, 'name', '')})",
    )
    out = (out_dir or base) / f"{getattr(job, 'name', 'job') or 'job'}-{getattr(job, 'id', 0)}.bundle.pem"
    sealed.write(out)
    return out

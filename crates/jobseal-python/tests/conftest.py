"""Fixtures: the shared test vectors, a site policy for them, and a fresh job
sealed now by `jobseal demo` (for what needs the current time: admit)."""

import json
import os
import pathlib
import shutil
import stat
import subprocess
from types import SimpleNamespace

import pytest

import jobseal

CRATE = pathlib.Path(__file__).resolve().parent.parent
REPO = CRATE.parent.parent
VECTORS = pathlib.Path(os.environ.get("JOBSEAL_TEST_VECTORS", REPO / "test-vectors"))
INDEX = json.loads((VECTORS / "vectors.json").read_text())
BY_NAME = {v["name"]: v for v in INDEX["vectors"]}
# permit-with-environment-and-sites names these sites: a policy must name one
# of them (spec 13.4 6b) for the vectors to give their verifier decisions.
VECTOR_SITE = "NIKHEF-ELPROD"


def vector_args(v):
    """(bundle path, argv, job_dir) of a vector, as vectors.json gives them."""
    return (
        VECTORS / v["bundle"],
        [str(VECTORS / v["executable"])] + v["arguments"],
        VECTORS / v["job_dir"],
    )


@pytest.fixture(scope="session")
def site_policy(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.toml"
    path.write_text(f'site = "{VECTOR_SITE}"\n')
    path.chmod(0o644)
    return path


@pytest.fixture(scope="session")
def vector_verifier(site_policy):
    return jobseal.Verifier(
        ca_dir=VECTORS / INDEX["ca_dir"],
        voms_dir=VECTORS / INDEX["voms_dir"],
        policy=site_policy,
    )


def _jobseal_bin():
    given = os.environ.get("JOBSEAL_BIN")
    if given:
        return given
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for candidate in (target / "debug" / "jobseal", target / "release" / "jobseal"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("jobseal")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """A CA, a user and a job sealed now, valid for 12 h (`jobseal demo`)."""
    binary = _jobseal_bin()
    if not binary:
        pytest.fail(
            "the admit tests need the jobseal CLI to seal a fresh job: "
            "cargo build -p jobseal-cli, or set JOBSEAL_BIN"
        )
    root = tmp_path_factory.mktemp("demo")
    run = subprocess.run(
        [binary, "demo", "--keep", str(root)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    job = root / "job"
    exe = job / "analysis.sh"
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return SimpleNamespace(
        root=root,
        ca_dir=root / "certificates",
        job_dir=job,
        bundle=root / "job.bundle.pem",
        argv=[str(exe), "--events", "1000"],
    )


@pytest.fixture
def demo_verifier(demo, tmp_path):
    """A verifier of the demo PKI with its own (empty) state directory."""
    return jobseal.Verifier(
        ca_dir=demo.ca_dir, voms_dir=tmp_path / "vomsdir", state_dir=tmp_path / "state"
    )

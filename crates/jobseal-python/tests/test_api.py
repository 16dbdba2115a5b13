"""The Python API: bundle forms, misuse raises, a deny never raises,
admission (one use, audit records), threads, and the pilot example."""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import threading
from datetime import datetime

import pytest

import jobseal
from conftest import BY_NAME, CRATE, INDEX, VECTORS, vector_args

AT = INDEX["verify_at"]


def permit_vector():
    return vector_args(BY_NAME["permit-via-user-proxy"])


# --- the module ---------------------------------------------------------


def test_the_module_is_the_installed_wheel():
    assert jobseal.__version__
    # The commit it was built from, as `jobseal --version` prints it.
    assert jobseal.__commit__ == "unknown" or (
        len(jobseal.__commit__) == 40 and set(jobseal.__commit__) <= set("0123456789abcdef")
    )
    assert "payload.arguments-mismatch" in jobseal.REASON_CODES
    assert "replay.job-id-used" in jobseal.REASON_CODES
    assert issubclass(jobseal.ConfigError, ValueError)
    if os.environ.get("JOBSEAL_TEST_INSTALLED"):
        # ci.sh: the module comes from the wheel in the test venv, not from
        # the source tree.
        assert pathlib.Path(jobseal.__file__).resolve().is_relative_to(
            pathlib.Path(sys.prefix).resolve()
        ), jobseal.__file__
        assert (pathlib.Path(jobseal.__file__).parent / "py.typed").is_file()
        assert (pathlib.Path(jobseal.__file__).parent / "__init__.pyi").is_file()


def test_verifier_attributes_and_repr(vector_verifier, site_policy):
    assert vector_verifier.ca_dir == VECTORS / "ca"
    assert vector_verifier.voms_dir == VECTORS / "vomsdir"
    assert vector_verifier.policy == site_policy
    assert "Verifier(ca_dir=" in repr(vector_verifier)


# --- bundle forms -------------------------------------------------------


def test_bytes_and_path_give_the_same_decision(vector_verifier):
    for name in ("permit-via-user-proxy", "deny-payload-arguments-changed", "deny-chain-unknown-ca"):
        bundle, argv, job_dir = vector_args(BY_NAME[name])
        data = bundle.read_bytes()
        # bytes are the bundle itself; a path is str or os.PathLike.
        forms = [bundle, str(bundle), data, bytearray(data)]
        got = [vector_verifier.verify(b, argv, job_dir=job_dir, at=AT) for b in forms]
        assert {d.code for d in got} == {BY_NAME[name]["expected"]}, name
        assert len({(d.job_id, d.manifest_sha256, d.dn) for d in got}) == 1, name


def test_argv_forms(vector_verifier):
    bundle, argv, job_dir = permit_vector()
    forms = [argv, tuple(argv), [pathlib.Path(argv[0])] + argv[1:], [os.fsencode(a) for a in argv]]
    for a in forms:
        assert vector_verifier.verify(bundle, a, job_dir=str(job_dir), at=AT).permitted, a


def test_job_dir_defaults_to_the_current_directory(vector_verifier, monkeypatch):
    bundle, argv, job_dir = permit_vector()
    monkeypatch.chdir(job_dir)
    assert vector_verifier.verify(bundle, argv, at=AT).permitted
    monkeypatch.chdir(VECTORS)
    assert vector_verifier.verify(bundle, argv, at=AT).code == "payload.input-missing"


def test_check_credential_leaves_out_the_payload(vector_verifier):
    bundle, _, _ = vector_args(BY_NAME["deny-payload-arguments-changed"])
    d = vector_verifier.check_credential(bundle, at=AT)
    assert d.permitted and d.job_id
    bundle, _, _ = vector_args(BY_NAME["deny-chain-unknown-ca"])
    assert vector_verifier.check_credential(bundle.read_bytes(), at=AT).code == "chain.untrusted"


# --- the Decision ---------------------------------------------------------


def test_decision_is_immutable_and_false_when_denied(vector_verifier):
    bundle, argv, job_dir = permit_vector()
    permit = vector_verifier.verify(bundle, argv, job_dir=job_dir, at=AT)
    deny = vector_verifier.verify(bundle, argv + ["--more"], job_dir=job_dir, at=AT)
    assert permit and permit.permitted and permit.code == "permit"
    assert not deny and not deny.permitted
    assert deny.code == "payload.arguments-mismatch" and deny.message
    # A deny after path validation still says who and what.
    assert deny.dn == permit.dn and deny.job_id == permit.job_id
    assert "code='payload.arguments-mismatch'" in repr(deny)
    assert "permitted=True" in repr(permit)
    for attr in ("permitted", "code", "message", "dn", "fqans", "job_id"):
        with pytest.raises(AttributeError):
            setattr(deny, attr, None)
    deny.fqans.append("/evil")  # a copy: the decision does not change
    assert deny.fqans == []


def test_voms_attributes(vector_verifier):
    bundle, argv, job_dir = vector_args(BY_NAME["permit-voms-verified"])
    d = vector_verifier.verify(bundle, argv, job_dir=job_dir, at=AT)
    assert d.fqans == ["/testvo", "/testvo/analysis/Role=production"]
    (ac,) = d.voms
    assert ac.verified and ac.vo == "testvo" and ac.error is None
    assert ac.generic_attributes == [("nickname", "alice", "testvo")]
    assert "verified=True" in repr(ac)
    bundle, argv, job_dir = vector_args(BY_NAME["permit-voms-expired"])
    d = vector_verifier.verify(bundle, argv, job_dir=job_dir, at=AT)
    assert d.permitted and d.fqans == []
    assert [(a.verified, a.error) for a in d.voms] == [(False, "voms.expired")]
    assert d.voms[0].error_message


# --- misuse raises ------------------------------------------------------------


def test_misuse_raises(vector_verifier):
    bundle, argv, job_dir = permit_vector()
    v = vector_verifier
    cases = [
        (TypeError, lambda: v.verify(123, argv, at=AT)),
        (TypeError, lambda: v.verify(None, argv, at=AT)),
        (ValueError, lambda: v.verify(bundle.read_text(), argv, at=AT)),
        (TypeError, lambda: v.verify(bundle, argv[0], at=AT)),
        (TypeError, lambda: v.verify(bundle, " ".join(argv).encode(), at=AT)),
        (ValueError, lambda: v.verify(bundle, [], at=AT)),
        (TypeError, lambda: v.verify(bundle, [argv[0], 1000], at=AT)),
        (TypeError, lambda: v.verify(bundle, argv, job_dir=5, at=AT)),
        (TypeError, lambda: v.verify(bundle, argv, at=True)),
        (TypeError, lambda: v.verify(bundle, argv, at=[2026])),
        (ValueError, lambda: v.verify(bundle, argv, at=-1)),
        (ValueError, lambda: v.verify(bundle, argv, at=float("nan"))),
        (ValueError, lambda: v.verify(bundle, argv, at="yesterday")),
        (ValueError, lambda: v.verify(bundle, argv, at=datetime(2026, 1, 1))),
        (TypeError, lambda: v.verify(bundle, argv, job_dir, AT)),
        (TypeError, lambda: v.verify(bundle, argv, timeout=1)),
        # Admission is always now: it takes no `at` (spec 6.1).
        (TypeError, lambda: v.admit(bundle, argv, at=AT)),
        (TypeError, lambda: v.admit(bundle, "run.sh")),
        (TypeError, lambda: v.check_credential(bundle, argv)),
    ]
    for i, (exc, call) in enumerate(cases):
        with pytest.raises(exc):
            call()
            pytest.fail(f"case {i} did not raise")


def test_a_verifier_that_cannot_be_built_raises(tmp_path):
    ca = VECTORS / "ca"
    with pytest.raises(TypeError):
        jobseal.Verifier(ca_dir=5)
    with pytest.raises(TypeError):
        jobseal.Verifier(ca, tmp_path, None, tmp_path)  # state_dir is keyword-only
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier(ca_dir=tmp_path / "missing")
    assert e.value.code == "config.invalid" and isinstance(e.value, ValueError)
    assert str(e.value).startswith("config.invalid: ")
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier(ca_dir=ca, policy=tmp_path / "missing.toml")
    assert e.value.code == "policy.invalid"
    bad = tmp_path / "bad.toml"
    bad.write_text('site = "X"\nbanned = []\n')
    bad.chmod(0o644)
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier(ca_dir=ca, policy=bad)
    assert e.value.code == "policy.invalid" and f"{bad}:2:" in str(e.value)
    writable = tmp_path / "writable.toml"
    writable.write_text('site = "X"\n')
    writable.chmod(0o666)
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier(ca_dir=ca, policy=writable)
    assert e.value.code == "policy.invalid"


def test_the_environment_is_read_only_by_from_env(tmp_path, monkeypatch, site_policy):
    bad = tmp_path / "env.toml"
    bad.write_text("nonsense = 1\n")
    bad.chmod(0o644)
    monkeypatch.setenv("JOBSEAL_POLICY", str(bad))
    monkeypatch.setenv("X509_CERT_DIR", str(tmp_path / "no-such-ca"))
    monkeypatch.setenv("X509_VOMS_DIR", str(tmp_path / "no-such-vomsdir"))
    # Verifier() takes no setting from the environment...
    v = jobseal.Verifier(ca_dir=VECTORS / "ca", policy=site_policy)
    assert v.policy == site_policy and v.voms_dir == pathlib.Path("/etc/grid-security/vomsdir")
    # ...from_env() does, for what is not given.
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier.from_env(ca_dir=VECTORS / "ca")
    assert e.value.code == "policy.invalid"
    with pytest.raises(jobseal.ConfigError) as e:
        jobseal.Verifier.from_env(policy=site_policy)
    assert e.value.code == "config.invalid" and "no-such-ca" in str(e.value)
    monkeypatch.setenv("X509_CERT_DIR", str(VECTORS / "ca"))
    monkeypatch.setenv("JOBSEAL_POLICY", str(site_policy))
    v = jobseal.Verifier.from_env()
    assert v.ca_dir == VECTORS / "ca" and v.policy == site_policy
    assert v.voms_dir == tmp_path / "no-such-vomsdir"
    assert isinstance(v, jobseal.Verifier)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run with real uid != effective uid")
def test_from_env_refuses_in_a_setuid_process(tmp_path):
    """A process whose real and effective ids differ (setuid or setgid)
    takes its environment from its caller: from_env refuses it."""
    script = (
        "import os, jobseal\n"
        "os.setresgid(65534, 0, 0)\n"
        "os.setresuid(65534, 0, 0)\n"
        "try:\n"
        "    jobseal.Verifier.from_env()\n"
        "except jobseal.ConfigError as e:\n"
        "    print(e.code, e)\n"
        "else:\n"
        "    print('no error')\n"
    )
    env = dict(os.environ, X509_CERT_DIR=str(VECTORS / "ca"))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("config.invalid ") and "setuid or setgid" in run.stdout, run.stdout


# --- a deny never raises ---------------------------------------------------------


def test_a_deny_never_raises(vector_verifier, tmp_path):
    bundle, argv, job_dir = permit_vector()
    v = vector_verifier
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    big = tmp_path / "big.pem"
    big.write_bytes(b"A" * (32 * 1024 * 1024 + 1))
    key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    cases = [
        ("empty bytes", b"", argv, "bundle.malformed"),
        ("garbage", b"\x00\xff garbage", argv, "bundle.malformed"),
        ("a private key", bundle.read_bytes() + key, argv, "bundle.private-key-present"),
        ("a missing file", tmp_path / "missing.pem", argv, "bundle.malformed"),
        ("a directory", tmp_path, argv, "bundle.malformed"),
        ("a FIFO", fifo, argv, "bundle.malformed"),
        ("a file over 32 MiB", big, argv, "limits.exceeded"),
        ("bytes over 32 MiB", b"A" * (32 * 1024 * 1024 + 1), argv, "limits.exceeded"),
        ("a missing executable", bundle, [str(tmp_path / "run.sh")] + argv[1:], "payload.executable-unreadable"),
        ("a non-UTF-8 argument", bundle, argv[:-1] + [b"\xff"], "payload.arguments-mismatch"),
    ]
    for what, b, a, code in cases:
        result = {}
        t = threading.Thread(
            target=lambda: result.update(d=v.verify(b, a, job_dir=job_dir, at=AT)), daemon=True
        )
        t.start()
        t.join(30)
        assert "d" in result, f"{what}: no decision within 30 s"
        d = result["d"]
        assert (d.permitted, d.code) == (False, code), f"{what}: {d!r}"
    # Inputs are looked up in job_dir.
    d = v.verify(bundle, argv, job_dir=tmp_path, at=AT)
    assert d.code == "payload.input-missing"
    # Now (not at verify_at), the vectors have expired.
    d = v.verify(bundle, argv, job_dir=job_dir)
    assert not d.permitted and d.code.startswith("time.")


# --- threads ------------------------------------------------------------------


def test_one_verifier_many_threads(vector_verifier):
    work = [v for v in INDEX["vectors"] for _ in range(3)]

    def check(v):
        bundle, argv, job_dir = vector_args(v)
        return v["name"], v["expected"], vector_verifier.verify(bundle, argv, job_dir=job_dir, at=AT).code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, work))
    wrong = [(n, e, g) for n, e, g in results if e != g]
    assert len(results) == 3 * len(INDEX["vectors"]) and not wrong


def test_concurrent_admits_of_one_job_admit_it_once(demo, demo_verifier):
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(
                lambda _: demo_verifier.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).code,
                range(16),
            )
        )
    assert sorted(codes) == ["permit"] + ["replay.job-id-used"] * 15


# --- admission ------------------------------------------------------------------


def audit_records(state_dir):
    path = pathlib.Path(state_dir) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_fresh_job_verifies_now(demo, demo_verifier):
    d = demo_verifier.verify(demo.bundle, demo.argv, job_dir=demo.job_dir)
    assert d.permitted, d
    assert d.dn == "/O=jobseal demo/CN=Demo User"
    assert d.ca == "/O=jobseal demo/CN=jobseal demo CA"
    assert d.vo == "demo" and d.fqans == [] and d.voms == []
    assert len(d.job_id) == 32 and len(d.manifest_sha256) == 64
    # verify records nothing: the job can still be admitted.
    assert demo_verifier.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted


def test_admit_twice_the_second_is_a_replay(demo, demo_verifier, tmp_path):
    first = demo_verifier.admit(demo.bundle, demo.argv, job_dir=demo.job_dir)
    second = demo_verifier.admit(demo.bundle.read_bytes(), demo.argv, job_dir=demo.job_dir)
    assert (first.permitted, first.code) == (True, "permit")
    assert (second.permitted, second.code) == (False, "replay.job-id-used")
    assert second.job_id == first.job_id
    records = audit_records(tmp_path / "state")
    assert [(r["outcome"], r["reason"]) for r in records] == [
        ("permit", None),
        ("deny", "replay.job-id-used"),
    ]


def test_a_wrong_payload_does_not_use_up_the_job(demo, demo_verifier, tmp_path):
    wrong = demo_verifier.admit(demo.bundle, demo.argv[:1] + ["--events", "1"], job_dir=demo.job_dir)
    assert wrong.code == "payload.arguments-mismatch"
    assert demo_verifier.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted
    assert len(audit_records(tmp_path / "state")) == 2


def test_an_unreadable_bundle_is_a_recorded_deny(demo, demo_verifier, tmp_path):
    d = demo_verifier.admit(tmp_path / "missing.pem", demo.argv, job_dir=demo.job_dir)
    assert d.code == "bundle.malformed"
    (record,) = audit_records(tmp_path / "state")
    assert record["reason"] == "bundle.malformed"


def test_admission_that_cannot_open_is_a_deny(demo, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    v = jobseal.Verifier(ca_dir=demo.ca_dir, state_dir=blocker / "state")
    for _ in range(2):  # retried on each call, denied each time
        d = v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir)
        # The replay database is opened first; its directory cannot be made.
        assert (d.permitted, d.code) == (False, "replay.store-unavailable"), d
    # verify does not need the state directory.
    assert v.verify(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted


def test_admission_applies_the_site_policy(demo, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[ban]\nsubjects = ["/O=jobseal demo/CN=Demo User"]\n')
    policy.chmod(0o644)
    v = jobseal.Verifier(ca_dir=demo.ca_dir, policy=policy, state_dir=tmp_path / "state")
    assert v.verify(demo.bundle, demo.argv, job_dir=demo.job_dir).code == "policy.banned-subject"
    assert v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).code == "policy.banned-subject"
    assert audit_records(tmp_path / "state")[0]["reason"] == "policy.banned-subject"


def test_directories_are_fixed_when_the_verifier_is_built(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(demo.root)
    v = jobseal.Verifier(ca_dir="certificates", state_dir="state-relative")
    assert v.ca_dir == demo.ca_dir
    monkeypatch.chdir(tmp_path)  # a pilot moving into a job's directory
    assert v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted
    assert audit_records(demo.root / "state-relative")[0]["outcome"] == "permit"


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the default is /var/lib/jobseal")
def test_the_default_state_dir_is_under_xdg_state_home(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    v = jobseal.Verifier(ca_dir=demo.ca_dir)
    # Read once, when the verifier is built.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))
    assert v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted
    assert (tmp_path / "xdg" / "jobseal" / "audit.jsonl").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the default is /var/lib/jobseal")
def test_the_default_state_dir_falls_back_to_local_state(demo, tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    v = jobseal.Verifier(ca_dir=demo.ca_dir)
    assert v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).permitted
    assert (tmp_path / "home" / ".local" / "state" / "jobseal" / "audit.jsonl").is_file()


def test_admission_is_not_used_across_fork(demo, tmp_path):
    """A child of fork must not use the replay database its parent opened:
    the parent's verifier denies there; a verifier built in the child works."""
    v = jobseal.Verifier(ca_dir=demo.ca_dir, state_dir=tmp_path / "state")
    wrong = demo.argv[:1] + ["--events", "1"]
    # Opens admission in this process (a deny spends nothing).
    assert v.admit(demo.bundle, wrong, job_dir=demo.job_dir).code == "payload.arguments-mismatch"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without cleaning up
        try:
            d = v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir)
            mine = jobseal.Verifier(ca_dir=demo.ca_dir, state_dir=tmp_path / "state")
            again = mine.admit(demo.bundle, demo.argv, job_dir=demo.job_dir)
            os.write(write, f"{d.code}\t{d.message}\t{again.code}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        code, message, child_code = f.read().split("\t")
    os.waitpid(pid, 0)
    assert code == "internal.error" and "used across fork" in message, message
    assert child_code == "permit"
    # The parent's admission is its own still: the child used the job up.
    assert v.admit(demo.bundle, demo.argv, job_dir=demo.job_dir).code == "replay.job-id-used"
    reasons = [r["reason"] for r in audit_records(tmp_path / "state")]
    assert reasons == [
        "payload.arguments-mismatch",
        "internal.error",
        None,
        "replay.job-id-used",
    ]


# --- the pilot example ----------------------------------------------------------------


def test_the_pilot_example(demo, tmp_path):
    pilot = [sys.executable, str(CRATE / "examples" / "pilot.py"), "--ca-dir", str(demo.ca_dir)]
    pilot += ["--state-dir", str(tmp_path / "state"), "--job-dir", str(demo.job_dir)]

    def run(*command):
        return subprocess.run(pilot + [str(demo.bundle), "--", *command], capture_output=True, text=True)

    denied = run(demo.argv[0], "--events", "1000000")
    assert denied.returncode == 1 and denied.stdout == ""
    assert denied.stderr.startswith("payload.arguments-mismatch: ")
    ran = run(*demo.argv)
    assert ran.returncode == 0, ran.stderr
    assert "analysing 1000 events" in ran.stdout
    assert "pilot: admitted job" in ran.stderr
    again = run(*demo.argv)
    assert again.returncode == 1 and again.stderr.startswith("replay.job-id-used: ")

"""Every vector of test-vectors/ gives its expected decision through the
Python binding, as through the Rust API and the CLI. With
JOBSEAL_DECISIONS_OUT set, the decisions are written there, one
`NAME<TAB>CODE` line per vector, sorted by name, for the cross-check of
every interface."""

import os
from datetime import datetime, timezone

import pytest

import jobseal
from conftest import BY_NAME, INDEX, vector_args


@pytest.fixture(scope="session")
def decisions(vector_verifier):
    """Every vector's decision, verified at the index's `verify_at`."""
    at = INDEX["verify_at"]
    out = {}
    for v in INDEX["vectors"]:
        bundle, argv, job_dir = vector_args(v)
        out[v["name"]] = vector_verifier.verify(bundle, argv, job_dir=job_dir, at=at)
    target = os.environ.get("JOBSEAL_DECISIONS_OUT")
    if target:
        with open(target, "w", encoding="utf-8") as f:
            for name in sorted(out):
                f.write(f"{name}\t{out[name].code}\n")
    return out


def voms_mismatch(expected, got):
    """Why the decision's VOMS entries differ from `expected_voms` (as
    crates/jobseal-verify/tests/vectors.rs checks them), or None."""
    if len(expected) != len(got):
        return f"expected {len(expected)} ACs, got {got!r}"
    for e, g in zip(expected, got):
        gas = [(x["name"], x["value"], x["qualifier"]) for x in e.get("generic_attributes", [])]
        ok = (
            e["verified"] == g.verified
            and e["vo"] == g.vo
            and e.get("error") == g.error
            and e.get("fqans", []) == g.fqans
            and gas == g.generic_attributes
            # Untrusted ACs give no attributes; trusted ones no error.
            and g.verified == (g.error is None)
            and (g.verified or (not g.fqans and not g.generic_attributes))
        )
        if not ok:
            return f"expected {e}, got {g!r}"
    return None


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_vector(name, decisions):
    v = BY_NAME[name]
    d = decisions[name]
    assert d.code == v["expected"], f"{name}: {d.code} ({d.message})"
    assert d.permitted == (v["expected"] == "permit")
    assert bool(d) == d.permitted
    assert d.code == "permit" or d.code in jobseal.REASON_CODES
    if "expected_voms" in v:
        why = voms_mismatch(v["expected_voms"], d.voms)
        assert why is None, f"{name}: VOMS: {why}"
        assert d.fqans == [f for a in d.voms if a.verified for f in a.fqans]
    if d.permitted:
        assert d.dn and d.ca and d.issuer
        # The user's certificate sealed it iff the leaf's issuer is the user.
        assert d.issued_by_end_entity == (d.issuer == d.dn), name
        if name in ("permit-direct-from-user-certificate", "permit-voms-in-job-bound-proxy"):
            assert d.issued_by_end_entity is True, name
        if name in ("permit-via-user-proxy", "permit-voms-verified"):
            assert d.issued_by_end_entity is False and d.issuer.startswith(d.dn + "/CN="), name
        assert len(d.job_id) == 32 and len(d.manifest_sha256) == 64


def test_every_vector_ran_and_the_decisions_file_is_complete(decisions):
    assert len(decisions) == len(INDEX["vectors"]) >= 50
    codes = {d.code for d in decisions.values()}
    assert "permit" in codes and len(codes) > 40
    target = os.environ.get("JOBSEAL_DECISIONS_OUT")
    if target:
        lines = open(target, encoding="utf-8").read().splitlines()
        assert lines == sorted(f"{n}\t{d.code}" for n, d in decisions.items())
        assert [l.split("\t")[0] for l in lines] == sorted(BY_NAME)


def test_the_time_forms_agree(vector_verifier):
    """`at` as RFC 3339 text, an aware datetime, int or float seconds."""
    v = BY_NAME["permit-via-user-proxy"]
    bundle, argv, job_dir = vector_args(v)
    text = INDEX["verify_at"]
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    forms = [text, when, int(when.timestamp()), when.timestamp() + 0.5]
    got = [vector_verifier.verify(bundle, argv, job_dir=job_dir, at=a) for a in forms]
    assert [d.code for d in got] == ["permit"] * len(forms)
    assert len({d.job_id for d in got}) == 1
    # Far in the future, the same bundle has expired.
    later = datetime(2099, 1, 1, tzinfo=timezone.utc)
    d = vector_verifier.verify(bundle, argv, job_dir=job_dir, at=later)
    assert not d.permitted and d.code.startswith("time.")

#!/usr/bin/env python3
"""Benchmark (issue 7): a reused jobseal.Verifier against a new one per check.

Three figures, the median of timeit repeats, in microseconds per call, on the
`permit-voms-verified` test vector (the workload of `full_verify_voms` in
crates/jobseal-verify/benches/verify.rs and of crates/jobseal-ffi/benches/ffi.rs):

  reused          verifier.verify(...) on one long-lived Verifier: what a
                  pilot that builds its verifier once pays per job
  new-each-time   jobseal.Verifier(...).verify(...): a verifier built for one
                  check (its check is a first check: nothing cached), then
                  dropped
  creation        jobseal.Verifier(...) alone (dropped right away: its
                  deallocation is in the timing)

and the ratio new-each-time / reused. The bundle is passed as bytes, the time
as Unix seconds (`verify_at` of test-vectors/vectors.json); the verifier has
the vectors' CA and VOMS directories, a policy naming the vectors' site (as
the test suite's) and an explicit state directory (verify never opens it).

A script run by hand, not a test. Run it against an installed release wheel,
built as crates/jobseal-python/ci.sh builds it (but with --release), from a
directory where `import jobseal` cannot find the source tree:

    python3 -m venv /tmp/jsb/build
    /tmp/jsb/build/bin/python -m pip install 'maturin>=1.9.4,<2'
    /tmp/jsb/build/bin/maturin build --locked --release \\
        --manifest-path crates/jobseal-python/Cargo.toml --out /tmp/jsb/wheels
    python3 -m venv /tmp/jsb/run
    /tmp/jsb/run/bin/python -m pip install /tmp/jsb/wheels/jobseal-*.whl
    (cd /tmp && /tmp/jsb/run/bin/python \\
        "$OLDPWD/crates/jobseal-python/bench/bench_reuse.py")

Options: --number N (calls per repeat), --repeat R (repeats per figure),
--vectors DIR (default: the checked-in test-vectors/).
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import sys
import tempfile
import timeit

import jobseal

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
VECTOR = "permit-voms-verified"
# permit-with-environment-and-sites names this site; the test suite's policy
# names it, and so does this one (it does not change permit-voms-verified).
VECTOR_SITE = "NIKHEF-ELPROD"


def per_call_us(fn, number, repeat):
    """Median over `repeat` runs of `number` calls of fn, in µs per call."""
    fn()  # warm up (page cache, allocator)
    runs = timeit.Timer(fn).repeat(repeat=repeat, number=number)
    return statistics.median(runs) / number * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=200, help="calls per repeat (default 200)")
    ap.add_argument("--repeat", type=int, default=15, help="repeats per figure (default 15)")
    ap.add_argument("--vectors", type=pathlib.Path, default=REPO / "test-vectors")
    args = ap.parse_args()

    vectors = args.vectors.resolve()
    index = json.loads((vectors / "vectors.json").read_text())
    v = next(x for x in index["vectors"] if x["name"] == VECTOR)
    ca_dir = str(vectors / index["ca_dir"])
    voms_dir = str(vectors / index["voms_dir"])
    bundle = (vectors / v["bundle"]).read_bytes()
    argv = [str(vectors / v["executable"])] + v["arguments"]
    job_dir = str(vectors / v["job_dir"])
    verify_at = datetime.datetime.fromisoformat(index["verify_at"].replace("Z", "+00:00"))
    at = int(verify_at.timestamp())

    with tempfile.TemporaryDirectory(prefix="jobseal-bench-") as tmp:
        policy = os.path.join(tmp, "policy.toml")
        with open(policy, "w") as f:
            f.write(f'site = "{VECTOR_SITE}"\n')
        os.chmod(policy, 0o644)
        state_dir = os.path.join(tmp, "state")

        def new():
            return jobseal.Verifier(ca_dir, voms_dir, policy, state_dir=state_dir)

        verifier = new()

        def reused():
            return verifier.verify(bundle, argv, job_dir=job_dir, at=at)

        def new_each_time():
            return new().verify(bundle, argv, job_dir=job_dir, at=at)

        # The measured path is the full one: a permit with verified FQANs.
        for d in (reused(), new_each_time()):
            if not d.permitted or not d.fqans:
                sys.exit(f"expected a permit with verified FQANs, got {d!r}")

        print(f"jobseal {jobseal.__version__} from {pathlib.Path(jobseal.__file__).parent}")
        print(f"Python {sys.version.split()[0]}; {VECTOR}; median of {args.repeat} x {args.number} calls")
        figures = {}
        for name, fn in (("reused", reused), ("new-each-time", new_each_time), ("creation", new)):
            figures[name] = per_call_us(fn, args.number, args.repeat)
            print(f"  {name:<14} {figures[name]:9.1f} µs/call", flush=True)
        print(f"  ratio new-each-time / reused: {figures['new-each-time'] / figures['reused']:.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Build the jobseal wheel in a fresh virtual environment, install it into a
# second fresh one, and run the pytest suite there against the installed
# wheel. Needs python3 with venv and pip, PyPI (maturin, pytest) and cargo.
#
#   bash crates/jobseal-python/ci.sh [extra pytest arguments]
#
# Env: PYTHON (default python3); CARGO_TARGET_DIR (default: the workspace's
# target/); JOBSEAL_DECISIONS_OUT (passed on: the vector decisions file);
# MATURIN_PROFILE (default dev: CI tests the code, a release wheel is built
# with `maturin build --release`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
py="${PYTHON:-python3}"
profile="${MATURIN_PROFILE:-dev}"

fail() {
  echo "" >&2
  echo "jobseal-python ci.sh: FAILED: $*" >&2
  exit 1
}

command -v "$py" >/dev/null 2>&1 ||
  fail "$py not found: install Python 3.9 or later (Debian: apt-get install python3 python3-venv python3-pip)"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  fail "$("$py" --version 2>&1) is too old: the wheel needs Python 3.9 or later"
"$py" -c 'import venv, ensurepip' 2>/dev/null ||
  fail "$py has no working venv/ensurepip (Debian: apt-get install python3-venv)"
command -v cargo >/dev/null 2>&1 || fail "cargo not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobseal-python-ci.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

echo "+ build venv: maturin"
"$py" -m venv "$tmp/build" || fail "cannot create a virtual environment"
"$tmp/build/bin/python" -m pip install -q 'maturin>=1.9.4,<2' || fail "pip install maturin"

echo "+ maturin build --profile $profile"
"$tmp/build/bin/maturin" build --locked --profile "$profile" \
  --manifest-path "$here/Cargo.toml" --out "$tmp/wheels" ||
  fail "maturin build"
wheels=("$tmp"/wheels/jobseal-*.whl)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel, got: ${wheels[*]}"
case "${wheels[0]##*/}" in
  *-abi3-*) ;;
  *) fail "the wheel ${wheels[0]##*/} is not abi3" ;;
esac
echo "  built ${wheels[0]##*/}"

echo "+ test venv: the wheel and pytest"
"$py" -m venv "$tmp/test" || fail "cannot create a virtual environment"
"$tmp/test/bin/python" -m pip install -q "${wheels[0]}" 'pytest>=7' 'mypy>=1.10' || fail "pip install of the wheel"

# The admit tests seal a fresh job with `jobseal demo`.
echo "+ cargo build -p jobseal-cli"
cargo build -q --locked -p jobseal-cli || fail "cargo build -p jobseal-cli"

echo "+ mypy: the stubs match the module, the example type-checks"
(cd "$tmp" && "$tmp/test/bin/python" -m mypy.stubtest jobseal) || fail "stubtest: __init__.pyi differs from the module"
(cd "$tmp" && "$tmp/test/bin/python" -m mypy --strict --no-incremental "$here/examples/pilot.py") || fail "mypy examples/pilot.py"

echo "+ pytest"
# Run from the temporary directory so that `import jobseal` can only find the
# installed wheel, never the source tree's python/jobseal.
cd "$tmp"
JOBSEAL_BIN="$CARGO_TARGET_DIR/debug/jobseal" JOBSEAL_TEST_INSTALLED=1 \
  "$tmp/test/bin/python" -m pytest -p no:cacheprovider --rootdir "$here" \
  -c "$here/pyproject.toml" "$here/tests" "$@" ||
  fail "pytest"
echo "jobseal-python ci.sh: OK"

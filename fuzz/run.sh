#!/usr/bin/env bash
# Run every fuzz target for a bounded time on the stable toolchain.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (default 20)
# Any crash fails the run; the crashing input is kept in fuzz/artifacts/ and
# belongs in fuzz/regressions/<target>/ once fixed (replayed by the tests).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
export RUSTC_BOOTSTRAP=1   # cargo-fuzz needs nightly flags; no nightly can be fetched here
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
targets=$(cargo fuzz list)
cargo fuzz build -O
seeds=../third_party/conformance/fuzz-seeds/x509   # pyca/cryptography's X.509 edge cases
[ -d "$seeds" ] || { echo "fuzz: $seeds is missing (it is part of the repository)"; exit 1; }
for t in $targets; do
  corpus=$(mktemp -d)
  case $t in
    bundle|verify) for f in ../test-vectors/*/bundle.pem; do cp "$f" "$corpus/$(basename "$(dirname "$f")").pem"; done ;;
    policy_files) cp ../test-vectors/ca/*.namespaces ../test-vectors/ca/*.signing_policy "$corpus"/ 2>/dev/null || true ;;
    crl) for f in ../test-vectors/ca/*.r0; do cp "$f" "$corpus/$(basename "$f")"; done ;;
    names) find "$seeds" -type f -exec cp {} "$corpus"/ \; ;;
    launch_request) # a version-1 request (spec §14.14.2): magic, argv0, 1 arg, 1 env entry,
                    # a bundle, 1 input name, a source proxy, a target proxy
                    python3 - "$corpus/request" <<'PY'
import struct, sys
b = lambda x: struct.pack(">I", len(x)) + x
l = lambda xs: struct.pack(">I", len(xs)) + b"".join(b(x) for x in xs)
body = b"JSL\x01" + b(b"./run.sh") + l([b"--events"]) + l([b"TZ=UTC"]) + b(open("../test-vectors/permit-intermediate-ca/bundle.pem", "rb").read()) + l([b"data/a.txt"]) + b"\x01" + b"\x01" + b(b"x509up")
open(sys.argv[1], "wb").write(body)
PY
                    ;;
    job_toml) printf 'executable = "run.sh"\narguments = ["a"]\ninputs = ["d/x"]\nvalid = "2d"\n' > "$corpus/job.toml" ;;
    cose|manifest) python3 seeds_from_bundles.py "$t" "$corpus" ../test-vectors/*/bundle.pem ;;
    private_key) # (no `head` in a pipeline: under pipefail its early exit is grep's SIGPIPE)
                 mapfile -d '' keys < <(grep -rlZ 'PRIVATE KEY' ../third_party/conformance/proxies)
                 for f in "${keys[@]:0:64}"; do cp "$f" "$corpus/$(tr / _ <<<"${f#../}")"; done ;;
  esac
  [ -d "regressions/$t" ] && cp "regressions/$t"/* "$corpus"/ 2>/dev/null || true
  n=$(ls "$corpus" | wc -l)
  # Every target starts from real inputs (issue 13 §7).
  [ "$n" -gt 0 ] || { echo "fuzz: $t has no seed"; exit 1; }
  echo "fuzz: $t for ${seconds}s ($n seeds)"
  cargo fuzz run -O "$t" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -2
  rm -rf "$corpus"
done
echo "fuzz: all targets ran without a crash"

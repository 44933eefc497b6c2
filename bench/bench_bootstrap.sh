#!/usr/bin/env bash
# Benchmark: a warm `tools/bootstrap.sh` (everything installed) must be a no-op in well under 5 s.
# Run: bench/bench_bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh >/dev/null 2>&1   # make sure it is warm
start=$(date +%s.%N)
for _ in 1 2 3 4 5; do tools/bootstrap.sh >/dev/null 2>&1; done
end=$(date +%s.%N)
python3 -c "print(f'bootstrap_warm_s: {($end - $start) / 5:.3f} (target < 5)')"

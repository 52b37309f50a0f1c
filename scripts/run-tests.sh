#!/usr/bin/env bash
# make test's pytest part. The unit tests (offline, CPU-bound) run beside the rest (contract, fuzz,
# integration and browser tests, which mostly wait on the engine, Caddy and the network), so a 2-core
# machine spends their time once, not twice. Their output comes after the rest's; the exit code fails
# when either fails. Usage: scripts/run-tests.sh VENV_BIN
set -uo pipefail
bin=${1:?usage: scripts/run-tests.sh VENV_BIN}
unit_log=$(mktemp)
trap 'rm -f "$unit_log"' EXIT
"$bin/pytest" -q -p no:cacheprovider --durations=15 tests/unit >"$unit_log" 2>&1 &
unit_pid=$!
"$bin/pytest" -q --durations=30 --ignore=tests/unit tests
rest=$?
wait "$unit_pid"
unit=$?
echo "==> unit tests (ran beside the tests above; exit $unit)"
cat "$unit_log"
[ "$rest" -eq 0 ] && [ "$unit" -eq 0 ]

#!/usr/bin/env bash
# Runs the whole test suite (build included). scripts/setup.sh must have run once.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log=$(mktemp /tmp/domboot-test.XXXXXX.log)
dotnet build domboot.slnx -c Release -v quiet -nologo -clp:ErrorsOnly
status=0
dotnet test domboot.slnx -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" || status=$?
# One closing line over all test projects.
passed=$(awk '/^ +Passed: +[0-9]+$/ {s += $2} END {print s + 0}' "$log")
failed=$(awk '/^ +Failed: +[0-9]+$/ {s += $2} END {print s + 0}' "$log")
skipped=$(awk '/^ +Skipped: +[0-9]+$/ {s += $2} END {print s + 0}' "$log")
rm -f "$log"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ] && [ "$status" -eq 0 ]; then echo "no test ran" >&2; status=1; fi
exit "$status"

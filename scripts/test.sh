#!/usr/bin/env bash
# Runs the whole test suite (build included). scripts/setup.sh must have run once.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build domboot.slnx -c Release -v quiet -nologo -clp:ErrorsOnly
dotnet test domboot.slnx -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee /tmp/domboot-test.log

#!/usr/bin/env bash
# Set up (once) and run the whole test suite:  ./test.sh  [extra pytest arguments]
# Creates .venv beside this file, installs requirements.txt into it, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -r requirements.txt
  touch .venv/.installed
fi
exec .venv/bin/python -m pytest "$@"

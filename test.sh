#!/usr/bin/env bash
# Set up (once) and run the whole test suite:  ./test.sh  [extra pytest arguments, e.g. -n 0 tests/test_microgpt.py]
# Creates .venv beside this file, installs requirements.txt into it, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -r requirements.txt
  touch .venv/.installed
fi
# two workers: the suite is CPU-bound and CI machines have 2 cores
exec .venv/bin/python -m pytest -n 2 "$@"

"""Shared test helpers: where the project and the reference data live."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
PYTHON = sys.executable

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def shared_file(name: str) -> Path:
    """Path of a file in ../shared/data; fail in CI, skip elsewhere, saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        msg = (f"reference data {path} is missing: clone the project with ../shared beside it "
               f"(it holds names.txt, the seed models, MNIST, ...)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path

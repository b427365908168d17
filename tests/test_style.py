"""House-style checks: the tiny helpers that are repeated to keep scripts pasteable stay identical,
and every script is import-safe (nothing runs at import)."""
import importlib
import inspect
import subprocess

import pytest

from conftest import PYTHON, ROOT

COPIES = {
    "set_seed": ["train_gpt2_mini", "train_diffusion_mini"],
    "resolve_device": ["train_gpt2_mini", "train_diffusion_mini"],
    "str2bool": ["train_gpt2_mini", "train_diffusion_mini", "gen_oneliners"],
}


@pytest.mark.parametrize("helper", sorted(COPIES))
def test_repeated_helpers_are_identical(helper):
    sources = {m: inspect.getsource(getattr(importlib.import_module(m), helper)) for m in COPIES[helper]}
    first = next(iter(sources.values()))
    assert all(src == first for src in sources.values()), f"copies of {helper} drifted: {list(sources)}"


SCRIPTS = ["microgpt", "generate", "train_gpt2_mini", "train_diffusion_mini", "gen_oneliners", "oneliner_validator",
           "run_scaling_experiment", "plot_scaling", "data_scaling", "haiku", "haiku_eval", "break_it",
           "diffusion_ablation", "mnist_score", "visualize.model_analyzer", "visualize.render"]


def test_scripts_are_import_safe(tmp_path):
    """Importing every script in a fresh interpreter prints nothing and writes nothing."""
    code = "import sys; sys.path.insert(0, %r)\n" % str(ROOT) + "\n".join(f"import {m}" for m in SCRIPTS)
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and list(tmp_path.iterdir()) == []


def test_switches_accept_flag_and_0_1():
    import train_gpt2_mini
    assert train_gpt2_mini.parse_args(["--disable_residual"]).disable_residual is True
    assert train_gpt2_mini.parse_args(["--disable_residual", "1"]).disable_residual is True
    assert train_gpt2_mini.parse_args(["--disable_residual", "0"]).disable_residual is False

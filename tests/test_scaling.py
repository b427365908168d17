"""Scaling chapter: the fits recover known laws, the seed's JSON plots, the ladder runs, resumes
and merges, and the data-scaling script runs end to end on a tiny corpus."""
import json
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, ROOT, shared_file

import plot_scaling as ps


# ---------------------------------------------------------------------------------------------
# Fits against known answers

def test_power_law_fit_recovers_known_exponent():
    n = np.array([3e5, 1e6, 3e6, 1e7, 3e7])
    loss = 20.0 * n ** -0.129
    fit = ps.fit_power_law(n, loss)
    assert fit["exponent"] == pytest.approx(0.129, abs=1e-9)
    assert fit["a"] == pytest.approx(20.0, rel=1e-9)
    assert fit["r_squared"] == pytest.approx(1.0)
    # noise lowers R^2 below 1 but the exponent stays close
    rng = np.random.default_rng(0)
    noisy = loss * np.exp(rng.normal(0, 0.01, len(n)))
    fit2 = ps.fit_power_law(n, noisy)
    assert abs(fit2["exponent"] - 0.129) < 0.02 and fit2["r_squared"] < 1.0


def test_saturating_fit_recovers_known_law():
    n = np.geomspace(1e5, 1e8, 7)
    loss = 1.69 + 406.4 * n ** -0.34            # Hoffmann et al.'s N-term
    fit = ps.fit_saturating(n, loss)
    assert fit["alpha"] == pytest.approx(0.34, abs=2e-3)
    assert fit["E"] == pytest.approx(1.69, abs=5e-3)
    assert fit["A"] == pytest.approx(406.4, rel=0.05)
    assert fit["r_squared"] > 0.9999 and not fit["exact"]
    # a pure power law pushes E towards 0 (never negative)
    fit0 = ps.fit_saturating(n, 5.0 * n ** -0.1)
    assert fit0["E"] >= 0 and fit0["alpha"] == pytest.approx(0.1, abs=0.01)


def test_saturating_fit_needs_three_points():
    with pytest.raises(ps.ScalingFileError):
        ps.fit_saturating([1e5, 1e6], [3.0, 2.5])


# ---------------------------------------------------------------------------------------------
# The seed's file, merging, bad input

def test_seed_json_plots_unchanged(tmp_path):
    seed = shared_file("seed_models/scaling_results_quick.json")
    out = tmp_path / "seed.png"
    r = subprocess.run([PYTHON, str(ROOT / "plot_scaling.py"), str(seed), "--no-show", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000
    # the seed's own numbers, refitted: L = 16.58 x N^(-0.0965), R^2 0.970 (seed-systems.md B3)
    assert "L = 16.5759 × N^(-0.0965)" in r.stdout and "R² = 0.9702" in r.stdout
    assert "0.076" in r.stdout and "0.34" in r.stdout and "1.69" in r.stdout


def _rows(names_params_losses, **extra):
    return [{"name": n, "n_params": p, "val_loss": l, "steps": 10, "batch_size": 2, "block_size": 8,
             **extra} for n, p, l in names_params_losses]


def test_merge_several_files(tmp_path):
    a = {"experiment": "scaling_law", "steps": 10, "batch_size": 2,
         "results": _rows([("tiny", 1e5, 3.0), ("small", 1e6, 2.5)])}
    b = {"experiment": "scaling_law", "steps": 10, "batch_size": 2,
         "results": _rows([("medium", 1e7, 2.1), ("small", 1e6, 2.4)])}
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    data = ps.load_results([pa, pb])
    assert [r["name"] for r in data["results"]] == ["tiny", "small", "medium"]
    assert data["results"][1]["val_loss"] == 2.4          # the later file wins
    fits = ps.analyse(data)
    assert fits["saturating"] is not None and fits["compute"]["exponent"] > 0
    # compute with fixed steps is proportional to N: the same exponent
    assert fits["compute"]["exponent"] == pytest.approx(fits["power"]["exponent"])


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"), ("{not json", "not a JSON"), ('{"a": 1}', "no 'results'"),
    ('{"results": [{"name": "x"}]}', "lacks n_params, val_loss")])
def test_bad_files_give_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    r = subprocess.run([PYTHON, str(ROOT / "plot_scaling.py"), str(path), "--no-show"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# The ladder runner: two tiny sizes end to end, resume, an interrupted size, torchrun

import run_scaling_experiment as rse   # noqa: E402  (imports train_gpt2_mini)

TINY = ["--steps", "20", "--block_size", "16", "--batch_size", "4", "--eval_iters", "2",
        "--eval_interval", "10", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """A small self-made corpus: 3,000 random 'words' over ten letters, one per line."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghij"))
    lines = ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(3000)]
    path = tmp_path_factory.mktemp("data") / "words.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ladder(words, out, runs, *extra):
    rse.main(["--data", str(words), "-o", str(out), "--out_dir", str(runs), *TINY, *extra])
    return json.loads(out.read_text(encoding="utf-8"))


def test_two_sizes_end_to_end_then_resume_skips_finished(words, tmp_path, capsys):
    out, runs = tmp_path / "s.json", tmp_path / "runs"
    first = _ladder(words, out, runs, "--models", "tiny")
    assert [r["name"] for r in first["results"]] == ["tiny"]
    second = _ladder(words, out, runs, "--models", "tiny,small")
    log = capsys.readouterr().out
    assert "skipping tiny" in log and "Training: small" in log and log.count("Training: tiny") == 1
    assert second["results"][0] == first["results"][0]          # tiny untouched by the resume
    assert [r["name"] for r in second["results"]] == ["tiny", "small"]
    # the seed's schema, extended
    for key in ("experiment", "data_path", "data_size", "steps", "batch_size", "learning_rate", "data_sha256"):
        assert key in second
    for r in second["results"]:
        for key in ("n_layer", "n_head", "n_embd", "n_params", "train_loss", "val_loss", "elapsed_seconds",
                    "tokens_per_second", "block_size", "n_params_non_embedding", "device", "torch_version"):
            assert key in r
        assert r["val_source"] == "held-out" and r["tokens_seen"] == 20 * 4 * 16
        assert r["compute_flops"] == 6 * r["n_params"] * r["tokens_seen"]
        assert r["n_params_non_embedding"] < r["n_params"]
        assert [c["step"] for c in r["curve"]] == [0, 10, 20]
        assert r["curve"][-1]["val_loss"] == r["val_loss"] < r["curve"][0]["val_loss"]
    # the parameter count is the real model's (GPT2Mini with the corpus vocabulary)
    vocab = second["vocab_size"]
    assert second["results"][1]["n_params"] == rse.count_params(rse.SCALING_CONFIGS[1], vocab, 16)[0]
    png = tmp_path / "s.png"
    ps.main([str(out), "--no-show", "-o", str(png)])
    assert png.stat().st_size > 10_000
    # other settings on the same output file are refused before any training
    with pytest.raises(SystemExit) as e:
        _ladder(words, out, runs, "--models", "tiny,small", "--lr", "1e-3")
    assert "other settings" in str(e.value) and "learning_rate" in str(e.value)


def test_interrupted_size_resumes_from_its_checkpoint(words, tmp_path, capsys):
    straight = _ladder(words, tmp_path / "a.json", tmp_path / "ra", "--models", "tiny")
    # interrupt 'tiny' at step 10 (train_gpt2_mini's --stop_after saves as Ctrl-C does) ...
    args = rse.parse_args(["--data", str(words), "-o", str(tmp_path / "b.json"),
                           "--out_dir", str(tmp_path / "rb"), "--models", "tiny", *TINY])
    argv = rse.train_argv(args, rse.SCALING_CONFIGS[0], tmp_path / "rb" / "tiny", 1)
    assert "--resume" not in argv
    rse.run_in_process(argv + ["--stop_after", "10"], tmp_path / "rb" / "tiny")
    # ... then the ladder continues it from the checkpoint and lands on the straight run's loss
    resumed = _ladder(words, tmp_path / "b.json", tmp_path / "rb", "--models", "tiny")
    assert "resuming tiny from its checkpoint" in capsys.readouterr().out
    assert resumed["results"][0]["val_loss"] == pytest.approx(straight["results"][0]["val_loss"], abs=1e-4)


def test_torchrun_launcher_trains_each_size_with_ddp(words, tmp_path):
    out = _ladder(words, tmp_path / "t.json", tmp_path / "rt", "--models", "tiny", "--launcher", "torchrun",
                  "--nproc", "2")
    r = out["results"][0]
    assert r["launcher"] == "torchrun" and r["world_size"] == 2
    assert r["tokens_seen"] == 20 * 4 * 16                     # global batch kept: 2 processes x 2 rows
    assert r["val_loss"] < r["curve"][0]["val_loss"]
    summary = json.loads((tmp_path / "rt" / "tiny" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replica_max_abs_diff"] == 0.0


@pytest.mark.parametrize("extra,needle", [
    (["--models", "huge"], "unknown size(s) huge"),
    (["--launcher", "torchrun", "--nproc", "3"], "not divisible by --nproc 3"),
    (["--nproc", "2"], "needs --launcher torchrun"),
    (["--data", "/nonexistent/x.txt"], "does not exist")])
def test_runner_bad_input_one_line_errors(words, tmp_path, extra, needle):
    with pytest.raises(SystemExit) as e:     # main() exits with a one-line message, no traceback
        rse.main(["--data", str(words), "-o", str(tmp_path / "x.json"), *TINY, *extra])
    msg = str(e.value)
    assert msg.startswith("error: ") and needle in msg and "\n" not in msg
    assert not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# Data scaling (microGPT on nested subsets of a corpus)

import data_scaling as ds   # noqa: E402


def test_compiles_and_nested_split():
    assert ds.compiles("[1,2][::-1]") and ds.compiles("x=5;x^=7") and not ds.compiles("(1+")
    assert not ds.compiles("a\x00b")   # compile() raises ValueError on NUL bytes: counted as a failure
    docs = [f"{i}+1" for i in range(100)]
    held, pool = ds.split_corpus(docs, 10)
    assert len(held) == 10 and not set(held) & set(pool) and sorted(held + pool) == sorted(docs)
    assert ds.split_corpus(docs, 10) == (held, pool)                 # the same split every time


def test_data_scaling_end_to_end_and_resume(tmp_path, capsys):
    rng = np.random.default_rng(1)
    lines = [f"{a}{op}{b}" for a, op, b in zip(rng.integers(0, 99, 200), rng.choice(list("+-*&|"), 200),
                                                 rng.integers(0, 99, 200))]
    corpus = tmp_path / "ol.txt"
    corpus.write_text("\n".join(lines) + "\n")
    out, png = tmp_path / "ds.json", tmp_path / "ds.png"
    common = ["--data", str(corpus), "--sizes", "20,60", "--holdout", "15", "--steps", "4", "--batch_size", "2",
              "--num_samples", "5", "-o", str(out)]
    ds.main(common + ["--seeds", "1"])
    first = json.loads(out.read_text())
    assert [(r["size"], r["seed"]) for r in first["runs"]] == [(20, 1), (60, 1)]
    ds.main(common + ["--seeds", "1,2", "--plot", str(png)])
    log = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert "2 runs done, 2 to go" in log and png.stat().st_size > 10_000
    assert res["runs"][:2] == first["runs"]
    s = res["summary"]
    assert [r["size"] for r in s] == [20, 60] and all(r["n_seeds"] == 2 for r in s)
    for r in res["runs"]:
        assert 0 <= r["compile_rate"] <= 1 and r["heldout_loss"] > 0 and r["epochs"] == pytest.approx(4 * 2 / r["size"], abs=1e-3)
    with pytest.raises(SystemExit) as e:
        ds.main(common + ["--sizes", "20,300"])
    assert "need 315" in str(e.value)
    # one file per seed (two processes or machines), combined afterwards: the same summary
    parts = []
    for seed in (1, 2):
        part = tmp_path / f"seed{seed}.json"
        part.write_text(json.dumps({**res, "seeds": [seed], "runs": [r for r in res["runs"] if r["seed"] == seed]}))
        parts.append(str(part))
    ds.main(["--combine", *parts, "-o", str(tmp_path / "both.json")])
    both = json.loads((tmp_path / "both.json").read_text())
    assert both["summary"] == res["summary"] and both["seeds"] == [1, 2]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**res, "steps": 99}))
    with pytest.raises(SystemExit) as e:
        ds.main(["--combine", parts[0], str(bad), "-o", str(tmp_path / "x.json")])
    assert "differs" in str(e.value) and "steps" in str(e.value)

"""Benchmark of visualize/: the five notebooks for the names model, and V5 for the haiku model.

Targets (issue 4): all five notebooks for names < 60 s together; V5 for haiku (2,345 tokens, one
forward pass per token) < 60 s. Wall time depends on how busy the CPU is, so the CPU seconds of the
notebook kernel and the load average are printed too. Baseline measured in the same run: the
next-token matrix computed the naive way (microgpt.next_token_probs, two forward passes per row)
against the engine's (BOS pass once, its KV cache copied: one pass per row).

    .venv/bin/python bench/bench_visualize.py
    .venv/bin/python bench/bench_visualize.py --json results/visualize/bench.json
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import microgpt  # noqa: E402
from visualize import render  # noqa: E402
from visualize.model_analyzer import InferenceEngine, ModelAnalyzer  # noqa: E402

SEED_MODELS = ROOT.parent / "shared" / "data" / "seed_models"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Time the visualize/ notebooks (names: all five; haiku: V5).")
    p.add_argument("--names", default=str(SEED_MODELS / "names_model.json"), help="names model file")
    p.add_argument("--haiku", default=str(SEED_MODELS / "haiku_orgparam_model.json"), help="haiku model file")
    p.add_argument("--rows", type=int, default=200, help="rows of the haiku matrix for the naive-vs-cached ratio")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    return p.parse_args(argv)


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_notebooks(model: str, names) -> dict:
    cpu0, t0 = child_cpu(), time.perf_counter()
    runs = render.execute_notebooks(model, names=names, log=lambda *a: None)  # own kernel, shut down after
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "kernel_cpu_s": round(child_cpu() - cpu0, 2),
            "per_notebook_s": {n: round(dt, 2) for n, _, dt in runs}}


def matrix_ratio(model: str, rows: int) -> dict:
    an = ModelAnalyzer(model)
    eng = InferenceEngine(an)
    ids = list(range(rows))
    t0 = time.perf_counter()
    naive = [microgpt.next_token_probs(an.model, [an.BOS, c]) for c in ids]
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = eng.transition_matrix(ids)
    t_cached = time.perf_counter() - t0
    assert abs(cached - naive).max() < 1e-12  # same numbers, fewer passes
    return {"rows": rows, "naive_s": round(t_naive, 3), "cached_s": round(t_cached, 3),
            "speedup": round(t_naive / t_cached, 2), "ms_per_row": round(1000 * t_cached / rows, 2)}


def main(argv=None):
    args = parse_args(argv)
    for path in (args.names, args.haiku):
        if not Path(path).exists():
            sys.exit(f"error: model file {path} not found: pass --names/--haiku")
    res = {"load_average_at_start": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    res["names_all_five"] = timed_notebooks(args.names, render.NOTEBOOKS)
    res["haiku_v5"] = timed_notebooks(args.haiku, ["v5_probability_distribution"])
    res["haiku_matrix_rows"] = matrix_ratio(args.haiku, args.rows)
    n, h, m = res["names_all_five"], res["haiku_v5"], res["haiku_matrix_rows"]
    print(f"load average {res['load_average_at_start']:.1f} on {res['cpu_count']} CPUs")
    print(f"names, all five notebooks : {n['wall_s']:6.1f} s wall (kernel CPU {n['kernel_cpu_s']:.1f} s) "
          f"target < 60 s -> {'OK' if n['wall_s'] < 60 else 'MISSED'}")
    for nb, dt in n["per_notebook_s"].items():
        print(f"    {nb:30s} {dt:6.1f} s")
    print(f"haiku, V5                 : {h['wall_s']:6.1f} s wall (kernel CPU {h['kernel_cpu_s']:.1f} s) "
          f"target < 60 s -> {'OK' if h['wall_s'] < 60 else 'MISSED'}")
    print(f"haiku next-token matrix, {m['rows']} rows: naive {m['naive_s']:.2f} s, cached BOS {m['cached_s']:.2f} s "
          f"({m['speedup']:.2f}x, {m['ms_per_row']:.2f} ms per row -> {m['ms_per_row'] * 2.345:.1f} s for 2,345 rows)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps(res, indent=1), encoding="utf-8")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()

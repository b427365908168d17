"""Benchmark of gen_oneliners.py: validation throughput and dedupe time, each against a baseline
measured in the same run.

1. Validation: lines/s of the batched worker (one `python -I` process, JSON batches over pipes)
   versus the naive safe design, one fresh `python -I` process per line (on a small subset).
2. Dedupe of 30,000 lines (threshold 3): our length-bucketed rapidfuzz scan versus a scan of
   every kept line (no length buckets), on a 5,000-line prefix, plus the full 30,000 with ours.

    python bench/bench_validator.py
    python bench/bench_validator.py --lines 5000 --json results/oneliners/bench_validator.json
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import gen_oneliners as g  # noqa: E402


def corpus_lines():
    """Our corpus, plus the seed's if ../shared is beside the project (only read, never copied)."""
    lines = g.read_lines(os.path.join(ROOT, "data", "python_oneliners.txt"))
    seed = os.path.join(os.path.dirname(ROOT), "shared", "data", "python_oneliners_30k.txt")
    return lines, (g.read_lines(seed) if os.path.exists(seed) else [])


def bench_validation(lines, n_naive):
    with g.Validator() as v:
        v.check(lines[:50])                    # start the worker outside the timing
        t0 = time.perf_counter()
        res = v.check(lines)
        dt = time.perf_counter() - t0
    ok = sum(r["valid"] for r in res)
    # baseline: a fresh isolated interpreter per line (what a naive "safe" validator does)
    t0 = time.perf_counter()
    for code in lines[:n_naive]:
        subprocess.run([sys.executable, "-I", "-c", "import sys; exec(compile(sys.argv[1], 'l', 'exec'))", code],
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    naive = n_naive / (time.perf_counter() - t0)
    return {"lines": len(lines), "valid": ok, "seconds": round(dt, 3), "lines_per_s": round(len(lines) / dt),
            "naive_lines_per_s": round(naive, 1), "speedup": round(len(lines) / dt / naive, 1)}


def scan_all(lines, threshold):
    """Baseline dedupe: the same rapidfuzz distance, but against every kept line."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein
    kept = []
    for s in lines:
        if not kept or process.extractOne(s, kept, scorer=Levenshtein.distance, score_cutoff=threshold - 1) is None:
            kept.append(s)
    return kept


def make_30k(lines, seed_lines):
    """30,000 lines: both corpora, then character-shuffled variants (same lengths and alphabet)."""
    rng = random.Random(0)
    pool = list(dict.fromkeys(lines + seed_lines))
    out = list(pool)
    while len(out) < 30000:
        s = rng.choice(pool)
        out.append("".join(rng.sample(s, len(s))))
    return out[:30000]


def bench_dedupe(big, threshold=3, n_small=5000):
    small = big[::max(1, len(big) // n_small)][:n_small]     # a spread-out sample, not one corpus
    t0 = time.perf_counter()
    ours_small = g.dedupe_lines(small, threshold)
    t_ours_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    base_small = scan_all(small, threshold)
    t_base_small = time.perf_counter() - t0
    assert ours_small == base_small, "length buckets must not change the result"
    t0 = time.perf_counter()
    kept = g.dedupe_lines(big, threshold)
    t_big = time.perf_counter() - t0
    return {"threshold": threshold, "n_small": n_small, "ours_small_s": round(t_ours_small, 2),
            "scan_all_small_s": round(t_base_small, 2), "speedup": round(t_base_small / t_ours_small, 1),
            "n_big": len(big), "kept_big": len(kept), "ours_big_s": round(t_big, 2)}


def seed_audit(seed_lines, threshold=3):
    """How the seed corpus fares under our rules: runs with built-ins? near-duplicates?"""
    if not seed_lines:
        return None
    with g.Validator() as v:
        res = v.check(seed_lines)
    kept = g.dedupe_lines(seed_lines, threshold)
    return {"lines": len(seed_lines), "valid": sum(r["valid"] for r in res),
            "kept_after_dedupe": len(kept), "threshold": threshold}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=5000, help="lines to validate")
    p.add_argument("--naive", type=int, default=30, help="lines for the process-per-line baseline")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    lines, seed_lines = corpus_lines()
    pool = (lines + seed_lines) * (1 + args.lines // max(1, len(lines) + len(seed_lines)))
    figures = {"python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    figures["validation"] = v = bench_validation(pool[:args.lines], args.naive)
    print(f"validation: {v['lines']} lines in {v['seconds']} s = {v['lines_per_s']} lines/s "
          f"(process per line: {v['naive_lines_per_s']} lines/s; x{v['speedup']})")
    figures["dedupe"] = d = bench_dedupe(make_30k(lines, seed_lines))
    print(f"dedupe {d['n_small']} lines: ours {d['ours_small_s']} s, scan of every kept line "
          f"{d['scan_all_small_s']} s (x{d['speedup']}); {d['n_big']} lines: ours {d['ours_big_s']} s, "
          f"{d['kept_big']} kept")
    figures["seed_audit"] = a = seed_audit(seed_lines)
    if a:
        print(f"seed corpus: {a['valid']}/{a['lines']} run without error in our validator; "
              f"{a['kept_after_dedupe']} survive near-duplicate removal at threshold {a['threshold']}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(figures, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()

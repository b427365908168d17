"""Benchmark: microgpt.py against a plain re-implementation of the original (bench/microgpt_reference.py),
both training the default model (1 layer, 16 wide, one document per step) on the same names, in the
same run, each in its own process (CPU seconds and peak memory are per process).

    python bench/bench_microgpt.py                       # 1000 steps on ../shared/data/names.txt
    python bench/bench_microgpt.py --steps 200 --input data/names.txt

Target (issue 2): ours at most half the reference's CPU time, same final loss within 0.05.
"""
import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def run_one(impl: str, path: str, steps: int) -> dict:
    docs = [l.strip() for l in open(path, encoding="utf-8") if l.strip()]
    t0 = time.process_time()
    if impl == "reference":
        import microgpt_reference
        history = microgpt_reference.train(docs, steps)
    else:
        import microgpt
        rng = random.Random(42)
        rng.shuffle(docs)
        model = microgpt.init_model(sorted(set("".join(docs))), rng=rng)
        history = microgpt.train(model, docs, steps, log=None)
    cpu = time.process_time() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impl": impl, "cpu_seconds": cpu, "ms_per_step": 1000 * cpu / steps, "peak_mb": peak_mb,
            "first100": sum(history[:100]) / len(history[:100]), "last100": sum(history[-100:]) / len(history[-100:])}


def main():
    default = ROOT.parent / "shared" / "data" / "names.txt"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=str(default if default.exists() else ROOT / "data" / "names.txt"),
                    help="names file (default: makemore names.txt in ../shared/data)")
    ap.add_argument("--steps", type=int, default=1000, help="training steps for each implementation")
    ap.add_argument("--impl", choices=["ours", "reference"], help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.impl:
        print(json.dumps(run_one(args.impl, args.input, args.steps)))
        return
    print(f"data: {args.input} | steps: {args.steps} | python {sys.version.split()[0]}")
    rows = {}
    for impl in ("ours", "reference"):
        out = subprocess.run([sys.executable, __file__, "--impl", impl, "--input", args.input,
                              "--steps", str(args.steps)], capture_output=True, text=True, check=True)
        r = rows[impl] = json.loads(out.stdout)
        print(f"{impl:9s} | {r['ms_per_step']:7.1f} ms/step | {r['cpu_seconds']:7.1f} CPU s | "
              f"loss first100 {r['first100']:.4f} last100 {r['last100']:.4f} | peak {r['peak_mb']:.0f} MB")
    o, ref = rows["ours"], rows["reference"]
    print(f"speed-up: {ref['cpu_seconds'] / o['cpu_seconds']:.2f}x (target >= 2.00x) | "
          f"final-loss difference: {abs(o['last100'] - ref['last100']):.4f} (target <= 0.05)")


if __name__ == "__main__":
    main()

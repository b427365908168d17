"""Data scaling for microGPT: how many one-liners does a 6,000-parameter model need?

The seed estimated (seed-microgpt-analysis.md) that a ~4,000-parameter microGPT needs about 600
sixteen-character Python one-liners at minimum, about 3,000 for stable training and 6,000+ for
good generalisation. This script tests that: it trains microGPT (microgpt.py, imported) on
nested subsets of the one-liner corpus (600 within 1,500 within 3,000 within 6,000 lines), with
the same held-out lines, the same number of steps and several seeds, and measures

    held-out loss (nats per character, lines no run ever trains on)
    training loss on the lines it saw (the gap to held-out loss is overfitting)
    compile rate: the share of samples that compile as Python (eval, else exec; never executed)

It draws held-out loss against corpus size with plot_scaling's panels (a power law L ~ D^-alpha_D
beside Kaplan et al.'s alpha_D ~ 0.095) and the compile rate beside it. Results are written
after every run (atomically); a re-run with the same --output skips finished (size, seed) pairs.

Every run uses the vocabulary of the whole corpus, so all models have the same parameter count
and can score every held-out line; characters a small subset never shows keep their random init.

    python data_scaling.py --steps 20 --sizes 50,100 --holdout 30 --seeds 1 --num_samples 10 -o /tmp/ds.json --plot /tmp/ds.png
    python data_scaling.py --data data/python_oneliners.txt -o results/scaling/data_scaling.json --plot docs/images/scaling_data.png
    python data_scaling.py --seeds 1 -o s1.json & python data_scaling.py --seeds 2 -o s2.json   # one seed per core
    python data_scaling.py --combine s1.json s2.json -o both.json --plot both.png
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import microgpt
from gen_oneliners import compiles  # the one definition of "a sample compiles" (issue 5's --score)

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "python_oneliners.txt")


def split_corpus(docs: list[str], holdout: int, split_seed: int = 0) -> tuple[list[str], list[str]]:
    """One fixed shuffle: the first `holdout` lines are held out, the rest is the training pool.

    Subsets are prefixes of the pool, so the 600-line corpus is inside the 1,500-line one, etc.
    """
    docs = list(docs)
    random.Random(split_seed).shuffle(docs)
    return docs[:holdout], docs[holdout:]


def run_one(uchars: list[str], train_docs: list[str], heldout: list[str], seed: int, args,
            log=None) -> dict:
    """Train one microGPT on train_docs; return its losses, samples and compile rate."""
    rng = random.Random(seed)
    docs = list(train_docs)
    rng.shuffle(docs)                     # the order of documents differs per seed, as in microgpt.py
    model = microgpt.init_model(uchars, args.n_layer, args.n_embd, args.block_size, args.n_head, rng)
    t0 = time.time()
    history = microgpt.train(model, docs, args.steps, args.batch_size, args.lr,
                             log_interval=max(args.steps // 4, 1), log=log)
    elapsed = time.time() - t0
    model.state_dict = microgpt.to_floats(model.state_dict)   # float path: fast evaluation
    seen = docs[:min(len(docs), args.steps * args.batch_size)]
    samples = [microgpt.sample(model, rng, args.temperature) for _ in range(args.num_samples)]
    nonempty = [s for s in samples if s]
    corpus = set(train_docs)
    return {"size": len(train_docs), "seed": seed,
            "epochs": round(args.steps * args.batch_size / len(train_docs), 3),
            "train_loss_last": history[-1], "train_loss_mean_last50": sum(history[-50:]) / len(history[-50:]),
            "train_eval_loss": microgpt.evaluate(model, seen[:len(heldout)]),
            "heldout_loss": microgpt.evaluate(model, heldout),
            "compile_rate": sum(map(compiles, nonempty)) / max(len(nonempty), 1),
            "novel_rate": sum(s not in corpus for s in nonempty) / max(len(nonempty), 1),
            "empty_samples": len(samples) - len(nonempty),
            "elapsed_seconds": round(elapsed, 2), "samples": samples[:12]}


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds for each corpus size."""
    out = []
    for size in sorted({r["size"] for r in runs}):
        rs = [r for r in runs if r["size"] == size]
        row = {"size": size, "n_seeds": len(rs)}
        for key in ("heldout_loss", "train_eval_loss", "compile_rate", "novel_rate"):
            vals = [r[key] for r in rs]
            mean = sum(vals) / len(vals)
            row[key + "_mean"] = mean
            row[key + "_std"] = (sum((v - mean) ** 2 for v in vals) / max(len(vals) - 1, 1)) ** 0.5
        out.append(row)
    return out


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def plot(result: dict, path: str | None, show: bool) -> dict:
    """Held-out loss vs corpus lines (power-law fit, from plot_scaling) and compile rate vs lines."""
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plot_scaling as ps
    s = result["summary"]
    x = [r["size"] for r in s]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    fits = ps.plot_fit_panel(ax1, x, [r["heldout_loss_mean"] for r in s], [f"{v:,}" for v in x],
                             yerr=[r["heldout_loss_std"] for r in s], xlabel="training lines D",
                             ylabel="held-out loss (nats/char)", saturating=False, var="D",
                             title=f"microGPT ({result['n_params']:,} params): held-out loss vs corpus size")
    ax1.errorbar(x, [r["train_eval_loss_mean"] for r in s], yerr=[r["train_eval_loss_std"] for r in s],
                 fmt="s:", color="gray", capsize=3, label="loss on the lines it trained on")
    ax1.legend(fontsize=8)
    ps.log_y_axis(ax1)   # ticks again: the training-loss series widened the y range
    ps.plot_metric_panel(ax2, x, [100 * r["compile_rate_mean"] for r in s],
                         yerr=[100 * r["compile_rate_std"] for r in s], xlabel="training lines D",
                         ylabel="samples that compile (%)", title="Compile rate of samples vs corpus size")
    fig.text(0.01, 0.005, f"{result['data_path']}  held-out {result['holdout']} lines  steps {result['steps']} x "
             f"batch {result['batch_size']}  seeds {result['seeds']}  {result['num_samples']} samples/run",
             fontsize=8, family="monospace")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"Plot saved to: {path}")
    if show:
        plt.show()
    plt.close(fig)
    return fits["power"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=str, default=DEFAULT_DATA, help="one-liner corpus, one line per document")
    p.add_argument("--sizes", type=str, default="600,1500,3000,6000", help="training-set sizes in lines (comma list)")
    p.add_argument("--holdout", type=int, default=500, help="lines held out for the loss (the same for every run)")
    p.add_argument("--seeds", type=str, default="1,2", help="seeds per size (comma list): init, order, samples")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps per run (the same for every size)")
    p.add_argument("--batch_size", type=int, default=4, help="documents per step")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (decayed linearly to 0)")
    p.add_argument("--n_layer", type=int, default=1, help="microGPT layers (seed: 1)")
    p.add_argument("--n_embd", type=int, default=16, help="embedding width (seed: 16)")
    p.add_argument("--n_head", type=int, default=4, help="attention heads (seed: 4)")
    p.add_argument("--block_size", type=int, default=16, help="context length (seed: 16)")
    p.add_argument("--num_samples", type=int, default=200, help="samples per run for the compile rate")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (seed: 0.5)")
    p.add_argument("--output", "-o", type=str, default="data_scaling.json", help="results JSON (resumed if present)")
    p.add_argument("--plot", type=str, default=None, help="PNG to write (none: no picture)")
    p.add_argument("--show", action="store_true", help="also open the plot in a window")
    p.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                   help="no training: merge result files made with the same settings but different --seeds "
                        "(e.g. one seed per process or machine) into --output, then report and plot")
    return p.parse_args(argv)


def check_args(args, n_lines: int) -> tuple[list[int], list[int]]:
    try:
        sizes = sorted({int(v) for v in args.sizes.split(",") if v.strip()})
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        raise microgpt.MicroGPTError("--sizes and --seeds take comma-separated integers, e.g. --sizes 600,1500")
    if not sizes or not seeds or min(sizes) < 1:
        raise microgpt.MicroGPTError("--sizes and --seeds need at least one value each (sizes >= 1)")
    if args.holdout < 1 or args.steps < 1 or args.batch_size < 1 or args.num_samples < 1:
        raise microgpt.MicroGPTError("--holdout, --steps, --batch_size and --num_samples must be at least 1")
    if args.n_embd % args.n_head:
        raise microgpt.MicroGPTError(f"--n_embd {args.n_embd} is not divisible by --n_head {args.n_head}")
    if max(sizes) + args.holdout > n_lines:
        raise microgpt.MicroGPTError(
            f"{args.data} has {n_lines:,} lines but --sizes up to {max(sizes):,} plus --holdout {args.holdout:,} "
            f"need {max(sizes) + args.holdout:,}: use a larger corpus or smaller --sizes/--holdout")
    return sizes, seeds


SETTINGS = ("data_sha256", "holdout", "steps", "batch_size", "lr", "config", "temperature", "num_samples")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, Path(args.output), args)
    try:
        docs = microgpt.read_docs(args.data)
        sizes, seeds = check_args(args, len(docs))
    except microgpt.MicroGPTError as e:
        sys.exit(f"error: {e}")
    heldout, pool = split_corpus(docs, args.holdout)
    uchars = sorted(set("".join(docs)))
    config = {"n_layer": args.n_layer, "n_embd": args.n_embd, "n_head": args.n_head, "block_size": args.block_size}
    probe = microgpt.init_model(uchars, **config, rng=random.Random(0))
    result = {"experiment": "data_scaling", "data_path": args.data, "data_sha256": microgpt.file_sha256(args.data),
              "n_lines": len(docs), "holdout": args.holdout, "sizes": sizes, "seeds": seeds, "steps": args.steps,
              "batch_size": args.batch_size, "lr": args.lr, "config": config, "temperature": args.temperature,
              "num_samples": args.num_samples, "vocab_size": len(uchars) + 1,
              "n_params": sum(len(r) for m in probe.state_dict.values() for r in m), "runs": []}
    out = Path(args.output)
    if out.exists():
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            sys.exit(f"error: {out} exists but is not a JSON file: pass another --output or delete it")
        diff = [k for k in SETTINGS if old.get(k) != result[k]]
        if diff:
            sys.exit(f"error: {out} was made with other settings ({', '.join(diff)}): "
                     f"pass another --output or delete it")
        result["runs"] = [r for r in old.get("runs", []) if r["size"] in sizes and r["seed"] in seeds]
    print(f"corpus {args.data}: {len(docs):,} lines, held out {args.holdout}, vocab {len(uchars) + 1}, "
          f"model {result['n_params']:,} params, {args.steps} steps x {args.batch_size} docs")
    done = {(r["size"], r["seed"]) for r in result["runs"]}
    # seed by seed, so that a cut-short job still holds whole curves for the first seeds
    todo = [(n, s) for s in seeds for n in sizes if (n, s) not in done]
    if done:
        print(f"resuming {out}: {len(done)} runs done, {len(todo)} to go")
    try:
        from tqdm import tqdm
        bar = tqdm(todo, desc="data scaling", unit="run")
        for size, seed in bar:
            bar.set_postfix(size=size, seed=seed)
            r = run_one(uchars, pool[:size], heldout, seed, args, log=lambda line: bar.write(f"  [{size} lines, seed {seed}] {line}"))
            bar.write(f"size {size:>6,} seed {seed} | epochs {r['epochs']:.2f} | train {r['train_eval_loss']:.4f} | "
                      f"held-out {r['heldout_loss']:.4f} | compiles {100 * r['compile_rate']:.1f}% | "
                      f"{r['elapsed_seconds']:.0f}s")
            result["runs"].append(r)
            result["summary"] = summarise(result["runs"])
            write_json_atomic(out, result)
    except KeyboardInterrupt:
        sys.exit(f"interrupted: finished runs are in {out}; run the same command again to continue")
    result["summary"] = summarise(result["runs"])
    write_json_atomic(out, result)
    report(result, out, args)


def report(result: dict, out: Path, args) -> None:
    """The printed table, the data exponent and the plot."""
    print(f"Results saved to: {out}")
    print(f"{'lines':>7} {'epochs':>7} {'train':>8} {'held-out':>9} {'± std':>7} {'compile %':>10}")
    for r in result["summary"]:
        ep = result["steps"] * result["batch_size"] / r["size"]
        print(f"{r['size']:>7,} {ep:>7.2f} {r['train_eval_loss_mean']:>8.4f} {r['heldout_loss_mean']:>9.4f} "
              f"{r['heldout_loss_std']:>7.4f} {100 * r['compile_rate_mean']:>10.1f}")
    if len(result["summary"]) >= 2:
        import plot_scaling as ps
        fit = plot(result, args.plot, args.show) if (args.plot or args.show) else None
        if fit is None:
            fit = ps.fit_power_law([r["size"] for r in result["summary"]],
                                   [r["heldout_loss_mean"] for r in result["summary"]])
        print(f"data exponent: L = {fit['a']:.4f} × D^({fit['slope']:.4f})   R² = {fit['r_squared']:.4f}   "
              f"(Kaplan et al. 2020: alpha_D ≈ {ps.KAPLAN_ALPHA_D})")


def combine(paths: list[str], out: Path, args) -> None:
    """Merge per-seed result files (same corpus and settings) into one, without training."""
    merged = None
    for path in paths:
        try:
            part = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            sys.exit(f"error: --combine {path}: cannot read it as JSON ({e.__class__.__name__})")
        if part.get("experiment") != "data_scaling":
            sys.exit(f"error: --combine {path} is not a data_scaling.py result file")
        if merged is None:
            merged = {**part, "runs": []}
        diff = [k for k in SETTINGS + ("sizes",) if part.get(k) != merged.get(k)]
        if diff:
            sys.exit(f"error: --combine {path} differs from {paths[0]} in {', '.join(diff)}; only seeds may differ")
        have = {(r["size"], r["seed"]) for r in merged["runs"]}
        merged["runs"] += [r for r in part["runs"] if (r["size"], r["seed"]) not in have]
    merged["seeds"] = sorted({r["seed"] for r in merged["runs"]})
    merged["runs"].sort(key=lambda r: (r["seed"], r["size"]))
    merged["summary"] = summarise(merged["runs"])
    merged["combined_from"] = [str(p) for p in paths]
    write_json_atomic(out, merged)
    report(merged, out, args)

if __name__ == "__main__":
    main()

"""Break it and observe: rerun the seed's four-way table on the Aozora novels and on names.

The seed (GPT-2mini, Plan.md) reported "loss after 30 steps" on its 8-line sample text:
baseline pre-LN 2.3, residual off 4.15, post-LN 3.64, attention off 2.78, measured on training
batches. This script trains the same four variants of train_gpt2_mini.py at fixed seeds and steps
on real corpora, with held-out validation, and records the train/val curves, the final losses and
what the observation hooks saw at the end (attention entropy, residual-stream scale before ln_f).

    python break_it.py                                  # both corpora, ~10 min on one CPU thread
    python break_it.py --datasets names --steps 100     # a quick look
    python break_it.py --aozora ../shared/data/aozora_novels.txt --names ../shared/data/names.txt

Writes results/break_it/<dataset>.json and docs/images/break_it_<dataset>.png; finished runs with
the same settings are kept, so an interrupted table continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

import train_gpt2_mini as g

VARIANTS = [  # (name, extra flags), the seed's table in its order
    ("baseline (pre-LN)", []),
    ("residual off", ["--disable_residual", "1"]),
    ("post-LN", ["--ln_style", "post"]),
    ("attention off", ["--disable_attention", "1"]),
]
SEED_30_STEPS = {"baseline (pre-LN)": 2.3, "residual off": 4.15, "post-LN": 3.64, "attention off": 2.78}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Rerun the seed's break-it table with held-out validation.")
    p.add_argument("--datasets", nargs="+", choices=["aozora", "names"], default=["aozora", "names"],
                   help="which corpora to run")
    p.add_argument("--aozora", default="data/aozora_novels.txt", help="the nine novels (data/prepare_text.py aozora)")
    p.add_argument("--names", default="data/names.txt", help="one name per line")
    p.add_argument("--steps", type=int, default=300, help="steps per run")
    p.add_argument("--n_layer", type=int, default=4, help="blocks (the breaks need depth to show)")
    p.add_argument("--n_head", type=int, default=4, help="heads")
    p.add_argument("--n_embd", type=int, default=64, help="width")
    p.add_argument("--block_size", type=int, default=64, help="context")
    p.add_argument("--batch_size", type=int, default=16, help="batch")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (same for every variant)")
    p.add_argument("--eval_interval", type=int, default=25, help="steps between evaluations")
    p.add_argument("--eval_iters", type=int, default=10, help="batches per split per evaluation")
    p.add_argument("--seed", type=int, default=1337, help="the same seed for every variant")
    p.add_argument("--variants", nargs="+", choices=[v[0].split()[0] for v in VARIANTS],
                   default=[v[0].split()[0] for v in VARIANTS], help="which variants to run (default: all four)")
    p.add_argument("--tag", default="", help="suffix for the result and image names, e.g. _1000")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--results_dir", default="results/break_it", help="JSON results go here")
    p.add_argument("--image_dir", default="docs/images", help="PNG curves go here")
    p.add_argument("--work_dir", default="runs/break_it", help="per-run metrics.jsonl go here")
    return p.parse_args(argv)


def run_variant(args, data: str, work: Path, extra: list[str]) -> dict:
    argv = ["--data", data, "--out_dir", str(work), "--save", "", "--steps", str(args.steps),
            "--n_layer", str(args.n_layer), "--n_head", str(args.n_head), "--n_embd", str(args.n_embd),
            "--block_size", str(args.block_size), "--batch_size", str(args.batch_size), "--lr", str(args.lr),
            "--dropout", "0", "--eval_interval", str(args.eval_interval), "--eval_iters", str(args.eval_iters),
            "--log_interval", str(args.steps), "--sample_interval", "0", "--seed", str(args.seed),
            "--device", "cpu", "--max_tokens", "0", *extra]
    res = g.train(g.parse_args(argv))
    last = json.loads((work / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    ent = [h for layer in last["attn_entropy"] for h in layer]
    ln_f = [s for s in last["layernorm"] if s["name"] == "ln_f"][0]
    res_model = res.pop("model")
    sample = g.sample_text(res_model.eval(), res.pop("tokenizer"), "\n", 80, 0.8, 40, "cpu")
    return {"flags": extra, "train_loss": res["train_loss"], "val_loss": res["val_loss"],
            "n_params": res["n_params"], "elapsed_seconds": res["elapsed_seconds"],
            "mean_attn_entropy": round(statistics.mean(ent), 3) if ent else None,
            "ln_f_input_std": ln_f["in_std"], "sample": sample.strip("\n"), "curve": res["curve"]}


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    colors = {"baseline (pre-LN)": "C0", "residual off": "C3", "post-LN": "C2", "attention off": "C1"}
    for name, run in result["runs"].items():
        color = colors[name]
        steps = [r["step"] for r in run["curve"]]
        ax.plot(steps, [r["val_loss"] for r in run["curve"]], color=color, label=f"{name}: val {run['val_loss']:.2f}")
        ax.plot(steps, [r["train_loss"] for r in run["curve"]], color=color, ls="--", lw=0.8, alpha=0.7)
    s = result["settings"]
    ax.set(xlabel="step", ylabel="loss (nats/char)",
           title=f"Break it on {result['dataset']}: {s['n_layer']}L/{s['n_head']}H/{s['n_embd']}C, "
                 f"block {s['block_size']}, batch {s['batch_size']} (solid val, dashed train)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = {k: getattr(args, k) for k in ("steps", "n_layer", "n_head", "n_embd", "block_size", "batch_size",
                                              "lr", "eval_interval", "eval_iters", "seed")}
    settings["dropout"] = 0.0
    for ds in args.datasets:
        data = getattr(args, ds)
        try:
            g.load_text(data)
        except g.GPTError as e:
            sys.exit(f"error: {e} (run data/prepare_text.py, or pass --{ds} ../shared/data/...)")
        out = Path(args.results_dir) / f"{ds}{args.tag}.json"
        image = Path(args.image_dir) / f"break_it_{ds}{args.tag}.png"
        result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
        if result.get("settings") != settings:
            result = {"dataset": ds, "data": os.path.relpath(data), "settings": settings, "torch_version": torch.__version__,
                      "seed_table_30_steps_on_its_sample_text": SEED_30_STEPS, "runs": {}}
        for name, extra in VARIANTS:
            if name.split()[0] not in args.variants:
                continue
            if name in result["runs"]:
                print(f"[{ds}] {name}: kept from {out}")
                continue
            print(f"\n===== [{ds}] {name} {' '.join(extra)} =====")
            result["runs"][name] = run_variant(args, data, Path(args.work_dir) / ds / name.split()[0], extra)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, out)  # each finished run is saved at once
        plot(result, image)
        print(f"\n[{ds}] after {args.steps} steps      train    val   attn-entropy  ln_f-input-std")
        for name, r in result["runs"].items():
            ent = f"{r['mean_attn_entropy']:.2f}" if r["mean_attn_entropy"] is not None else "  - "
            print(f"  {name:20s} {r['train_loss']:7.3f} {r['val_loss']:6.3f}   {ent:>8s}   {r['ln_f_input_std']:10.3f}")
        print(f"wrote {out} and {image}")


if __name__ == "__main__":
    main()

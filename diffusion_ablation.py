"""Four-way diffusion ablation at one fixed budget: baseline, residual off, time embedding off, cosine.

Each run trains train_diffusion_mini.py's U-Net with the same seed, steps, batch and width, then
samples the same number of digits with DDIM (same x_T for every run) and scores them with
mnist_score.py (Fréchet distance on the classifier's features vs the MNIST test set, mean
confidence, class-histogram entropy). Writes a results table (JSON) and one 8x8 grid per run.
A run whose checkpoint already reached the budget is not retrained (interrupt and rerun freely).

    python diffusion_ablation.py --data_dir ../shared/data/mnist                       # defaults
    python diffusion_ablation.py --steps 150 --channels 8 --num_samples 256 --data_dir ../shared/data/mnist
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

import mnist_score
import train_diffusion_mini as tdm

RUNS = {  # name -> extra flags for train_diffusion_mini.py; what each break teaches is in the README
    "baseline": [],
    "no_residual": ["--disable_residual", "1"],
    "no_time_emb": ["--disable_time_emb", "1"],
    "cosine": ["--noise_schedule", "cosine"],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run the four-way DDPM ablation at a fixed budget and score it.")
    p.add_argument("--runs", type=str, default=",".join(RUNS), help="comma-separated subset of " + ",".join(RUNS))
    p.add_argument("--steps", type=int, default=1000, help="training steps per run (the fixed budget)")
    p.add_argument("--batch_size", type=int, default=64, help="images per step")
    p.add_argument("--channels", type=int, default=16, help="U-Net width (multiple of 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--ema_decay", type=float, default=0.995, help="EMA decay for the sampled weights")
    p.add_argument("--num_samples", type=int, default=500, help="digits generated and scored per run")
    p.add_argument("--sample_steps", type=int, default=50, help="DDIM steps for the scored samples")
    p.add_argument("--data_dir", type=str, default=None, help="folder with the MNIST IDX files")
    p.add_argument("--classifier", type=str, default=mnist_score.DEFAULT_CLASSIFIER, help="scoring classifier")
    p.add_argument("--work_dir", type=str, default="runs/diffusion_ablation", help="checkpoints and logs")
    p.add_argument("--results", type=str, default="results/diffusion/ablation.json", help="results table")
    p.add_argument("--images_dir", type=str, default="docs/images", help="one grid per run goes here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=1337, help="seed shared by all runs")
    args = p.parse_args(argv)
    unknown = [r for r in args.runs.split(",") if r not in RUNS]
    if unknown:
        p.error(f"unknown run(s) {unknown}; choose from {list(RUNS)}")
    return args


def run_one(name: str, args: argparse.Namespace) -> dict:
    ckpt = os.path.join(args.work_dir, name, "model.pt")
    train_argv = ["--steps", str(args.steps), "--batch_size", str(args.batch_size), "--channels", str(args.channels),
                  "--lr", str(args.lr), "--ema_decay", str(args.ema_decay), "--sample_every", "0",
                  "--sampler", "ddim", "--sample_steps", str(args.sample_steps), "--log_every", "50",
                  "--threads", str(args.threads), "--seed", str(args.seed), "--out_dir",
                  os.path.join(args.work_dir, name), "--save", ckpt, "--save_every", "100", *RUNS[name]]
    if args.data_dir:
        train_argv += ["--data_dir", args.data_dir]
    if os.path.isfile(ckpt) and tdm.load_checkpoint(ckpt)[2]["config"]["model_channels"] != args.channels:
        raise tdm.DiffusionError(f"{ckpt} was trained with other settings; pass another --work_dir or delete it")
    if os.path.isfile(ckpt) and tdm.load_checkpoint(ckpt)[2]["step"] < args.steps:
        train_argv += ["--load", ckpt, "--resume"]  # an interrupted run continues where it stopped
    summary_path = os.path.join(args.work_dir, name, "summary.json")
    if os.path.isfile(ckpt) and tdm.load_checkpoint(ckpt)[2]["step"] >= args.steps and os.path.isfile(summary_path):
        print(f"== {name}: already trained ({ckpt})")
        with open(summary_path) as f:
            summary = json.load(f)
    else:
        print(f"== {name}: train_diffusion_mini.py {' '.join(train_argv)}", flush=True)
        summary = tdm.train(tdm.parse_args(train_argv))
    model, ema, _ = tdm.load_checkpoint(ckpt)
    t0 = time.time()
    x = mnist_score.sample_many(ema or model, args.num_samples, "ddim", args.sample_steps, args.seed)
    sample_s = time.time() - t0
    grid = tdm.make_grid(x[:64], nrow=8)
    img = tdm.save_png(grid, os.path.join(args.images_dir, f"diffusion_ablation_{name}.png"), scale=2)
    score = mnist_score.score_images(x, args.classifier)
    curve = summary["curve"]
    row = {"run": name, "flags": " ".join(RUNS[name]) or "(none)", "final_loss": curve[-1]["loss"],
           "train_seconds": summary["elapsed_seconds"], "train_cpu_seconds": summary.get("cpu_seconds"),
           "sample_seconds": sample_s, "image": img, **score}
    print(f"   {name}: loss {row['final_loss']:.4f} | FID {score['fid']:.1f} | confidence {score['confidence']:.3f} "
          f"| entropy {score['class_entropy']:.2f} bits | {score['class_hist']}", flush=True)
    return row


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, t0 = [], time.time()
    try:
        for name in args.runs.split(","):
            rows.append(run_one(name, args))
    except tdm.DiffusionError as e:
        sys.exit(f"error: {e}")
    result = {"budget": {k: getattr(args, k) for k in ("steps", "batch_size", "channels", "lr", "ema_decay",
                                                        "num_samples", "sample_steps", "seed", "threads")},
              "sampler": f"ddim{args.sample_steps} (eta 0), EMA weights", "fid_features": "mnist_score.py 64-d",
              "max_class_entropy_bits": math.log2(10), "torch_version": torch.__version__,
              "total_seconds": time.time() - t0, "runs": rows}
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    with open(args.results + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(args.results + ".tmp", args.results)
    print("\n| run | final loss | FID | confidence | class entropy (bits) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['final_loss']:.4f} | {r['fid']:.1f} | {r['confidence']:.3f} | "
              f"{r['class_entropy']:.2f} |")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()

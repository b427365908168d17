"""Scaling ladder: train GPT-2 mini at several sizes on the same text and record loss vs size.

Kaplan et al. 2020 found that the loss of a language model falls as a power law of its size N
when data and steps are not the bottleneck. This script measures that on a laptop: it trains
the seed's ladder of GPT-2 mini sizes (model, data and training loop imported from
train_gpt2_mini.py) with the same data, steps and batch, and writes one JSON that
plot_scaling.py fits and draws.

Changes from the seed's run_scaling_experiment.py: validation on held-out text (the seed scored
"val" on training data); the model and trainer are imported, not copied; the JSON adds
non-embedding parameters, training tokens, compute 6*N*D, device, torch version and the
per-eval learning curves; the ladder is resumable (finished sizes are skipped, each size is
written atomically, an interrupted size continues from its checkpoint); a progress bar; and
`--launcher torchrun --nproc N` trains each size with DistributedDataParallel.

    python run_scaling_experiment.py --quick --models tiny,small --steps 100 --block_size 64 -o /tmp/s.json
    python run_scaling_experiment.py --data aozora_novels.txt --quick --output results.json
    python run_scaling_experiment.py --data aozora_novels.txt --models large --launcher torchrun --nproc 4 -o b.json
    python plot_scaling.py results.json b.json -o scaling.png --no-show
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import torch

import train_gpt2_mini as tg
from data.fetch import sha256_of

# The seed's ladder (name, n_layer, n_head, n_embd). Parameters with the Aozora novels' 3,554
# characters and block 256: 344K, 1.28M, 3.40M, 5.71M, 15.7M (tied embeddings counted once).
SCALING_CONFIGS = [
    {"name": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 64},
    {"name": "small", "n_layer": 4, "n_head": 4, "n_embd": 128},
    {"name": "medium", "n_layer": 6, "n_head": 6, "n_embd": 192},
    {"name": "base", "n_layer": 6, "n_head": 8, "n_embd": 256},
    {"name": "large", "n_layer": 8, "n_head": 8, "n_embd": 384},
]
QUICK_MODELS, QUICK_STEPS, FULL_STEPS = ["tiny", "small", "medium"], 500, 2000

# A results file is resumed only when these settings match; device and launcher may differ.
RUN_SETTINGS = ("data_sha256", "steps", "batch_size", "learning_rate", "block_size", "seed",
                "val_fraction", "dropout", "eval_iters")


# ---------------------------------------------------------------------------------------------
# Small helpers

def write_json_atomic(path: Path, obj) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def count_params(cfg: dict, vocab_size: int, block_size: int) -> tuple[int, int]:
    """(all, non-embedding) parameters of one ladder size, by building the model itself."""
    model = tg.GPT2Mini(tg.GPTConfig(n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
                                     block_size=block_size, vocab_size=vocab_size, dropout=0.0))
    return model.num_params(), model.num_params(non_embedding=True)


class StepWatcher:
    """Moves a progress bar by polling a run's metrics.jsonl (written at every eval) in a thread.

    The numbers come from the metrics file train_gpt2_mini writes, never from its console output,
    so the same watcher serves in-process training and torchrun subprocesses.
    """

    def __init__(self, bar, metrics: Path, base: int):
        self.bar, self.metrics, self.base, self.stop = bar, metrics, base, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.wait(1.0):
            self.poll()

    def poll(self):
        try:
            lines = self.metrics.read_text(encoding="utf-8").splitlines()
            row = json.loads(lines[-1])
        except (OSError, ValueError, IndexError):
            return
        n = self.base + int(row.get("step", 0))
        if n != self.bar.n:            # redraw only when a new eval landed
            self.bar.n = n
            self.bar.set_postfix(val=row.get("val_loss"))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------
# One size

def train_argv(args, cfg: dict, run_dir: Path, world: int) -> list[str]:
    """train_gpt2_mini flags for one size. Under torchrun each process takes batch/world rows,
    so the global batch, the tokens per step and therefore the results stay comparable."""
    argv = ["--data", args.data, "--out_dir", str(run_dir), "--save", str(run_dir / "model.pt"),
            "--n_layer", str(cfg["n_layer"]), "--n_head", str(cfg["n_head"]), "--n_embd", str(cfg["n_embd"]),
            "--block_size", str(args.block_size), "--dropout", str(args.dropout),
            "--steps", str(args.steps), "--batch_size", str(args.batch_size // world), "--lr", str(args.lr),
            "--eval_interval", str(args.eval_interval), "--eval_iters", str(args.eval_iters),
            "--log_interval", str(args.eval_interval), "--sample_interval", "0",
            "--val_fraction", str(args.val_fraction), "--seed", str(args.seed), "--device", args.device]
    ckpt = run_dir / "model.pt"
    if resumable(ckpt, argv):
        argv += ["--resume", "1"]
    return argv


def resumable(ckpt: Path, argv: list[str]) -> bool:
    """True if an interrupted run of this very size and these settings left a checkpoint."""
    if not ckpt.is_file():
        return False
    try:
        _, _, saved = tg.load_checkpoint(ckpt)
    except tg.GPTError:
        return False
    want = vars(tg.parse_args(argv))
    keys = ("data", "n_layer", "n_head", "n_embd", "block_size", "dropout", "steps", "batch_size", "lr",
            "seed", "val_fraction", "eval_interval", "eval_iters")
    same = all(saved.get("args", {}).get(k) == want[k] for k in keys)
    return same and saved.get("step", 0) < want["steps"]


def run_in_process(argv: list[str], run_dir: Path) -> dict:
    """Call train_gpt2_mini.train() here; its console lines go to RUN_DIR/train.log."""
    targs = tg.parse_args(argv)
    tg.check_args(targs)
    targs.device = tg.resolve_device(targs.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        summary = tg.train(targs)
    summary.pop("model", None), summary.pop("tokenizer", None)
    return summary


def run_torchrun(argv: list[str], run_dir: Path, nproc: int, threads: int) -> dict:
    """Run train_gpt2_mini.py under `torchrun --standalone` and read the summary.json it writes."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary_path.unlink()   # never read a stale summary from an earlier run
    script = Path(__file__).resolve().parent / "train_gpt2_mini.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(script), *argv]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads or 1))
    with open(run_dir / "train.log", "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0 or not summary_path.exists():
        raise tg.GPTError(f"torchrun exited with status {rc}; see {run_dir / 'train.log'}")
    return json.loads(summary_path.read_text(encoding="utf-8"))


def result_row(cfg: dict, summary: dict, args, world: int) -> dict:
    """The seed's result fields, then the new ones."""
    block = summary["config"]["block_size"]
    tokens = int(summary["tokens_seen"])
    n, n_ne = int(summary["n_params"]), int(summary["n_params_non_embedding"])
    elapsed = float(summary["elapsed_seconds"])
    return {"name": cfg["name"], "n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "n_embd": cfg["n_embd"],
            "n_params": n, "train_loss": summary["train_loss"], "val_loss": summary["val_loss"],
            "elapsed_seconds": elapsed, "tokens_per_second": tokens / max(elapsed, 1e-9),
            "steps": args.steps, "batch_size": args.batch_size, "block_size": block,
            # new in this project
            "n_params_non_embedding": n_ne, "tokens_seen": tokens,
            "compute_flops": 6 * n * tokens, "compute_flops_non_embedding": 6 * n_ne * tokens,
            "val_source": "held-out", "seed": args.seed, "device": summary["device"],
            "torch_version": summary["torch_version"], "launcher": args.launcher, "world_size": world,
            "curve": summary["curve"]}


# ---------------------------------------------------------------------------------------------
# The ladder

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=str, default="data/names.txt", help="UTF-8 training text (seed: data.txt)")
    p.add_argument("--output", "-o", type=str, default="scaling_results.json",
                   help="results JSON; sizes already in it are skipped (resume)")
    p.add_argument("--steps", type=int, default=None, help=f"steps per size (default {FULL_STEPS}, --quick {QUICK_STEPS})")
    p.add_argument("--batch_size", type=int, default=32, help="sequences per step (global, split over --nproc)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (warmup, then cosine to 0)")
    p.add_argument("--quick", action="store_true",
                   help=f"the seed's quick run: {','.join(QUICK_MODELS)} and {QUICK_STEPS} steps "
                        f"(an explicit --models or --steps wins)")
    p.add_argument("--models", type=str, default=None,
                   help="comma list of sizes from " + ",".join(c["name"] for c in SCALING_CONFIGS) + " (default: all)")
    p.add_argument("--seed", type=int, default=1337, help="random seed (weights, batches), the same for every size")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda > mps > cpu")
    p.add_argument("--block_size", type=int, default=256, help="context length (seed: 256)")
    p.add_argument("--eval_iters", type=int, default=50, help="batches per split for each loss estimate (seed: 50)")
    p.add_argument("--eval_interval", type=int, default=None, help="steps between evaluations (default steps/10)")
    p.add_argument("--val_fraction", type=float, default=0.1, help="share of the lines held out for validation")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout (seed's ladder: 0.0)")
    p.add_argument("--launcher", choices=["none", "torchrun"], default="none",
                   help="none: train in this process; torchrun: DDP over --nproc processes per size")
    p.add_argument("--nproc", type=int, default=None, help="processes per size with --launcher torchrun (default 2)")
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    p.add_argument("--out_dir", type=str, default=None,
                   help="per-size logs, metrics and checkpoints (default runs/scaling/<output name>)")
    args = p.parse_args(argv)
    args.steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else FULL_STEPS)
    if args.models is None:
        args.models = ",".join(QUICK_MODELS) if args.quick else ",".join(c["name"] for c in SCALING_CONFIGS)
    if args.eval_interval is None:
        args.eval_interval = max(1, args.steps // 10)
    if args.nproc is None:
        args.nproc = 2 if args.launcher == "torchrun" else 1
    if args.out_dir is None:
        args.out_dir = str(Path("runs") / "scaling" / Path(args.output).stem)
    return args


def check_args(args) -> list[dict]:
    """Reject bad combinations before any work; return the ladder rows to run."""
    known = {c["name"]: c for c in SCALING_CONFIGS}
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise tg.GPTError(f"--models {args.models}: unknown size(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(known)}")
    for flag in ("steps", "batch_size", "block_size", "eval_iters", "nproc"):
        if getattr(args, flag) < 1:
            raise tg.GPTError(f"--{flag} must be at least 1")
    if args.launcher == "torchrun" and args.batch_size % args.nproc:
        raise tg.GPTError(f"--batch_size {args.batch_size} is not divisible by --nproc {args.nproc}: "
                          f"each process takes an equal share of the batch")
    if args.launcher == "none" and args.nproc != 1:
        raise tg.GPTError(f"--nproc {args.nproc} needs --launcher torchrun (this process trains alone)")
    if not 0 < args.val_fraction < 1:
        raise tg.GPTError(f"--val_fraction {args.val_fraction} must be between 0 and 1")
    return [known[n] for n in names]


def load_previous(path: Path, header: dict) -> list[dict]:
    """Results already in the output file, if it was made with the same settings."""
    if not path.exists():
        return []
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        rows = old["results"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise tg.GPTError(f"{path} exists but is not a scaling results file: pass another --output or delete it")
    diff = [f"{k} {old.get(k)!r} vs {header[k]!r}" for k in RUN_SETTINGS if old.get(k) != header[k]]
    if diff:
        raise tg.GPTError(f"{path} was made with other settings ({'; '.join(diff)}): "
                          f"pass another --output or delete it")
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        ladder = check_args(args)
        device = tg.resolve_device(args.device)
        text = tg.load_text(args.data)
    except tg.GPTError as e:
        sys.exit(f"error: {e}")
    if args.threads:
        torch.set_num_threads(args.threads)
    vocab = tg.CharTokenizer.from_text(text).vocab_size
    world = args.nproc if args.launcher == "torchrun" else 1
    header = {"experiment": "scaling_law", "data_path": args.data, "data_size": len(text),
              "steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
              # new in this project
              "data_sha256": sha256_of(args.data), "vocab_size": vocab, "block_size": args.block_size,
              "seed": args.seed, "val_fraction": args.val_fraction, "dropout": args.dropout,
              "eval_iters": args.eval_iters, "eval_interval": args.eval_interval, "quick": args.quick,
              "val_source": "held-out", "command": " ".join(["python", Path(__file__).name, *(sys.argv[1:] if argv is None else argv)])}
    out = Path(args.output)
    try:
        results = load_previous(out, header)
    except tg.GPTError as e:
        sys.exit(f"error: {e}")
    done = {r["name"] for r in results}
    print(f"Device: {device}" + (f" x {world} processes (torchrun)" if world > 1 else ""))
    print(f"Data: {len(text):,} characters ({args.data}, held out: every {round(1 / args.val_fraction)}th line)")
    print(f"Vocab size: {vocab}")
    for cfg in ladder:
        if cfg["name"] in done:
            print(f"skipping {cfg['name']}: already in {out}")
    todo = [c for c in ladder if c["name"] not in done]

    from tqdm import tqdm
    bar = tqdm(total=args.steps * len(todo), unit="step", dynamic_ncols=True, file=sys.stderr)
    try:
        for i, cfg in enumerate(todo):
            n, n_ne = count_params(cfg, vocab, min(args.block_size, len(text) - 1))
            bar.set_description(f"{cfg['name']} ({n / 1e6:.2f}M) {i + 1}/{len(todo)}")
            run_dir = Path(args.out_dir) / cfg["name"]
            targv = train_argv(args, {**cfg}, run_dir, world)
            if "--resume" in targv:
                bar.write(f"resuming {cfg['name']} from its checkpoint in {run_dir}")
            with StepWatcher(bar, run_dir / "metrics.jsonl", base=i * args.steps):
                if args.launcher == "torchrun":
                    summary = run_torchrun(targv, run_dir, args.nproc, args.threads)
                else:
                    summary = run_in_process(targv, run_dir)
            row = result_row(cfg, summary, args, world)
            results = [r for r in results if r["name"] != cfg["name"]] + [row]
            write_json_atomic(out, {**header, "results": results})   # each size lands atomically
            bar.n = (i + 1) * args.steps
            bar.refresh()
            bar.write("=" * 60 + f"\nTraining: {cfg['name']}\n  n_layer={cfg['n_layer']}, n_head={cfg['n_head']}, "
                      f"n_embd={cfg['n_embd']}\n  Parameters: {row['n_params']:,} ({row['n_params'] / 1e6:.2f}M), "
                      f"non-embedding {row['n_params_non_embedding']:,}\n  Train Loss: {row['train_loss']:.4f}\n"
                      f"  Val Loss:   {row['val_loss']:.4f} (held-out)\n  Time: {row['elapsed_seconds']:.1f}s")
    except tg.GPTError as e:
        bar.close()
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        bar.close()
        sys.exit(f"\ninterrupted: finished sizes are in {out}; run the same command again to continue "
                 f"(an unfinished size resumes from its checkpoint in {args.out_dir})")
    bar.close()
    print(f"Results saved to: {out}")
    print("Summary:")
    print(f"{'Name':<10}{'Params':>12}{'Val Loss':>12}")
    for r in sorted(results, key=lambda r: r["n_params"]):
        print(f"{r['name']:<10}{r['n_params']:>12,}{r['val_loss']:>12.4f}")
    print(f"Plot it:  python plot_scaling.py {out} -o scaling.png --no-show")


if __name__ == "__main__":
    main()

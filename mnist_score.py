"""Score generated digits with a small MNIST classifier that the project trains itself (no Inception).

For N generated digits it reports
  fid           Fréchet distance between Gaussian fits of the classifier's 64-d features of the
                samples and of the MNIST test set (lower is better; real training digits set the floor),
  confidence    mean max-softmax probability (does each sample look like some digit?),
  class_entropy entropy in bits of the predicted-class histogram (log2 10 = 3.32: all ten equally).
The classifier is trained once by a command and cached together with the test-set feature
statistics, so scoring needs neither the test set nor retraining.

    python mnist_score.py train --data_dir ../shared/data/mnist          # ~1 min CPU, once
    python mnist_score.py score --real 1000 --data_dir ../shared/data/mnist   # the floor: real digits
    python mnist_score.py score --load runs/diffusion/ddpm.pt --num_samples 500 --sampler ddim
    python mnist_score.py score --load results/diffusion/ddpm16_ema.pt --num_samples 200 --sampler ddim --eta 1
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from train_diffusion_mini import (DiffusionError, Schedule, load_checkpoint, load_images, sample,
                                  set_seed)
from data.mnist import MNISTError, load_mnist

DEFAULT_CLASSIFIER = os.path.join("results", "diffusion", "mnist_classifier.pt")
FORMAT = "mnist-classifier/1"


class MNISTClassifier(nn.Module):
    """28 -> 14 -> 7 -> 3 conv stack, a 64-d feature layer (the FID space), then 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1), \
            nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 3 * 3, 64)
        self.head = nn.Linear(64, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [-1, 1] -> (B, 64)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)   # (B, 16, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)   # (B, 32, 7, 7)
        h = F.max_pool2d(F.relu(self.conv3(h)), 2)   # (B, 32, 3, 3)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_pm1(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images_u8))
    return (x.float() / 127.5 - 1.0).reshape(-1, 1, 28, 28)


@torch.inference_mode()
def embed(clf: MNISTClassifier, x: torch.Tensor, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """-> (features (N, 64) float64, probabilities (N, 10) float64)."""
    feats, probs = [], []
    for i in range(0, len(x), batch):
        f = clf.features(x[i:i + batch].float())
        feats.append(f.double().numpy())
        probs.append(F.softmax(clf.head(f), -1).double().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def gaussian_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with tr (S1 S2)^(1/2) = tr (S1^½ S2 S1^½)^(1/2)
    (symmetric, so eigh is enough and no complex parts appear)."""
    s1h = _sqrtm_psd(np.asarray(sigma1, dtype=np.float64))
    m = s1h @ np.asarray(sigma2, dtype=np.float64) @ s1h
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


# -----------------------------------------------------------------------------
# train once, cache with the test-set statistics

def train_classifier(data_dir: str | None, out: str, epochs: int = 2, seed: int = 0, batch_size: int = 128) -> dict:
    set_seed(seed)
    try:
        xtr, ytr = load_mnist(data_dir, "train", verbose=True)
        xte, yte = load_mnist(data_dir, "test", verbose=True)
    except MNISTError as e:
        raise DiffusionError(str(e)) from None
    xtr, ytr, xte, yte = to_pm1(xtr), torch.as_tensor(ytr), to_pm1(xte), torch.as_tensor(yte)
    clf = MNISTClassifier()
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    t0 = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr) - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(clf(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}/{epochs} | loss {loss.item():.4f} | {time.time() - t0:.0f} s", flush=True)
    clf.eval()
    feats, probs = embed(clf, xte)
    acc = float((probs.argmax(1) == yte.numpy()).mean())
    mu, sigma = gaussian_stats(feats)
    ckpt = {"format": FORMAT, "model": clf.state_dict(), "test_accuracy": acc,
            "test_mu": torch.from_numpy(mu), "test_sigma": torch.from_numpy(sigma), "epochs": epochs, "seed": seed}
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    torch.save(ckpt, out + ".tmp")
    os.replace(out + ".tmp", out)
    print(f"test accuracy {acc:.4f} | saved {out}")
    return {"test_accuracy": acc, "seconds": time.time() - t0}


def load_classifier(path: str = DEFAULT_CLASSIFIER) -> tuple[MNISTClassifier, dict]:
    if not os.path.isfile(path):
        raise DiffusionError(f"classifier {path} not found; train it once: python mnist_score.py train "
                             f"--data_dir DIR --out {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        clf = MNISTClassifier()
        clf.load_state_dict(ckpt["model"])
    except Exception as e:
        raise DiffusionError(f"classifier {path} is not readable ({type(e).__name__}); retrain it") from None
    if ckpt.get("format") != FORMAT:
        raise DiffusionError(f"classifier {path} has format {ckpt.get('format')!r}, expected {FORMAT!r}")
    return clf.eval(), ckpt


def score_images(x: torch.Tensor, classifier: str = DEFAULT_CLASSIFIER) -> dict:
    """x: (N, 1, 28, 28) in [-1, 1] -> {"fid", "confidence", "class_entropy", "class_hist", "n"}."""
    clf, ckpt = load_classifier(classifier)
    feats, probs = embed(clf, x.cpu())
    mu, sigma = gaussian_stats(feats)
    hist = np.bincount(probs.argmax(1), minlength=10)
    p = hist / hist.sum()
    entropy = max(0.0, float(-(p[p > 0] * np.log2(p[p > 0])).sum()))  # no -0.0
    fid = frechet_distance(mu, sigma, ckpt["test_mu"].numpy(), ckpt["test_sigma"].numpy())
    return {"fid": fid, "confidence": float(probs.max(1).mean()), "class_entropy": entropy,
            "class_hist": hist.tolist(), "n": int(len(x))}


# -----------------------------------------------------------------------------
# command line

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the MNIST scoring classifier, or score digits with it.")
    p.add_argument("command", choices=["train", "score"], help="train the classifier once, or score")
    p.add_argument("--data_dir", type=str, default=None, help="folder with the MNIST IDX files")
    p.add_argument("--classifier", type=str, default=DEFAULT_CLASSIFIER, help="classifier checkpoint path")
    p.add_argument("--epochs", type=int, default=2, help="train: classifier epochs")
    p.add_argument("--load", type=str, default=None, help="score: diffusion checkpoint to sample from")
    p.add_argument("--real", type=int, default=0, help="score: N real training digits instead (the floor)")
    p.add_argument("--num_samples", type=int, default=500, help="score: digits to generate")
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddim", help="score: sampler")
    p.add_argument("--sample_steps", type=int, default=50, help="score: DDIM steps")
    p.add_argument("--eta", type=float, default=0.0, help="score: DDIM noise (0: deterministic, 1: DDPM-like)")
    p.add_argument("--batch", type=int, default=250, help="score: digits sampled at once")
    p.add_argument("--out", type=str, default=None, help="write the scores as JSON here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p.parse_args(argv)


def sample_many(model, n: int, sampler: str, steps: int, seed: int, batch: int = 250, eta: float = 0.0) -> torch.Tensor:
    sched = Schedule(model.cfg, next(model.parameters()).device)
    g = torch.Generator().manual_seed(seed)
    xs = [sample(model, sched, min(batch, n - i), sampler=sampler, steps=steps, eta=eta, generator=g)[0].cpu()
          for i in range(0, n, batch)]
    return torch.cat(xs)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.command == "train":
            train_classifier(args.data_dir, args.classifier, args.epochs, args.seed)
            return
        t0 = time.time()
        if args.real:
            set_seed(args.seed)
            imgs = load_images(args.data_dir)
            x = imgs[torch.randperm(len(imgs))[:args.real]].float() / 127.5 - 1
            what = f"{len(x)} real training digits"
        elif args.load:
            model, ema, ckpt = load_checkpoint(args.load)
            x = sample_many(ema or model, args.num_samples, args.sampler, args.sample_steps, args.seed, args.batch,
                            eta=args.eta)
            what = f"{args.num_samples} samples from {args.load} ({args.sampler}" + \
                   (f"{args.sample_steps}, eta {args.eta:g})" if args.sampler == "ddim" else f"{model.cfg.timesteps})")
        else:
            raise DiffusionError("score needs --load CKPT (a diffusion checkpoint) or --real N")
        s = score_images(x, args.classifier)
        s.update(what=what, seconds=time.time() - t0)
        print(f"{what}: FID {s['fid']:.2f} | confidence {s['confidence']:.3f} | class entropy "
              f"{s['class_entropy']:.3f} bits (max {math.log2(10):.3f}) | histogram {s['class_hist']}")
        if args.out:
            os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
            with open(args.out + ".tmp", "w") as f:
                json.dump(s, f, indent=1)
            os.replace(args.out + ".tmp", args.out)
    except (DiffusionError, MNISTError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

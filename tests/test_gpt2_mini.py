"""Tests for train_gpt2_mini.py: every switch changes what it claims, resume is exact, DDP agrees.

Tiny models and a few hundred steps at most, so the whole file runs in well under a minute."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import PYTHON, ROOT, shared_file
import train_gpt2_mini as g

TINY = dict(n_layer=2, n_head=2, n_embd=16, block_size=12, vocab_size=11, dropout=0.0)


def tiny_model(seed=0, **over):
    torch.manual_seed(seed)
    return g.GPT2Mini(g.GPTConfig(**{**TINY, **over})).eval()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small learnable names-like text (20 made-up names drawn at random), no shared data needed."""
    rng = torch.Generator().manual_seed(0)
    letters = "abcdefghij"
    words = ["".join(letters[i] for i in torch.randint(10, (int(n),), generator=rng))
             for n in torch.randint(3, 8, (20,), generator=rng)]
    lines = [words[i] for i in torch.randint(20, (1500,), generator=rng)]
    p = tmp_path_factory.mktemp("data") / "toy.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def tiny_args(corpus, out, *extra):
    return g.parse_args(["--data", str(corpus), "--out_dir", str(out), "--n_layer", "1", "--n_head", "2",
                         "--n_embd", "16", "--block_size", "16", "--batch_size", "8", "--eval_interval", "50",
                         "--eval_iters", "2", "--log_interval", "1000", "--sample_interval", "0",
                         "--device", "cpu", "--lr", "3e-3", "--dropout", "0.1", *extra])


# ---------------------------------------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_and_unknown_chars():
    text = shared_file("aozora_novels.txt").read_text(encoding="utf-8")[:20000]
    tok = g.CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    assert g.CharTokenizer.from_dict(json.loads(json.dumps(tok.to_dict()))).chars == tok.chars
    with pytest.raises(ValueError, match="'Q'.*'龍'|'龍'.*'Q'"):
        tok.encode("吾輩はQ龍")


# ---------------------------------------------------------------------------------------------- model
def test_seed_names_and_weight_tying():
    m = tiny_model()
    keys = set(m.state_dict())
    for k in ("tok_emb.weight", "pos_emb.weight", "blocks.0.ln1.weight", "blocks.0.attn.c_attn.weight",
              "blocks.0.attn.c_proj.bias", "blocks.1.ln2.bias", "blocks.1.mlp.c_fc.weight",
              "blocks.1.mlp.c_proj.weight", "ln_f.weight", "lm_head.weight"):
        assert k in keys
    assert m.lm_head.weight is m.tok_emb.weight
    # tied matrix counted once: V*C + T*C + per block (2 LN + attn + mlp) + ln_f
    C, V, T = 16, 11, 12
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    assert m.num_params() == V * C + T * C + 2 * per_block + 2 * C
    assert m.num_params(non_embedding=True) == 2 * per_block + 2 * C


def test_fused_attention_equals_explicit_softmax():
    m = tiny_model()
    attn = m.blocks[0].attn
    x = torch.randn(3, 10, 16)
    _, _, v = attn.qkv(x)
    y = (attn.attention_probs(x) @ v).transpose(1, 2).reshape(3, 10, 16)
    torch.testing.assert_close(attn(x), attn.c_proj(y), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("over", [{}, {"ln_style": "post"}, {"disable_residual": True},
                                  {"disable_attention": True}])
def test_causal_future_tokens_do_not_change_past_logits(over):
    m = tiny_model(**over)
    idx = torch.randint(11, (2, 12))
    idx2 = idx.clone()
    idx2[:, 7:] = (idx2[:, 7:] + 1) % 11
    a, b = m(idx)[0], m(idx2)[0]
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_attention_off_position_sees_only_its_own_token():
    idx = torch.randint(11, (2, 12))
    idx2 = idx.clone()
    idx2[:, 3] = (idx2[:, 3] + 1) % 11   # change an earlier token
    on, off = tiny_model(), tiny_model(disable_attention=True)
    assert off.blocks[0].attn is None and off.blocks[0].ln1 is None
    # with attention, later positions read token 3; without it, nothing after position 3 moves
    assert not torch.allclose(on(idx)[0][:, 4:], on(idx2)[0][:, 4:])
    torch.testing.assert_close(off(idx)[0][:, 4:], off(idx2)[0][:, 4:])
    torch.testing.assert_close(off(idx)[0][:, :3], off(idx2)[0][:, :3])


def test_residual_switch_removes_exactly_the_additions():
    on = tiny_model()
    off = tiny_model(disable_residual=True)
    off.load_state_dict(on.state_dict())  # same weights, only the wiring differs
    x = torch.randn(2, 12, 16)
    b_on, b_off = on.blocks[0], off.blocks[0]
    a = b_on.attn(b_on.ln1(x))
    torch.testing.assert_close(b_on(x), x + a + b_on.mlp(b_on.ln2(x + a)))
    torch.testing.assert_close(b_off(x), b_off.mlp(b_off.ln2(a)))
    # without the skip path the input reaches the output only through the sub-layers
    assert not torch.allclose(b_on(x), b_off(x))


def test_post_ln_normalises_block_output_pre_ln_does_not():
    pre = tiny_model()
    post = tiny_model(ln_style="post")
    post.load_state_dict(pre.state_dict())
    x = 3 * torch.randn(2, 12, 16) + 1
    bp, bq = pre.blocks[0], post.blocks[0]
    h = bq.ln1(x + bq.attn(x))
    torch.testing.assert_close(bq(x), bq.ln2(h + bq.mlp(h)))       # LN(x + f(x)) twice
    yq, yp = bq(x), bp(x)
    torch.testing.assert_close(yq.mean(-1), torch.zeros(2, 12), atol=1e-5, rtol=0)
    torch.testing.assert_close(yq.var(-1, unbiased=False), torch.ones(2, 12), atol=1e-3, rtol=0)
    # pre-LN keeps the raw residual stream: its output still carries x's scale and offset
    assert (yp.mean(-1) - x.mean(-1)).abs().max() < 0.5
    assert yp.std(-1).mean() > 2


def test_observe_entropy_is_uniform_at_init_and_layernorm_standardises():
    m = tiny_model()
    with torch.no_grad():   # zero q/k weights: attention is exactly uniform over 1..t+1 tokens
        for b in m.blocks:
            b.attn.c_attn.weight[:32].zero_()
            b.attn.c_attn.bias.zero_()
    obs = g.observe(m, torch.randint(11, (2, 12)))
    expect = torch.log(torch.arange(1, 13).float()).mean().item()
    assert len(obs["attn_entropy"]) == 2 and len(obs["attn_entropy"][0]) == 2
    for layer in obs["attn_entropy"]:
        for h in layer:
            assert abs(h - expect) < 1e-3
    assert [s["name"] for s in obs["layernorm"]][-1] == "ln_f"
    assert all(abs(s["out_std"] - 1) < 0.05 for s in obs["layernorm"])
    assert g.observe(tiny_model(disable_attention=True), torch.randint(11, (1, 12)))["attn_entropy"] == []


def test_generate_top_k_1_is_greedy():
    m = tiny_model()
    idx = torch.tensor([[1, 2, 3]])
    out = m.generate(idx, 5, temperature=1.0, top_k=1)
    ref = idx
    for _ in range(5):
        ref = torch.cat([ref, m(ref)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert out.tolist() == ref.tolist()


def test_weight_decay_only_on_weight_matrices():
    m = tiny_model()
    opt = g.make_optimizer(m, g.parse_args([]))
    decay = {id(p) for grp in opt.param_groups if grp["weight_decay"] > 0 for p in grp["params"]}
    names = {n for n, p in m.named_parameters() if id(p) in decay}
    assert names == {f"blocks.{i}.{k}.weight" for i in range(2)
                     for k in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    n_all = sum(len(grp["params"]) for grp in opt.param_groups)
    assert n_all == len(list(m.parameters()))  # every parameter once (tied matrix not twice)


# ---------------------------------------------------------------------------------------------- CLI
def test_seed_command_lines_parse_verbatim():
    a = g.parse_args(["--disable_residual", "1", "--steps", "800"])
    assert a.disable_residual is True and a.steps == 800
    assert g.parse_args(["--disable_residual"]).disable_residual is True
    assert g.parse_args(["--disable_attention", "0"]).disable_attention is False
    assert g.parse_args(["--ln_style", "post", "--steps", "1500"]).ln_style == "post"
    a = g.parse_args(["--load", "model.pt", "--generate", "--prompt", "名前は", "--max_tokens", "50",
                      "--temperature", "0.5"])
    assert a.generate and a.prompt == "名前は" and a.save is None
    assert g.parse_args(["--steps", "1000", "--save", "model.pt"]).save == "model.pt"
    with pytest.raises(g.GPTError, match="not divisible"):
        g.check_args(g.parse_args(["--n_embd", "100", "--n_head", "3"]))


def test_missing_load_and_unknown_prompt_are_one_line_errors(tmp_path, corpus, capsys):
    with pytest.raises(SystemExit) as e:
        g.main(["--load", str(tmp_path / "nope.pt"), "--generate"])
    assert e.value.code == 2 and "nope.pt does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # fine-tuning from a missing file is an error too
        g.main(["--data", str(corpus), "--load", str(tmp_path / "nope.pt"), "--steps", "1"])
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(g.GPTError, match="could not be read"):
        g.load_checkpoint(bad)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(g.GPTError, match="not UTF-8"):
        g.load_text(latin)


def test_train_save_generate_without_training_text(tmp_path, corpus, capsys, monkeypatch):
    args = tiny_args(corpus, tmp_path, "--steps", "60", "--save", str(tmp_path / "m.pt"))
    res = g.train(args)
    for k in ("n_params", "n_params_non_embedding", "train_loss", "val_loss", "tokens_seen",
              "elapsed_seconds", "device", "torch_version", "curve"):
        assert k in res
    assert res["curve"][-1]["val_loss"] < res["curve"][0]["val_loss"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["tokens_seen"] == 60 * 8 * 16 and summary["curve"] == res["curve"]
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 50, 60] and "attn_entropy" in rows[-1]
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert {"config", "vocab", "model", "optimizer", "step", "rng", "metrics"} <= set(ckpt)
    capsys.readouterr()
    g.main(["--load", str(tmp_path / "m.pt"), "--generate", "--prompt", "abc", "--max_tokens", "20",
            "--data", str(tmp_path / "absent.txt")])
    out = capsys.readouterr().out
    assert out.startswith("abc") and len(out.strip()) >= 3
    with pytest.raises(SystemExit):
        g.main(["--load", str(tmp_path / "m.pt"), "--generate", "--prompt", "abZ"])
    assert "'Z'" in capsys.readouterr().err
    answers = iter(["ab", "abZ", "q", "never read"])
    monkeypatch.setattr("builtins.input", lambda _: next(answers))
    g.main(["--load", str(tmp_path / "m.pt"), "--interactive", "--max_tokens", "5"])
    out = capsys.readouterr().out
    assert "\nab" in out and "Error: 1 character(s) not in the model's vocabulary: 'Z'" in out
    assert next(answers) == "never read"   # 'q' ended the loop


def test_bfloat16_autocast_trains_like_float32(tmp_path, corpus):
    bf = g.train(tiny_args(corpus, tmp_path / "bf", "--steps", "50", "--dtype", "bfloat16", "--save", ""))
    fp = g.train(tiny_args(corpus, tmp_path / "fp", "--steps", "50", "--save", ""))
    assert bf["curve"][-1]["val_loss"] < bf["curve"][0]["val_loss"] - 0.15
    assert abs(bf["curve"][-1]["val_loss"] - fp["curve"][-1]["val_loss"]) < 0.05


def test_short_text_shrinks_context_with_a_warning(tmp_path, capsys):
    p = tmp_path / "short.txt"
    p.write_text("hello world, a short text of a few dozen characters only.\n" * 2, encoding="utf-8")
    args = g.parse_args(["--data", str(p), "--out_dir", str(tmp_path), "--steps", "2", "--n_layer", "1",
                         "--n_embd", "16", "--eval_iters", "1", "--split", "tail", "--sample_interval", "0"])
    res = g.train(args)
    assert "block_size adjusted from 256" in capsys.readouterr().out
    assert res["config"]["block_size"] < 20


def test_resume_gives_the_same_weights_as_a_straight_run(tmp_path, corpus):
    g.train(tiny_args(corpus, tmp_path / "a", "--steps", "200", "--save", str(tmp_path / "a.pt")))
    g.train(tiny_args(corpus, tmp_path / "b", "--steps", "200", "--stop_after", "100",
                      "--save", str(tmp_path / "b.pt")))
    mid = torch.load(tmp_path / "b.pt", weights_only=True)
    assert mid["step"] == 100
    res = g.train(tiny_args(corpus, tmp_path / "b", "--steps", "200", "--save", str(tmp_path / "b.pt"),
                            "--resume"))
    a = torch.load(tmp_path / "a.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in res["curve"]] == [0, 50, 100, 150, 200]


def test_torchrun_two_processes_keep_replicas_identical(tmp_path, corpus):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "train_gpt2_mini.py"), "--data", str(corpus), "--out_dir", str(tmp_path),
           "--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--block_size", "16", "--batch_size", "8",
           "--steps", "60", "--eval_interval", "30", "--eval_iters", "2", "--lr", "3e-3",
           "--sample_interval", "0", "--device", "cpu", "--max_tokens", "10"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["world_size"] == 2 and s["replica_max_abs_diff"] == 0.0
    assert s["curve"][-1]["val_loss"] < s["curve"][0]["val_loss"] - 0.2
    assert r.stdout.count("Training completed") == 1   # only rank 0 logs
    assert s["tokens_seen"] == 60 * 8 * 16 * 2


# ---------------------------------------------------------------------------------------------- data, break_it
def test_strip_aozora_removes_ruby_notes_title_and_colophon(tmp_path):
    import zipfile
    from data import prepare_text as pt
    raw = ("吾輩は猫である\r\n夏目漱石\r\n\r\n" + "-" * 55 + "\r\n【テキスト中に現れる記号について】\r\n\r\n"
           "［＃］：入力者注\r\n" + "-" * 55 + "\r\n\r\n　吾輩《わがはい》は猫である。｜名前《なまえ》は"
           "まだ無い［＃「無い」に傍点］。\r\n\r\n底本：「夏目漱石全集1」ちくま文庫\r\n")
    clean = pt.strip_aozora(raw)
    assert clean.startswith("-" * 55) and "［＃］：入力者注" in clean      # the notes header is kept
    assert "　吾輩は猫である。名前はまだ無い。" in clean
    assert not any(s in clean for s in ("《", "｜", "傍点", "底本", "夏目漱石\n", "\r"))
    assert pt.strip_aozora(clean) == clean
    z = tmp_path / "w.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("neko.txt", raw.encode("cp932"))
    assert pt.strip_aozora(pt.text_from_zip(z)) == clean
    # the seed's cleaned corpus is a fixed point of the cleaning (nothing left to strip)
    novels = shared_file("aozora_novels.txt").read_text(encoding="utf-8")
    first = novels[:novels.index("【テキスト中に現れる記号について】", 100)].rsplit("\n", 1)[0]
    assert pt.strip_aozora(first) == first.strip("\n")


def test_shakespeare_download_is_checksummed(tmp_path, monkeypatch):
    from data import prepare_text as pt
    from data.fetch import DownloadError
    src = shared_file("tinyshakespeare.txt")
    monkeypatch.setattr(pt, "SHAKESPEARE_URL", src.resolve().as_uri())  # file:// URL, no network
    assert pt.prepare_shakespeare(tmp_path).read_bytes() == src.read_bytes()
    monkeypatch.setattr(pt, "SHAKESPEARE_SHA256", "0" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        pt.prepare_shakespeare(tmp_path / "again")


def test_break_it_writes_table_plot_and_keeps_finished_runs(tmp_path, corpus, capsys):
    import break_it
    argv = ["--datasets", "names", "--names", str(corpus), "--steps", "4", "--n_layer", "2", "--n_embd", "16",
            "--block_size", "8", "--batch_size", "4", "--eval_interval", "2", "--eval_iters", "1",
            "--results_dir", str(tmp_path / "r"), "--image_dir", str(tmp_path / "i"), "--work_dir", str(tmp_path / "w")]
    break_it.main(argv)
    res = json.loads((tmp_path / "r" / "names.json").read_text())
    assert list(res["runs"]) == [v[0] for v in break_it.VARIANTS]
    assert res["runs"]["attention off"]["mean_attn_entropy"] is None
    assert res["runs"]["baseline (pre-LN)"]["mean_attn_entropy"] > 0
    assert (tmp_path / "i" / "break_it_names.png").stat().st_size > 1000
    capsys.readouterr()
    break_it.main(argv)
    assert capsys.readouterr().out.count("kept from") == 4

"""microgpt.py and generate.py: autograd against finite differences and a second implementation,
the two forward paths, training, the model file, the seed models, and every bad input."""
import json
import math
import random
import subprocess
import sys

import pytest

from conftest import PYTHON, ROOT, shared_file

sys.path.insert(0, str(ROOT / "bench"))
import microgpt  # noqa: E402
import microgpt_reference  # noqa: E402
from microgpt import Value  # noqa: E402

# --------------------------------------------------------------------------- autograd

UNARY = {
    "exp": lambda a: a.exp(), "log": lambda a: a.log(), "relu": lambda a: a.relu(),
    "pow3": lambda a: a ** 3, "pow-0.5": lambda a: a ** -0.5, "neg": lambda a: -a,
    "radd": lambda a: 2.5 + a, "rsub": lambda a: 2.5 - a, "rmul": lambda a: 2.5 * a,
    "rdiv": lambda a: 2.5 / a, "addc": lambda a: a + 1.5, "subc": lambda a: a - 1.5,
    "mulc": lambda a: a * 1.5, "divc": lambda a: a / 1.5,
}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}


def numgrad(f, xs, i, h=1e-6):
    up, dn = list(xs), list(xs)
    up[i] += h
    dn[i] -= h
    return (f(*up) - f(*dn)) / (2 * h)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("x", [0.7, 1.9])
def test_unary_gradients_match_finite_differences(name, x):
    f = UNARY[name]
    v = Value(x)
    out = f(v)
    out.backward()
    fx = lambda z: f(Value(z)).data  # the same expression evaluated on plain floats
    assert v.grad == pytest.approx(numgrad(fx, [x], 0), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradients_match_finite_differences(name):
    f = BINARY[name]
    a, b = Value(0.8), Value(-1.3)
    out = f(a, b)
    out.backward()
    fx = lambda x, y: f(x, y)  # plain floats support the same operators
    assert out.data == f(0.8, -1.3)
    assert a.grad == pytest.approx(numgrad(fx, [0.8, -1.3], 0), rel=1e-5)
    assert b.grad == pytest.approx(numgrad(fx, [0.8, -1.3], 1), rel=1e-5)


def test_fused_nodes_match_finite_differences():
    rng = random.Random(0)
    xs = [rng.uniform(-1, 1) for _ in range(10)]
    fns = {
        "dot": lambda *z: microgpt._data(microgpt.dot(z[:5], z[5:])),
        "vsum": lambda *z: microgpt._data(microgpt.vsum(z)),
        "rmsnorm": lambda *z: microgpt._data(microgpt.rmsnorm(list(z))[2]),
        "softmax": lambda *z: microgpt._data(microgpt.softmax(list(z))[1]),
    }
    for name, f in fns.items():
        vs = [Value(x) for x in xs]
        if name == "dot":
            out = microgpt.dot(vs[:5], vs[5:])
        elif name == "vsum":
            out = microgpt.vsum(vs)
        elif name == "rmsnorm":
            out = microgpt.rmsnorm(vs)[2]
        else:
            out = microgpt.softmax(vs)[1]
        out.backward()
        assert out.data == pytest.approx(f(*xs), rel=1e-9), name
        for i, v in enumerate(vs):
            assert v.grad == pytest.approx(numgrad(f, xs, i), rel=1e-4, abs=1e-7), (name, i)


def test_fused_lm_head_loss_equals_the_unfused_graph():
    """train() scores each position with linear_cross_entropy; it must equal -log softmax(linear(x, w))[t]
    built from plain Value operations, in value and in every gradient, and match finite differences."""
    rng = random.Random(3)
    xd = [rng.uniform(-1, 1) for _ in range(4)]
    wd = [[rng.uniform(-1, 1) for _ in range(4)] for _ in range(6)]

    def run(fused):
        x, w = [Value(a) for a in xd], [[Value(a) for a in row] for row in wd]
        out = (microgpt.linear_cross_entropy(x, w, 2) if fused
               else -microgpt.softmax(microgpt.linear(x, w))[2].log())
        (out * 0.7).backward()  # an upstream gradient other than 1
        return out.data, [v.grad for v in x], [v.grad for row in w for v in row]

    fused, plain = run(True), run(False)
    assert fused[0] == pytest.approx(plain[0], rel=1e-12)
    assert fused[1] == pytest.approx(plain[1], rel=1e-10)
    assert fused[2] == pytest.approx(plain[2], rel=1e-10)
    flat = xd + [a for row in wd for a in row]
    f = lambda *z: 0.7 * -math.log(microgpt.softmax(microgpt.linear(list(z[:4]),
                                                    [list(z[4 + 4 * i:8 + 4 * i]) for i in range(6)]))[2])
    for i, g in enumerate(fused[1] + fused[2]):
        assert g == pytest.approx(numgrad(f, flat, i), rel=1e-4, abs=1e-7), i


def test_backward_handles_deep_graphs_without_recursion():
    x = Value(1.0)
    y = x
    for _ in range(50_000):  # far beyond Python's recursion limit
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0


def test_shared_subexpressions_accumulate():
    a = Value(3.0)
    b = a * a + a  # d/da = 2a + 1
    b.backward()
    assert a.grad == 7.0

# --------------------------------------------------------------------------- the model


def tiny_model(seed=1, n_layer=2, n_embd=8, n_head=2, block_size=8):
    rng = random.Random(seed)
    return microgpt.init_model(list("abcde"), n_layer, n_embd, block_size, n_head, rng)


def test_float_and_value_forward_paths_agree():
    m = tiny_model()
    floats = microgpt.to_floats(m.state_dict)
    kv_v, kv_f = microgpt.new_cache(m), microgpt.new_cache(m)
    for pos, tok in enumerate([5, 0, 3, 1]):
        lv = microgpt.gpt(tok, pos, *kv_v, m.state_dict, m.config)
        lf = microgpt.gpt(tok, pos, *kv_f, floats, m.config)
        assert [v.data for v in lv] == pytest.approx(lf, rel=1e-12)


def test_gradients_equal_the_reference_implementation():
    """One document's loss and every parameter gradient, ours (fused) vs the plain original-style graph."""
    docs = ["emma", "olivia", "ava", "isabella", "sophia"] * 3
    uchars, ref_sd = microgpt_reference.build(list(docs))
    rng = random.Random(42)
    ours_docs = list(docs)
    rng.shuffle(ours_docs)
    model = microgpt.init_model(sorted(set("".join(ours_docs))), rng=rng)
    assert model.uchars == uchars
    ref_loss = microgpt_reference.doc_loss("isabella", uchars, ref_sd)
    ref_loss.backward()
    tokens = microgpt.doc_tokens(model, "isabella")
    kv = microgpt.new_cache(model)
    losses = [microgpt.linear_cross_entropy(  # the path train() takes
        microgpt.gpt(tokens[p], p, *kv, model.state_dict, model.config, hidden=True),
        model.state_dict["lm_head"], tokens[p + 1]) for p in range(len(tokens) - 1)]
    loss = microgpt.vsum(losses) * (1.0 / len(losses))
    loss.backward()
    assert loss.data == pytest.approx(ref_loss.data, rel=1e-10)
    for name, mat in model.state_dict.items():
        for r, row in enumerate(mat):
            for c, p in enumerate(row):
                assert p.grad == pytest.approx(ref_sd[name][r][c].grad, rel=1e-7, abs=1e-12), name


def test_training_matches_reference_and_lowers_loss():
    docs = [l.strip() for l in open(ROOT / "data" / "names.txt", encoding="utf-8")][:2000]
    ref_hist = microgpt_reference.train(list(docs), steps=8)
    rng = random.Random(42)
    d = list(docs)
    rng.shuffle(d)
    model = microgpt.init_model(sorted(set("".join(d))), rng=rng)
    held_out = d[-100:]
    before = microgpt.evaluate(microgpt.Model(model.config, model.uchars, model.BOS,
                                              microgpt.to_floats(model.state_dict)), held_out)
    hist = microgpt.train(model, d, steps=8, log=None)
    assert hist == pytest.approx(ref_hist, abs=1e-4)  # the same run as the original algorithm
    microgpt.train(model, d, steps=100, batch_size=2, log=None)
    model.state_dict = microgpt.to_floats(model.state_dict)
    assert before > 3.2 and microgpt.evaluate(model, held_out) < before - 0.5


def test_attention_is_causal_and_trace_is_complete():
    m = tiny_model()
    sd = microgpt.to_floats(m.state_dict)
    kv = microgpt.new_cache(m)
    trace = {}
    for pos, tok in enumerate([5, 1, 2]):
        microgpt.gpt(tok, pos, *kv, sd, m.config, trace=trace)
    for li in range(2):
        heads = trace[f"layer{li}_attn_weights"]
        assert len(heads) == 2 and all(len(w) == 3 and sum(w) == pytest.approx(1.0) for w in heads)
    assert {"embedding", "logits", "layer1_attn_out", "layer1_mlp_out"} <= set(trace)
    # a later token cannot change earlier logits
    kv2 = microgpt.new_cache(m)
    first = microgpt.gpt(5, 0, *kv2, sd, m.config)
    kv3 = microgpt.new_cache(m)
    assert microgpt.gpt(5, 0, *kv3, sd, m.config) == first


def test_prompt_is_fed_and_starts_every_sample():
    m = tiny_model()
    m.state_dict = microgpt.to_floats(m.state_dict)
    rng = random.Random(0)
    for _ in range(5):
        assert microgpt.sample(m, rng, 1.0, prompt="ab").startswith("ab")
    # the whole prompt matters, not only its last character (the seed's engine lost it)
    p_ab = microgpt.next_token_probs(m, [m.BOS, 0, 1])
    p_b = microgpt.next_token_probs(m, [m.BOS, 1])
    assert p_ab != pytest.approx(p_b)
    with pytest.raises(microgpt.DataError, match="'z'"):
        microgpt.sample(m, rng, prompt="az")


def test_json_round_trip(tmp_path):
    m = tiny_model()
    m.meta = {"steps": 3, "loss_history": [3.1, 2.9]}
    path = tmp_path / "m.json"
    microgpt.save_model(path, m)
    back = microgpt.load_model(path)
    assert back.config == m.config and back.uchars == m.uchars and back.BOS == 5
    assert back.state_dict == microgpt.to_floats(m.state_dict) and back.meta == m.meta
    obj = json.loads(path.read_text(encoding="utf-8"))
    assert list(obj) == ["config", "tokenizer", "state_dict", "meta"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


@pytest.mark.parametrize("name,vocab", [("names_model.json", 27), ("python_model.json", 93),
                                        ("haiku_orgparam_model.json", 2345)])
def test_seed_models_load_and_sample(name, vocab):
    m = microgpt.load_model(shared_file(f"seed_models/{name}"))
    assert m.config["vocab_size"] == vocab
    s = microgpt.sample(m, random.Random(1), 0.5)
    assert len(s) <= 16 and set(s) <= set(m.uchars)


def test_generate_is_byte_identical_to_the_seed(tmp_path):
    out = tmp_path / "h.txt"
    r = subprocess.run([PYTHON, str(ROOT / "generate.py"), "-m", str(shared_file("seed_models/haiku_orgparam_model.json")),
                        "-i", str(shared_file("aozora_haiku_30000.txt")), "-o", str(out), "-s", "42"],
                       capture_output=True, text=True, check=True)
    assert out.read_bytes() == shared_file("seed_models/haiku_samples_seed42.txt").read_bytes()
    assert "Duplicates (in training data): 0" in r.stdout and "New unique samples: 100" in r.stdout


def test_generate_prompt_and_names_summary(tmp_path):
    out = tmp_path / "n.txt"
    r = subprocess.run([PYTHON, str(ROOT / "generate.py"), "-m", str(shared_file("seed_models/names_model.json")),
                        "-i", str(shared_file("names.txt")), "-o", str(out)], capture_output=True, text=True, check=True)
    assert "Duplicates (in training data): 34" in r.stdout  # the seed's measured figure
    r = subprocess.run([PYTHON, str(ROOT / "generate.py"), "-m", str(shared_file("seed_models/names_model.json")),
                        "-i", str(shared_file("names.txt")), "-o", str(out), "-n", "20", "--prompt", "em"],
                       capture_output=True, text=True, check=True)
    assert all(line.startswith("em") for line in out.read_text().splitlines())

# --------------------------------------------------------------------------- command line and bad input


def run_cli(script, *args, cwd=None):
    return subprocess.run([PYTHON, str(ROOT / script), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_cli_trains_saves_and_reports(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("anna\nbob\ncarla\ndavid\nabcdefghijklmnopqrst\n", encoding="utf-8")
    r = run_cli("microgpt.py", "-i", data, "--steps", "5", "--num_samples", "3", "-o", tmp_path / "m.json",
                "--log_interval", "1")
    assert r.returncode == 0, r.stderr
    assert "step 5/5 | loss" in r.stdout and "ms/step | eta" in r.stdout
    assert "1 of 5 documents are longer than block_size-1" in r.stdout
    assert r.stdout.count("sample ") == 3
    meta = microgpt.load_model(tmp_path / "m.json").meta
    assert meta["steps"] == 5 and len(meta["loss_history"]) == 5 and len(meta["data_sha256"]) == 64
    assert meta["data_file"] == "d.txt" and meta["format_version"] == 1 and meta["elapsed_seconds"] >= 0


def bad_files(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\n \t\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "notjson.json").write_text("{not json")
    (tmp_path / "nokey.json").write_text(json.dumps({"config": {}, "tokenizer": {}}))
    good = tiny_model()
    microgpt.save_model(tmp_path / "good.json", good)
    obj = json.loads((tmp_path / "good.json").read_text())
    obj["state_dict"]["wpe"] = obj["state_dict"]["wpe"][:-1]
    (tmp_path / "shape.json").write_text(json.dumps(obj))
    (tmp_path / "names.txt").write_text("abc\n")


@pytest.mark.parametrize("args,needle", [
    (["microgpt.py", "-i", "missing.txt"], "not found"),
    (["microgpt.py", "-i", "empty.txt"], "no non-blank lines"),
    (["microgpt.py", "-i", "blank.txt"], "no non-blank lines"),
    (["microgpt.py", "-i", "latin1.txt"], "not UTF-8"),
    (["microgpt.py", "-i", "names.txt", "--n_embd", "10", "--n_head", "4"], "--n_embd 10 is not divisible by --n_head 4"),
    (["microgpt.py", "-i", "names.txt", "--steps", "0"], "--steps 0 must be at least 1"),
    (["generate.py", "-m", "notjson.json", "-i", "names.txt"], "not valid JSON"),
    (["generate.py", "-m", "nokey.json", "-i", "names.txt"], "state_dict"),
    (["generate.py", "-m", "shape.json", "-i", "names.txt"], "state_dict.wpe has wrong shape"),
    (["generate.py", "-m", "good.json", "-i", "names.txt", "--prompt", "xyz"], "'xyz'"),
    (["generate.py", "-m", "absent.json", "-i", "names.txt"], "not found"),
])
def test_bad_input_gives_one_line_and_keeps_files(tmp_path, args, needle):
    bad_files(tmp_path)
    keep = tmp_path / "generated_new_samples.txt"
    keep.write_text("precious\n")
    (tmp_path / "model.json").write_text("precious")
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert keep.read_text() == "precious\n" and (tmp_path / "model.json").read_text() == "precious"


def test_interrupt_and_resume_gives_the_same_model(tmp_path, capsys):
    data = tmp_path / "d.txt"
    data.write_text("\n".join(["anna", "bob", "carla", "david", "eve", "fiona"]) + "\n", encoding="utf-8")
    base = ["-i", str(data), "--steps", "8", "--num_samples", "3"]
    straight = microgpt.run(microgpt.parse_args(base + ["-o", str(tmp_path / "a.json")]), should_stop=lambda: False)
    calls = []
    stop_at_3 = lambda: calls.append(1) or len(calls) == 3  # noqa: E731  (Ctrl-C after the third step)
    microgpt.run(microgpt.parse_args(base + ["-o", str(tmp_path / "b.json")]), should_stop=stop_at_3)
    partial = tmp_path / "b.partial.json"
    assert partial.exists() and not (tmp_path / "b.json").exists()
    assert microgpt.load_model(partial).meta["resume"]["state"]["step"] == 3
    resumed = microgpt.run(microgpt.parse_args(["--resume", str(partial)]), should_stop=lambda: False)
    assert resumed.state_dict == straight.state_dict  # bit-identical weights
    assert resumed.meta["loss_history"] == straight.meta["loss_history"]
    out = capsys.readouterr().out
    samples = [l for l in out.splitlines() if l.startswith("sample ")]
    assert samples[:3] == samples[3:6]  # same sampling RNG state too (the resumed run prints 20)
    assert not partial.exists() and (tmp_path / "b.json").exists()


def test_ctrl_c_writes_a_resumable_file(tmp_path):
    import signal
    data = tmp_path / "d.txt"
    data.write_text("anna\nbob\ncarla\n", encoding="utf-8")
    proc = subprocess.Popen([PYTHON, "-u", str(ROOT / "microgpt.py"), "-i", str(data), "--steps", "100000",
                             "--log_interval", "1", "-o", str(tmp_path / "m.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while "step 2/" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    assert "continue with: python microgpt.py --resume" in out
    assert microgpt.load_model(tmp_path / "m.partial.json").meta["resume"]["state"]["step"] >= 2

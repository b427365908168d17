"""visualize/: analyzer against microgpt.py and the seed's recorded figures, notebooks headless on a
model trained here and on the three seed models, the HTML report, bad model files, fonts.

    .venv/bin/python -m pytest tests/test_visualize.py -x -q
"""
import json
import random
import warnings

import numpy as np
import pytest

from conftest import shared_file
import microgpt
from visualize import plots, render
from visualize.fonts import japanese_font_path, setup_japanese_font
from visualize.model_analyzer import (OTHER, InferenceEngine, ModelAnalyzer, char_category,
                                      char_script)

SEEDS = {"names": "names_model.json", "python": "python_model.json", "haiku": "haiku_orgparam_model.json"}
EXPECTED = {  # figures each notebook must produce (names given to plots.show)
    "v1_model_structure": {"v1_param_counts"},
    "v2_attention_heatmap": {"v2_attention_heads", "v2_attention_interactive", "v2_head0_detail"},
    "v3_embedding_space": {"v3_token_pca", "v3_token_pca_interactive", "v3_token_dims", "v3_token_cosine",
                           "v3_position_pca", "v3_position_dims"},
    "v4_inference_animation": {"v4_last_step_probs", "v4_inference_dashboard"},
    "v5_probability_distribution": {"v5_transition_heatmap", "v5_transition_graph", "v5_context_bars",
                                    "v5_context_interactive"},
}


def seed_model(key):
    return str(shared_file(f"seed_models/{SEEDS[key]}"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer model trained here for a few steps with microgpt's own functions (has loss_history)."""
    rng = random.Random(0)
    docs = ["anna", "bob", "clara", "dora", "emma", "otto", "ada", "eve"]
    model = microgpt.init_model(sorted(set("".join(docs))), n_layer=2, n_embd=8, block_size=8, n_head=2, rng=rng)
    hist = microgpt.train(model, docs, steps=6, log=None)
    model.state_dict = microgpt.to_floats(model.state_dict)
    model.meta = {"loss_history": hist}
    path = tmp_path_factory.mktemp("viz") / "tiny.json"
    microgpt.save_model(str(path), model)
    return str(path)


@pytest.fixture(scope="module")
def kernel():
    km = render.start_kernel()
    yield km
    km.shutdown_kernel(now=True)


_RUNS = {}


def executed(key, tiny_model, km):
    """All five notebooks for one model, executed once per test module in the shared kernel."""
    if key not in _RUNS:
        model = tiny_model if key == "tiny" else seed_model(key)
        compare = seed_model("names") if key == "tiny" else ""  # also exercise V5's side-by-side view
        # haiku: the next-token matrix over the 300 tokens most likely after BOS, not all 2,345
        # (bench/bench_visualize.py times the full run)
        extra = {"MAX_ROWS": 300} if key == "haiku" else {}
        _RUNS[key] = render.execute_notebooks(model, compare, km=km, extra_params=extra, log=lambda *a: None)
    return _RUNS[key]


def outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("key", ["tiny", "names", "python", "haiku"])
def test_notebooks_run_headless(key, tiny_model, kernel):
    runs = executed(key, tiny_model, kernel)
    assert [name for name, _, _ in runs] == render.NOTEBOOKS
    for name, nb, _ in runs:
        outs = outputs(nb)
        assert not [o for o in outs if o["output_type"] == "error"], name
        figs = {(o.get("metadata") or {}).get("microgpt_name") for o in outs if o["output_type"] == "display_data"}
        expected = set(EXPECTED[name])
        if key == "tiny":  # trained here: loss curve stored; compared with the names model
            expected |= {"v1_model_structure": {"v1_loss_curve"},
                         "v5_probability_distribution": {"v5_compare_models"}}.get(name, set())
        assert expected <= figs, (name, expected - figs)
        plotly = [o for o in outs if render.PLOTLY_MIME in o.get("data", {})]
        assert len(plotly) == {"v2": 1, "v3": 1, "v4": 1, "v5": 1}.get(name[:2], 0), name


def test_notebooks_adapt_to_vocabulary(tiny_model, kernel):
    text = lambda key, nb: "".join(o.get("text", "") for o in outputs(dict((n, b) for n, b, _ in executed(key, tiny_model, kernel))[nb]))
    assert "'emma'" in text("names", "v2_attention_heatmap")
    assert "\"'a'[0]\"" in text("python", "v2_attention_heatmap")
    assert "'春の海'" in text("haiku", "v2_attention_heatmap")
    assert "'kana'" in text("names", "v4_inference_animation")       # the seed's recorded run
    assert "prompt '1'" in text("python", "v4_inference_animation")
    assert "27 nodes, 86 edges" in text("names", "v5_probability_distribution")  # seed: 27 nodes, 86 edges
    assert "27 of 27 rows" in text("names", "v5_probability_distribution")
    assert "301 of 2345 rows" in text("haiku", "v5_probability_distribution")  # 300 + BOS
    assert "rows sum to 1: True" in text("haiku", "v5_probability_distribution")
    assert "no loss history" in text("names", "v1_model_structure")


def test_report_is_self_contained(tiny_model, kernel, tmp_path):
    path, figures = render.build_report(executed("tiny", tiny_model, kernel), tmp_path, "tiny")
    page = path.read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1                      # plotly.js inlined exactly once
    from plotly.offline import get_plotlyjs  # its only cdn.plot.ly URL is the (unused) map data default
    assert page.count("cdn.plot.ly") == get_plotlyjs().count("cdn.plot.ly") and "<script src=" not in page
    assert page.count("Plotly.newPlot") == 4                   # v2, v3, v4, v5 interactive figures
    assert "Plotly.addFrames" in page or "frames" in page       # V4 animation frames are there
    assert len(figures) >= 14 and all((tmp_path / "figures" / f).stat().st_size > 1000 for f in figures)
    assert "v1_loss_curve.png" in figures and "v5_compare_models.png" in figures


def test_probabilities_and_sampling_equal_microgpt():
    an = ModelAnalyzer(seed_model("names"))
    eng = InferenceEngine(an)
    for ctx in ([an.BOS], [an.BOS] + an.tokenize("em"), [an.BOS] + an.tokenize("jo")):
        assert np.allclose(eng.get_token_probabilities(ctx), microgpt.next_token_probs(an.model, ctx), atol=1e-12)
    for seed in range(5):  # generate.py draws its samples with microgpt.sample
        for prompt in ("", "ma"):
            text, _ = eng.run(prompt, max_length=99, temperature=0.5, seed=seed)
            assert text == microgpt.sample(an.model, random.Random(seed), 0.5, prompt)
    # the seed's recorded V4 run and V5 figures (seed-systems.md A7)
    text, steps = eng.run("", max_length=5)
    assert text == "kana" and abs(steps[0]["probs"][an.stoi["k"]] - 0.1214) < 1e-4
    assert abs(eng.transition_matrix()[an.stoi["n"], an.stoi["a"]] - 0.5173) < 1e-4


def test_prompt_is_fed_whole():
    """The seed's engine fed only the last prompt character; ours must depend on all of it."""
    an = ModelAnalyzer(seed_model("names"))
    eng = InferenceEngine(an)
    _, a = eng.run("ma", max_length=1)
    _, b = eng.run("za", max_length=1)
    assert a[0]["pos_id"] == b[0]["pos_id"] == 2
    assert not np.allclose(a[0]["probs"], b[0]["probs"])


@pytest.mark.parametrize("key", ["names", "haiku"])
def test_attention_rows_sum_to_one_and_are_causal(key):
    an = ModelAnalyzer(seed_model(key))
    eng = InferenceEngine(an)
    text = plots.pick_text(an, plots.EXAMPLE_TEXTS)
    ids = [an.BOS] + an.tokenize(text)
    att = eng.attention_for_sequence(ids)
    assert att.shape == (an.n_layer, an.n_head, len(ids), len(ids))
    assert np.allclose(att.sum(-1), 1.0) and not np.triu(att, 1).any()
    other = eng.attention_for_sequence(ids[:-1] + [(ids[-1] + 1) % (an.vocab_size - 1)])
    assert np.allclose(att[..., :-1, :], other[..., :-1, :])   # a later token never changes earlier rows
    assert not np.allclose(att[..., -1, :], other[..., -1, :])
    if key == "haiku":  # seed V2, head 0: 春 -> BOS 0.8735, の -> 春 0.4167, 海 -> BOS 0.5628
        assert np.allclose([att[0, 0, 1, 0], att[0, 0, 2, 1], att[0, 0, 3, 0]], [0.8735, 0.4167, 0.5628], atol=1e-4)


def test_engine_on_tiny_multilayer_model(tiny_model):
    an = ModelAnalyzer(tiny_model)
    eng = InferenceEngine(an)
    tr = eng.forward([an.BOS] + an.tokenize("emma"))
    assert {"embedding", "layer1_attn_weights", "layer1_mlp_out", "logits", "probs"} <= set(tr[-1])
    assert len(tr[-1]["layer1_attn_weights"]) == an.n_head and len(tr[-1]["layer1_attn_weights"][0]) == 5
    assert an.loss_history() is not None and len(an.loss_history()) == 6
    P = eng.transition_matrix()
    assert np.allclose(P.sum(1), 1) and np.allclose(P[3], eng.get_token_probabilities([an.BOS, 3]))
    quick = InferenceEngine(an, max_rows=3).transition_matrix()  # quick mode: same rows, others NaN
    done = eng.computed_rows(quick)
    assert len(done) == 4 and an.BOS in done and np.isnan(quick).sum() == (an.vocab_size - 4) * an.vocab_size
    assert np.allclose(quick[done], P[done])


def test_malformed_models_give_named_errors(tmp_path):
    good = json.loads(open(seed_model("names"), encoding="utf-8").read())
    cases = {"missing.json": None, "bad.json": "{not json", "nokey.json": {k: good[k] for k in ("config", "state_dict")}}
    shape = json.loads(json.dumps(good))
    shape["state_dict"]["layer0.mlp_fc1"] = shape["state_dict"]["layer0.mlp_fc1"][:10]
    cases["shape.json"] = shape
    nokey = json.loads(json.dumps(good))
    del nokey["state_dict"]["wpe"]
    cases["nowpe.json"] = nokey
    expect = {"missing.json": "not found", "bad.json": "not valid JSON", "nokey.json": "tokenizer",
              "shape.json": "state_dict.layer0.mlp_fc1 has wrong shape", "nowpe.json": "state_dict.wpe"}
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        with pytest.raises(microgpt.ModelFormatError, match=expect[name]):
            ModelAnalyzer(path)
    with pytest.raises(SystemExit) as e:  # the CLI: one line, non-zero, no traceback
        render.main(["--model", str(tmp_path / "shape.json"), "--out", str(tmp_path / "out")])
    assert "wrong shape" in str(e.value.code) and "\n" not in str(e.value.code)
    with pytest.raises(microgpt.DataError, match="vocabulary"):
        ModelAnalyzer(seed_model("names")).tokenize("Emma!")


def test_categories_follow_the_seed():
    assert [char_category(c) for c in "aptmw([{+,'c"] == [
        "vowels", "plosives", "plosives", "sonorants", "approximants", "round_brackets", "square_brackets",
        "curly_brackets", "operators", "delimiters", "quotes", OTHER]
    assert {char_category(c) for c in "jq0_# 春"} == {OTHER}
    assert [char_script(c) for c in "の ア 春 々 『".split()] == ["hiragana", "katakana", "kanji", "kanji", "jp_symbol"]
    groups, _ = ModelAnalyzer(seed_model("haiku")).token_groups()  # all seed classes would be 'other'
    assert groups.count("kanji") == 2210 and groups.count("hiragana") == 75


def test_japanese_glyphs_render_without_missing_glyph_warnings():
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    assert setup_japanese_font() == "IPAexGothic"
    found = font_manager.findfont(font_manager.FontProperties(family="IPAexGothic"), fallback_to_default=False)
    assert found == str(japanese_font_path())
    fig = Figure()
    fig.subplots().set_title("春の海 ひねもす のたりかな")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.fig_png(fig)
    assert not [w for w in caught if "missing from" in str(w.message)]


def test_notebooks_are_thin_and_stored_without_outputs():
    import nbformat
    for name in render.NOTEBOOKS:
        nb = nbformat.read(render.VIS_DIR / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not any(c.outputs or c.execution_count for c in code), name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, name
        assert max(len(c.source.splitlines()) for c in code) <= 8, name  # analysis lives in visualize/
        assert "def " not in "".join(c.source for c in code), name

"""Figures and tables for the five notebooks; the notebooks only call these.

Every function takes a ModelAnalyzer (an) and/or an InferenceEngine (eng) and returns a matplotlib
Figure, a plotly Figure, a pandas object or a string; `show(fig, name)` displays it. Matplotlib
figures are built with matplotlib.figure.Figure (not pyplot), so nothing is displayed twice and
nothing leaks; `show` turns them into a PNG output named `name`, which render.py saves as a file.
The helpers under "Adapting to the vocabulary" pick inputs and label subsets per model, so one
notebook serves names (27 tokens), Python (93) and haiku (2,345).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
from matplotlib.figure import Figure

from .fonts import setup_japanese_font
from .model_analyzer import BOS_LABEL, InferenceEngine, ModelAnalyzer, readable

RED, BLUE, GREY = "#e74c3c", "steelblue", "#95a5a6"
HEADLESS_ENV = "MICROGPT_VIZ_HEADLESS"  # render.py sets it: plotly figures go out as JSON mimetype


_styled = False


def setup_style() -> None:
    """The seed's look: seaborn whitegrid, 14 pt bold titles, 12 pt axis labels, Japanese glyphs.
    Called by the first figure, not at import (importing changes no global state)."""
    global _styled
    _styled = True
    import matplotlib
    import seaborn as sns
    sns.set_style("whitegrid")
    matplotlib.rcParams.update({"axes.titlesize": 14, "axes.titleweight": "bold", "axes.labelsize": 12,
                                "figure.dpi": 100})
    setup_japanese_font()



def show(fig, name: str | None = None):
    """Display a matplotlib or plotly figure (or anything IPython can display) in a notebook."""
    from IPython.display import Image, display
    md = {"microgpt_name": name} if name else {}
    if isinstance(fig, Figure):
        display(Image(data=fig_png(fig)), metadata=md)
    elif hasattr(fig, "to_plotly_json"):
        if os.environ.get(HEADLESS_ENV):
            bundle = {"application/vnd.plotly.v1+json": json.loads(fig.to_json()),
                      "text/plain": f"<plotly figure {name or ''}>"}
            display(bundle, raw=True, metadata=md)
        else:
            fig.show()
    else:
        display(fig)


def fig_png(fig: Figure, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # constrained layout already fits; "tight" would draw twice
    return buf.getvalue()


def _square_size(n: int) -> tuple[float, float]:
    """Inches for an n x n labelled heatmap: grows with n, capped at the seed's 16 x 14."""
    return min(16.0, max(8.0, 0.3 * n + 3)), min(14.0, max(7.0, 0.28 * n + 2))


def _fig(w: float, h: float, nrows: int = 1, ncols: int = 1, **kw):
    if not _styled:
        setup_style()
    fig = Figure(figsize=(w, h), layout="constrained")  # no overlapping titles and labels
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


# ----------------------------------------------------------------------------------------------
# Adapting to the vocabulary

def pick_text(an: ModelAnalyzer, candidates, fallback_len: int = 4) -> str:
    """First candidate the vocabulary can encode and that fits the context; else the model's own
    greedy continuation from BOS (so every model gets a sensible example)."""
    for text in candidates:
        if text and an.can_encode(text) and len(text) < an.block_size:
            return text
    eng, ids = InferenceEngine(an), [an.BOS]
    for _ in range(fallback_len):
        p = eng.get_token_probabilities(ids)
        p[an.BOS] = 0.0
        ids.append(int(np.argmax(p)))
    return an.detokenize(ids[1:])


EXAMPLE_TEXTS = ["'a'[0]", "春の海", "emma"]  # the seed's V2 inputs (names, python, haiku)
CONTEXTS = [["al", "em", "jo"], ["pr", "[", "'"], ["春", "山", "花"]]  # V5 contexts


def pick_prompt(an: ModelAnalyzer) -> str:
    """V4's prompt: "1" for code models (as the seed's python run), else "" (start from BOS)."""
    return "1" if all(c in an.stoi for c in "1()") else ""


def pick_contexts(an: ModelAnalyzer, eng: InferenceEngine, n: int = 3) -> list[str]:
    for group in CONTEXTS:
        if all(an.can_encode(c) for c in group):
            return group
    return [an.uchars[i] for i in eng.frequent_tokens(n)]


def display_ids(an: ModelAnalyzer, eng: InferenceEngine, limit: int = 40, all_up_to: int = 100) -> list[int]:
    """Token ids to show in a square plot: all of them (BOS included) up to `all_up_to` tokens
    (names 27, Python 93, as the seed did), else the `limit` characters the model predicts most
    often, plus BOS."""
    if an.vocab_size <= all_up_to:
        return list(range(an.vocab_size))
    return [an.BOS] + sorted(eng.frequent_tokens(limit))


# ----------------------------------------------------------------------------------------------
# V1: structure and parameter statistics

def param_count_bar(an: ModelAnalyzer) -> Figure:
    import seaborn as sns
    df = an.parameter_table().reset_index()
    fig, ax = _fig(12, 5)
    ax = ax[0, 0]
    sns.barplot(data=df, x="matrix", y="params", hue="kind", dodge=False, ax=ax,
                palette={"Embedding": "#3498db", "Attention": "#e67e22", "MLP": "#2ecc71", "Output": "#9b59b6"})
    ax.set_yscale("log")
    ax.set_ylim(1, df["params"].max() * 3)  # bars start at 1, so their lengths compare honestly
    ax.set_title(f"Parameters per weight matrix ({an.total_params():,} in total, log scale)")
    ax.set_xlabel("weight matrix")
    ax.set_ylabel("parameters")
    ax.tick_params(axis="x", rotation=45)
    for p in ax.patches:
        h = p.get_height()
        if np.isfinite(h) and h > 0:
            ax.annotate(f"{int(round(h)):,}", (p.get_x() + p.get_width() / 2, h), ha="center", va="bottom", fontsize=9)
    return fig


def param_stats_table(an: ModelAnalyzer):
    df = an.parameter_table()[["kind", "shape", "params", "mean", "std", "min", "max"]]
    return (df.style.format({c: "{:.6f}" for c in ("mean", "std", "min", "max")} | {"params": "{:,}"})
            .highlight_max(subset=["mean", "std", "min", "max"], color="lightblue"))


def architecture_mermaid(an: ModelAnalyzer) -> str:
    """Mermaid diagram of the forward pass, with the embedding RMSNorm the seed's diagram left out."""
    L = an.n_layer
    return f"""```mermaid
flowchart TD
    A["token id"] --> B["token embedding wte [{an.vocab_size}x{an.n_embd}]"]
    P["position pos"] --> C["position embedding wpe [{an.block_size}x{an.n_embd}]"]
    B --> S["sum"]
    C --> S
    S --> N0["RMSNorm (embedding)"]
    N0 --> N1["RMSNorm"]
    subgraph block["transformer block x {L}"]
    N1 --> ATT["attention: {an.n_head} heads x {an.head_dim} dims, KV cache = causality"]
    ATT --> WO["output projection wo"]
    WO --> R1["+ residual 1"]
    R1 --> N2["RMSNorm"]
    N2 --> F1["fc1 {an.n_embd}->{4 * an.n_embd}"]
    F1 --> RL["ReLU"]
    RL --> F2["fc2 {4 * an.n_embd}->{an.n_embd}"]
    F2 --> R2["+ residual 2"]
    end
    R2 --> LM["lm_head [{an.vocab_size}x{an.n_embd}] (no final norm)"]
    LM --> SM["softmax / temperature -> P(next)"]
```"""


def loss_curve(an: ModelAnalyzer) -> Figure | None:
    """Training loss per step from meta.loss_history (our microgpt.py stores it; seed files do not)."""
    hist = an.loss_history()
    if not hist:
        return None
    y = np.asarray(hist)
    fig, ax = _fig(10, 4.5)
    ax = ax[0, 0]
    ax.plot(np.arange(1, len(y) + 1), y, color=GREY, lw=0.8, alpha=0.6, label="loss per step")
    w = max(1, len(y) // 20)
    if len(y) >= 2 * w and w > 1:
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, len(y) + 1), smooth, color=RED, lw=2, label=f"moving mean ({w} steps)")
    ax.axhline(np.log(an.vocab_size), color=BLUE, ls="--", lw=1, label=f"uniform guess ln {an.vocab_size}")
    ax.set_title(f"Training loss of {an.name}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.legend()
    return fig


# ----------------------------------------------------------------------------------------------
# V2: attention

def attention_heatmaps(an: ModelAnalyzer, att: np.ndarray, labels: list[str]) -> Figure:
    """Grid of heatmaps, one per (layer, head): query position (rows) x key position (columns)."""
    import seaborn as sns
    L, H, T, _ = att.shape
    ncols = min(H, 2) if L == 1 else H
    nrows = L * int(np.ceil(H / ncols))
    side = max(4.2, 0.6 * T)
    fig, axes = _fig(side * ncols + 1, side * nrows * 0.9, nrows=nrows, ncols=ncols)
    for k, ax in enumerate(axes.flat):
        li, h = divmod(k, H)
        if li >= L:
            ax.set_visible(False)
            continue
        mask = np.triu(np.ones((T, T), dtype=bool), k=1)  # future positions: never attended
        sns.heatmap(att[li, h], ax=ax, mask=mask, cmap="viridis", vmin=0, vmax=1, square=True,
                    annot=T <= 10, fmt=".2f", xticklabels=labels, yticklabels=labels,
                    cbar=k % ncols == ncols - 1, annot_kws={"fontsize": 8})
        ax.set_title(f"layer {li} head {h}", fontsize=12)
        ax.set_xlabel("key (attended) position")
        ax.set_ylabel("query position")
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(f"Attention weights for {''.join(l for l in labels if l != BOS_LABEL)!r}", fontweight="bold")
    return fig


def attention_plotly(an: ModelAnalyzer, att: np.ndarray, labels: list[str]):
    """Interactive version: one heatmap per head of layer 0 ... n_layer-1, hover shows the weight."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    L, H, T, _ = att.shape
    titles = [f"layer {li} head {h}" for li in range(L) for h in range(H)]
    fig = make_subplots(rows=L, cols=H, subplot_titles=titles, horizontal_spacing=0.04)
    # distinct tick labels: plotly merges equal category names, so number repeated characters
    ticks = [f"{i}:{l}" for i, l in enumerate(labels)]
    for li in range(L):
        for h in range(H):
            z = np.where(np.tril(np.ones((T, T))) > 0, att[li, h], np.nan)
            fig.add_trace(go.Heatmap(z=z, x=ticks, y=ticks, zmin=0, zmax=1, colorscale="Viridis",
                                     showscale=(li == 0 and h == H - 1),
                                     hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"),
                          row=li + 1, col=h + 1)
            fig.update_yaxes(autorange="reversed", row=li + 1, col=h + 1)
    fig.update_layout(height=330 * L + 80, width=max(900, 260 * H), title="Attention weights (hover for values)")
    return fig


def attention_head_detail(an: ModelAnalyzer, att: np.ndarray, labels: list[str], layer: int = 0, head: int = 0):
    """(DataFrame: for each query, the key it attends most and the full weight row; Figure)."""
    import pandas as pd
    import seaborn as sns
    w = att[layer, head]
    rows = []
    for q in range(w.shape[0]):
        k = int(np.argmax(w[q, :q + 1]))
        rows.append({"query": f"{q}:{labels[q]}", "most attended key": f"{k}:{labels[k]}",
                     "weight": round(float(w[q, k]), 4),
                     "weights 0..pos": " ".join(f"{x:.3f}" for x in w[q, :q + 1])})
    fig, ax = _fig(8, 6.5)
    sns.heatmap(w, ax=ax[0, 0], cmap="viridis", vmin=0, vmax=1, square=True, annot=True, fmt=".3f",
                xticklabels=labels, yticklabels=labels, mask=np.triu(np.ones_like(w, dtype=bool), k=1))
    ax[0, 0].set_title(f"layer {layer} head {head} in detail")
    ax[0, 0].set_xlabel("key position")
    ax[0, 0].set_ylabel("query position")
    return pd.DataFrame(rows).set_index("query"), fig


# ----------------------------------------------------------------------------------------------
# V3: embedding space

def pca_2d(matrix: np.ndarray):
    """(coordinates [n, 2], explained variance ratio [2])."""
    from sklearn.decomposition import PCA
    pca = PCA(n_components=2, random_state=0)
    return pca.fit_transform(matrix), pca.explained_variance_ratio_


def token_pca_scatter(an: ModelAnalyzer, label_ids=None) -> tuple[Figure, np.ndarray]:
    """PCA of wte (BOS row included) coloured by category; arrows join bracket pairs (the seed's
    spec asked for them). label_ids: which points get a text label (default: all)."""
    xy, ratio = pca_2d(an.get_embedding_matrix("token"))
    groups, colors = an.token_groups()
    big = an.vocab_size > 200
    fig, ax = _fig(12 if big else 11, 9 if big else 8)
    ax = ax[0, 0]
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=14 if big else 90, color=colors.get(g, GREY),
                   label=f"{g} ({len(idx)})", alpha=0.55 if big else 0.85, edgecolors="none")
    shown = range(an.vocab_size) if label_ids is None else label_ids
    for i in shown:  # small vocabularies: label beside the point; big ones: label instead of it
        ax.annotate(an.label(i), xy[i], xytext=(0, 0) if big else (5, 4), textcoords="offset points",
                    fontsize=10 if big else 11, ha="center" if big else "left", va="center" if big else "bottom")
    for pair in an.bracket_pairs():
        a, b = an.stoi[pair[0]], an.stoi[pair[1]]
        ax.annotate("", xy=xy[b], xytext=xy[a], arrowprops=dict(arrowstyle="->", color="black", lw=1.2))
    ax.set_title(f"Token embeddings (wte), PCA: PC1 {ratio[0]:.1%}, PC2 {ratio[1]:.1%} of the variance")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.legend(loc="best", fontsize=9, markerscale=1.5 if big else 0.7)
    return fig, ratio


def token_pca_plotly(an: ModelAnalyzer, label_ids=None):
    import plotly.graph_objects as go
    xy, ratio = pca_2d(an.get_embedding_matrix("token"))
    groups, colors = an.token_groups()
    show_text = set(range(an.vocab_size) if label_ids is None else label_ids)
    fig = go.Figure()
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        fig.add_trace(go.Scatter(x=xy[idx, 0].round(4), y=xy[idx, 1].round(4), mode="markers+text", name=g,
                                 text=[an.label(i) if i in show_text else "" for i in idx],
                                 hovertext=[f"{an.label(i)} (id {i})" for i in idx], hoverinfo="text",
                                 textposition="top center",
                                 marker=dict(size=6 if an.vocab_size > 200 else 11, color=colors.get(g, GREY))))
    fig.update_layout(title=f"Token embeddings, PCA ({ratio.sum():.1%} of the variance); click the legend to hide groups",
                      xaxis_title="PC1", yaxis_title="PC2", width=1000, height=750)
    return fig


def dimension_boxplot(matrix: np.ndarray, title: str) -> Figure:
    """Spread of each embedding dimension over all rows (tokens or positions)."""
    fig, ax = _fig(12, 4.5)
    ax = ax[0, 0]
    ax.boxplot(matrix, showfliers=True, flierprops=dict(markersize=2))
    ax.set_xticks(range(1, matrix.shape[1] + 1), [str(i) for i in range(matrix.shape[1])])
    ax.set_title(title)
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("value")
    return fig


def cosine_heatmap(an: ModelAnalyzer, ids) -> Figure:
    import seaborn as sns
    from sklearn.metrics.pairwise import cosine_similarity
    ids = list(ids)
    sim = cosine_similarity(an.get_embedding_matrix("token")[ids])
    n = len(ids)
    fig, ax = _fig(*_square_size(n))
    sns.heatmap(sim, ax=ax[0, 0], cmap="RdBu_r", center=0, vmin=-1, vmax=1, square=True,
                xticklabels=an.labels(ids), yticklabels=an.labels(ids), annot=n <= 12, fmt=".2f")
    ax[0, 0].tick_params(labelsize=7 if n > 50 else 10)
    ax[0, 0].set_title(f"Cosine similarity of token embeddings ({n} tokens)")
    ax[0, 0].tick_params(axis="y", rotation=0)
    ax[0, 0].tick_params(axis="x", rotation=0)
    return fig


def bracket_cosines(an: ModelAnalyzer):
    import pandas as pd
    wte = an.get_embedding_matrix("token")
    rows = []
    for pair in an.bracket_pairs():
        a, b = wte[an.stoi[pair[0]]], wte[an.stoi[pair[1]]]
        rows.append({"pair": pair, "cosine": round(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), 4)})
    return pd.DataFrame(rows, columns=["pair", "cosine"])


def position_trajectory(an: ModelAnalyzer) -> tuple[Figure, np.ndarray]:
    xy, ratio = pca_2d(an.get_embedding_matrix("position"))
    fig, ax = _fig(9, 6.5)
    ax = ax[0, 0]
    ax.plot(xy[:, 0], xy[:, 1], "-", color=GREY, lw=1)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(len(xy)), cmap="viridis", s=120, zorder=3)
    for i, (x, y) in enumerate(xy):
        ax.annotate(str(i), (x, y), ha="center", va="center", fontsize=8, color="white", zorder=4)
    fig.colorbar(sc, ax=ax, label="position")
    ax.set_title(f"Position embeddings (wpe) 0->{len(xy) - 1}, PCA: {ratio[0]:.1%} + {ratio[1]:.1%}")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    return fig, ratio


# ----------------------------------------------------------------------------------------------
# V4: inference step by step

def steps_table(an: ModelAnalyzer, steps: list[dict], k: int = 5):
    """One row per sampled token: what went in, what came out, and the states on the way."""
    import pandas as pd
    rows = []
    for s, st in enumerate(steps):
        p = np.asarray(st["probs"])
        top = np.argsort(-p)[:k]
        emb = np.asarray(st["embedding"])
        row = {"step": s + 1, "pos": st["pos_id"], "current": an.label(st["token_id"]),
               "sampled": an.label(st["next_token_id"]), "p(sampled)": round(float(p[st["next_token_id"]]), 4),
               f"top {k}": "  ".join(f"{an.label(i)}{'*' if i == st['next_token_id'] else ''} {p[i]:.3f}" for i in top),
               "emb mean": round(float(emb.mean()), 4), "emb std": round(float(emb.std()), 4)}
        for li in range(an.n_layer):
            heads = st[f"layer{li}_attn_weights"]
            row[f"L{li} head argmax (key pos: weight)"] = "  ".join(
                f"{int(np.argmax(w))}:{max(w):.2f}" for w in heads)
            row[f"L{li} mlp_out max"] = round(float(np.max(st[f"layer{li}_mlp_out"])), 3)
        rows.append(row)
    return pd.DataFrame(rows).set_index("step")


def token_chain(an: ModelAnalyzer, prompt: str, steps: list[dict]) -> str:
    """<BOS> -> prompt characters -> sampled characters (the seed's chain left out the prompt)."""
    parts = [BOS_LABEL] + [readable(c) for c in prompt] + [an.label(s["next_token_id"]) for s in steps]
    return " → ".join(parts)


def step_probability_bar(an: ModelAnalyzer, step: dict, k: int = 10, title: str | None = None) -> Figure:
    p = np.asarray(step["probs"])
    top = list(np.argsort(-p)[:k])
    if step["next_token_id"] not in top:  # the sampled token is always shown
        top[-1] = step["next_token_id"]
    fig, ax = _fig(10, 4.5)
    ax = ax[0, 0]
    colors = [RED if i == step["next_token_id"] else BLUE for i in top]
    ax.bar(an.labels(top), p[top], color=colors)
    for x, i in enumerate(top):
        ax.text(x, p[i], f"{p[i]:.3f}", ha="center", va="bottom", fontsize=9)
    ax.set_title(title or f"Top-{k} next-token probabilities after {an.label(step['token_id'])!r} "
                          f"at position {step['pos_id']} (red = sampled)")
    ax.set_xlabel("next token")
    ax.set_ylabel("probability")
    return fig


def inference_dashboard(an: ModelAnalyzer, prompt: str, steps: list[dict], k: int = 10):
    """Plotly animation, one frame per sampled token: top-k probabilities (sampled in red), where
    each head of the current position looks, the residual stream after each stage, and a log.
    Play/Pause buttons and a slider; every number comes from the real forward pass."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    seq = [an.BOS] + an.tokenize(prompt) + [s["next_token_id"] for s in steps]
    stage_names = ["embedding"] + [f"L{li} {x}" for li in range(an.n_layer) for x in ("attn_out", "mlp_out")]
    head_names = [f"L{li} h{h}" for li in range(an.n_layer) for h in range(an.n_head)]

    def traces(s: int):
        st = steps[s]
        pos = st["pos_id"]
        p = np.asarray(st["probs"])
        top = list(np.argsort(-p)[:k])
        if st["next_token_id"] not in top:
            top[-1] = st["next_token_id"]
        ctx = [f"{i}:{an.label(t)}" for i, t in enumerate(seq[:pos + 1])]
        att = [w for li in range(an.n_layer) for w in st[f"layer{li}_attn_weights"]]
        stream = [st["embedding"]] + [st[f"layer{li}_{x}"] for li in range(an.n_layer) for x in ("attn_out", "mlp_out")]
        log = [[str(i + 1) for i in range(s + 1)], [an.label(steps[i]["token_id"]) for i in range(s + 1)],
               [an.label(steps[i]["next_token_id"]) for i in range(s + 1)],
               [f"{steps[i]['probs'][steps[i]['next_token_id']]:.3f}" for i in range(s + 1)]]
        return [
            go.Bar(x=[f"{an.label(i)} " if i == an.BOS else an.label(i) for i in top], y=p[top].round(4),
                   marker_color=[RED if i == st["next_token_id"] else BLUE for i in top], name="P(next)"),
            go.Heatmap(z=np.round(att, 4), x=ctx, y=head_names, zmin=0, zmax=1, colorscale="Viridis",
                       showscale=False, hovertemplate="%{y} -> %{x}: %{z:.3f}<extra></extra>"),
            go.Heatmap(z=np.round(stream, 4), y=stage_names, colorscale="RdBu_r", zmid=0, showscale=False,
                       hovertemplate="%{y} dim %{x}: %{z:.3f}<extra></extra>"),
            go.Table(header=dict(values=["step", "current", "sampled", "p"]), cells=dict(values=log)),
        ]

    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.14,
                        specs=[[{"type": "xy"}, {"type": "xy"}], [{"type": "xy"}, {"type": "table"}]],
                        subplot_titles=["top next-token probabilities (red = sampled)",
                                        "attention of the current position (per head)",
                                        "residual stream of the current position", "generation log"])
    for i, tr in enumerate(traces(0)):
        fig.add_trace(tr, row=i // 2 + 1, col=i % 2 + 1)
    frames = [go.Frame(data=traces(s), name=str(s + 1), traces=[0, 1, 2, 3]) for s in range(len(steps))]
    fig.frames = frames
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    fig.update_layout(
        height=800, width=1100, showlegend=False,
        title=f"Generating {prompt!r} -> {prompt + ''.join(an.uchars[s['next_token_id']] for s in steps if s['next_token_id'] != an.BOS)!r}, one frame per token",
        updatemenus=[dict(type="buttons", x=0.0, y=-0.06, xanchor="left", direction="left", buttons=[
            dict(label="▶ Play", method="animate",
                 args=[None, {"frame": {"duration": 1000, "redraw": True}, "fromcurrent": True}]),
            dict(label="⏸ Pause", method="animate",
                 args=[[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}])])],
        sliders=[dict(active=0, x=0.15, y=-0.04, len=0.85, currentvalue={"prefix": "step "}, steps=[
            dict(label=f.name, method="animate",
                 args=[[f.name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]) for f in frames])])
    return fig


# ----------------------------------------------------------------------------------------------
# V5: conditional next-token distribution P(next | BOS, current)

def transition_heatmap(an: ModelAnalyzer, P: np.ndarray, ids) -> Figure:
    """P restricted to rows/columns `ids` (all tokens for small vocabularies)."""
    import seaborn as sns
    ids = list(ids)
    sub = P[np.ix_(ids, ids)]
    n = len(ids)
    fig, ax = _fig(*_square_size(n))
    sns.heatmap(sub, ax=ax[0, 0], cmap="viridis", vmin=0, vmax=float(np.nanmax(sub)), square=True,
                xticklabels=an.labels(ids), yticklabels=an.labels(ids), cbar_kws={"label": "P(next | current)"})
    subset = "" if n == an.vocab_size else f", {n} most predicted tokens of {an.vocab_size}"
    ax[0, 0].set_title(f"P(next | BOS, current){subset}")
    ax[0, 0].tick_params(labelsize=7 if n > 50 else 10)
    ax[0, 0].set_xlabel("next token")
    ax[0, 0].set_ylabel("current token")
    ax[0, 0].tick_params(axis="y", rotation=0)
    ax[0, 0].tick_params(axis="x", rotation=90)
    return fig


def transition_graph(an: ModelAnalyzer, P: np.ndarray, ids, threshold: float = 0.1):
    """Directed graph of transitions with P >= threshold among `ids`. Returns (Figure, nodes, edges)."""
    import matplotlib
    import networkx as nx
    ids = list(ids)
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    for a in ids:
        for b in ids:
            if P[a, b] >= threshold:
                g.add_edge(a, b, weight=float(P[a, b]))
    g.remove_nodes_from([n for n in list(g.nodes) if g.degree(n) == 0 and len(ids) > 30])
    fig, ax = _fig(9.5, 9.5)
    ax = ax[0, 0]
    pos = nx.circular_layout(g)
    w = [d["weight"] for _, _, d in g.edges(data=True)]
    wmax = max(w) if w else 1.0
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=520, node_color="#aed6f1", edgecolors=BLUE)
    # networkx defaults to font_family="sans-serif", which would drop the Japanese fallback font
    nx.draw_networkx_labels(g, pos, labels={n: an.label(n) for n in g.nodes}, ax=ax, font_size=11,
                            font_family=list(matplotlib.rcParams["font.family"]))
    nx.draw_networkx_edges(g, pos, ax=ax, width=[x / wmax * 4 for x in w], edge_color="grey", alpha=0.6,
                           arrows=True, arrowsize=12, connectionstyle="arc3,rad=0.1", node_size=520)
    ax.set_title(f"Transitions with P >= {threshold} ({g.number_of_nodes()} nodes, {g.number_of_edges()} edges)")
    ax.axis("off")
    return fig, g.number_of_nodes(), g.number_of_edges()


def top_transitions(an: ModelAnalyzer, P: np.ndarray, k: int = 20):
    import pandas as pd
    flat = np.argsort(-P, axis=None)[:k]
    rows = [{"current": an.label(int(a)), "next": an.label(int(b)), "P": round(float(P[a, b]), 4)}
            for a, b in zip(*np.unravel_index(flat, P.shape))]
    return pd.DataFrame(rows, index=range(1, k + 1))


def context_distributions(an: ModelAnalyzer, eng: InferenceEngine, contexts, k: int = 10):
    """{context: (top ids, their probabilities)} for P(next | BOS + context)."""
    out = {}
    for c in contexts:
        p = eng.get_token_probabilities([an.BOS] + an.tokenize(c))
        top = np.argsort(-p)[:k]
        out[c] = (top, p[top])
    return out


def context_bars(an: ModelAnalyzer, eng: InferenceEngine, contexts, k: int = 10) -> Figure:
    dists = context_distributions(an, eng, contexts, k)
    fig, axes = _fig(11, 3.3 * len(contexts), nrows=len(contexts))
    for ax, (c, (top, p)) in zip(axes[:, 0], dists.items()):
        ax.bar(an.labels(top), p, color=[RED if j == 0 else BLUE for j in range(len(top))])
        ax.set_title(f"P(next | {c!r})  (red = most likely)", fontsize=12)
        ax.set_ylabel("probability")
    return fig


def context_bars_plotly(an: ModelAnalyzer, eng: InferenceEngine, contexts, k: int = 10):
    """Grouped bars over the union of each context's top-k tokens (the seed's V5 view)."""
    import plotly.graph_objects as go
    probs = {c: eng.get_token_probabilities([an.BOS] + an.tokenize(c)) for c in contexts}
    union = list(dict.fromkeys(int(i) for c in contexts for i in np.argsort(-probs[c])[:k]))
    fig = go.Figure([go.Bar(name=repr(c), x=an.labels(union), y=probs[c][union].round(4)) for c in contexts])
    fig.update_layout(barmode="group", hovermode="x unified", width=1000, height=550,
                      title="Next-token probabilities for several contexts", xaxis_title="next token",
                      yaxis_title="probability")
    return fig


def compare_models(models, contexts, k: int = 8) -> Figure:
    """Side by side: for each context (rows), each model's top-k next tokens (columns).
    models: list of (ModelAnalyzer, InferenceEngine). Contexts a model cannot encode are marked."""
    fig, axes = _fig(6 * len(models), 3.2 * len(contexts), nrows=len(contexts), ncols=len(models))
    probs = {(col, c): eng.get_token_probabilities([an.BOS] + an.tokenize(c))
             for col, (an, eng) in enumerate(models) for c in contexts if an.can_encode(c)}
    ymax = 1.15 * max((p.max() for p in probs.values()), default=1.0)  # one scale for every panel
    for col, (an, eng) in enumerate(models):
        for row, c in enumerate(contexts):
            ax = axes[row, col]
            if (col, c) not in probs:
                ax.text(0.5, 0.5, f"{c!r} not in the vocabulary", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
            else:
                p = probs[col, c]
                top = np.argsort(-p)[:k]
                ax.bar(an.labels(top), p[top], color=BLUE)
                ax.set_ylim(0, ymax)
            ax.set_title(f"{an.name}: P(next | {c!r})", fontsize=11)
    return fig


def compare_summary(models, contexts):
    """Table: per model and context, entropy (nats) and the most likely next token."""
    import pandas as pd
    rows = []
    for an, eng in models:
        for c in contexts:
            if not an.can_encode(c):
                rows.append({"model": an.name, "context": c, "top": "(not in vocabulary)", "P(top)": None, "entropy": None})
                continue
            p = eng.get_token_probabilities([an.BOS] + an.tokenize(c))
            i = int(np.argmax(p))
            rows.append({"model": an.name, "context": c, "top": an.label(i), "P(top)": round(float(p[i]), 4),
                         "entropy": round(float(-(p * np.log(p + 1e-300)).sum()), 3)})
    return pd.DataFrame(rows)

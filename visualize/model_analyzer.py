"""Open a trained microGPT JSON model and look inside it.

ModelAnalyzer reads the weights (through microgpt.load_model, so every file microgpt.py and the
seed's patched microgpt.py wrote loads unchanged) and answers static questions: parameter counts and
statistics, embedding matrices, attention/MLP weights, the character categories of the seed.
InferenceEngine runs the model and records every intermediate state. The forward pass is
microgpt.gpt(..., trace=dict); it is imported, never copied, so what you see is what generates.

    from visualize.model_analyzer import ModelAnalyzer, InferenceEngine
    an = ModelAnalyzer("model.json"); eng = InferenceEngine(an)
    text, steps = eng.run("em", max_length=5)          # BOS and every prompt character are fed
    att = eng.attention_for_sequence([an.BOS] + an.tokenize("emma"))   # (n_layer, n_head, T, T)

Differences from the seed's visualize/model_analyzer.py (seed-systems.md A5): the engine feeds BOS
and the whole prompt (the seed fed only the last prompt character), uses its own random.Random
instead of reseeding the global RNG, refuses unknown characters instead of dropping them, and
loading errors name the missing key or wrong shape.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # microgpt.py lives in the repository root
    sys.path.insert(0, str(ROOT))
import microgpt  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Character categories: the seed's 12 classes (first match wins), plus writing systems for Japanese

CATEGORIES = {  # name -> characters; order matters (first match wins), as in the seed
    "vowels": "aeiouAEIOU",
    "plosives": "pbtdkgPBTDKG",
    "fricatives": "fvszhxFVSZHX",
    "sonorants": "mnlrMNLR",
    "approximants": "wyWY",
    "round_brackets": "()",
    "square_brackets": "[]",
    "curly_brackets": "{}",
    "operators": "+-*/%=<>&|^~!@",
    "delimiters": ",:;.",
    "quotes": "'\"`",
}
OTHER = "whitespace_other"  # the 12th class: digits, _, #, space, c/j/q, all Japanese ...
CATEGORY_COLORS = {  # the seed's fixed palette
    "vowels": "#e74c3c", "plosives": "#3498db", "fricatives": "#2ecc71", "sonorants": "#e67e22",
    "approximants": "#9b59b6", "round_brackets": "#5dade2", "square_brackets": "#52be80",
    "curly_brackets": "#af7ac5", "operators": "#c0392b", "delimiters": "#8b4513",
    "quotes": "#ec7063", OTHER: "#95a5a6",
}
# Beyond the seed: in the haiku model all 2,344 characters fall into whitespace_other, so a
# second scheme colours by writing system instead.
SCRIPT_COLORS = {
    "hiragana": "#e74c3c", "katakana": "#3498db", "kanji": "#2ecc71", "jp_symbol": "#e67e22",
    "latin": "#9b59b6", "digit": "#8b4513", "space": "#34495e", "symbol": "#c0392b",
}
BRACKET_PAIRS = ["()", "[]", "{}", "<>", "「」", "『』", "（）"]
BOS_LABEL = "<BOS>"
# Full P(next | BOS, c) matrices by model file: v3 and v5 both need it, and for the haiku model it
# costs 2,345 forward passes, so notebooks run in one kernel (render.py) compute it once.
_TRANSITIONS: dict = {}


def char_category(ch: str) -> str:
    """The seed's phonetic / symbol class of one character (12 classes)."""
    for name, chars in CATEGORIES.items():
        if ch in chars:
            return name
    return OTHER


def char_script(ch: str) -> str:
    """Writing system of one character: hiragana, katakana, kanji, jp_symbol, latin, digit, ..."""
    o = ord(ch)
    if 0x3040 <= o <= 0x309F:
        return "hiragana"
    if 0x30A0 <= o <= 0x30FF or 0xFF66 <= o <= 0xFF9F:
        return "katakana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or ch in "々〆":
        return "kanji"
    if 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF or 0x2000 <= o <= 0x25FF:
        return "jp_symbol"
    if ch.isascii() and ch.isalpha():
        return "latin"
    if ch.isdigit():
        return "digit"
    if ch.isspace():
        return "space"
    return "symbol"


def readable(ch: str) -> str:
    """A label that shows up in a plot: space, tab and newline become visible symbols."""
    return {" ": "␣", "\t": "⇥", "\n": "↵"}.get(ch, ch)


# ----------------------------------------------------------------------------------------------
# Static analysis of the weights

class ModelAnalyzer:
    """A loaded microGPT model plus questions about its weights (no forward pass here)."""

    def __init__(self, model_path: str | Path = "model.json"):
        self.path = Path(model_path)
        try:
            self.model = microgpt.load_model(str(self.path))
        except microgpt.MicroGPTError as err:
            # Keep the class (ModelFormatError / DataError) so callers can catch it, add the fix.
            raise type(err)(f"cannot visualize it: {err}") from None
        except OSError as err:
            raise microgpt.ModelFormatError(
                f"cannot read model file {self.path}: {err.strerror or err} -- check the path or train "
                f"a model: python microgpt.py -i data/names.txt -o model.json") from None
        m = self.model
        self.config = dict(m.config)
        self.state_dict = m.state_dict
        self.vocab_size = m.config["vocab_size"]
        self.n_layer = m.config["n_layer"]
        self.n_embd = m.config["n_embd"]
        self.block_size = m.config["block_size"]
        self.n_head = m.config["n_head"]
        self.head_dim = self.n_embd // self.n_head
        self.uchars = list(m.uchars)
        self.BOS = m.BOS
        self.stoi = m.stoi
        self.name = self.path.stem

    def cache_key(self) -> tuple:
        st = self.path.stat()
        return (str(self.path.resolve()), st.st_mtime_ns, st.st_size)

    def __repr__(self) -> str:
        return (f"ModelAnalyzer({self.name}: vocab_size={self.vocab_size}, n_layer={self.n_layer}, "
                f"n_embd={self.n_embd}, block_size={self.block_size}, n_head={self.n_head}, "
                f"params={self.total_params():,})")

    # --- structure -------------------------------------------------------------------------
    def describe(self) -> str:
        """The config block v1 prints first."""
        lines = [f"model file : {self.path}",
                 f"vocab_size : {self.vocab_size} ({self.vocab_size - 1} characters + BOS)",
                 f"n_layer    : {self.n_layer}", f"n_embd     : {self.n_embd}",
                 f"block_size : {self.block_size}", f"n_head     : {self.n_head}",
                 f"head_dim   : {self.head_dim}", f"parameters : {self.total_params():,}"]
        return "\n".join(lines)

    @staticmethod
    def layer_kind(name: str) -> str:
        """Embedding / Attention / MLP / Output: the hue of v1's bar chart."""
        if name in ("wte", "wpe"):
            return "Embedding"
        if name == "lm_head":
            return "Output"
        return "Attention" if ".attn_" in name else "MLP"

    def matrix(self, name: str) -> np.ndarray:
        """One weight matrix as a float array of shape [n_out, n_in] (row-major, like linear())."""
        if name not in self.state_dict:
            raise KeyError(f"no weight matrix {name!r}; known: {', '.join(self.state_dict)}")
        return np.asarray(self.state_dict[name], dtype=np.float64)

    def total_params(self) -> int:
        return sum(len(rows) * len(rows[0]) for rows in self.state_dict.values())

    def get_parameter_stats(self) -> dict:
        """Seed-compatible dict: params_per_layer, stats_per_layer (mean/std/min/max), total_params."""
        per, stats = {}, {}
        for name in self.state_dict:
            w = self.matrix(name)
            per[name] = int(w.size)
            stats[name] = {"mean": float(w.mean()), "std": float(w.std()),  # population std, as the seed
                           "min": float(w.min()), "max": float(w.max())}
        return {"params_per_layer": per, "stats_per_layer": stats, "total_params": sum(per.values())}

    def parameter_table(self):
        """pandas DataFrame: one row per matrix with kind, shape, count and statistics."""
        import pandas as pd
        s = self.get_parameter_stats()
        rows = [{"matrix": n, "kind": self.layer_kind(n), "shape": "x".join(map(str, self.matrix(n).shape)),
                 "params": s["params_per_layer"][n], **s["stats_per_layer"][n]} for n in self.state_dict]
        return pd.DataFrame(rows).set_index("matrix")

    def get_embedding_matrix(self, kind: str = "token") -> np.ndarray:
        """wte (kind='token', [vocab_size, n_embd]) or wpe (kind='position', [block_size, n_embd])."""
        if kind not in ("token", "position"):
            raise ValueError(f"kind must be 'token' or 'position', not {kind!r}")
        return self.matrix("wte" if kind == "token" else "wpe")

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.n_layer:
            raise ValueError(f"layer {layer} out of range: this model has n_layer={self.n_layer}")

    def get_attention_weights(self, layer: int = 0) -> dict:
        self._check_layer(layer)
        return {k: self.matrix(f"layer{layer}.attn_{k}") for k in ("wq", "wk", "wv", "wo")}

    def get_mlp_weights(self, layer: int = 0) -> dict:
        self._check_layer(layer)
        return {k: self.matrix(f"layer{layer}.mlp_{k}") for k in ("fc1", "fc2")}

    def loss_history(self) -> list[float] | None:
        """Training losses stored by our microgpt.py under meta (seed files have none -> None)."""
        hist = (self.model.meta or {}).get("loss_history")
        if not hist:
            return None
        if isinstance(hist[0], dict):  # tolerate [{"step":..,"loss":..}, ...]
            return [float(h.get("loss", h.get("train_loss", float("nan")))) for h in hist]
        return [float(x) for x in hist]

    # --- tokens ----------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Character ids without BOS; unknown characters raise microgpt.DataError naming them."""
        return microgpt.encode(self.model, text)

    def can_encode(self, text: str) -> bool:
        return all(ch in self.stoi for ch in text)

    def detokenize(self, ids) -> str:
        return "".join(self.uchars[i] for i in ids if 0 <= i < len(self.uchars))

    def label(self, token_id: int) -> str:
        """Readable plot label of one id: <BOS>, ␣ for space, the character otherwise."""
        return BOS_LABEL if token_id == self.BOS else readable(self.uchars[token_id])

    def labels(self, ids=None) -> list[str]:
        return [self.label(i) for i in (range(self.vocab_size) if ids is None else ids)]

    def get_phonetic_category(self, ch: str) -> str:
        return char_category(ch)

    def get_phonetic_categories_dict(self) -> dict:
        """{char: seed category} for every character (BOS excluded, as in the seed)."""
        return {c: char_category(c) for c in self.uchars}

    def token_groups(self) -> tuple[list[str], dict]:
        """(group per token id incl. BOS, colour per group). Seed categories, unless nearly every
        character is 'whitespace_other' (Japanese): then writing systems, which say more."""
        cats = [char_category(c) for c in self.uchars]
        if cats and sum(c == OTHER for c in cats) / len(cats) > 0.9:
            groups, colors = [char_script(c) for c in self.uchars], dict(SCRIPT_COLORS)
        else:
            groups, colors = cats, dict(CATEGORY_COLORS)
        colors[BOS_LABEL] = "#000000"
        return groups + [BOS_LABEL], colors

    def bracket_pairs(self) -> list[str]:
        """Bracket pairs whose both halves are in the vocabulary."""
        return [p for p in BRACKET_PAIRS if p[0] in self.stoi and p[1] in self.stoi]


# ----------------------------------------------------------------------------------------------
# Running the model and recording every intermediate state

class InferenceEngine:
    """Runs microgpt.gpt with trace=dict and keeps every state as plain floats / numpy arrays."""

    def __init__(self, analyzer: ModelAnalyzer, max_rows: int | None = None):
        self.an = analyzer
        self.model = analyzer.model
        self.max_rows = max_rows  # quick runs: next-token matrix over fewer current tokens

    def _cache(self):
        n = self.an.n_layer
        return [[] for _ in range(n)], [[] for _ in range(n)]

    def step(self, token_id: int, pos: int, keys, values, temperature: float = 1.0) -> dict:
        """One forward pass (appends to keys/values). Returns the trace plus 'probs' at temperature."""
        trace: dict = {}
        logits = microgpt.gpt(token_id, pos, keys, values, self.model.state_dict, self.model.config,
                              trace=trace)
        trace["probs"] = microgpt.softmax([l / temperature for l in logits])
        trace["token_id"], trace["pos_id"] = token_id, pos
        return trace

    def forward(self, token_ids, temperature: float = 1.0) -> list[dict]:
        """Feed a whole sequence (usually starting with BOS) from position 0; one trace per position."""
        token_ids = list(token_ids)
        if not token_ids:
            raise ValueError("empty context: start it with BOS (analyzer.BOS)")
        if len(token_ids) > self.an.block_size:
            raise microgpt.DataError(f"sequence of {len(token_ids)} tokens is longer than block_size "
                                     f"{self.an.block_size}: shorten the text")
        keys, values = self._cache()
        return [self.step(t, p, keys, values, temperature) for p, t in enumerate(token_ids)]

    def get_token_probabilities(self, context_ids, temperature: float = 1.0) -> np.ndarray:
        """P(next | context) at the last position, shape (vocab_size,)."""
        return np.asarray(self.forward(context_ids, temperature)[-1]["probs"])

    next_token_probs = get_token_probabilities

    def compute_attention_for_sequence(self, token_ids) -> np.ndarray:
        """Attention weights, shape (n_layer, n_head, T, T): row = query position, column = key
        position; zeros above the diagonal because a query only sees the cache 0..pos."""
        traces = self.forward(token_ids)
        T = len(traces)
        att = np.zeros((self.an.n_layer, self.an.n_head, T, T))
        for q, tr in enumerate(traces):
            for li in range(self.an.n_layer):
                for h, w in enumerate(tr[f"layer{li}_attn_weights"]):
                    att[li, h, q, :len(w)] = w
        return att

    attention_for_sequence = compute_attention_for_sequence

    def run(self, prompt: str = "", max_length: int = 10, temperature: float = 0.5,
            seed: int = 42) -> tuple[str, list[dict]]:
        """Generate like microgpt.sample: feed BOS and every prompt character, then sample up to
        max_length tokens (stop at BOS or block_size). Returns (prompt + generated text, steps);
        each step is the trace of the position that produced a sampled token, with 'probs' at
        the temperature, 'next_token_id' and 'prompt_len'."""
        rng = random.Random(seed)
        ids = [self.an.BOS] + self.an.tokenize(prompt)
        if len(ids) > self.an.block_size:
            raise microgpt.DataError(f"prompt of {len(ids) - 1} characters does not fit block_size "
                                     f"{self.an.block_size}")
        keys, values = self._cache()
        for pos, t in enumerate(ids[:-1]):  # the prompt goes into the KV cache first
            self.step(t, pos, keys, values)
        steps, tok, pos, text = [], ids[-1], len(ids) - 1, prompt
        while len(steps) < max_length and pos < self.an.block_size:
            tr = self.step(tok, pos, keys, values, temperature)
            nxt = rng.choices(range(self.an.vocab_size), weights=tr["probs"])[0]
            tr["next_token_id"], tr["prompt_len"] = nxt, len(prompt)
            steps.append(tr)
            if nxt == self.an.BOS:
                break
            text += self.an.uchars[nxt]
            tok, pos = nxt, pos + 1
        return text, steps

    run_inference = run

    def transition_matrix(self, rows=None, progress: bool = False) -> np.ndarray:
        """P(next | [BOS, c]): rows=None gives the full (vocab_size, vocab_size) matrix (cached per
        model file); with max_rows set, only BOS and the max_rows tokens most likely after BOS are
        computed and the other rows are NaN (quick runs). An explicit `rows` list gives
        (len(rows), vocab_size). The BOS pass is computed once and its KV cache copied, so each row
        costs one forward pass."""
        if rows is not None:
            return self._rows(list(rows), progress)
        V, key = self.an.vocab_size, (self.an.cache_key(), self.max_rows)
        if key not in _TRANSITIONS:
            if self.max_rows and self.max_rows < V - 1:
                p0 = self.get_token_probabilities([self.an.BOS])
                p0[self.an.BOS] = -1.0
                sel = sorted(int(i) for i in np.argsort(-p0)[:self.max_rows]) + [self.an.BOS]
                out = np.full((V, V), np.nan)
                out[sel] = self._rows(sel, progress)
            else:
                out = self._rows(list(range(V)), progress)
            _TRANSITIONS[key] = out
        return _TRANSITIONS[key]

    def computed_rows(self, P: np.ndarray) -> np.ndarray:
        """Ids of the rows of a transition matrix that were computed (all, unless max_rows)."""
        return np.flatnonzero(np.isfinite(P[:, 0]))

    def _rows(self, rows: list, progress: bool) -> np.ndarray:
        keys0, values0 = self._cache()
        self.step(self.an.BOS, 0, keys0, values0)
        it = rows
        if progress:
            from tqdm import tqdm  # plain text bar: it also shows in the headless report
            it = tqdm(rows, desc="P(next | current)", mininterval=2.0)
        out = np.empty((len(rows), self.an.vocab_size))
        for r, c in enumerate(it):
            keys = [list(k) for k in keys0]  # shallow copies: gpt() appends to the per-layer lists
            values = [list(v) for v in values0]
            out[r] = self.step(c, 1, keys, values)["probs"]
        return out

    def frequent_tokens(self, k: int) -> list[int]:
        """The k characters the model expects most often: column means of P(next | current),
        i.e. the next-character distribution averaged over every (computed) current character."""
        P = self.transition_matrix()
        score = np.nanmean(P, axis=0)
        score[self.an.BOS] = -1.0
        return [int(i) for i in np.argsort(-score)[:k]]

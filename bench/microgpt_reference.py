"""A deliberately plain microGPT, shaped like the original microgpt.py: one graph node per scalar
operation and a recursive topological sort. It is the baseline of bench/bench_microgpt.py and the
second implementation the tests compare microgpt.py against. Not for teaching: read microgpt.py.

    python bench/microgpt_reference.py --steps 1000 --input ../shared/data/names.txt
"""
import argparse
import json
import math
import random
import sys
import time

sys.setrecursionlimit(10000)  # the recursive sort needs it (the seed's patch raised it to 5000)


class Value:
    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data, self.grad, self._children, self._local_grads = data, 0, children, local_grads

    def __add__(self, o):
        o = o if isinstance(o, Value) else Value(o)
        return Value(self.data + o.data, (self, o), (1, 1))

    def __mul__(self, o):
        o = o if isinstance(o, Value) else Value(o)
        return Value(self.data * o.data, (self, o), (o.data, self.data))

    def __pow__(self, k): return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))
    def log(self): return Value(math.log(self.data), (self,), (1 / self.data,))
    def exp(self): return Value(math.exp(self.data), (self,), (math.exp(self.data),))
    def relu(self): return Value(max(0, self.data), (self,), (float(self.data > 0),))
    def __neg__(self): return self * -1
    def __radd__(self, o): return self + o
    def __sub__(self, o): return self + (-o)
    def __rmul__(self, o): return self * o
    def __truediv__(self, o): return self * o ** -1

    def backward(self):
        topo, seen = [], set()

        def build(v):
            if v not in seen:
                seen.add(v)
                for c in v._children:
                    build(c)
                topo.append(v)
        build(self)
        self.grad = 1
        for v in reversed(topo):
            for c, g in zip(v._children, v._local_grads):
                c.grad += g * v.grad


def linear(x, w): return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def softmax(logits):
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def gpt(tok, pos, keys, values, sd, n_layer, n_head, head_dim):
    x = rmsnorm([t + p for t, p in zip(sd["wte"][tok], sd["wpe"][pos])])
    for li in range(n_layer):
        res = x
        x = rmsnorm(x)
        q = linear(x, sd[f"layer{li}.attn_wq"])
        keys[li].append(linear(x, sd[f"layer{li}.attn_wk"]))
        values[li].append(linear(x, sd[f"layer{li}.attn_wv"]))
        out = []
        for h in range(n_head):
            s = h * head_dim
            att = softmax([sum(q[s + j] * k[s + j] for j in range(head_dim)) / head_dim ** 0.5 for k in keys[li]])
            out += [sum(att[t] * values[li][t][s + j] for t in range(len(att))) for j in range(head_dim)]
        x = [a + b for a, b in zip(linear(out, sd[f"layer{li}.attn_wo"]), res)]
        res = x
        x = [v.relu() for v in linear(rmsnorm(x), sd[f"layer{li}.mlp_fc1"])]
        x = [a + b for a, b in zip(linear(x, sd[f"layer{li}.mlp_fc2"]), res)]
    return linear(x, sd["lm_head"])


def build(docs, seed=42, n_layer=1, n_embd=16, block_size=16, n_head=4):
    """Shuffle and initialise exactly as the original does (same RNG calls, same order)."""
    rng = random.Random(seed)
    rng.shuffle(docs)
    uchars = sorted(set("".join(docs)))
    V = len(uchars) + 1
    mat = lambda o, i: [[Value(rng.gauss(0, 0.08)) for _ in range(i)] for _ in range(o)]
    sd = {"wte": mat(V, n_embd), "wpe": mat(block_size, n_embd), "lm_head": mat(V, n_embd)}
    for i in range(n_layer):
        for n in ("attn_wq", "attn_wk", "attn_wv", "attn_wo"):
            sd[f"layer{i}.{n}"] = mat(n_embd, n_embd)
        sd[f"layer{i}.mlp_fc1"], sd[f"layer{i}.mlp_fc2"] = mat(4 * n_embd, n_embd), mat(n_embd, 4 * n_embd)
    return uchars, sd


def doc_loss(doc, uchars, sd, n_layer=1, n_head=4, n_embd=16, block_size=16):
    BOS = len(uchars)
    tokens = [BOS] + [uchars.index(c) for c in doc] + [BOS]
    n = min(block_size, len(tokens) - 1)
    keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
    losses = []
    for pos in range(n):
        probs = softmax(gpt(tokens[pos], pos, keys, values, sd, n_layer, n_head, n_embd // n_head))
        losses.append(-probs[tokens[pos + 1]].log())
    return (1 / n) * sum(losses)


def train(docs, steps=1000, lr=0.01, b1=0.85, b2=0.99, eps=1e-8):
    uchars, sd = build(docs)
    params = [p for m in sd.values() for r in m for p in r]
    m, v, history = [0.0] * len(params), [0.0] * len(params), []
    for step in range(steps):
        loss = doc_loss(docs[step % len(docs)], uchars, sd)
        loss.backward()
        lr_t = lr * (1 - step / steps)
        for i, p in enumerate(params):
            m[i] = b1 * m[i] + (1 - b1) * p.grad
            v[i] = b2 * v[i] + (1 - b2) * p.grad ** 2
            p.data -= lr_t * (m[i] / (1 - b1 ** (step + 1))) / ((v[i] / (1 - b2 ** (step + 1))) ** 0.5 + eps)
            p.grad = 0
        history.append(loss.data)
    return history


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    a = ap.parse_args()
    docs = [l.strip() for l in open(a.input, encoding="utf-8") if l.strip()]
    t0 = time.process_time()
    h = train(docs, a.steps)
    print(json.dumps({"cpu_seconds": time.process_time() - t0, "history": h}))

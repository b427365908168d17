"""Score generated haiku, and score haiku models on held-out haiku.

Given generated lines and the training corpus it reports, over ALL generated lines (an empty
sample fails every test):
  share_17pm1   lines with 17 +- 1 morae (pykakasi reading, rules in haiku.py)
  share_17      lines with exactly 17 morae
  share_575     lines that can be cut into phrases of exactly 5, 7 and 5 morae
  share_new     non-empty lines that are not a line of the corpus
  share_known_chars  non-empty lines made only of characters that occur in the corpus
  distinct_2    distinct character bigrams / all character bigrams (1.0 = no repetition)
Given a model (a microGPT .json or a GPT-2 mini .pt checkpoint) it first samples the lines
(`--decode free`: plain sampling; `--decode mora`: the mora counter decides where a line may end),
and adds the validation loss per character: nats per predicted token, the end-of-haiku token
included, on the held-out haiku of the corpus (haiku.is_heldout, minus the lines the seed's model
trained on and lines with characters outside the training split), or on `--heldout FILE`.

    python haiku_eval.py --corpus ../shared/data/aozora_haiku_30000.txt --samples ../shared/data/seed_models/haiku_samples_seed42.txt --name seed
    python haiku_eval.py --corpus ../shared/data/aozora_haiku_30000.txt --model runs/haiku/a_orgparam.json --name a --json results/haiku/eval.json --samples_out results/haiku/samples_a.txt
    python haiku_eval.py --corpus ../shared/data/aozora_haiku_30000.txt --model runs/haiku/c_gpt2/model.pt --name c --temperature 0.8
    python haiku_eval.py --table results/haiku/eval.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from haiku import HaikuError, count_morae, read_lines, split_575, split_lines

# ----------------------------------------------------------------------------------------------
# Metrics on lines


def distinct_n(lines: list[str], n: int = 2) -> float:
    """Distinct character n-grams / all character n-grams, n-grams taken inside each line."""
    grams = [ln[i:i + n] for ln in lines for i in range(len(ln) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def line_metrics(lines: list[str], corpus: list[str]) -> dict:
    """The line-level scores described in the module docstring (shares are 0..1)."""
    n = len(lines)
    if n == 0:
        raise HaikuError("no generated lines to score")
    corpus_set, corpus_chars = set(corpus), set("".join(corpus))
    filled = [ln for ln in lines if ln]
    morae = [count_morae(ln) for ln in filled]
    return {
        "n": n,
        "n_empty": n - len(filled),
        "share_17pm1": sum(abs(m - 17) <= 1 for m in morae) / n,
        "share_17": sum(m == 17 for m in morae) / n,
        "share_575": sum(split_575(ln, 0) is not None for ln in filled) / n,
        "share_new": sum(ln not in corpus_set for ln in filled) / n,
        "share_known_chars": sum(set(ln) <= corpus_chars for ln in filled) / n,
        "distinct_2": distinct_n(filled, 2),
        "mean_morae": sum(morae) / len(morae) if morae else 0.0,
        "mean_chars": sum(map(len, filled)) / len(filled) if filled else 0.0,
    }


def seed_seen_docs(corpus: list[str], n: int = 1000, seed: int = 42) -> set[str]:
    """The documents the seed's haiku model trained on: the original microgpt.py seeds random with
    42, shuffles the lines and trains one document per step for 1000 steps, so it saw the first
    1000 lines of that shuffle (this reproduces exactly its 883 never-trained embeddings)."""
    docs = list(corpus)
    random.Random(seed).shuffle(docs)
    return set(docs[:n])


def validation_lines(corpus: list[str], seed_seen: int = 1000) -> list[str]:
    """Held-out lines (haiku.is_heldout) minus those the seed's model trained on, so that every
    row, the seed's model included, is scored on lines it never saw, and minus lines with a
    character absent from the training split, which no model trained on it can encode."""
    train, held = split_lines(corpus)
    seen = seed_seen_docs(corpus, seed_seen) if seed_seen > 0 else set()
    train_chars = set("".join(train))  # our models' vocabulary: lines beyond it cannot be scored
    return [ln for ln in held if ln not in seen and set(ln) <= train_chars]


# ----------------------------------------------------------------------------------------------
# Models: microGPT (.json, pure Python) or GPT-2 mini (.pt, PyTorch)


def is_microgpt(path: str | Path) -> bool:
    return str(path).lower().endswith(".json")


def load(path: str | Path):
    """(kind, model, tokenizer) with the loaders of microgpt.py / train_gpt2_mini.py."""
    if is_microgpt(path):
        import microgpt
        return "microgpt", microgpt.load_model(path), None
    import torch
    import train_gpt2_mini as g2
    torch.set_num_threads(1)
    model, tok, _ = g2.load_checkpoint(path, "cpu")
    model.eval()
    if "\n" not in tok.stoi:
        raise HaikuError(f"{path}: the vocabulary has no newline, so it cannot mark where a haiku ends; "
                         f"train it on a corpus with one haiku per line")
    return "gpt2", model, tok


def generate(kind: str, model, tok, n: int, temperature: float, seed: int) -> list[str]:
    """n samples, each started from the beginning-of-haiku token, unfiltered."""
    if kind == "microgpt":
        import microgpt
        rng = random.Random(seed)
        return [microgpt.sample(model, rng, temperature) for _ in range(n)]
    import torch
    import train_gpt2_mini as g2
    g2.set_seed(seed)
    nl = tok.stoi["\n"]
    start = torch.full((n, 1), nl, dtype=torch.long)          # (n, 1): every sample starts a line
    out = model.generate(start, max_new_tokens=32, temperature=temperature)[:, 1:]  # (n, 32)
    return [tok.decode(row.tolist()).split("\n", 1)[0] for row in out]


def mora_mask(probs: list[float], end: int, text: str, target: int, tolerance: int) -> list[float]:
    """Length-constrained decoding: the model picks every character, the mora counter decides
    when the line may end. Below target-tolerance morae the end token is forbidden; from target
    morae on it is forced; in between the model's own probability decides."""
    m = count_morae(text)
    if m >= target:
        return [1.0 if i == end else 0.0 for i in range(len(probs))]
    if m < target - tolerance:
        probs = [0.0 if i == end else p for i, p in enumerate(probs)]
    total = sum(probs)
    return [p / total for p in probs]


def generate_constrained(kind: str, model, tok, n: int, temperature: float, seed: int,
                         target: int = 17, tolerance: int = 1) -> list[str]:
    """Like generate(), but every sampling step goes through mora_mask()."""
    rng = random.Random(seed)
    out = []
    if kind == "microgpt":
        import microgpt
        V, bos = model.config["vocab_size"], model.BOS
        for _ in range(n):
            keys, values = microgpt.new_cache(model)
            token, text = bos, ""
            for pos in range(model.config["block_size"]):  # the position table ends here
                logits = microgpt.gpt(token, pos, keys, values, model.state_dict, model.config)
                probs = mora_mask(microgpt.softmax([l / temperature for l in logits]), bos, text,
                                  target, tolerance)
                token = rng.choices(range(V), weights=probs)[0]
                if token == bos:
                    break
                text += model.uchars[token]
            out.append(text)
        return out
    import torch
    nl, block = tok.stoi["\n"], model.config.block_size
    with torch.no_grad():
        for _ in range(n):
            ids, text = [nl], ""
            for _ in range(40):
                logits = model(torch.tensor([ids[-block:]]))[0][0, -1] / temperature   # (V,)
                probs = mora_mask(torch.softmax(logits, -1).tolist(), nl, text, target, tolerance)
                token = rng.choices(range(len(probs)), weights=probs)[0]
                if token == nl:
                    break
                ids.append(token)
                text += tok.chars[token]
            out.append(text)
    return out


def val_loss(kind: str, model, tok, lines: list[str]) -> dict:
    """Mean nats per predicted token on held-out lines the model's vocabulary can encode.

    Each line is scored alone: [start] + characters + [end], where start/end is BOS for
    microGPT and a newline for GPT-2 mini. microGPT cannot score positions beyond its
    block_size (microgpt.evaluate cuts there, as training does); the share scored is reported."""
    vocab = set(model.uchars) if kind == "microgpt" else set(tok.chars)
    ok = [ln for ln in lines if set(ln) <= vocab]
    total_tokens = sum(len(ln) + 1 for ln in ok)
    if not ok:
        raise HaikuError("no held-out line can be encoded with the model's vocabulary")
    if kind == "microgpt":
        import microgpt
        scored = sum(min(len(ln) + 1, model.config["block_size"]) for ln in ok)
        loss = microgpt.evaluate(model, ok)
    else:
        import torch
        import torch.nn.functional as F
        nl = tok.stoi["\n"]
        nll, scored = 0.0, 0
        with torch.no_grad():
            for ln in ok:
                ids = torch.tensor([[nl] + tok.encode(ln) + [nl]])   # (1, L+2)
                logits, _ = model(ids[:, :-1])                       # (1, L+1, V)
                nll += F.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
                scored += ids.shape[1] - 1
        loss = nll / scored
    return {"val_loss_per_char": loss, "val_lines": len(ok), "val_lines_skipped": len(lines) - len(ok),
            "val_tokens_scored_share": scored / total_tokens}


def n_params(kind: str, model) -> int:
    if kind == "microgpt":
        return sum(len(r) for mat in model.state_dict.values() for r in mat)
    return model.num_params()


# ----------------------------------------------------------------------------------------------
# Results table


def update_table(path: Path, row: dict) -> None:
    """Insert or replace the row with the same name in a JSON table {"rows": [...]} (atomic)."""
    table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"rows": []}
    table["rows"] = [r for r in table["rows"] if r.get("name") != row["name"]] + [row]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def markdown_table(table: dict) -> str:
    """The rows of a results table as a Markdown table (shares in percent)."""
    cols = [("share_17pm1", "17±1 morae"), ("share_17", "exactly 17"), ("share_575", "cuts 5-7-5"),
            ("share_new", "new"), ("share_known_chars", "known chars"), ("distinct_2", "distinct-2")]
    out = ["| row | samples | T | " + " | ".join(c[1] for c in cols) + " | val loss (nats/char) |",
           "|---|---|---|" + "---|" * len(cols) + "---|"]
    for r in table["rows"]:
        cells = [f"{100 * r[k]:.1f}%" if k != "distinct_2" else f"{r[k]:.3f}" for k, _ in cols]
        val = f"{r['val_loss_per_char']:.3f}" if "val_loss_per_char" in r else "-"
        dec = f" {r['decode']}" if r.get("decode") == "mora" else ""
        out.append(f"| {r['name']} | {r['n']} | {r.get('temperature', '-')}{dec} | " + " | ".join(cells) + f" | {val} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Score generated haiku and haiku models.")
    p.add_argument("--corpus", default=None, help="the training corpus, one haiku per line (UTF-8)")
    p.add_argument("--table", default=None, help="print this JSON results table as Markdown and stop")
    p.add_argument("--samples", default=None, help="generated lines to score (one per line, empty lines count)")
    p.add_argument("--model", default=None, help="microGPT .json or GPT-2 mini .pt: sample from it and score it")
    p.add_argument("--num_samples", type=int, default=200, help="samples drawn from --model (default 200)")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (the seed used 0.5)")
    p.add_argument("--seed", type=int, default=42, help="sampling seed")
    p.add_argument("--decode", choices=["free", "mora"], default="free",
                   help="free: plain sampling; mora: the line may end only at 17-1..17 morae and must end at 17")
    p.add_argument("--samples_out", default=None, help="write the drawn samples here")
    p.add_argument("--name", default=None, help="row name in the table (default: the file name)")
    p.add_argument("--json", default=None, help="insert the row into this JSON table")
    p.add_argument("--heldout", default=None,
                   help="held-out lines to score the model on (default: the sha1 rule applied to --corpus)")
    p.add_argument("--no_val", action="store_true", help="skip the held-out loss (slow for microGPT)")
    p.add_argument("--seed_seen", type=int, default=1000,
                   help="drop from the held-out lines the first N of the seed's shuffle (0: keep all)")
    p.add_argument("--show", type=int, default=10, help="print this many samples")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.table:
            if not Path(args.table).is_file():
                raise HaikuError(f"{args.table}: no such results table")
            print(markdown_table(json.loads(Path(args.table).read_text(encoding="utf-8"))))
            return
        if not args.corpus:
            raise HaikuError("--corpus is required: the training corpus the samples are compared with")
        if not args.samples and not args.model:
            raise HaikuError("nothing to score: pass --samples FILE or --model PATH")
        if args.num_samples < 1 or args.temperature <= 0:
            raise HaikuError("--num_samples must be >= 1 and --temperature > 0")
        corpus = read_lines(args.corpus)
        row: dict = {"name": args.name or Path(args.model or args.samples).stem,
                     "corpus": os.path.relpath(args.corpus)}
        kind = model = tok = None
        if args.model:
            if not Path(args.model).is_file():
                raise HaikuError(f"{args.model}: no such model file; train it first (see README)")
            kind, model, tok = load(args.model)
            row.update(model=os.path.relpath(args.model), kind=kind, n_params=n_params(kind, model))
        if args.samples:
            p = Path(args.samples)
            if not p.is_file():
                raise HaikuError(f"{p}: no such file")
            try:
                lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
            except UnicodeDecodeError:
                raise HaikuError(f"{p}: not UTF-8; convert it first") from None
            while lines and not lines[-1]:
                lines.pop()  # a trailing newline is not an empty sample
            row["samples"] = os.path.relpath(args.samples)
        else:
            t0 = time.time()
            gen = generate if args.decode == "free" else generate_constrained
            lines = gen(kind, model, tok, args.num_samples, args.temperature, args.seed)
            row.update(temperature=args.temperature, seed=args.seed, decode=args.decode,
                       sample_seconds=round(time.time() - t0, 1))
            if args.samples_out:
                out = Path(args.samples_out)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_name(out.name + ".tmp")
                tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
                os.replace(tmp, out)
        row.update(line_metrics(lines, corpus))
        if model is not None and not args.no_val:
            held = read_lines(args.heldout) if args.heldout else validation_lines(corpus, args.seed_seen)
            row["heldout_lines"] = len(held)
            row.update(val_loss(kind, model, tok, held))
        for ln in lines[:args.show]:
            print(f"  {ln}")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                         ensure_ascii=False))
        if args.json:
            update_table(Path(args.json), row)
    except HaikuError as e:
        sys.exit(f"error: {e}")
    except Exception as e:  # the model loaders' own one-line errors
        if type(e).__name__ in ("MicroGPTError", "ModelFormatError", "DataError", "GPTError", "UnknownCharError"):
            sys.exit(f"error: {e}")
        raise


if __name__ == "__main__":
    main()

"""Haiku arithmetic: count morae (on, 音), find the 5-7-5 cut, and define the held-out split.

A haiku is 17 morae in three phrases of 5, 7 and 5. A mora is one beat of a kana reading:
か = 1, きゃ = 1 (the small ゃ rides on き), っ = 1, ー = 1, ん = 1. Kanji have no length of
their own, so we first read them with pykakasi (a pure-Python analyser whose dictionary ships
inside its PyPI wheel), then count the kana. This file is the one home of that rule; the corpus
builder (data/prepare_haiku.py) and the evaluator (haiku_eval.py) import it.

The held-out split is a rule, not a file: a line is held out when the SHA-1 of its UTF-8 text
is 0 modulo 10 (about 10%). The same line always lands on the same side, whatever corpus it
comes in, so nobody has to commit the lines to share the split.

    python haiku.py count 古池や蛙飛びこむ水の音
    python haiku.py split --corpus ../shared/data/aozora_haiku_30000.txt --out_dir runs/haiku
    python haiku.py stats --corpus ../shared/data/aozora_haiku_30000.txt
    python haiku.py kana --corpus ../shared/data/aozora_haiku_30000.txt --out_dir runs/haiku_kana
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

# ----------------------------------------------------------------------------------------------
# Mora rules on kana

# Small kana that merge with the kana before them (きゃ, ふぁ, くゎ): zero morae of their own.
SMALL_KANA = set("ぁぃぅぇぉゃゅょゎァィゥェォャュョヮ")
# Iteration marks repeat the kana before them: one mora each.
KANA_REPEAT = set("ゝゞヽヾ")
# Kanji iteration marks repeat the kanji before them: as many morae as that kanji's reading.
KANJI_REPEAT = set("々〻")
# Characters that look like kana but are not sounds.
NOT_SOUNDS = set("゛゜・")
# Marks that carry no sound at all (punctuation, brackets, spaces, the Aozora ruby bar).
SILENT = set("、。，．・｜|『』「」（）()〔〕【】○―─…‥ 　!?！？")
# Kanji with no kana in pykakasi's reading that we can still count by hand.
SPECIAL_READINGS = {"〆": "しめ"}


def is_kana(ch: str) -> bool:
    """Hiragana or katakana letter (includes small kana, っ, ー, ゝ)."""
    return ("\u3041" <= ch <= "\u309f" or "\u30a0" <= ch <= "\u30ff") and ch not in NOT_SOUNDS


def kana_morae(kana: str) -> int:
    """Morae in a kana string: every kana counts 1 except the small ゃゅょぁぃぅぇぉゎ."""
    return sum(1 for ch in kana if is_kana(ch) and ch not in SMALL_KANA)


# ----------------------------------------------------------------------------------------------
# Readings from pykakasi

@lru_cache(maxsize=1)
def _kakasi():
    # Built on first use, never at import: pykakasi loads its dictionaries (about 0.3 s).
    import pykakasi
    return pykakasi.kakasi()


def tokens(text: str) -> list[tuple[str, str]]:
    """pykakasi's tokens as (original, hiragana reading) pairs, in order."""
    return [(t["orig"], t["hira"]) for t in _kakasi().convert(text)] if text else []


def reading(text: str) -> str:
    """The hiragana reading of text (kanji read by pykakasi, kana kept)."""
    return "".join(h for _, h in tokens(text))


def _token_morae(hira: str, prev_kanji_morae: int) -> tuple[int, list[str]]:
    """Morae of one pykakasi reading, and the characters it could not read."""
    n, unknown = 0, []
    for ch in hira:
        if ch in SPECIAL_READINGS:
            n += kana_morae(SPECIAL_READINGS[ch])
        elif ch in KANJI_REPEAT:
            n += prev_kanji_morae  # 々 left alone by pykakasi repeats the kanji before it
        elif is_kana(ch):
            n += 0 if ch in SMALL_KANA else 1
        elif ch not in SILENT and not ch.isspace():
            unknown.append(ch)
    return n, unknown


def _read_tokens(text: str) -> list[tuple[str, int, list[str]]]:
    """(original, morae, unreadable characters) per pykakasi token."""
    out, prev_kanji = [], 0
    for orig, hira in tokens(text):
        m, unknown = _token_morae(hira, prev_kanji)
        out.append((orig, m, unknown))
        last = orig[-1] if orig else ""
        if last and not is_kana(last) and last not in SILENT and last not in KANJI_REPEAT:
            # remember how long the last kanji sounds, for a 々 that may follow
            prev_kanji = kana_morae(reading(last))
    return out


def units(text: str) -> list[tuple[str, int, bool]]:
    """Split text into (piece, morae, cut_allowed_before) units for the 5-7-5 search.

    A token that contains a kanji is one unit: the cut may not fall inside 法隆寺 or 飛び.
    A kana token is split into characters, because pykakasi glues whole kana runs together
    (をふまへて is one token) and the phrase boundary may fall inside such a run; but never
    before a small kana, っ, ー or ん, which belong to the syllable before them.
    """
    out: list[tuple[str, int, bool]] = []
    for orig, m, _ in _read_tokens(text):
        if orig and all(is_kana(c) or c in SILENT for c in orig):
            for ch in orig:
                cut = ch not in SMALL_KANA and ch not in "っッーんン" and ch not in SILENT
                out.append((ch, 1 if is_kana(ch) and ch not in SMALL_KANA else 0, cut))
        else:
            out.append((orig, m, True))
    return out


@lru_cache(maxsize=200_000)
def scan(text: str) -> tuple[int, tuple[str, ...]]:
    """(morae, characters that could not be read) for one line of text."""
    toks = _read_tokens(text)
    return sum(m for _, m, _ in toks), tuple(c for _, _, unk in toks for c in unk)


def kana_line(text: str) -> str:
    """A line rewritten as its hiragana reading, silent marks dropped: one character is then
    (almost) one mora, so a character model sees the length it has to learn."""
    return "".join(ch for ch in reading(text) if ch not in SILENT and not ch.isspace())


def count_morae(text: str) -> int:
    """Number of morae in text, read with pykakasi (see the module docstring for the rules)."""
    return scan(text)[0]


def split_575(text: str, tolerance: int = 0) -> tuple[str, str, str] | None:
    """Cut text into three phrases of 5, 7 and 5 morae (each within +-tolerance, the total
    within 17 +- tolerance), at allowed unit boundaries; None when no such cut exists.
    Among valid cuts the one closest to exact 5-7-5 wins."""
    us = units(text)
    best, best_dev = None, None
    total = sum(m for _, m, _ in us)
    if abs(total - 17) > tolerance:
        return None
    # prefix[i] = morae of units[:i]; cuts are unit indices i, j with 0 < i < j < len(us)
    prefix = [0]
    for _, m, _ in us:
        prefix.append(prefix[-1] + m)
    for i in range(1, len(us)):
        if not us[i][2] or abs(prefix[i] - 5) > tolerance:
            continue
        for j in range(i + 1, len(us)):
            if not us[j][2]:
                continue
            a, b, c = prefix[i], prefix[j] - prefix[i], total - prefix[j]
            if abs(b - 7) > tolerance or abs(c - 5) > tolerance:
                continue
            dev = abs(a - 5) + abs(b - 7) + abs(c - 5)
            if best_dev is None or dev < best_dev:
                pieces = ["".join(u[0] for u in us[:i]), "".join(u[0] for u in us[i:j]),
                          "".join(u[0] for u in us[j:])]
                best, best_dev = tuple(pieces), dev
    return best


# ----------------------------------------------------------------------------------------------
# The held-out split (a rule in code, not a committed list)

HELDOUT_MODULUS = 10  # about 1 line in 10 is held out


def is_heldout(line: str) -> bool:
    """True when line belongs to the held-out split: sha1(utf-8 text) % 10 == 0."""
    digest = hashlib.sha1(line.strip().encode("utf-8")).hexdigest()
    return int(digest, 16) % HELDOUT_MODULUS == 0


def split_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """(train, heldout) keeping the input order inside each part."""
    train = [ln for ln in lines if not is_heldout(ln)]
    held = [ln for ln in lines if is_heldout(ln)]
    return train, held


class HaikuError(Exception):
    """A one-line, user-facing error (missing file, wrong encoding, empty corpus)."""


def read_lines(path: str | Path) -> list[str]:
    """Stripped non-empty lines of a UTF-8 text file, with one-line errors."""
    p = Path(path)
    if not p.is_file():
        raise HaikuError(f"{p}: no such file; pass an existing UTF-8 text file, one haiku per line")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HaikuError(f"{p}: not UTF-8; convert it first (for Shift_JIS: iconv -f cp932 -t utf-8)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise HaikuError(f"{p}: the file has no non-empty lines")
    return lines


def write_lines(path: str | Path, lines: list[str]) -> None:
    """Write lines atomically (temporary file in the same folder, then os.replace)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    os.replace(tmp, p)


def _sha256_lines(lines: list[str]) -> str:
    return hashlib.sha256("".join(ln + "\n" for ln in lines).encode("utf-8")).hexdigest()


def write_definition(path: Path, corpus: Path, lines: list[str], train: list[str], held: list[str]) -> None:
    """The split as data without the lines: rule, counts and checksums to check a rebuild against."""
    import json
    d = {"rule": f"held out when int(sha1(line.strip().encode('utf-8')).hexdigest(), 16) % "
                 f"{HELDOUT_MODULUS} == 0 (haiku.is_heldout)",
         "corpus": corpus.name, "corpus_sha256": hashlib.sha256(corpus.read_bytes()).hexdigest(),
         "lines": len(lines), "train_lines": len(train), "heldout_lines": len(held),
         "train_sha256": _sha256_lines(train), "heldout_sha256": _sha256_lines(held)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(d, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def morae_histogram(lines: list[str]) -> dict[int, int]:
    """{morae: number of lines}."""
    return dict(sorted(Counter(count_morae(ln) for ln in lines).items()))


# ----------------------------------------------------------------------------------------------
# CLI

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Count haiku morae, cut 5-7-5, write the held-out split.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count", help="print the reading, morae and 5-7-5 cut of each text")
    c.add_argument("texts", nargs="+", help="lines of Japanese text")
    c.add_argument("--tolerance", type=int, default=0, help="morae each phrase may be off by (default 0)")
    s = sub.add_parser("split", help="write train.txt and heldout.txt by the sha1 rule")
    s.add_argument("--corpus", required=True, help="UTF-8 corpus, one haiku per line")
    s.add_argument("--out_dir", required=True, help="folder for train.txt and heldout.txt")
    s.add_argument("--definition", default=None,
                   help="also write the split's rule, counts and checksums as JSON here")
    k = sub.add_parser("kana", help="write the corpus as hiragana readings, split by the same rule")
    k.add_argument("--corpus", required=True, help="UTF-8 corpus, one haiku per line")
    k.add_argument("--out_dir", required=True, help="folder for all.txt, train.txt and heldout.txt")
    t = sub.add_parser("stats", help="morae histogram and shares of a corpus")
    t.add_argument("--corpus", required=True, help="UTF-8 corpus, one haiku per line")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.cmd == "count":
            for text in args.texts:
                cut = split_575(text, args.tolerance)
                print(f"{text} | {reading(text)} | {count_morae(text)} morae | "
                      f"{' / '.join(cut) if cut else 'no 5-7-5 cut'}")
        elif args.cmd == "split":
            lines = read_lines(args.corpus)
            train, held = split_lines(lines)
            write_lines(Path(args.out_dir) / "train.txt", train)
            write_lines(Path(args.out_dir) / "heldout.txt", held)
            print(f"{len(lines)} lines -> train {len(train)}, held out {len(held)} in {args.out_dir}")
            if args.definition:
                write_definition(Path(args.definition), Path(args.corpus), lines, train, held)
        elif args.cmd == "kana":
            lines = read_lines(args.corpus)
            kana = [kana_line(ln) for ln in lines]
            out = Path(args.out_dir)
            write_lines(out / "all.txt", kana)
            # the split follows the ORIGINAL line, so the held-out haiku are the same ones
            write_lines(out / "train.txt", [k for ln, k in zip(lines, kana) if not is_heldout(ln)])
            write_lines(out / "heldout.txt", [k for ln, k in zip(lines, kana) if is_heldout(ln)])
            print(f"{len(lines)} lines as kana -> {out}/all.txt, train.txt, heldout.txt; "
                  f"{len(set(''.join(kana)))} distinct characters")
        elif args.cmd == "stats":
            lines = read_lines(args.corpus)
            hist = morae_histogram(lines)
            n = len(lines)
            near = sum(v for k, v in hist.items() if abs(k - 17) <= 1)
            print(f"{n} lines | 17+-1 morae {near / n:.1%} | exactly 17 {hist.get(17, 0) / n:.1%}")
            print("morae histogram:", hist)
    except HaikuError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

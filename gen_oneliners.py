"""A corpus of Python one-liners (at most 16 characters), made by a local LLM or mined
from Python's own standard library, each line validated in an isolated worker process.

Follows the seed project's python_oneliner tool (notfolder/microgpt.py_analysis: config.py,
sample_pools.py, generator.py, validator.py, deduplicator.py, main.py) in one file, except the
validator, which lives in oneliner_validator.py so that its worker process imports nothing else:
ten categories with the seed's quotas, few-shot pools, three few-shot strategies in rotation,
negative examples of recent accepts, temperature raised as duplicates grow. Changes from the seed:
- any OpenAI-compatible server (LM Studio, Ollama, llama.cpp server, vLLM): `n` is never relied
  on, both error shapes are read, answers with fences/numbering/bullets/prose are parsed (the seed
  dropped every line starting with a digit); a dead server ends the run with a message and exit 2;
- lines run with built-ins and imports, in a separate `python -I` worker with memory, CPU and
  file-size limits, a per-line timeout, no stdin, a throwaway folder and an audit hook that refuses
  file writes, subprocesses, sockets and browsers (the seed ran them in-process with empty
  `__builtins__`, so its built-in and standard-library categories held no built-in call);
- near-duplicates by edit distance across all lengths and prefixes (rapidfuzz), not only within
  (length, first three characters) buckets;
- resume: the output is appended line by line; a re-run reloads it; every candidate goes to a
  JSON-lines log with its verdict; a category that cannot be filled stops after a budget;
- `--source stdlib` needs no LLM; `--check FILE` audits any corpus; `--score FILE` measures how
  many model samples compile.

Commands:
    python gen_oneliners.py --source stdlib --quotes single -o data/python_oneliners.txt --target 15000 --weights equal --log none
    python gen_oneliners.py -o my_oneliners.txt --target 600 --base_url http://localhost:1234/v1
    python gen_oneliners.py --check ../shared/data/python_oneliners_30k.txt > audit.jsonl
    python gen_oneliners.py --score samples.txt
"""
import argparse
import ast
import builtins
import io
import json
import os
import random
import re
import sys
import time
import tokenize
from collections import defaultdict, deque

from oneliner_validator import Validator, ValidatorError  # noqa: F401  (one home for validation)


# ---------------------------------------------------------------------------------------------
# Categories, quotas, prompts, few-shot pools
# ---------------------------------------------------------------------------------------------
# (key, English name used in prompts, the seed's Japanese name, the seed's speed weight)
CATEGORIES = [
    ("arith", "Arithmetic Operations", "数値計算", 1.0),
    ("bitwise", "Bitwise Operations", "ビット演算", 2.7),
    ("string", "String Manipulation", "文字列操作", 3.4),
    ("data", "Data Structures", "データ構造", 3.3),
    ("bool", "Boolean and Conditionals", "真偽値・条件式", 3.3),
    ("builtin", "Built-in Functions", "組み込み関数", 0.17),
    ("convert", "Type Conversions", "型変換", 0.12),
    ("slice", "Slicing Notation", "スライス記法", 4.2),
    ("stdlib", "Standard Library", "標準ライブラリ", 0.09),
    ("advanced", "Advanced Patterns", "その他・応用", 0.23),
]
CAT_KEYS = [c[0] for c in CATEGORIES]
CAT_EN = {c[0]: c[1] for c in CATEGORIES}
MIN_CATEGORY_TARGET = 60      # the seed's floor per category
TARGET_MIN, TARGET_MAX = 10, 30000

SYSTEM_PROMPT = (
    "You are a Python expert. Generate meaningful Python one-liners with 16 characters or fewer.\n"
    "Requirements:\n- 16 characters or less (1-16 characters)\n- Runs in a fresh Python 3 REPL "
    "without error (built-ins and standard-library imports are allowed)\n- No syntax errors\n"
    "- Returns a value or has a visible effect\n- Creative and diverse patterns\n"
    "- Output ONLY code, one one-liner per line: no numbering, no comments, no explanations\n"
    "Avoid: code that raises, files, network, input(), meaningless strings, duplicates, comments.")
PROMPT_VERBS = ["Generate", "Create", "Produce"]
FOCUS = {0: "balanced across subcategories", 1: "focused patterns", 2: "mixed patterns"}

# Our own few-shot pools: category -> subcategory -> examples. Every example is <= 16 characters
# and passes the validator (tests/test_oneliners.py checks both); built-in, type-conversion and
# standard-library examples really call built-ins and import modules.
SAMPLE_POOLS = {
    "arith": {
        "basic": ["7*6", "100-58", "17//5", "17%5", "3+4*2", "(3+4)*2", "-7//2", "9/4"],
        "power": ["2**10", "3**4-1", "10**-2", "(-2)**3", "2**0.5", "4**.5*3"],
        "complex": ["1+2j", "(3+4j)*1j", "(1+2j).real", "(2j)**2", "1j*1j", "(3-4j).imag"],
        "bases": ["0xff", "0o777", "0b1011", "0xff+0o17", "1_000_000", "0b11*0x10"],
        "float": ["1e3/8", ".1+.2", "7.5//2", "1e-3*5", "3.0%2", "22/7-3"],
    },
    "bitwise": {
        "shift": ["1<<8", "256>>3", "1<<4|1", "-16>>2", "3<<3>>1", "1<<10>>5"],
        "and_or_xor": ["0xff&0x0f", "12|3", "12^10", "5&-5", "0b1100^0b1010", "6&3|8"],
        "invert": ["~0", "~5", "~-1", "~0xf&0xff", "-~7", "~~9"],
        "sets": ["{1,2}|{3}", "{1,2}&{2,3}", "{1,2}^{2,3}", "{7,8}&{8}"],
    },
    "string": {
        "case": ["'abc'.upper()", "'Hi'.lower()", "'py'.title()", "'aBc'.swapcase()", "'x'.center(5)"],
        "repeat": ["'ab'*3", "'-'*10", "'ha'*2+'!'", "'='*4+'>'", "'a'+'b'*2"],
        "split_join": ["'a b c'.split()", "'-'.join('abc')", "'a,b'.split(',')", "' x '.strip()"],
        "search": ["'hey'.find('e')", "'abc'.index('c')", "'aXa'.count('a')", "'py'.isalpha()"],
        "format": ["f'{7:03}'", "'%d%%'%50", "'{}!'.format(1)", "f'{2/3:.2f}'", "'a'.zfill(3)"],
    },
    "data": {
        "list": ["[0]*5", "[1,2]+[3]", "[[0]*2]*2", "[*'abc']", "[3,1,2].pop()"],
        "tuple": ["(1,)", "(1,2)+(3,)", "(1,2)*2", "(1,(2,3))[1]", "(5,6).index(6)"],
        "dict": ["{'a':1}", "{'a':1}['a']", "{**{'a':1}}", "{1:2}.get(3,0)", "{1:2}.keys()"],
        "set": ["{1,2,2}", "{*'hello'}", "{1,2}.union({3})", "{3,4}.pop()"],
        "nested": ["[[1,2],[3]]", "{'k':[1,2]}", "[(1,'a')]", "[{},[],()]", "[[1,2]][0][1]"],
    },
    "bool": {
        "compare": ["3>2", "1<2<3", "'a'<'b'", "[1]==[1]", "2!=2.0", "(1,2)<(1,3)"],
        "logic": ["True and 0", "not []", "0 or 'x'", "1 and 2 or 3", "not 0 and 5"],
        "ternary": ["1 if 0 else 2", "'y'if[]else'n'", "[0,1][3>2]", "2<3 or 1/0"],
        "membership": ["2 in [1,2]", "'a' in 'cat'", "3 not in {1}", "'k' in {'k':0}"],
        "identity": ["None is None", "[] is not []", "True is not None"],
    },
    "builtin": {
        "aggregate": ["len('hello')", "sum([1,2,3])", "max(3,7,5)", "min('bca')", "abs(-42)"],
        "sort": ["sorted('cba')", "sorted([3,1,2])", "[*reversed([1])]", "sorted('cab')[0]"],
        "iterate": ["[*range(5)]", "[*zip('ab',[1])]", "[*map(abs,[-1])]", "next(iter('ab'))"],
        "predicate": ["any([0,1])", "all([1,1,0])", "callable(len)", "callable(1)"],
        "misc": ["divmod(17,5)", "pow(2,10,7)", "round(3.14159,2)", "print('hi')", "len(dir())"],
    },
    "convert": {
        "int": ["int('42')", "int('ff',16)", "int(3.9)", "int('0b101',0)", "int(True)"],
        "float": ["float('1.5')", "float('inf')", "float(7)", "float('-0')"],
        "str": ["str(99)", "str([1,2])", "repr('a')", "str(1.0)", "str(None)"],
        "sequence": ["list('abc')", "tuple([1,2])", "list((1,2))", "tuple('xy')", "list({1:2})"],
        "chars": ["chr(97)", "ord('A')", "hex(255)", "bin(10)", "oct(8)"],
        "other": ["set('aab')", "dict([(1,2)])", "frozenset('ab')", "bool('')", "bytes(3)"],
    },
    "slice": {
        "list": ["[1,2,3,4][1:3]", "[0,1,2,3][::2]", "[1,2,3][-2:]", "[5,6,7][:-1]"],
        "string": ["'hello'[::-1]", "'python'[1:4]", "'abcdef'[::2]", "'hello'[-3:]"],
        "tuple": ["(1,2,3)[::-1]", "(1,2,3)[1:]", "(9,8,7)[:-1]", "(1,2)[5:]"],
        "range": ["range(10)[2:5]", "range(9)[::3]", "range(5)[-1]"],
        "step": ["'abcdefg'[1::3]", "'abc'[::-2]", "[1,2,3][::-1][0]"],
    },
    "stdlib": {
        "import": ["import os", "import math", "import sys", "import re", "import json"],
        "from": ["from os import*", "from re import I", "from sys import*"],
        "dunder": ["__import__('os')", "__import__('re')", "__import__('io')"],
        "use": ["import os;os.sep", "import re;re.I", "import math as m", "import re;re.S"],
    },
    "advanced": {
        "lambda": ["(lambda:42)()", "(lambda x:x)(1)", "lambda a,b:a+b", "(lambda*a:a)(1)"],
        "walrus": ["(n:=5)*n", "[y:=2,y**2]", "(s:='ab')+s"],
        "comprehension": ["[c for c in'ab']", "(x for x in'ab')", "{c:1 for c in''}"],
        "unpack": ["a,*b=1,2,3", "x,y=1,2;x+y", "a=b=3", "[*'ab',*'cd']"],
        "chain": ["x=3;x*=2", "s='ab';s*2", "d={};d[1]=2"],
    },
}


def calculate_category_targets(total: int, weights: str = "seed") -> dict:
    """Split `total` over the ten categories. "seed": the seed's speed weights, floored at 60,
    remainder to slicing (its fastest); "equal": the same share for each (remainder to slicing)."""
    if weights == "equal":
        targets = {k: total // len(CAT_KEYS) for k in CAT_KEYS}
    else:
        wsum = sum(c[3] for c in CATEGORIES)
        targets = {k: max(MIN_CATEGORY_TARGET, int(w / wsum * total)) for k, _, _, w in CATEGORIES}
    targets["slice"] += total - sum(targets.values())    # may be negative after the floors, as in the seed
    return targets


# ---------------------------------------------------------------------------------------------
# Classifier: which category a line belongs to (resume counts without a log, and --source stdlib)
# ---------------------------------------------------------------------------------------------
CONVERSIONS = {"int", "float", "str", "list", "tuple", "set", "dict", "bool", "bytes", "chr", "ord",
               "hex", "bin", "oct", "complex", "frozenset", "repr", "ascii", "bytearray"}
BUILTIN_NAMES = set(dir(builtins))


def classify(code: str) -> str:
    """Heuristic category of a one-liner, checked in a fixed order (first match wins).
    String literals are blanked first so that `'='*4` or `'a<b'` do not look like code."""
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", code)
    calls = set(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\(", bare))
    if re.search(r"\bimport\b|__import__", bare):
        return "stdlib"
    if re.search(r"\blambda\b|:=|;|\bfor\b|(^|[^=!<>])=[^=]", bare):
        return "advanced"
    if calls & CONVERSIONS:
        return "convert"
    if re.search(r"\[[^\[\]]*:[^\[\]]*\]", bare):
        return "slice"
    if calls & BUILTIN_NAMES:
        return "builtin"
    if re.search(r"==|!=|<=|>=|(?<![<])<(?![<])|(?<![>])>(?![>])|\b(not|and|or|in|is|if)\b", bare):
        return "bool"
    if re.search(r"<<|>>|[&|^~]", bare):
        return "bitwise"
    if re.match(r"[\[{]|\(.*,", bare) or re.search(r"[\]})]\.\w+\(", bare):
        return "data"
    if "'" in bare:
        return "string"
    if re.fullmatch(r"[\d\s.+\-*/%()jxXoObBeE_a-fA-F]+|.*\.(real|imag|conjugate\(\))", bare):
        return "arith"
    return "advanced"


# ---------------------------------------------------------------------------------------------
# Dedupe: exact and near-duplicates by Levenshtein distance (rapidfuzz), across all lengths
# ---------------------------------------------------------------------------------------------
class Deduper:
    """A line is a duplicate if an accepted line is equal to it, or within edit distance
    < threshold of it (threshold 3: distance 0-2; threshold <= 1: exact only). Only lines whose
    length differs by less than the threshold can be that close, so candidates come from a
    few length buckets; rapidfuzz's C++ scan does the rest."""

    def __init__(self, threshold: int = 3):
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein
        self._extract, self._scorer = process.extractOne, Levenshtein.distance
        self.k = max(0, threshold - 1)          # largest distance that still counts as duplicate
        self.exact = set()
        self.by_len = defaultdict(list)

    def __len__(self):
        return len(self.exact)

    def find(self, s: str):
        """(match, distance) of an accepted line close to s, or None."""
        if s in self.exact:
            return s, 0
        if self.k == 0:
            return None
        best = None
        for n in range(max(0, len(s) - self.k), len(s) + self.k + 1):
            bucket = self.by_len.get(n)
            if bucket:
                hit = self._extract(s, bucket, scorer=self._scorer, score_cutoff=self.k)
                if hit is not None and (best is None or hit[1] < best[1]):
                    best = (hit[0], hit[1])
        return best

    def add(self, s: str):
        if s not in self.exact:
            self.exact.add(s)
            self.by_len[len(s)].append(s)


def dedupe_lines(lines, threshold: int = 3, chunk: int = 512) -> list:
    """Keep lines in order, dropping each one within distance < threshold of an earlier kept
    line (the same rule as Deduper, for a whole file at once). Works in chunks: one rapidfuzz
    cdist call compares a chunk with the kept lines of nearby lengths (C++, no Python loop per
    pair), then a greedy pass inside the chunk keeps the order semantics."""
    import numpy as np
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist
    k = max(0, threshold - 1)
    if k == 0:
        return list(dict.fromkeys(lines))
    kept, kept_by_len = [], defaultdict(list)

    def dist(a, b):                            # (len(a), len(b)); values > k read as k + 1
        return cdist(a, b, scorer=Levenshtein.distance, score_cutoff=k, dtype=np.int32, workers=1)

    for start in range(0, len(lines), chunk):
        block = lines[start:start + chunk]
        close = np.zeros(len(block), dtype=bool)
        groups = defaultdict(list)
        for i, s in enumerate(block):
            groups[len(s)].append(i)
        for n, idx in groups.items():          # only lengths within k can be that close
            ref = [t for m in range(max(0, n - k), n + k + 1) for t in kept_by_len.get(m, ())]
            if ref:
                close[idx] |= (dist([block[i] for i in idx], ref) <= k).any(axis=1)
        cand = [s for s, c in zip(block, close) if not c]
        if not cand:
            continue
        inner = dist(cand, cand) <= k          # greedy in file order inside the chunk
        chosen = []
        for i, s in enumerate(cand):
            if not chosen or not inner[i, chosen].any():
                chosen.append(i)
                kept.append(s)
                kept_by_len[len(s)].append(s)
    return kept


# ---------------------------------------------------------------------------------------------
# Parsing LLM answers
# ---------------------------------------------------------------------------------------------
_BULLET = re.compile(r"^(?:\d{1,3}[.)]\s+|\(\d{1,3}\)\s+|[-*\u2022+]\s+)")
_PROSE = re.compile(r"^[A-Z][a-z']+(?:[ ,][A-Za-z'()-]+)+[.:!]?$")
_ARROWS = (" -> ", " => ", " \u2192 ", " # ")


def _strip_comment(line: str) -> str:
    """Drop a trailing `# comment` (outside strings), using the tokenizer."""
    if "#" not in line:
        return line
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return line[:tok.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return line


def single_quotes(code: str) -> str:
    """`"abc"` -> `'abc'` for every one-line string literal that holds no `'` (prefixes kept):
    one quote style makes the tiny model's hardest job, closing what it opened, easier."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return code
    out, pos = [], 0
    for tok in toks:
        if tok.type != tokenize.STRING or tok.start[0] != 1 or tok.end[0] != 1:
            continue
        text = tok.string
        body_start = len(text) - len(text.lstrip("rRbBuUfF"))
        body = text[body_start:]
        if body.startswith('"') and not body.startswith('"""') and "'" not in body:
            out.append(code[pos:tok.start[1]] + text[:body_start] + "'" + body[1:-1] + "'")
            pos = tok.end[1]
    return "".join(out) + code[pos:]


def judge(validator, codes, max_quotes: int = 0) -> list:
    """validator.check, but lines with more than `max_quotes` quote characters (if > 0) are
    rejected first: a corpus switch for models that cannot yet pair several strings."""
    over = [max_quotes > 0 and c.count("'") + c.count('"') > max_quotes for c in codes]
    checked = iter(validator.check([c for c, o in zip(codes, over) if not o]))
    return [{"code": c, "valid": False, "reason": f"more than {max_quotes} quote characters (--max_quotes)"}
            if o else next(checked) for c, o in zip(codes, over)]


def parse_answer(text: str) -> list:
    """Candidate one-liners from an LLM answer: drops <think> blocks, reads inside ``` fences
    when present, strips numbering (1. / 1) / (1)), bullets (- * •), backticks, trailing
    comments and `-> explanation` tails, and skips lines that read as English prose."""
    text = re.sub(r"<think>.*?(</think>|$)", "", text or "", flags=re.S)
    if "```" in text:
        parts = text.split("```")
        text = "\n".join(p.split("\n", 1)[1] if "\n" in p else "" for p in parts[1::2])
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = _BULLET.sub("", line, count=1).strip()
        spans = re.findall(r"`([^`]+)`", line)
        if spans:
            line = spans[0].strip()
        for arrow in _ARROWS:
            if arrow in line:
                line = line.split(arrow, 1)[0].rstrip()
        line = _strip_comment(line)
        if line and not _PROSE.match(line) and line not in out:
            out.append(line)
    return out


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible client (requests)
# ---------------------------------------------------------------------------------------------
class LLMError(Exception):
    """The server cannot be used (down after retries, refuses the request, answers garbage)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def error_message(body) -> str:
    """The message of either error shape: {"error": "..."} or {"error": {"message": ...}}."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err.get("msg") or json.dumps(err))[:300]
    if err is not None:
        return str(err)[:300]
    return json.dumps(body)[:300]


class LLMClient:
    def __init__(self, base_url, api_key=None, timeout=30.0, retries=3, retry_delay=2.0, log=print):
        import requests
        self.requests = requests
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.retry_delay, self.log = timeout, retries, retry_delay, log
        self.session = requests.Session()
        self.n_ok = True                        # False once the server refused `n`
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _request(self, method: str, path: str, payload=None) -> dict:
        """One JSON request with retries on connection errors, timeouts, 5xx/429 and bad JSON."""
        url, last = self.base_url + path, ""
        for attempt in range(1, self.retries + 1):
            try:
                r = self.session.request(method, url, json=payload, timeout=self.timeout)
                try:
                    body = r.json()
                except ValueError:
                    body = None
                if r.status_code == 200 and isinstance(body, dict) and "error" not in body:
                    return body
                detail = error_message(body) if body is not None else f"malformed JSON: {r.text[:80]!r}"
                last = f"HTTP {r.status_code}: {detail}"
                if r.status_code != 200 and r.status_code < 500 and r.status_code != 429:
                    raise LLMError(f"{method} {url} failed: {last}", r.status_code)
            except self.requests.exceptions.Timeout:
                last = f"timeout after {self.timeout:g} s"
            except self.requests.exceptions.ConnectionError as e:
                last = f"connection error ({type(e).__name__})"
            self.log(f"attempt {attempt}/{self.retries} {method} {path}: {last}")
            if attempt < self.retries:
                time.sleep(self.retry_delay * attempt)
        raise LLMError(f"{method} {url} failed after {self.retries} attempts ({last}); is the server "
                       f"running? start LM Studio / Ollama / llama-server or pass --base_url")

    def list_models(self) -> list:
        body = self._request("GET", "/models")
        return [m.get("id") for m in body.get("data", []) if isinstance(m, dict) and m.get("id")]

    def chat(self, model, messages, temperature, max_tokens, n=1) -> list:
        """Contents of every returned choice (one or more; servers may ignore `n`)."""
        payload = {"model": model, "messages": messages, "temperature": temperature,
                   "max_tokens": max_tokens}
        if n > 1 and self.n_ok:
            payload["n"] = n
        try:
            body = self._request("POST", "/chat/completions", payload)
        except LLMError as e:                   # llama-server answers 400 to n > 1: drop n for good
            if "n" not in payload or e.status not in (400, 422):
                raise
            self.log(f"the server refuses n={n} ({e}); asking for one choice per request")
            self.n_ok = False
            del payload["n"]
            body = self._request("POST", "/chat/completions", payload)
        texts = []
        for ch in body.get("choices") or []:
            msg = ch.get("message") if isinstance(ch, dict) else None
            content = msg.get("content") if isinstance(msg, dict) else ch.get("text") if isinstance(ch, dict) else None
            if isinstance(content, str):
                texts.append(content)
        return texts


# ---------------------------------------------------------------------------------------------
# Generation with an LLM: prompts, strategy rotation, temperature rule
# ---------------------------------------------------------------------------------------------
class CategoryState:
    """Counters and histories of one category (the seed's generator state, per category)."""

    def __init__(self, key):
        self.key = key
        self.generated = self.accepted = self.duplicates = self.rejected = self.requests = 0
        self.dry_requests = 0                          # consecutive requests with no accept
        self.recent = deque(maxlen=20)                 # accepted lines -> negative examples
        self.used_examples = deque(maxlen=3)           # example sets of the last 3 requests
        self.focus_history = deque(maxlen=3)


def pick_examples(state: CategoryState, rng: random.Random, k: int = 5):
    """Five few-shot examples by the rotating strategy: 0 balanced (one per subcategory),
    1 focused (3 from one subcategory not focused recently + 2 others), 2 random from the pool.
    Examples used in the last three requests are avoided while others remain."""
    pools = SAMPLE_POOLS[state.key]
    recent = {e for batch in state.used_examples for e in batch}
    strategy = state.requests % 3

    def draw(cands, m):
        fresh = [c for c in cands if c not in recent] or list(cands)
        return rng.sample(fresh, min(m, len(fresh)))

    subs = list(pools)
    if strategy == 0:
        chosen = [draw(pools[s], 1)[0] for s in rng.sample(subs, min(k, len(subs)))]
    elif strategy == 1:
        focus = rng.choice([s for s in subs if s not in state.focus_history] or subs)
        state.focus_history.append(focus)
        others = [s for s in subs if s != focus]
        chosen = draw(pools[focus], 3) + [draw(pools[s], 1)[0] for s in rng.sample(others, min(2, len(others)))]
    else:
        chosen = draw([e for s in subs for e in pools[s]], k)
    while len(chosen) < k:                     # small pools: top up from the whole category
        chosen.append(rng.choice([e for s in subs for e in pools[s]]))
    state.used_examples.append(chosen)
    return strategy, chosen


def build_messages(state: CategoryState, rng: random.Random, per_request: int = 10):
    strategy, examples = pick_examples(state, rng)
    verb = PROMPT_VERBS[(state.requests // 100) % len(PROMPT_VERBS)]
    lines = [f"Category: {CAT_EN[state.key]}", f"Focus: {FOCUS[strategy]}", "",
             "Examples (16 characters or less):"]
    lines += [f"{i}. {e}" for i, e in enumerate(examples, 1)]
    lines += ["", f"{verb} {per_request} diverse Python one-liners in this category.",
              "Requirements: 16 characters or less, runs without error, meaningful.",
              "Vary the patterns and avoid duplicating the examples.",
              "Answer with the code only, one per line."]
    if state.recent:
        lines.append("Avoid generating patterns similar to these recent ones:")
        lines += [f"- {p}" for p in list(state.recent)[-10:]]     # the 10 newest accepts
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def temperature_for(state: CategoryState, base: float, cap: float) -> float:
    """base, +0.05 from 500 raw candidates in the category, +0.10 from 1000 (the seed's steps),
    plus up to +0.3 as the category's duplicate rate climbs above 50% (0.6 per unit of rate)."""
    t = base + (0.1 if state.generated >= 1000 else 0.05 if state.generated >= 500 else 0.0)
    valid = state.accepted + state.duplicates
    rate = state.duplicates / valid if valid else 0.0
    t += min(0.3, max(0.0, rate - 0.5) * 0.6)
    return round(min(cap, t), 3)


# ---------------------------------------------------------------------------------------------
# Corpus file: resume, append, log
# ---------------------------------------------------------------------------------------------
def read_lines(path: str) -> list:
    """Lines of a UTF-8 text file without their newline; one-line errors for bad files."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SystemExit(f"error: {path} does not exist; pass an existing file")
    except IsADirectoryError:
        raise SystemExit(f"error: {path} is a folder; pass a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"error: {path} is not UTF-8 text (byte {e.start}); convert it to UTF-8")
    return text.split("\n")[:-1] if text.endswith("\n") else (text.split("\n") if text else [])


def load_existing(output: str, log_path):
    """Lines already in the output (resume). A partial last line (no newline: the run died in
    the middle of a write) is cut off atomically. Categories come from the log, else classify()."""
    if not os.path.exists(output):
        return [], {}
    with open(output, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        data = data[:data.rfind(b"\n") + 1]
        tmp = output + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    lines = read_lines(output)
    cats = {}
    if log_path and os.path.exists(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue                   # a torn last record
                if isinstance(rec, dict) and rec.get("status") == "accepted":
                    cats[rec.get("code")] = rec.get("category")
    return lines, {s: (cats.get(s) if cats.get(s) in CAT_EN else classify(s)) for s in lines}


class Corpus:
    """The output file (append + flush per line) and the JSON-lines log of every candidate."""

    def __init__(self, output, log_path, threshold):
        self.output, self.log_path = output, log_path
        lines, cats = load_existing(output, log_path)
        self.dedupe = Deduper(threshold)
        self.counts = defaultdict(int)
        for s in lines:
            self.dedupe.add(s)
            self.counts[cats[s]] += 1
        self.resumed = len(lines)
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise SystemExit(f"error: folder {folder} does not exist; create it or choose another -o")
        self.f = open(output, "a", encoding="utf-8", newline="\n")
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None

    def record(self, code, category, status, reason=""):
        if self.log:
            self.log.write(json.dumps({"code": code, "category": category, "status": status,
                                       "reason": reason}, ensure_ascii=False) + "\n")
            self.log.flush()

    def offer(self, result: dict, category: str, state=None) -> str:
        """Accept, or reject as invalid/duplicate; returns "accepted" | "duplicate" | "rejected"."""
        code = result["code"]
        if not result["valid"]:
            self.record(code, category, "rejected", result["reason"])
            return "rejected"
        hit = self.dedupe.find(code)
        if hit is not None:
            why = "exact duplicate" if hit[1] == 0 else f"near-duplicate of {hit[0]!r} (distance {hit[1]:g})"
            self.record(code, category, "duplicate", why)
            return "duplicate"
        self.f.write(code + "\n")
        self.f.flush()                          # nothing accepted is lost on Ctrl-C
        self.dedupe.add(code)
        self.counts[category] += 1
        self.record(code, category, "accepted")
        return "accepted"

    def close(self):
        self.f.close()
        if self.log:
            self.log.close()


def print_summary(states, targets, counts, elapsed, out=None):
    out = out or sys.stdout
    print("\n=== per-category summary ===", file=out)
    print(f"{'category':26s} {'accepted':>13s} {'generated':>9s} {'dup':>6s} {'rejected':>8s} {'requests':>8s}",
          file=out)
    for k in CAT_KEYS:
        s, t = states[k], targets[k]
        pct = 100.0 * counts[k] / t if t else 100.0
        print(f"{CAT_EN[k]:26s} {counts[k]:5d}/{t:5d} {pct:5.1f}% {s.generated:9d} {s.duplicates:6d} "
              f"{s.rejected:8d} {s.requests:8d}", file=out)
    total_t, total_a = sum(targets.values()), sum(min(counts[k], targets[k]) for k in CAT_KEYS)
    print(f"total: {sum(counts.values())} lines ({total_a}/{total_t} of the targets) in {elapsed:.1f} s",
          file=out)
    short = total_t - total_a
    print("OK: every category reached its target" if short <= 0 else
          f"SHORT: {short} lines missing (see the warnings above)", file=out)


def _progress(total, initial):
    from tqdm import tqdm
    return tqdm(total=total, initial=min(initial, total), unit="line", dynamic_ncols=True,
                mininterval=0.5, file=sys.stderr)


def _bar_text(states, label):
    g = sum(s.generated for s in states.values())
    a = sum(s.accepted for s in states.values())
    d = sum(s.duplicates for s in states.values())
    r = sum(s.rejected for s in states.values())
    return f"gen {g} | ok {a} | dup {d} | rej {r} | {label}"


def run_llm(args, corpus: Corpus, validator: Validator, targets: dict) -> int:
    client = LLMClient(args.base_url, os.environ.get(args.api_key_env) if args.api_key_env else None,
                       args.timeout, args.retries, args.retry_delay, log=lambda m: print(m, file=sys.stderr))
    model = args.model
    if not model:
        models = client.list_models()
        if not models:
            raise LLMError(f"{args.base_url}/models lists no model; load one or pass --model")
        model = models[0]
    print(f"server: {args.base_url} | model: {model}", file=sys.stderr)
    rng = random.Random(args.seed)
    states = {k: CategoryState(k) for k in CAT_KEYS}
    bar = _progress(sum(targets.values()), sum(min(corpus.counts[k], targets[k]) for k in CAT_KEYS))
    t0 = time.time()
    try:
        for k in CAT_KEYS:
            st = states[k]
            budget = args.max_requests if args.max_requests > 0 else 10 + 3 * targets[k]
            while corpus.counts[k] < targets[k]:
                if st.requests >= budget or st.dry_requests >= args.patience:
                    why = f"{st.requests} requests" if st.requests >= budget else \
                          f"{st.dry_requests} requests in a row without a new line"
                    print(f"\nwarning: {CAT_EN[k]} stopped at {corpus.counts[k]}/{targets[k]} after {why}; "
                          f"raise --max_requests/--patience or use another model", file=sys.stderr)
                    break
                temp = temperature_for(st, args.temperature, args.max_temperature)
                texts = client.chat(model, build_messages(st, rng), temp, args.max_tokens, args.n)
                st.requests += 1
                cands = [c for t in texts for c in parse_answer(t)]
                if args.quotes == "single":
                    cands = [single_quotes(c) for c in cands]
                before = st.accepted
                for res in judge(validator, cands, args.max_quotes):
                    if corpus.counts[k] >= targets[k]:
                        break
                    st.generated += 1
                    verdict = corpus.offer(res, k)
                    if verdict == "accepted":
                        st.accepted += 1
                        st.recent.append(res["code"])
                        bar.update(1)
                    elif verdict == "duplicate":
                        st.duplicates += 1
                    else:
                        st.rejected += 1
                st.dry_requests = 0 if st.accepted > before else st.dry_requests + 1
                bar.set_postfix_str(_bar_text(states, CAT_EN[k]), refresh=False)
    finally:
        bar.close()
        print_summary(states, targets, corpus.counts, time.time() - t0)
    return 0


# ---------------------------------------------------------------------------------------------
# Without an LLM: mine the installed standard library
# ---------------------------------------------------------------------------------------------
def _free_names(tree) -> set:
    """Names read by a snippet that it neither binds nor finds among the built-ins."""
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return read - bound - BUILTIN_NAMES


def _plausible(code: str, max_len: int) -> bool:
    """Cheap filter before the worker: short, parses, and reads no undefined name."""
    if not 1 <= len(code) <= max_len or not code.isascii() or not code.isprintable():
        return False
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    if len(tree.body) != 1 and ";" not in code:
        return False
    node = tree.body[0]
    if isinstance(node, (ast.Pass, ast.Break, ast.Continue, ast.Return, ast.Global, ast.Nonlocal)):
        return False
    if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)):
        return False                           # a bare name or literal teaches little
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Constant, ast.Name)):
        return False                           # `errors = None`: a constant binding, no computation
    return not _free_names(tree)


def _segments(source: str, max_len: int):
    """Short single-line expressions and statements of a module, and its doctest lines."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    lines = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.expr, ast.stmt)) and getattr(node, "end_lineno", None) == node.lineno:
            if node.end_col_offset - node.col_offset <= max_len + 2 and node.lineno <= len(lines):
                raw = lines[node.lineno - 1].encode("utf-8", "replace")
                yield raw[node.col_offset:node.end_col_offset].decode("utf-8", "replace").strip()
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ">>> " in node.value:
            for ln in node.value.splitlines():
                ln = ln.strip()
                if ln.startswith(">>> "):
                    yield ln[4:].strip()


def stdlib_files(root=None) -> list:
    import sysconfig
    root = root or sysconfig.get_paths()["stdlib"]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__"))
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    return files


def mine_stdlib(max_len: int = 16, root=None, log=None) -> list:
    """Unique plausible candidates from the standard library's sources, in file order."""
    seen, out = set(), []
    files = stdlib_files(root)
    for i, path in enumerate(files):
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        for code in _segments(source, max_len):
            if code not in seen:
                seen.add(code)
                if _plausible(code, max_len):
                    out.append(code)
        if log and (i + 1) % 200 == 0:
            log(f"mined {i + 1}/{len(files)} files | {len(out)} candidates")
    return out


def run_offline(args, corpus: Corpus, validator: Validator, targets: dict) -> int:
    """--source stdlib (mined lines) or --source pools (our few-shot examples), no LLM."""
    t0 = time.time()
    say = lambda m: print(m, file=sys.stderr)
    if args.source == "pools":
        cands = [e for k in CAT_KEYS for sub in SAMPLE_POOLS[k].values() for e in sub]
    else:
        cands = mine_stdlib(args.max_len, args.stdlib_root, say)
        random.Random(args.seed).shuffle(cands)    # mix files so no module dominates a quota
    if args.quotes == "single":
        cands = list(dict.fromkeys(single_quotes(c) for c in cands))
    say(f"{len(cands)} plausible candidates ({args.source}) in {time.time() - t0:.1f} s")
    states = {k: CategoryState(k) for k in CAT_KEYS}
    bar = _progress(sum(targets.values()), sum(min(corpus.counts[k], targets[k]) for k in CAT_KEYS))
    try:
        for start in range(0, len(cands), 512):
            chunk = [c for c in cands[start:start + 512] if corpus.counts[classify(c)] < targets[classify(c)]]
            for res in judge(validator, chunk, args.max_quotes):
                k = classify(res["code"])
                st = states[k]
                if corpus.counts[k] >= targets[k]:
                    continue
                st.generated += 1
                verdict = corpus.offer(res, k)
                if verdict == "accepted":
                    st.accepted += 1
                    bar.update(1)
                elif verdict == "duplicate":
                    st.duplicates += 1
                else:
                    st.rejected += 1
            bar.set_postfix_str(_bar_text(states, f"source {args.source}"), refresh=False)
            if all(corpus.counts[k] >= targets[k] for k in CAT_KEYS):
                break
    finally:
        bar.close()
        for k in CAT_KEYS:
            if corpus.counts[k] < targets[k]:
                say(f"warning: {CAT_EN[k]}: the {args.source} source filled {corpus.counts[k]}/{targets[k]}")
        print_summary(states, targets, corpus.counts, time.time() - t0)
    return 0


# ---------------------------------------------------------------------------------------------
# --check and --score
# ---------------------------------------------------------------------------------------------
def run_check(args, validator: Validator) -> int:
    lines = read_lines(args.check)
    t0 = time.time()
    results = validator.check(lines)
    reasons = defaultdict(int)
    for r in results:
        print(json.dumps({"code": r["code"], "valid": r["valid"], "reason": r["reason"]}, ensure_ascii=False))
        if not r["valid"]:
            reasons[r["reason"].split(":")[0]] += 1
    dt = time.time() - t0
    n_ok = sum(r["valid"] for r in results)
    print(f"checked {len(results)} lines in {dt:.2f} s ({len(results) / max(dt, 1e-9):.0f} lines/s): "
          f"{n_ok} valid, {len(results) - n_ok} invalid; worker restarts {validator.restarts}", file=sys.stderr)
    for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:10]:
        print(f"  {n:6d}  {why}", file=sys.stderr)
    return 0


def compiles(code: str) -> bool:
    """True if a non-empty line compiles in eval or exec mode (nothing is run)."""
    import warnings
    if not code.strip():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # the seed's measure: warnings do not count
        for mode in ("eval", "exec"):
            try:
                compile(code, "<sample>", mode)
                return True
            except (SyntaxError, ValueError):
                pass
    return False


def score_samples(lines, validator=None) -> dict:
    """Share of samples that compile (and, with a validator, that also run without error)."""
    n = len(lines)
    ok = sum(compiles(s) for s in lines)
    res = {"samples": n, "empty": sum(not s.strip() for s in lines), "unique": len(set(lines)),
           "compile": ok, "compile_rate": round(ok / n, 4) if n else 0.0}
    if validator is not None:
        v = sum(r["valid"] for r in validator.check(lines))
        res.update(valid=v, valid_rate=round(v / n, 4) if n else 0.0)
    return res


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def str2bool(v) -> bool:
    """argparse type for switches: --flag, --flag 1/0, true/false, yes/no, on/off."""
    s = str(v).lower()
    if s in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return s in ("1", "true", "yes", "on")
    raise argparse.ArgumentTypeError(f"expected 0/1 (or true/false), got {v!r}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Generate, validate, dedupe and audit a corpus of "
                                "Python one-liners (at most 16 characters).")
    p.add_argument("-o", "--output", type=str, default="python_oneliners.txt",
                   help="corpus file; appended line by line, an existing file is resumed")
    p.add_argument("--source", choices=["llm", "stdlib", "pools"], default="llm",
                   help="llm: ask an OpenAI-compatible server; stdlib: mine Python's own sources; "
                        "pools: the built-in few-shot examples")
    p.add_argument("-t", "--target", "--total-target", dest="target", type=int, default=6000,
                   help=f"total lines wanted ({TARGET_MIN}-{TARGET_MAX}), split over the ten categories")
    p.add_argument("--weights", choices=["seed", "equal"], default="seed",
                   help="category quotas: the seed's speed weights (floor 60) or equal shares")
    p.add_argument("--test", type=str2bool, nargs="?", const=True, default=False,
                   help="the seed's test mode: 10 lines per category (same as --per_category 10)")
    p.add_argument("--per_category", type=int, default=0,
                   help="if > 0: this many lines per category instead of --target/--weights")
    p.add_argument("--log", type=str, default=None,
                   help="JSON-lines log of every candidate (default OUTPUT.log.jsonl; 'none' disables)")
    p.add_argument("--quotes", choices=["keep", "single"], default="keep",
                   help="single: rewrite \"...\" string literals without ' inside as '...' before validation")
    p.add_argument("--max_quotes", type=int, default=0,
                   help="if > 0: reject lines with more quote characters than this (2 = one string)")
    p.add_argument("--threshold", type=int, default=3,
                   help="near-duplicate if edit distance < threshold (<= 1: exact duplicates only)")
    # server
    p.add_argument("--base_url", type=str, default="http://localhost:1234/v1",
                   help="OpenAI-compatible API root (LM Studio :1234, Ollama :11434/v1, llama-server :8080/v1)")
    p.add_argument("--model", type=str, default=None, help="model id (default: the first of GET /models)")
    p.add_argument("--api_key_env", type=str, default="OPENAI_API_KEY",
                   help="environment variable holding the API key (sent as a Bearer token if set)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    p.add_argument("--retries", type=int, default=3, help="attempts per request before giving up")
    p.add_argument("--retry_delay", type=float, default=2.0, help="seconds before retry k (times k)")
    p.add_argument("--n", type=int, default=1, help="choices asked per request (servers may return fewer)")
    p.add_argument("--max_tokens", type=int, default=200, help="max_tokens per request")
    p.add_argument("--temperature", type=float, default=0.8, help="base temperature (the seed's 0.8)")
    p.add_argument("--max_temperature", type=float, default=1.2, help="cap of the raised temperature")
    p.add_argument("--patience", type=int, default=20,
                   help="stop a category after this many requests in a row without a new line")
    p.add_argument("--max_requests", type=int, default=0,
                   help="request budget per category (0: 10 + 3 x its target)")
    p.add_argument("--seed", type=int, default=42, help="random seed (few-shot choice, stdlib order)")
    # validation
    p.add_argument("--max_len", type=int, default=16, help="longest accepted line in characters")
    p.add_argument("--ascii", type=str2bool, nargs="?", const=True, default=True,
                   help="accept printable ASCII only (the microGPT vocabulary stays small)")
    p.add_argument("--line_timeout", type=float, default=1.0, help="seconds a line may run")
    p.add_argument("--mem_mb", type=int, default=512, help="worker address-space limit in MiB")
    p.add_argument("--stdlib_root", type=str, default=None, help="folder to mine (default: this Python's stdlib)")
    # audit modes
    p.add_argument("--check", type=str, default=None, metavar="FILE",
                   help="validate every line of FILE; JSON per line on stdout, summary on stderr")
    p.add_argument("--score", type=str, default=None, metavar="FILE",
                   help="compile rate (and run rate) of model samples in FILE, as JSON")
    args = p.parse_args(argv)
    if args.test:
        args.per_category = 10
    if args.per_category < 0:
        p.error(f"--per_category {args.per_category} must be >= 0")
    if args.per_category:
        args.target = args.per_category * len(CAT_KEYS)
    elif not TARGET_MIN <= args.target <= TARGET_MAX:
        p.error(f"--target {args.target} is outside {TARGET_MIN}-{TARGET_MAX}")
    elif args.weights == "seed" and args.target < 600:
        p.error(f"--target {args.target} is below the seed's 600 (its 60-line floors would exceed it); "
                f"use --weights equal or --per_category for small runs")
    if args.check and args.score:
        p.error("--check and --score are separate audits; pass one of them")
    if args.max_len < 1 or args.line_timeout <= 0 or args.retries < 1 or args.n < 1:
        p.error("--max_len, --line_timeout, --retries and --n must be positive")
    if args.log is None:
        args.log = args.output + ".log.jsonl"
    elif args.log.lower() == "none":
        args.log = None
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    validator = Validator(max_len=args.max_len, ascii_only=args.ascii, timeout=args.line_timeout,
                          mem_mb=args.mem_mb)
    try:
        with validator:
            if args.check:
                return run_check(args, validator)
            if args.score:
                print(json.dumps(score_samples(read_lines(args.score), validator)))
                return 0
            targets = ({k: args.per_category for k in CAT_KEYS} if args.per_category
                       else calculate_category_targets(args.target, args.weights))
            corpus = Corpus(args.output, args.log, args.threshold)
            print(f"target {sum(targets.values()):,} lines -> {args.output} "
                  f"(resuming with {corpus.resumed} lines)", file=sys.stderr)
            try:
                run = run_llm if args.source == "llm" else run_offline
                return run(args, corpus, validator, targets)
            finally:
                corpus.close()
    except LLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValidatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("\ninterrupted: every accepted line is in the file; run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

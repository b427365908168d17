"""Tests for gen_oneliners.py: validator (hostile lines, isolation), dedupe (against a brute-force
Levenshtein), answer parsing, the HTTP client against scripted and real (llama.cpp) servers,
generation end to end, resume, budgets, --check, --score and the committed corpus."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, shared_file

import gen_oneliners as g

SCRIPT = str(ROOT / "gen_oneliners.py")


# ---------------------------------------------------------------------------------------------
# a scripted OpenAI-compatible server: 127.0.0.1, random port, stops itself
# ---------------------------------------------------------------------------------------------
class ScriptedServer:
    """`answer(path, body, k)` returns (status, payload, delay_s); payload is an object (sent as
    JSON) or bytes (sent raw). Every request is recorded in `self.requests`."""

    def __init__(self, answer, lifetime=60.0):
        self.answer, self.requests = answer, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"null") if n else None
                outer.requests.append((self.path, body, dict(self.headers)))
                status, payload, delay = outer.answer(self.path, body, len(outer.requests))
                if delay:
                    time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _reply

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.timer = threading.Timer(lifetime, self.httpd.shutdown)   # stops even if a test hangs
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def chats(self):
        return [b for p, b, _ in self.requests if p.endswith("/chat/completions")]


def chat_reply(content, n_choices=1):
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": content}}
                        for i in range(n_choices)]}


def models_reply(path):
    return 200, {"object": "list", "data": [{"id": "tiny-model", "object": "model"}]}, 0


def unique_lines_server(bad_every=3):
    """Answers each chat with a fenced, numbered list: fresh valid lines (distinct enough for
    the default near-duplicate threshold), one invalid line and one repeat."""
    counter = [0]

    def answer(path, body, k):
        if path.endswith("/models"):
            return models_reply(path)
        lines = []
        for _ in range(4):
            counter[0] += 1
            i = counter[0]
            lines.append(f"{i}*{i}+{i}" if i % 2 else f"'{'abcdefgh'[i % 8]}'*{i}")
        lines += ["len(undefined)", lines[0]]
        text = "Here you go:\n```python\n" + "\n".join(f"{j}. {x}" for j, x in enumerate(lines, 1)) + "\n```"
        return 200, chat_reply(text), 0
    return answer


def run_main(argv):
    return g.main(argv)


def common(out, url, *extra):
    return ["-o", str(out), "--base_url", url, "--retries", "2", "--retry_delay", "0", "--timeout", "5",
            *extra]


# ---------------------------------------------------------------------------------------------
# validator
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator():
    with g.Validator(max_len=60, timeout=0.5, grace=0.5) as v:
        yield v


def test_builtins_and_imports_run(validator):
    ok = ["len('abc')", "int('7')", "import math", "sorted('cba')", "__import__('os')",
          "print('hi')", "x=3;x*2", "import json;json.dumps([1])"]
    res = validator.check(ok)
    assert all(r["valid"] for r in res), res
    bad = validator.check(["1/0", "undefined_name", "[1,2", "def f(:"])
    assert [r["reason"].split(":")[0] for r in bad] == ["ZeroDivisionError", "NameError",
                                                        "SyntaxError", "SyntaxError"]


HOSTILE = {
    "'1'*10**10": "MemoryError",
    "9**9**9": "timeout",
    "while 1:pass": "timeout",
    "input()": "PermissionError",
    "exit()": "SystemExit",
    "import antigravity": "PermissionError",
    "import webbrowser as w;w.open('http://x')": "PermissionError",
    "open('x','w')": "PermissionError",
    "import os;os._exit(0)": "PermissionError",
    "import posix;posix._exit(3)": "worker exited with code 3",
    "import os;os.system('touch y')": "PermissionError",
    "import subprocess;subprocess.run('ls')": "PermissionError",
    "import socket;socket.create_connection(('1.1.1.1',80))": "PermissionError",
    "import signal as s;s.signal(14,1);[*iter(int,1)]": "timeout: no answer",
    "import os;os.remove('gen_oneliners.py')": "PermissionError",
}


def test_check_cli_rejects_hostile_lines(tmp_path):
    src = tmp_path / "hostile.txt"
    lines = list(HOSTILE) + ["1+1", "abs(-2)"]
    src.write_text("\n".join(lines) + "\n")
    t0 = time.time()
    r = subprocess.run([sys.executable, SCRIPT, "--check", str(src), "--max_len", "60", "--line_timeout", "0.5"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["code"] for o in out] == lines
    for o in out[:-2]:
        assert o["valid"] is False, o
        assert HOSTILE[o["code"]] in o["reason"], o
    assert out[-1]["valid"] and out[-2]["valid"], "the worker was replaced and still works"
    assert "checked 17 lines" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["hostile.txt"], "nothing written in the caller's folder"
    assert not (ROOT / "x").exists() and (ROOT / "gen_oneliners.py").exists()
    assert time.time() - t0 < 40


def test_precheck_length_ascii_and_comments(validator):
    v = g.Validator(max_len=16)
    assert v.precheck("x" * 17).startswith("length 17")
    assert v.precheck("") == "empty line"
    assert v.precheck("# hi") == "comment"
    assert v.precheck(" 1") == "leading or trailing whitespace"
    assert v.precheck("'é'").startswith("non-ASCII")
    assert g.Validator(ascii_only=False).precheck("'é'") is None


def test_pools_are_short_valid_and_really_use_builtins(validator):
    examples = [(k, e) for k, subs in g.SAMPLE_POOLS.items() for ex in subs.values() for e in ex]
    assert len(examples) >= 200 and set(g.SAMPLE_POOLS) == set(g.CAT_KEYS)
    assert all(len(e) <= 16 for _, e in examples)
    res = validator.check([e for _, e in examples])
    assert [r["code"] for r in res if not r["valid"]] == []
    for k in ("builtin", "convert"):
        assert all("(" in e for kk, e in examples if kk == k)
    assert all("import" in e for kk, e in examples if kk == "stdlib")
    agree = sum(g.classify(e) == k for k, e in examples) / len(examples)
    assert agree > 0.9, agree


def test_validation_is_fast_enough_in_batches(validator):
    lines = [f"{i}*{i % 7}+{i}" for i in range(2000)]
    t0 = time.time()
    res = validator.check(lines)
    assert all(r["valid"] for r in res)
    assert time.time() - t0 < 20   # loose bound; bench/bench_validator.py measures lines/s


# ---------------------------------------------------------------------------------------------
# dedupe against brute force
# ---------------------------------------------------------------------------------------------
def levenshtein_reference(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize("threshold", [1, 2, 3, 5])
def test_dedupe_matches_brute_force(threshold):
    rng = random.Random(threshold)
    lines = ["".join(rng.choice("ab(1") for _ in range(rng.randint(1, 8))) for _ in range(250)]
    kept_ref = []
    for s in lines:
        if all(levenshtein_reference(s, t) >= max(threshold, 1) for t in kept_ref):
            kept_ref.append(s)
    assert g.dedupe_lines(lines, threshold) == kept_ref
    d = g.Deduper(threshold)
    for s in kept_ref:
        d.add(s)
    for s in lines[:60]:
        hit = d.find(s)
        best = min(levenshtein_reference(s, t) for t in kept_ref)
        assert (hit is not None) == (best < max(threshold, 1))
        if hit is not None:
            assert hit[1] == best == levenshtein_reference(s, hit[0])


def test_dedupe_crosses_lengths_and_prefixes():
    d = g.Deduper(3)
    d.add("'abc'*3")
    assert d.find("'abc'*33") == ("'abc'*3", 1)     # different length (the seed missed it)
    assert d.find("x'abc'*3")[1] == 1                # different first characters
    assert d.find("[1,2,3][::-1]") is None


# ---------------------------------------------------------------------------------------------
# parsing, categories, temperature
# ---------------------------------------------------------------------------------------------
def test_parse_answer_handles_fences_numbers_bullets_and_prose():
    text = ("<think>let me think: 1+1</think>Sure! Here are some one-liners:\n```python\n1. 2**10\n"
            "2) 10//3\n- 'a'*3\n* [1,2][::-1]\n\u2022 7%4\n`abs(-3)` returns 3\n0xff  # hex literal\n"
            "len('ab') -> 2\n'#'*3\n```\nThese show arithmetic.")
    assert g.parse_answer(text) == ["2**10", "10//3", "'a'*3", "[1,2][::-1]", "7%4", "abs(-3)", "0xff",
                                    "len('ab')", "'#'*3"]
    # no fence: every line counts; lines starting with a digit are kept (the seed dropped them)
    assert g.parse_answer("3*4\n42\n1. 5-2\n") == ["3*4", "42", "5-2"]
    assert g.parse_answer("") == [] and g.parse_answer(None) == []


def test_single_quotes_rewrites_only_safe_literals():
    cases = {'"ab"*2': "'ab'*2", 'b"x"+b"y"': "b'x'+b'y'", '"it\'s"': '"it\'s"', 'f"{1}"': "f'{1}'",
             '"""a"""': '"""a"""', 'len("a b")': "len('a b')", '"a\\"b"': "'a\\\"b'", "1+1": "1+1",
             'rb"\\d"': "rb'\\d'", '("x", 1)': "('x', 1)"}
    for src, want in cases.items():
        got = g.single_quotes(src)
        assert got == want and eval(got) == eval(src), (src, got)


def test_quotes_switch_changes_the_written_lines(tmp_path):
    def answer(path, body, k):
        if path.endswith("/models"):
            return models_reply(path)
        return 200, chat_reply(f'"{"abcdefghijklmnop"[k % 16]}"*{k}\n"x{k}"'), 0
    files = {}
    for mode in ("keep", "single"):
        out = tmp_path / f"{mode}.txt"
        with ScriptedServer(answer) as srv:
            assert run_main(common(out, srv.url, "--per_category", "1", "--quotes", mode, "--threshold", "1")) == 0
        files[mode] = out.read_text().splitlines()
    assert all(x.startswith('"') for x in files["keep"]) and all(x.startswith("'") for x in files["single"])
    assert [x.replace('"', "'") for x in files["keep"]] == files["single"]


def test_max_quotes_switch_rejects_lines_with_several_strings(validator):
    codes = ["('a','b')", "'a'*2", "1+1", "'a'+'b'+'c'"]
    assert [r["valid"] for r in g.judge(validator, codes, 0)] == [True, True, True, True]
    res = g.judge(validator, codes, 2)
    assert [r["valid"] for r in res] == [False, True, True, False]
    assert res[0]["reason"] == "more than 2 quote characters (--max_quotes)"


def test_category_targets_reproduce_the_seed():
    assert list(g.calculate_category_targets(6000).values()) == [324, 875, 1102, 1069, 1069, 60, 60, 1307, 60, 74]
    assert list(g.calculate_category_targets(30000).values()) == [1620, 4376, 5510, 5348, 5348, 275, 194, 6812,
                                                                   145, 372]
    eq = g.calculate_category_targets(1005, "equal")
    assert sum(eq.values()) == 1005 and eq["arith"] == 100


def test_classify_examples():
    cases = {"2**8": "arith", "1<<3": "bitwise", "'ab'*2": "string", "[1,2]+[3]": "data",
             "3>2": "bool", "len('ab')": "builtin", "int('7')": "convert", "'abc'[::-1]": "slice",
             "import os": "stdlib", "(lambda:1)()": "advanced", "'='*4": "string"}
    assert {c: g.classify(c) for c in cases} == cases


def test_temperature_rises_with_duplicates_and_is_capped():
    st = g.CategoryState("arith")
    assert g.temperature_for(st, 0.8, 1.2) == 0.8
    st.generated, st.accepted, st.duplicates = 600, 100, 100
    assert g.temperature_for(st, 0.8, 1.2) == 0.85
    st.duplicates = 300                            # rate 0.75 -> +0.15
    assert g.temperature_for(st, 0.8, 1.2) == pytest.approx(1.0)
    st.generated, st.duplicates = 2000, 10000
    assert g.temperature_for(st, 0.8, 1.05) == 1.05


def test_prompt_rotation_and_negative_examples():
    st, rng = g.CategoryState("string"), random.Random(0)
    focuses = []
    for i in range(3):
        msgs = g.build_messages(st, rng)
        st.requests += 1
        user = msgs[1]["content"]
        focuses.append(user.splitlines()[1])
        assert msgs[0]["content"] == g.SYSTEM_PROMPT and "Category: String Manipulation" in user
        assert sum(line[:2] in {f"{j}." for j in range(1, 6)} for line in user.splitlines()) == 5
    assert focuses == [f"Focus: {g.FOCUS[i]}" for i in range(3)]
    st.recent.extend(f"'{i}'" for i in range(15))
    user = g.build_messages(st, rng)[1]["content"]
    assert "- '14'" in user and "- '5'" in user and "- '4'" not in user   # the 10 newest


# ---------------------------------------------------------------------------------------------
# client against the scripted server
# ---------------------------------------------------------------------------------------------
def test_error_shapes():
    assert g.error_message({"error": "model not loaded"}) == "model not loaded"
    assert g.error_message({"error": {"message": "context too long", "code": 400}}) == "context too long"


def test_http_500_then_success_is_retried():
    def answer(path, body, k):
        if k == 1:
            return 500, {"error": {"message": "boom"}}, 0
        return 200, chat_reply("1+1"), 0
    logs = []
    with ScriptedServer(answer) as srv:
        c = g.LLMClient(srv.url, retries=3, retry_delay=0, log=logs.append)
        assert c.chat("m", [], 0.8, 10) == ["1+1"]
    assert len(logs) == 1 and "HTTP 500: boom" in logs[0]


def test_malformed_json_and_both_error_shapes_fail_clearly():
    with ScriptedServer(lambda p, b, k: (200, b"{not json", 0)) as srv:
        with pytest.raises(g.LLMError, match="malformed JSON"):
            g.LLMClient(srv.url, retries=2, retry_delay=0, log=lambda m: None).chat("m", [], 0.8, 10)
        assert len(srv.requests) == 2
    with ScriptedServer(lambda p, b, k: (400, {"error": "unknown model 'x'"}, 0)) as srv:
        with pytest.raises(g.LLMError, match="unknown model 'x'"):
            g.LLMClient(srv.url, retries=3, retry_delay=0, log=lambda m: None).chat("m", [], 0.8, 10)
        assert len(srv.requests) == 1, "a 4xx is not retried"
    with ScriptedServer(lambda p, b, k: (503, {"error": {"message": "loading model"}}, 0)) as srv:
        with pytest.raises(g.LLMError, match="loading model"):
            g.LLMClient(srv.url, retries=2, retry_delay=0, log=lambda m: None).list_models()


def test_slow_answer_times_out():
    with ScriptedServer(lambda p, b, k: (200, chat_reply("1"), 1.5)) as srv:
        t0 = time.time()
        with pytest.raises(g.LLMError, match="timeout after 0.3 s"):
            g.LLMClient(srv.url, timeout=0.3, retries=2, retry_delay=0, log=lambda m: None).chat("m", [], 0.8, 9)
        assert time.time() - t0 < 3


def test_refused_connection_exits_nonzero_with_message(tmp_path, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                       # nothing listens there now
    out = tmp_path / "c.txt"
    rc = run_main(common(out, f"http://127.0.0.1:{port}/v1", "--test"))
    err = capsys.readouterr().err
    assert rc == 2
    assert "failed after 2 attempts (connection error" in err and "--base_url" in err
    assert "Traceback" not in err


def test_generation_end_to_end_with_one_choice_for_n3(tmp_path, capsys):
    out = tmp_path / "corpus.txt"
    with ScriptedServer(unique_lines_server()) as srv:
        rc = run_main(common(out, srv.url, "--test", "--n", "3", "--seed", "1"))
        chats = srv.chats()
    err = capsys.readouterr()
    assert rc == 0, err.err
    lines = out.read_text().splitlines()
    assert len(lines) == 100 and len(set(lines)) == 100
    assert all(len(x) <= 16 for x in lines)
    assert chats[0]["model"] == "tiny-model" and chats[0]["n"] == 3
    assert all(0.8 <= c["temperature"] <= 1.2 for c in chats)
    assert "Avoid generating patterns similar" in chats[1]["messages"][1]["content"]
    log = [json.loads(x) for x in open(str(out) + ".log.jsonl")]
    status = {r["status"] for r in log}
    assert status == {"accepted", "rejected", "duplicate"}
    assert any(r["reason"].startswith("NameError") for r in log if r["status"] == "rejected")
    assert [r["code"] for r in log if r["status"] == "accepted"] == lines
    assert "per-category summary" in err.out and "OK: every category reached its target" in err.out
    with g.Validator() as v:
        assert all(r["valid"] for r in v.check(lines))


def test_resume_after_interrupted_run(tmp_path, capsys):
    out = tmp_path / "corpus.txt"
    gen = unique_lines_server()

    def dies_after_5(path, body, k):
        if path.endswith("/chat/completions") and k > 6:
            return 500, {"error": "server crashed"}, 0
        return gen(path, body, k)
    with ScriptedServer(dies_after_5) as srv:
        assert run_main(common(out, srv.url, "--test", "--model", "m")) == 2
    first = out.read_text().splitlines()
    assert 10 <= len(first) < 100
    with open(out, "a") as f:
        f.write("'half a li")                   # a write torn by a crash: no newline
    done = [g.CAT_EN[k] for k in g.CAT_KEYS if sum(
        json.loads(x)["category"] == k and json.loads(x)["status"] == "accepted"
        for x in open(str(out) + ".log.jsonl")) == 10]
    assert done, "the first run completed at least one category"
    with ScriptedServer(gen) as srv:
        assert run_main(common(out, srv.url, "--test", "--model", "m")) == 0
        asked = {c["messages"][1]["content"].splitlines()[0] for c in srv.chats()}
    lines = out.read_text().splitlines()
    assert lines[:len(first)] == first and len(lines) == 100 and len(set(lines)) == 100
    assert "'half a li" not in lines
    assert not asked & {f"Category: {c}" for c in done}, "completed categories are not asked again"
    assert "resuming with %d lines" % len(first) in capsys.readouterr().err


def test_ctrl_c_leaves_a_valid_file_that_resumes(tmp_path):
    out = tmp_path / "c.txt"
    gen = unique_lines_server()

    def slow(path, body, k):
        status, payload, _ = gen(path, body, k)
        return status, payload, 0.15
    with ScriptedServer(slow) as srv:
        proc = subprocess.Popen([sys.executable, SCRIPT, *common(out, srv.url, "--test")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 15):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        text = out.read_text()
        assert text.endswith("\n") and 15 <= len(text.splitlines()) < 100
        assert run_main(common(out, srv.url, "--test")) == 0
    lines = out.read_text().splitlines()
    assert lines[:15] == text.splitlines()[:15] and len(lines) == 100 == len(set(lines))


def test_unfillable_category_stops_after_budget(tmp_path, capsys):
    def only_junk(path, body, k):
        if path.endswith("/models"):
            return models_reply(path)
        return 200, chat_reply("print('x')\nundefined\n1/0"), 0
    out = tmp_path / "j.txt"
    with ScriptedServer(only_junk) as srv:
        rc = run_main(common(out, srv.url, "--test", "--patience", "3"))
        n = len(srv.chats())
    cap = capsys.readouterr()
    assert rc == 0
    assert out.read_text().splitlines() == ["print('x')"]
    assert cap.err.count("warning:") == 10 and "3 requests in a row without a new line" in cap.err
    assert n == 31 and "SHORT" in cap.out


def test_bad_flags_and_files(tmp_path, capsys):
    for bad_flags in (["--target", "5"], ["--target", "100"], ["--check", "a", "--score", "b"]):
        with pytest.raises(SystemExit):
            g.parse_args(bad_flags)
    assert g.parse_args(["--target", "100", "--weights", "equal"]).target == 100
    assert g.parse_args(["--test", "0"]).test is False and g.parse_args(["--test"]).test is True
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe1+1\n")
    r = subprocess.run([sys.executable, SCRIPT, "--check", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "not UTF-8" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, SCRIPT, "--score", str(tmp_path / "missing.txt")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_score_counts_compiling_samples(tmp_path):
    samples = ["1+1", "(1,", "", "x=3", "[1,2][0]", "'a", "len(q)"]
    with g.Validator() as v:
        s = g.score_samples(samples, v)
    assert s["samples"] == 7 and s["compile"] == 4 and s["compile_rate"] == round(4 / 7, 4)
    assert s["valid"] == 3 and s["empty"] == 1


# ---------------------------------------------------------------------------------------------
# the committed corpus
# ---------------------------------------------------------------------------------------------
def test_committed_corpus_is_ours_short_unique_and_valid():
    lines = (ROOT / "data" / "python_oneliners.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 3000
    assert len(set(lines)) == len(lines) and all(1 <= len(x) <= 16 and x.isascii() for x in lines)
    with g.Validator() as v:
        sample = random.Random(0).sample(lines, 300)
        assert [r["code"] for r in v.check(sample) if not r["valid"]] == []
    seed = set(shared_file("python_oneliners_30k.txt").read_text().splitlines())
    assert len(seed & set(lines)) / len(lines) < 0.05, "not a copy of the seed corpus"


# ---------------------------------------------------------------------------------------------
# a real OpenAI-compatible server: llama.cpp (xllamacpp wheel) with a tiny random-weight GGUF
# ---------------------------------------------------------------------------------------------
def write_tiny_gguf(path, n_embd=32, n_head=4, n_ff=64, seed=0):
    """A 1-layer llama-architecture GGUF (33k parameters, random weights) with a SentencePiece-style
    vocabulary (specials, 256 byte tokens, printable ASCII). Column 0 of every embedding is 1 and
    column 0 of the output matrix is +1 for digits, + - * and newline, -1 elsewhere: after the
    final RMSNorm that column dominates, so the model babbles lines of digits and operators,
    some valid Python, some not, which exercises parsing and validation."""
    import numpy as np
    import gguf
    rng = np.random.default_rng(seed)
    tokens, types = ["<unk>", "<s>", "</s>"], [2, 3, 3]          # UNKNOWN, CONTROL, CONTROL
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256                                            # BYTE
    chars = [chr(c) for c in range(0x21, 0x7F)] + ["\u2581"]      # NORMAL, ▁ is the space
    tokens += chars
    types += [1] * len(chars)
    V = len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_vocab_size(V)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * V)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def rand(*shape, scale=0.02):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    emb = rand(V, n_embd)
    emb[:, 0] = 1.0
    out = rand(V, n_embd, scale=1.0)                             # numpy (rows, cols) = ggml {cols, rows}
    out[:, 0] = -1.0
    out[[tokens.index(c) for c in "123456789+*-"], 0] = 1.0
    out[tokens.index("<0x0A>"), 0] = 1.25                        # a newline every few characters
    ones = np.ones(n_embd, np.float32)
    w.add_tensor("token_embd.weight", emb)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", out)
    w.add_tensor("blk.0.attn_norm.weight", ones)
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.0.{name}.weight", rand(n_embd, n_embd))
    w.add_tensor("blk.0.ffn_norm.weight", ones)
    w.add_tensor("blk.0.ffn_gate.weight", rand(n_ff, n_embd))
    w.add_tensor("blk.0.ffn_up.weight", rand(n_ff, n_embd))
    w.add_tensor("blk.0.ffn_down.weight", rand(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


LLAMA_SERVER = """
import os, sys, threading, xllamacpp as x
threading.Timer(120, lambda: os._exit(0)).start()      # stops itself whatever happens
p = x.CommonParams()
p.model.path = sys.argv[1]
p.n_ctx, p.n_parallel, p.warmup, p.port = 2048, 1, False, 0   # port 0: a free port on 127.0.0.1
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
s = x.Server(p)
print("ADDR", s.listening_address, flush=True)
sys.stdin.read()                                        # until the test closes our stdin
os._exit(0)
"""


def test_real_llama_cpp_server_with_tiny_gguf(tmp_path, capsys):
    import xllamacpp  # noqa: F401  (in requirements.txt: a missing wheel fails, never skips)
    model = tmp_path / "tiny.gguf"
    write_tiny_gguf(model)
    proc = subprocess.Popen([sys.executable, "-c", LLAMA_SERVER, str(model)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ADDR http://127.0.0.1:"), line
        url = line.split()[1] + "/v1"
        out = tmp_path / "real.txt"
        rc = run_main(["-o", str(out), "--base_url", url, "--per_category", "3", "--threshold", "1",
                       "--n", "2", "--max_tokens", "48", "--retry_delay", "0", "--seed", "3"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "tiny.gguf" in cap.err.split("model: ")[1].splitlines()[0]   # the first id of GET /v1/models
    assert "refuses n=2" in cap.err                          # llama-server answers 400 to n > 1
    lines = out.read_text().splitlines()
    assert len(lines) == 30 and len(set(lines)) == 30, (lines, cap.out)
    assert all(set(x) <= set("123456789+-*") for x in lines)   # what the tiny model can say
    with g.Validator() as v:
        assert all(r["valid"] for r in v.check(lines))
    log = [json.loads(x) for x in open(str(out) + ".log.jsonl")]
    assert any(r["status"] == "rejected" and r["reason"].startswith("SyntaxError") for r in log)

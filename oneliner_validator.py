"""The one-liner validator: runs untrusted Python lines in an isolated worker process.

Used by gen_oneliners.py (generation, --check, --score). Each line must compile (eval mode, else
exec mode; warnings count as errors) and run without raising, with built-ins and imports
available, inside a separate `python -I` process that has
- limits: address space (--mem_mb), CPU seconds, file size 1 MiB, no child processes, no core;
- a per-line timeout (SIGALRM inside, and a wall-clock kill from the parent for C-level loops);
- no stdin (fd 0 is /dev/null), output to /dev/null, a throwaway working folder;
- an audit hook (PEP 578) refusing file writes, deletions, processes, sockets, browsers, ctypes.
Lines travel in JSON batches over private pipes (>= 1,000 lines/s); a worker that dies or hangs is
killed and replaced and the line it was running is rejected with the reason. This is a filter for
generated snippets, not a security boundary: a line can still change the worker's own modules
for the lines after it (workers are recycled every 5,000 lines).

    python -c "from oneliner_validator import Validator; print(Validator().check(['2**8', '9**9**9']))"
    python gen_oneliners.py --check data/python_oneliners.txt > audit.jsonl
"""
import builtins
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------
# Validation: an isolated worker process (`python -I`), spoken to in batches over pipes
# ---------------------------------------------------------------------------------------------
class ValidatorError(Exception):
    """The worker cannot be started (a one-line user error)."""


# Audit events refused inside the worker: file-system writes, processes, network, browsers, ctypes.
_REFUSED_EVENTS = {
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
    "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.setxattr",
    "os.removexattr", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "os.startfile", "os.putenv", "os.unsetenv",
    "subprocess.Popen", "pty.spawn", "webbrowser.open", "builtins.input", "builtins.input/result",
    "sys.addaudithook", "resource.setrlimit", "resource.prlimit", "shutil.rmtree", "shutil.move",
    "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.chown", "shutil.make_archive",
    "shutil.unpack_archive", "urllib.Request", "ftplib.connect", "smtplib.connect",
    "poplib.connect", "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open",
    "http.client.connect", "tempfile.mkstemp", "tempfile.mkdtemp", "mmap.__new__",
    "signal.pthread_kill",
}
_REFUSED_PREFIXES = ("socket.", "ctypes.", "_winapi.", "winreg.", "msvcrt.", "sqlite3.")
_REFUSED_IMPORTS = {"tkinter", "turtle", "turtledemo", "idlelib", "antigravity", "webbrowser", "ctypes"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _LineTimeout(BaseException):
    """Raised by SIGALRM inside the worker when a line runs past its time."""


def _audit_hook(event, args):
    """Refuse dangerous operations of the line being validated (runs inside the worker only)."""
    if event in _REFUSED_EVENTS or event.startswith(_REFUSED_PREFIXES):
        raise PermissionError(f"{event} refused by the validator")
    if event == "open":
        mode, flags = args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                 (mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes:
            raise PermissionError(f"writing {args[0]!r} refused by the validator")
    elif event == "import" and args[0].split(".")[0] in _REFUSED_IMPORTS:
        raise PermissionError(f"import {args[0]} refused by the validator")


def _refused_exit(*args):
    raise PermissionError("os._exit refused by the validator")


def _run_line(code: str, timeout: float) -> dict:
    """Compile `code` (eval mode, else exec mode) and run it in a fresh namespace with built-ins."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")     # SyntaxWarning/DeprecationWarning -> SyntaxError
            try:
                code_obj, mode = compile(code, "<line>", "eval"), "eval"
            except SyntaxError:
                code_obj, mode = compile(code, "<line>", "exec"), "exec"
    except (SyntaxError, ValueError) as e:
        return {"valid": False, "reason": f"SyntaxError: {getattr(e, 'msg', e)}"}
    namespace = {"__builtins__": builtins, "__name__": "__oneliner__"}
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            eval(code_obj, namespace)
        return {"valid": True, "reason": "", "mode": mode}
    except _LineTimeout:
        return {"valid": False, "reason": f"timeout: still running after {timeout:g} s"}
    except BaseException as e:             # SystemExit, MemoryError, PermissionError, ...
        try:
            msg = str(e)[:160]
        except BaseException:
            msg = "?"
        return {"valid": False, "reason": f"{type(e).__name__}: {msg}".rstrip(": ")}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def worker_main() -> None:
    """Entry point of the worker process: read JSON batches, answer one JSON object per line."""
    import resource
    # the protocol moves to private descriptors; fds 0/1/2 become /dev/null (no stdin for the line)
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    reader, write = os.fdopen(proto_in, "rb"), os.write   # kept before any line can patch os
    timeout = float(sys.argv[1])
    mem = int(sys.argv[2]) * 2**20
    cpu = int(sys.argv[3])
    limits = [(resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu),
              (resource.RLIMIT_FSIZE, 2**20), (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0)]
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass                            # e.g. RLIMIT_NPROC above the current usage on macOS

    def on_alarm(signum, frame):
        raise _LineTimeout()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is for the parent, which closes us
    home = os.getcwd()
    saved = (sys.stdin, sys.stdout, sys.stderr)
    os._exit = _refused_exit                # a line gets an exception; posix._exit still kills us
    sys.setrecursionlimit(500)
    sys.addaudithook(_audit_hook)
    write(proto_out, b'"ready"\n')
    dumps, loads = json.dumps, json.loads
    while True:
        raw = reader.readline()
        if not raw:
            break
        for code in loads(raw):
            result = _run_line(code, timeout)
            sys.stdin, sys.stdout, sys.stderr = saved    # a line may have replaced them
            try:
                os.chdir(home)
            except OSError:
                pass
            write(proto_out, (dumps(result) + "\n").encode())


class Validator:
    """Validates one-liners in a `python -I` worker. A worker that dies or hangs is killed and
    replaced; the line it was running is rejected with the reason. Use as a context manager."""

    def __init__(self, max_len=16, min_len=1, ascii_only=True, timeout=1.0, mem_mb=512,
                 cpu_s=60, batch_size=128, recycle=5000, grace=1.0):
        self.max_len, self.min_len, self.ascii_only = max_len, min_len, ascii_only
        self.timeout, self.mem_mb, self.cpu_s = timeout, mem_mb, cpu_s
        self.batch_size, self.recycle, self.grace = batch_size, recycle, grace
        self.proc = None
        self.workdir = None
        self.buf = b""
        self.lines_in_worker = 0
        self.restarts = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- checks that need no worker --------------------------------------------------------
    def precheck(self, code: str):
        """Return a rejection reason for problems visible without running the line, or None."""
        if not code.strip():
            return "empty line"
        if code != code.strip():
            return "leading or trailing whitespace"
        if code.startswith("#"):
            return "comment"
        if not self.min_len <= len(code) <= self.max_len:
            return f"length {len(code)} outside {self.min_len}-{self.max_len}"
        if not code.isprintable():
            return "non-printable character"
        if self.ascii_only and not code.isascii():
            return "non-ASCII character (use --ascii 0 to allow)"
        return None

    # --- worker management -----------------------------------------------------------------
    def _start(self):
        if self.workdir is None:
            self.workdir = tempfile.TemporaryDirectory(prefix="oneliner_worker_")
        boot = f"import sys; sys.path.insert(0, {HERE!r}); import oneliner_validator as v; v.worker_main()"
        cmd = [sys.executable, "-I", "-c", boot, str(self.timeout), str(self.mem_mb), str(self.cpu_s)]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": self.workdir.name}
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, cwd=self.workdir.name, env=env)
        except OSError as e:
            raise ValidatorError(f"cannot start the validator worker ({sys.executable}): {e}")
        self.buf, self.lines_in_worker, self.eof = b"", 0, False
        if self._read_message(10.0) != "ready":
            self._kill()
            raise ValidatorError("the validator worker did not start (is this Python's resource "
                                 "module available? the validator needs a POSIX system)")

    def _kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None

    def close(self):
        self._kill()
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def _read_message(self, wait: float):
        """Next JSON message from the worker, or None if it died or sent nothing within `wait`."""
        deadline = time.monotonic() + wait
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.eof = True             # EOF: the worker is gone
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _failure_reason(self) -> str:
        rc = self.proc.poll()
        if rc is None and self.eof:             # it closed its pipe: give it time to exit
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
        if rc is None:
            return f"timeout: no answer after {self.timeout + self.grace:g} s (worker killed)"
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = str(-rc)
            return f"worker killed by {name}" + (" (CPU limit)" if name == "SIGXCPU" else "")
        return f"worker exited with code {rc} (exit/_exit inside the line)"

    def _run_worker(self, codes):
        """Run codes (all prechecked) in the worker, replacing it when it dies or hangs."""
        results, i = [], 0
        while i < len(codes):
            if self.proc is None or self.lines_in_worker >= self.recycle:
                self._kill()
                self._start()
            batch = codes[i:i + self.batch_size]
            try:
                self.proc.stdin.write((json.dumps(batch) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                continue
            for code in batch:
                msg = self._read_message(self.timeout + self.grace)
                if not isinstance(msg, dict):
                    results.append({"valid": False, "reason": self._failure_reason()})
                    self._kill()
                    self.restarts += 1
                    i += 1
                    break
                results.append(msg)
                i += 1
                self.lines_in_worker += 1
        return results

    def check(self, codes) -> list:
        """Validate a list of strings; returns [{"code", "valid", "reason"}] in the same order."""
        out = [{"code": c, "valid": False, "reason": self.precheck(c)} for c in codes]
        todo = [k for k, r in enumerate(out) if r["reason"] is None]
        ran = self._run_worker([codes[k] for k in todo])
        for k, res in zip(todo, ran):
            out[k]["valid"], out[k]["reason"] = res["valid"], res["reason"]
        return out


if __name__ == "__main__":
    worker_main()

"""One downloader for every data script in data/: fetch a URL to a file, atomically, with a checksum.

    from data.fetch import download
    download("https://.../names.txt", Path("data/names_makemore.txt"), sha256="...")

A failed or interrupted download never leaves a partial file; a checksum mismatch is an error
that names both digests. Offline, the error says so and points at the offline alternative.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


class DownloadError(Exception):
    """A one-line, user-facing reason why a download failed."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download url to dest (skipped when dest exists with the right checksum)."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "gpt-lab/1.0"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
        got = sha256_of(Path(tmp))
        if sha256 is not None and got != sha256:
            raise DownloadError(f"checksum mismatch for {url}: expected {sha256}, got {got}")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DownloadError(f"could not download {url} ({e}); are you offline? "
                            f"use the offline default described in data/README.md") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

"""Download the two long-text corpora of the GPT-2 mini chapter, with checksums.

- tiny Shakespeare (Karpathy's char-rnn, 1,115,394 bytes): nanoGPT's CPU benchmark data.
- the nine Aozora Bunko novels the seed's data.txt concatenated (坊っちゃん, 銀河鉄道の夜, 鼻,
  走れメロス, こころ, 人間失格, 羅生門, 三四郎, 吾輩は猫である; all public domain), cleaned as the
  seed's text was: the title/author lines and the colophon (底本...) dropped, ruby readings 《...》,
  ruby start marks ｜ and input notes ［＃...］ removed, the notes header kept.

    python data/prepare_text.py shakespeare          # -> data/tinyshakespeare.txt
    python data/prepare_text.py aozora               # -> data/aozora_novels.txt (Shift_JIS zips, cleaned)
    python data/prepare_text.py all --out_dir /tmp/corpora

Offline? The same texts lie in ../shared/data/ (tinyshakespeare.txt, aozora_novels.txt); pass those
paths to --data instead.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # let `python data/prepare_text.py` find the data package
    sys.path.insert(0, str(ROOT))
from data.fetch import DownloadError, download, sha256_of  # noqa: E402

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

# (title, author, Aozora Bunko zip), in the seed's order. The zip digests are not pinned yet: the
# machine that wrote this script had no network. The first download prints them; paste them here.
AOZORA = [
    ("坊っちゃん", "夏目漱石", "https://www.aozora.gr.jp/cards/000148/files/752_ruby_2438.zip"),
    ("銀河鉄道の夜", "宮沢賢治", "https://www.aozora.gr.jp/cards/000081/files/43737_ruby_19028.zip"),
    ("鼻", "芥川龍之介", "https://www.aozora.gr.jp/cards/000879/files/42_ruby_154.zip"),
    ("走れメロス", "太宰治", "https://www.aozora.gr.jp/cards/000035/files/1567_ruby_4948.zip"),
    ("こころ", "夏目漱石", "https://www.aozora.gr.jp/cards/000148/files/773_ruby_5968.zip"),
    ("人間失格", "太宰治", "https://www.aozora.gr.jp/cards/000035/files/301_ruby_5915.zip"),
    ("羅生門", "芥川龍之介", "https://www.aozora.gr.jp/cards/000879/files/127_ruby_150.zip"),
    ("三四郎", "夏目漱石", "https://www.aozora.gr.jp/cards/000148/files/794_ruby_4237.zip"),
    ("吾輩は猫である", "夏目漱石", "https://www.aozora.gr.jp/cards/000148/files/789_ruby_5639.zip"),
]
AOZORA_SHA256: dict[str, str | None] = {url: None for _, _, url in AOZORA}
# the seed's data.txt (= ../shared/data/aozora_novels.txt); ours matches it only if Aozora's files
# and the seed's cleaning were identical, so a difference is reported, not treated as an error
SEED_AOZORA_SHA256 = "9fb0f354400bcdcd3970f92958ac9dee97c9215a49632d3257b9d5b1ae436c09"

RUBY = re.compile(r"《[^》]+》")          # 吾輩《わがはい》 -> 吾輩 (the bare 《》 of the header stays)
NOTE = re.compile(r"［＃[^］]+］")         # ［＃「...」に傍点］ -> ''  (the bare ［＃］ of the header stays)
RULE = re.compile(r"^-{10,}$", re.M)     # the dashed rules around the notes header


def strip_aozora(raw: str) -> str:
    """One Aozora Bunko text (already decoded) -> body text as the seed kept it."""
    text = raw.replace("\r\n", "\n").lstrip("\ufeff")
    first_rule = RULE.search(text)
    if first_rule:                       # title, author and blank line sit above the first rule
        text = text[first_rule.start():]
    colophon = text.rfind("\n底本：")
    if colophon != -1:                   # bibliographic notes after the body
        text = text[:colophon]
    text = RUBY.sub("", text).replace("｜", "")
    return NOTE.sub("", text).strip("\n")


def text_from_zip(path: Path) -> str:
    """Aozora zips hold one Shift_JIS .txt (cp932 covers the extra characters they use)."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".txt")]
        if len(names) != 1:
            raise DownloadError(f"{path} should hold exactly one .txt file, found {names}")
        return io.TextIOWrapper(z.open(names[0]), encoding="cp932").read()


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def prepare_shakespeare(out_dir: Path) -> Path:
    dest = download(SHAKESPEARE_URL, out_dir / "tinyshakespeare.txt", sha256=SHAKESPEARE_SHA256)
    print(f"{dest}: {dest.stat().st_size:,} bytes, sha256 {sha256_of(dest)} (verified)")
    return dest


def prepare_aozora(out_dir: Path, cache_dir: Path) -> Path:
    works = []
    for title, author, url in AOZORA:
        z = download(url, cache_dir / url.rsplit("/", 1)[1], sha256=AOZORA_SHA256[url])
        body = strip_aozora(text_from_zip(z))
        pinned = "verified" if AOZORA_SHA256[url] else "not pinned yet: add it to AOZORA_SHA256"
        print(f"{title} ({author}): {len(body):,} characters; zip sha256 {sha256_of(z)} ({pinned})")
        works.append(body)
    dest = out_dir / "aozora_novels.txt"
    write_atomic(dest, "\n".join(works))
    digest = sha256_of(dest)
    same = "identical to" if digest == SEED_AOZORA_SHA256 else "differs from"
    text = dest.read_text(encoding="utf-8")
    print(f"{dest}: {len(text):,} characters, {len(set(text)):,} distinct, sha256 {digest} "
          f"({same} the seed's data.txt: 881,023 characters, 3,554 distinct)")
    return dest


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Download tiny Shakespeare and the seed's nine Aozora novels.")
    p.add_argument("which", choices=["shakespeare", "aozora", "all"], help="which corpus to build")
    p.add_argument("--out_dir", type=Path, default=ROOT / "data", help="where the .txt files go")
    p.add_argument("--cache_dir", type=Path, default=ROOT / "data" / "raw",
                   help="where the downloaded Aozora zips are kept")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.which in ("shakespeare", "all"):
            prepare_shakespeare(args.out_dir)
        if args.which in ("aozora", "all"):
            prepare_aozora(args.out_dir, args.cache_dir)
    except DownloadError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

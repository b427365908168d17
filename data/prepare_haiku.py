"""Build a haiku corpus (one haiku per line, UTF-8) from Aozora Bunko texts.

Online it downloads a listed set of public-domain haiku collections (Shift_JIS text in zip
archives) with data/fetch.py and records each archive's SHA-256 beside this script after the
first download (data/prepare_haiku.sha256.json; later downloads must match). Offline it reads
local files: Aozora .zip archives, Aozora .txt files (Shift_JIS or UTF-8), or a folder of them.

For every work it strips the Aozora notation (the title/author header and the block that explains
the notation, ruby 《...》 and the ｜ that starts a ruby base, ［＃...］ annotations, the 底本
colophon), then keeps the lines that scan as a haiku: 5-7-5 morae (each phrase and the total
within --tolerance), counted on the ruby reading where the text gives one and on pykakasi's
reading elsewhere (haiku.py). Prose fragments, headings, lines with unencodable characters (※)
and duplicates are dropped, and a report says how many lines each rule removed.

    python data/prepare_haiku.py --download --out runs/haiku/aozora_haiku.txt
    python data/prepare_haiku.py --src ~/aozora_zips --out runs/haiku/aozora_haiku.txt
    python data/prepare_haiku.py --src ../shared/data/aozora_haiku_30000.txt --out runs/haiku/clean.txt
    python data/prepare_haiku.py --list
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python data/prepare_haiku.py`: make haiku.py importable
    sys.path.insert(0, str(ROOT))

from haiku import count_morae, split_575  # noqa: E402  (the one home of the mora rules)

# ----------------------------------------------------------------------------------------------
# The works. Aozora Bunko publishes each work on a card page (cards/AUTHOR_ID/cardWORK_ID.html)
# with a zip of the Shift_JIS text (files/WORK_ID_ruby_NNNNN.zip). These URLs come from a public
# list of Aozora haiku collections; they could NOT be checked from the machine this script was
# written on (no network), so the first --download is also their test. A URL that has moved
# fails with a one-line error naming it; fix the entry from the card page.

WORKS = [
    # author, title, card page, zip archive
    ("正岡子規", "寒山落木 巻一", "https://www.aozora.gr.jp/cards/000305/card1896.html",
     "https://www.aozora.gr.jp/cards/000305/files/1896_ruby.zip"),
    ("正岡子規", "牡丹句録", "https://www.aozora.gr.jp/cards/000305/card59088.html",
     "https://www.aozora.gr.jp/cards/000305/files/59088_ruby_76370.zip"),
    ("正岡子規", "夜寒十句", "https://www.aozora.gr.jp/cards/000305/card42168.html",
     "https://www.aozora.gr.jp/cards/000305/files/42168_ruby_12296.zip"),
    ("松尾芭蕉", "俳句集（芭蕉翁古池真伝）", "https://www.aozora.gr.jp/cards/002240/card61619.html",
     "https://www.aozora.gr.jp/cards/002240/files/61619_ruby_78129.zip"),
    ("高浜虚子", "五百句", "https://www.aozora.gr.jp/cards/001310/card51837.html",
     "https://www.aozora.gr.jp/cards/001310/files/51837_ruby_59424.zip"),
    ("高浜虚子", "五百五十句", "https://www.aozora.gr.jp/cards/001310/card51838.html",
     "https://www.aozora.gr.jp/cards/001310/files/51838_ruby_59505.zip"),
    ("高浜虚子", "六百句", "https://www.aozora.gr.jp/cards/001310/card51840.html",
     "https://www.aozora.gr.jp/cards/001310/files/51840_ruby_59583.zip"),
    ("高浜虚子", "六百五十句", "https://www.aozora.gr.jp/cards/001310/card51841.html",
     "https://www.aozora.gr.jp/cards/001310/files/51841_ruby_77134.zip"),
    ("高浜虚子", "七百五十句", "https://www.aozora.gr.jp/cards/001310/card51839.html",
     "https://www.aozora.gr.jp/cards/001310/files/51839_ruby_77843.zip"),
    ("内藤鳴雪", "鳴雪句集", "https://www.aozora.gr.jp/cards/000684/card55833.html",
     "https://www.aozora.gr.jp/cards/000684/files/55833_txt_63814.zip"),
    ("前田普羅", "普羅句集", "https://www.aozora.gr.jp/cards/001719/card55258.html",
     "https://www.aozora.gr.jp/cards/001719/files/55258_ruby_64312.zip"),
    ("川端茅舎", "川端茅舎句集", "https://www.aozora.gr.jp/cards/000369/card55239.html",
     "https://www.aozora.gr.jp/cards/000369/files/55239_ruby_65169.zip"),
    ("松本たかし", "松本たかし句集", "https://www.aozora.gr.jp/cards/001720/card55259.html",
     "https://www.aozora.gr.jp/cards/001720/files/55259_ruby_66667.zip"),
    # Kobayashi Issa: no haiku collection of his could be located on Aozora from here; add his
    # card and zip once found (his おらが春 is prose with haiku, which the filters handle).
]
CHECKSUMS = Path(__file__).resolve().parent / "prepare_haiku.sha256.json"

# Reasons a line is dropped, in the order the rules are applied (the report uses this order).
REASONS = ("empty or markup only", "unencodable character (※)", "heading (too short)",
           "prose (punctuation, quotes, too long)", "not Japanese", "not 5-7-5", "duplicate")


class PrepareError(Exception):
    """A one-line, user-facing reason why the corpus could not be built."""


# ----------------------------------------------------------------------------------------------
# Reading files: Shift_JIS (Aozora's encoding) or UTF-8, plain or zipped

def decode(raw: bytes, name: str) -> str:
    """UTF-8 when the bytes are valid UTF-8, else cp932 (Microsoft's Shift_JIS, Aozora's)."""
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise PrepareError(f"{name}: neither UTF-8 nor Shift_JIS; save it in one of these encodings")


def read_works(paths: list[Path]) -> list[tuple[str, str]]:
    """(name, text) for each .txt file and each .txt member of each .zip, folders searched."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".txt", ".zip"))
        elif p.is_file():
            files.append(p)
        else:
            raise PrepareError(f"{p}: no such file or folder; pass Aozora .zip/.txt files or a folder of them")
    works = []
    for f in files:
        if f.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(f) as zf:
                    for member in zf.namelist():
                        if member.lower().endswith(".txt"):
                            works.append((f"{f.name}:{member}", decode(zf.read(member), member)))
            except zipfile.BadZipFile:
                raise PrepareError(f"{f}: not a valid zip archive; download it again") from None
        else:
            works.append((f.name, decode(f.read_bytes(), f.name)))
    if not works:
        raise PrepareError(f"no .txt or .zip files found in {', '.join(map(str, paths))}")
    return works


# ----------------------------------------------------------------------------------------------
# Aozora notation

DASHES = re.compile(r"^-{20,}\s*$")
ANNOTATION = re.compile(r"［＃[^］]*］")
GAIJI = re.compile(r"※［＃[^］]*］")            # ※ + a description of a character JIS lacks
RUBY_BAR = re.compile(r"｜([^｜《》]+)《([^》]*)》")  # ｜base《reading》: the base is marked
RUBY_KANJI = re.compile(r"([\u3400-\u9fff\uf900-\ufaff々〆ヶ]+)《([^》]*)》")  # base = kanji run
COLOPHON = ("底本：", "底本:")


def strip_header_footer(text: str) -> list[str]:
    """Lines of the body: without the title/author header, the notation legend between the two
    dashed rulers, and the colophon that starts at 底本：."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    rulers = [i for i, ln in enumerate(lines[:80]) if DASHES.match(ln)]
    if len(rulers) >= 2:
        lines = lines[rulers[1] + 1:]          # header + legend end at the second ruler
    else:  # no legend: the title/author block ends at the first blank line near the top
        blank = next((i for i, ln in enumerate(lines[:6]) if not ln.strip()), None)
        if blank is not None:
            lines = lines[blank + 1:]
    for i, ln in enumerate(lines):
        if ln.startswith(COLOPHON) or ln.strip() == "［＃本文終わり］":
            return lines[:i]
    return lines


def strip_notation(line: str) -> tuple[str, str]:
    """(text, reading): the text with ruby and annotations removed, and the same text with each
    ruby base replaced by its kana reading (so the mora count uses the author's reading)."""
    line = GAIJI.sub("※", line)
    line = ANNOTATION.sub("", line)
    reading = RUBY_BAR.sub(lambda m: m.group(2), line)
    reading = RUBY_KANJI.sub(lambda m: m.group(2), reading)
    text = RUBY_BAR.sub(lambda m: m.group(1), line)
    text = RUBY_KANJI.sub(lambda m: m.group(1), text)
    text = text.replace("｜", "")
    reading = reading.replace("｜", "")
    # haiku are often printed with spaces between phrases: the corpus keeps one unbroken line
    return re.sub(r"\s+", "", text), re.sub(r"\s+", "", reading)


PROSE = re.compile(r"[。「」！？!?（）()]|です|ます|である")


def classify(text: str, reading: str, tolerance: int, min_chars: int, max_chars: int) -> str | None:
    """The reason to drop a line (one of REASONS), or None to keep it. Duplicates are found later."""
    if not text:
        return REASONS[0]
    if "※" in text:
        return REASONS[1]
    if len(text) < min_chars:
        return REASONS[2]
    if len(text) > max_chars or PROSE.search(text) or "、" in text[:-1]:
        return REASONS[3]
    if re.search(r"[A-Za-z0-9Ａ-Ｚａ-ｚ０-９]", text):
        return REASONS[4]
    if split_575(reading, tolerance) is None:
        return REASONS[5]
    return None


def extract(works: list[tuple[str, str]], tolerance: int = 1, min_chars: int = 6,
            max_chars: int = 25) -> tuple[list[str], dict]:
    """-> (haiku lines in reading order, report dict)."""
    kept, seen = [], set()
    dropped: Counter = Counter()
    per_work = []
    for name, raw in works:
        n_kept = n_lines = 0
        for line in strip_header_footer(raw):
            if not line.strip():
                continue  # blank lines are layout, not content: not counted as dropped
            n_lines += 1
            text, reading = strip_notation(line)
            reason = classify(text, reading, tolerance, min_chars, max_chars)
            if reason is None and text in seen:
                reason = REASONS[6]
            if reason:
                dropped[reason] += 1
                continue
            seen.add(text)
            kept.append(text)
            n_kept += 1
        per_work.append({"work": name, "lines": n_lines, "kept": n_kept})
    report = {"works_read": len(works), "lines_read": sum(w["lines"] for w in per_work),
              "lines_kept": len(kept), "dropped": {r: dropped.get(r, 0) for r in REASONS},
              "tolerance": tolerance, "per_work": per_work}
    if kept:
        report["kept_exactly_17"] = sum(count_morae(k) == 17 for k in kept)
    return kept, report


def print_report(report: dict) -> None:
    print(f"works read: {report['works_read']} | non-blank lines: {report['lines_read']} | "
          f"kept: {report['lines_kept']} (tolerance {report['tolerance']})")
    for w in report["per_work"]:
        print(f"  {w['work']}: {w['lines']} lines, {w['kept']} kept")
    print("dropped by reason:")
    for r, n in report["dropped"].items():
        print(f"  {r}: {n}")
    if "kept_exactly_17" in report and report["lines_kept"]:
        print(f"kept lines with exactly 17 morae: {report['kept_exactly_17']} "
              f"({report['kept_exactly_17'] / report['lines_kept']:.1%})")


# ----------------------------------------------------------------------------------------------
# Downloading (online)

def download_all(cache_dir: Path, checksums: Path = CHECKSUMS, works=None) -> list[Path]:
    """Fetch every listed zip into cache_dir; record checksums on first download, verify after."""
    from data import fetch
    sums = json.loads(checksums.read_text(encoding="utf-8")) if checksums.exists() else {}
    paths = []
    for author, title, card, url in (works or WORKS):
        dest = cache_dir / url.rsplit("/", 1)[1]
        try:
            fetch.download(url, dest, sha256=sums.get(url))
        except fetch.DownloadError as e:
            raise PrepareError(f"{author} {title}: {e} (card page: {card})") from None
        if url not in sums:
            sums[url] = fetch.sha256_of(dest)  # first download: trust it and pin it from now on
        print(f"  {author} {title}: {dest}")
        paths.append(dest)
    tmp = checksums.with_name(checksums.name + ".tmp")
    tmp.write_text(json.dumps(sums, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, checksums)
    return paths


# ----------------------------------------------------------------------------------------------
# CLI

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Build a haiku corpus from Aozora Bunko texts.")
    p.add_argument("--src", nargs="+", type=Path, default=None,
                   help="offline: Aozora .zip/.txt files (Shift_JIS or UTF-8) or folders of them")
    p.add_argument("--download", action="store_true", help="online: fetch the listed works first")
    p.add_argument("--cache_dir", type=Path, default=Path("runs/aozora"),
                   help="where --download keeps the zip archives (default runs/aozora)")
    p.add_argument("--out", type=Path, default=None, help="output corpus, one haiku per line (UTF-8)")
    p.add_argument("--report", type=Path, default=None, help="also write the report as JSON here")
    p.add_argument("--tolerance", type=int, default=1,
                   help="morae each phrase (and the total) may differ from 5-7-5 (0 = exact)")
    p.add_argument("--min_chars", type=int, default=6, help="shorter lines are headings (default 6)")
    p.add_argument("--max_chars", type=int, default=25, help="longer lines are prose (default 25)")
    p.add_argument("--list", action="store_true", help="print the listed works and their URLs, then stop")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.list:
            for author, title, card, url in WORKS:
                print(f"{author}\t{title}\t{card}\t{url}")
            return
        if not args.src and not args.download:
            raise PrepareError("nothing to read: pass --src FILES_OR_FOLDERS (offline) or --download (online)")
        if args.out is None:
            raise PrepareError("--out is required: where to write the corpus (e.g. runs/haiku/aozora_haiku.txt)")
        if args.tolerance < 0 or args.min_chars < 1 or args.max_chars < args.min_chars:
            raise PrepareError("--tolerance must be >= 0 and 1 <= --min_chars <= --max_chars")
        paths = list(args.src or [])
        if args.download:
            paths += download_all(args.cache_dir)
        kept, report = extract(read_works(paths), args.tolerance, args.min_chars, args.max_chars)
        if not kept:
            raise PrepareError("no line scanned as a haiku; check the input files (or raise --tolerance)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        os.replace(tmp, args.out)
        print_report(report)
        print(f"wrote {len(kept)} haiku to {args.out}")
        if args.report:
            tmp = args.report.with_name(args.report.name + ".tmp")
            tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, args.report)
    except PrepareError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

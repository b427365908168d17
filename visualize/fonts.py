"""Japanese glyphs in matplotlib on a fresh machine, without japanize-matplotlib.

japanize-matplotlib imports distutils, which Python 3.12 removed. The matplotlib-fontja wheel ships
IPAex Gothic (ipaexg.ttf); we register that file with matplotlib's font_manager ourselves and put it
after DejaVu Sans in the family list, so Latin text keeps its usual look and every character DejaVu
lacks (kana, kanji) falls back glyph by glyph to IPAex Gothic (matplotlib >= 3.6 font fallback).
We locate the file with importlib instead of importing matplotlib_fontja, whose import changes
rcParams as a side effect.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

FONT_FILE = "ipaexg.ttf"
_registered: str | None = None


def japanese_font_path() -> Path:
    """Path of IPAex Gothic inside the installed matplotlib-fontja package."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Japanese font missing: pip install matplotlib-fontja (it is in requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / FONT_FILE
    if not path.exists():
        raise RuntimeError(f"Japanese font file {path} missing: reinstall matplotlib-fontja")
    return path


def setup_japanese_font() -> str:
    """Register IPAex Gothic once and make it the fallback family. Returns the family name."""
    global _registered
    import logging
    import matplotlib
    from matplotlib import font_manager
    if _registered is None:
        path = japanese_font_path()
        font_manager.fontManager.addfont(str(path))
        _registered = font_manager.FontProperties(fname=str(path)).get_name()  # "IPAexGothic"
    # IPAex has no bold face; matplotlib would log "Failed to find font weight bold" for every title
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", _registered]
    matplotlib.rcParams["axes.unicode_minus"] = False  # IPAex has no U+2212 minus glyph
    return _registered

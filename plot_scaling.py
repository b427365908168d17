"""Plot and fit a scaling ladder: validation loss against model size and against compute.

Reads one or more result files written by run_scaling_experiment.py (or the seed's own
`scaling_results.json`, unchanged), merges them, and fits two laws to loss L against
parameters N:

    power law      L = a * N^-alpha            (the seed's fit: a straight line in log-log)
    saturating     L = E + A * N^-alpha        (Hoffmann et al. 2022's form: E is the loss no
                                                model size removes, the entropy of the text)

plus the power law of loss against training compute C = 6 * N * D (Kaplan et al. 2020).
It prints each exponent with its R^2 beside the published references, and draws four panels:
the seed's two (log-log loss vs N with the fit; the fit residuals), loss vs compute, and the
held-out learning curves when the file has them.

Changes from the seed's plot_scaling.py: several files are merged (one per machine), the
saturating fit, the compute panel, R^2 printed for each fit, the non-embedding parameter
count (`--params non_embedding`, Kaplan's convention), and one-line errors for bad files.

    python plot_scaling.py results/scaling/aozora_quick.json --no-show -o docs/images/scaling_aozora.png
    python plot_scaling.py ../shared/data/seed_models/scaling_results_quick.json -o seed.png --no-show
    python plot_scaling.py machine_a.json machine_b.json -o merged.png       # sizes run on two machines
    python plot_scaling.py results/scaling/names_quick.json --params non_embedding --no-show -o n.png
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

# Published exponents to compare with (different data, tokenizers and budgets: see the README).
KAPLAN_ALPHA_N = 0.076   # Kaplan et al. 2020, L(N) = (N_c/N)^0.076, non-embedding N, converged
KAPLAN_ALPHA_C = 0.050   # Kaplan et al. 2020, L(C_min) ~ C_min^-0.050 (compute-efficient frontier)
KAPLAN_ALPHA_D = 0.095   # Kaplan et al. 2020, L(D) ~ D^-0.095 (data-limited, early stopping)
HOFFMANN_ALPHA = 0.34    # Hoffmann et al. 2022 (Chinchilla), L = E + A/N^0.34 + B/D^0.28
HOFFMANN_E = 1.69        # their irreducible loss in nats per (BPE) token on MassiveText

SEED_KEYS = ("name", "n_params", "val_loss")  # the least a result row needs to be plotted


class ScalingFileError(Exception):
    """A one-line, user-facing reason why a results file cannot be used."""


# ---------------------------------------------------------------------------------------------
# Reading and merging result files

def load_results(paths: list[str | Path]) -> dict:
    """Read one or more result JSON files and merge their `results` lists.

    The first file's top-level fields describe the merged run; a size that appears in two files
    is kept once (the later file wins, with a warning). Files made with different steps, batch
    size or data are merged too, with a warning, because each row carries its own settings.
    """
    merged: dict | None = None
    by_name: dict[str, dict] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ScalingFileError(f"{path}: no such file; pass a JSON written by run_scaling_experiment.py")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ScalingFileError(f"{path}: not a JSON file ({e}); pass a scaling results JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ScalingFileError(f"{path}: no 'results' list; is this a scaling results file?")
        for i, row in enumerate(data["results"]):
            missing = [k for k in SEED_KEYS if not isinstance(row, dict) or k not in row]
            if missing:
                raise ScalingFileError(f"{path}: results[{i}] lacks {', '.join(missing)}")
        if merged is None:
            merged = {k: v for k, v in data.items() if k != "results"}
            merged["source_files"] = []
        else:
            for key in ("steps", "batch_size", "data_path", "data_sha256", "block_size"):
                if key in data and key in merged and data[key] != merged[key]:
                    print(f"warning: {path} has {key}={data[key]!r}, the first file {merged[key]!r}; "
                          f"merging anyway", file=sys.stderr)
        merged["source_files"].append(str(path))
        for row in data["results"]:
            if row["name"] in by_name:
                print(f"warning: size {row['name']!r} appears twice; keeping the one from {path}",
                      file=sys.stderr)
            by_name[row["name"]] = {**row, "_run": {k: v for k, v in data.items() if k != "results"}}
    if merged is None:
        raise ScalingFileError("no results file given")
    merged["results"] = sorted(by_name.values(), key=lambda r: r["n_params"])
    return merged


def params_of(row: dict, which: str) -> float:
    """Parameter count of one result row: 'total' (the seed's n_params) or 'non_embedding'."""
    if which == "non_embedding":
        if "n_params_non_embedding" not in row:
            raise ScalingFileError(f"size {row['name']!r} has no n_params_non_embedding "
                                   f"(the seed's files lack it); use --params total")
        return float(row["n_params_non_embedding"])
    return float(row["n_params"])


def tokens_of(row: dict) -> float:
    """Training tokens D of one row; the seed's rows give steps * batch * block_size."""
    if "tokens_seen" in row:
        return float(row["tokens_seen"])
    run = row.get("_run", {})
    steps = row.get("steps", run.get("steps"))
    batch = row.get("batch_size", run.get("batch_size"))
    block = row.get("block_size", run.get("block_size", 256))
    if steps is None or batch is None:
        raise ScalingFileError(f"size {row['name']!r}: cannot tell how many tokens it trained on")
    return float(steps) * float(batch) * float(block)


def compute_of(row: dict, which: str) -> float:
    """Training compute C = 6 * N * D in FLOPs (forward 2ND + backward 4ND, Kaplan et al. 2020)."""
    return 6.0 * params_of(row, which) * tokens_of(row)


# ---------------------------------------------------------------------------------------------
# Fits

def fit_power_law(x, y) -> dict:
    """Least-squares line through (log10 x, log10 y): y = a * x^slope, exponent = -slope.

    This is the seed's fit. R^2 is measured in log space, where the line was fitted.
    """
    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        raise ScalingFileError("a power-law fit needs at least two different sizes")
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    r2 = 1.0 - float(np.sum(resid**2)) / float(np.sum((ly - ly.mean())**2)) if np.ptp(ly) > 0 else 1.0
    return {"a": float(10**intercept), "slope": float(slope), "exponent": float(-slope),
            "intercept": float(intercept), "r_squared": r2, "residuals": resid.tolist(),
            "n_points": len(lx)}


def _saturating_sse(alpha: float, x: np.ndarray, y: np.ndarray, xref: float):
    """For a fixed alpha, L = E + A' * (x/xref)^-alpha is linear in (E, A'): solve it exactly.

    Returns (sse, E, A') with E >= 0 enforced (E < 0 would be a loss below zero at infinite size).
    Dividing by xref (the geometric mean of x) keeps the column of order one for any alpha.
    """
    z = (x / xref) ** (-alpha)
    design = np.stack([np.ones_like(z), z], axis=1)
    (e, a), *_ = np.linalg.lstsq(design, y, rcond=None)
    if e < 0:                       # clamp: pure power law through the origin of the E axis
        e, a = 0.0, float(z @ y / (z @ z))
    sse = float(np.sum((y - e - a * z) ** 2))
    return sse, float(e), float(a)


def fit_saturating(x, y, alpha_range=(1e-3, 3.0)) -> dict:
    """Fit L = E + A * x^-alpha by least squares in L (numpy only, no scipy needed).

    Variable projection: for each alpha the best (E, A) is a 2-column linear least-squares
    problem, so only alpha is searched (a log-spaced grid, then golden-section refinement).
    With exactly three sizes the fit has as many parameters as points and passes through all
    of them (R^2 = 1 by construction): `exact` says so.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        raise ScalingFileError("the saturating fit E + A*N^-alpha needs at least three sizes")
    xref = float(np.exp(np.mean(np.log(x))))
    grid = np.geomspace(alpha_range[0], alpha_range[1], 600)
    sses = [_saturating_sse(a, x, y, xref)[0] for a in grid]
    i = int(np.argmin(sses))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    g = (math.sqrt(5) - 1) / 2      # golden-section search on the bracket around the grid minimum
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(80):
        if _saturating_sse(c, x, y, xref)[0] < _saturating_sse(d, x, y, xref)[0]:
            hi = d
        else:
            lo = c
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    alpha = (lo + hi) / 2
    sse, e, a_ref = _saturating_sse(alpha, x, y, xref)
    sst = float(np.sum((y - y.mean()) ** 2))
    return {"E": e, "A": a_ref * xref**alpha, "alpha": float(alpha),
            "r_squared": 1.0 - sse / sst if sst > 0 else 1.0, "n_points": len(x),
            "exact": len(x) == 3 and sse <= 1e-12 * max(sst, 1e-30), "at_bound": bool(i in (0, len(grid) - 1))}


def saturating_curve(fit: dict, x) -> np.ndarray:
    return fit["E"] + fit["A"] * np.asarray(x, float) ** (-fit["alpha"])


# ---------------------------------------------------------------------------------------------
# Plotting helpers (data_scaling.py draws its panels with these too)

def plot_fit_panel(ax, x, y, labels=None, yerr=None, xlabel="", ylabel="", title="",
                   saturating: bool = True, color="tab:blue", var: str = "N") -> dict:
    """Log-log scatter of y against x with the power-law fit (and the saturating fit if >= 3 points).

    Returns {"power": fit, "saturating": fit or None}.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    fits = {"power": fit_power_law(x, y), "saturating": None}
    if yerr is not None:
        ax.errorbar(x, y, yerr=yerr, fmt="o", color=color, capsize=4, zorder=3)
    else:
        ax.scatter(x, y, s=100, color=color, zorder=3)
    for xi, yi, name in zip(x, y, labels or []):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=9)
    xs = np.geomspace(x.min() * 0.8, x.max() * 1.2, 100)
    p = fits["power"]
    ax.plot(xs, p["a"] * xs ** p["slope"], "r--", lw=2,
            label=f"L = {p['a']:.3g} × {var}^({p['slope']:.3f})   R²={p['r_squared']:.3f}")
    if saturating and len(x) >= 3:
        s = fit_saturating(x, y)
        fits["saturating"] = s
        ax.plot(xs, saturating_curve(s, xs), "g-", lw=1.5, alpha=0.8,
                label=f"L = {s['E']:.2f} + {s['A']:.3g}·{var}^-{s['alpha']:.3f}   R²={s['r_squared']:.3f}"
                      + (" (exact)" if s["exact"] else ""))
    ax.set_xscale("log")
    if x.max() / x.min() > 10:   # several decades: label only the powers of ten
        from matplotlib.ticker import NullFormatter
        ax.xaxis.set_minor_formatter(NullFormatter())
    log_y_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fits


def log_y_axis(ax) -> None:
    """Log y axis with a few plain-number ticks (2.45, 2.60, ...): losses span less than a decade,
    where matplotlib's own log ticks would read 4x10^0 or repeat the same rounded label."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    for decimals in range(2, 6):
        ticks = np.unique(np.round(np.geomspace(lo, hi, 6)[1:-1], decimals))
        if len(ticks) == 4:
            break
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FormatStrFormatter(f"%.{decimals}f"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_metric_panel(ax, x, y, yerr=None, xlabel="", ylabel="", title="", logx=True,
                      color="tab:purple") -> None:
    """A plain line with error bars against a (log) x axis: e.g. compile rate vs corpus size."""
    ax.errorbar(x, y, yerr=yerr, fmt="o-", color=color, capsize=4)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def plot_residuals(ax, labels, residuals) -> None:
    """The seed's right panel: log10(measured) - log10(fitted) per size."""
    ax.bar(range(len(residuals)), residuals, color="steelblue")
    ax.axhline(0, color="red", ls="--")
    ax.set_xticks(range(len(residuals)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("log10 residual")
    ax.set_title("Fit Residuals")
    ax.grid(True, axis="y", alpha=0.3)


def plot_curves(ax, rows: list[dict]) -> None:
    """Held-out loss against training tokens for each size (rows with a stored 'curve')."""
    drawn = 0
    for row in rows:
        # step 0 (no tokens yet) has no place on a log axis
        curve = [c for c in row.get("curve", []) if c.get("val_loss") is not None and c["step"] > 0]
        if not curve:
            continue
        steps = max(float(row.get("steps", 1)), 1.0)
        tokens = tokens_of(row)
        ax.plot([c["step"] / steps * tokens for c in curve], [c["val_loss"] for c in curve],
                marker=".", label=row["name"])
        drawn += 1
    if drawn == 0:
        ax.text(0.5, 0.5, "no per-eval curves in this file\n(the seed did not store them)",
                ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_xscale("log")
        log_y_axis(ax)
        ax.legend(fontsize=8)
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("held-out loss")
    ax.set_title("Learning curves")
    ax.grid(True, which="both", alpha=0.3)


# ---------------------------------------------------------------------------------------------
# The figure and the printed analysis

def analyse(data: dict, params: str = "total", fig=None) -> dict:
    """Fit everything; draw the four panels on `fig` when one is given. Returns the fits."""
    rows = data["results"]
    names = [r["name"] for r in rows]
    n = np.array([params_of(r, params) for r in rows])
    loss = np.array([float(r["val_loss"]) for r in rows])
    c = np.array([compute_of(r, params) for r in rows])
    nlabel = "Non-embedding parameters (N)" if params == "non_embedding" else "Parameters (N)"
    if fig is None:
        out = {"power": fit_power_law(n, loss), "saturating": None}
        if len(n) >= 3:
            out["saturating"] = fit_saturating(n, loss)
        out["compute"] = fit_power_law(c, loss)
        return out
    axes = fig.subplots(2, 2).ravel()
    out = plot_fit_panel(axes[0], n, loss, names, xlabel=nlabel, ylabel="Validation Loss (L)",
                         title="Scaling Law: Loss vs Parameters")
    plot_residuals(axes[1], names, out["power"]["residuals"])
    comp = plot_fit_panel(axes[2], c, loss, names, xlabel="Training compute C = 6·N·D (FLOPs)",
                          ylabel="Validation Loss (L)", title="Loss vs Compute", saturating=False,
                          color="tab:orange", var="C")
    out["compute"] = comp["power"]
    plot_curves(axes[3], rows)
    held = "held-out" if all(r.get("val_source") == "held-out" for r in rows) else "training data (seed)"
    fig.text(0.01, 0.005,
             f"data: {data.get('data_path', '?')} ({data.get('data_size', 0):,} chars)   "
             f"steps: {data.get('steps', '?')}   batch: {data.get('batch_size', '?')}   "
             f"val measured on: {held}   exponent: {out['power']['exponent']:.3f}",
             fontsize=8, family="monospace")
    return out


def report_lines(fits: dict, params: str = "total") -> list[str]:
    """The printed analysis: the seed's lines plus the saturating and compute fits."""
    p, s, c = fits["power"], fits.get("saturating"), fits["compute"]
    lines = ["=" * 50, "Scaling Law Analysis", "=" * 50,
             f"Parameters counted: {params}",
             f"Fitted equation: L = {p['a']:.4f} × N^({p['slope']:.4f})   R² = {p['r_squared']:.4f} (log space)",
             f"Power law exponent: {p['exponent']:.4f}"]
    if s is not None:
        note = "  (3 points, 3 parameters: exact by construction)" if s["exact"] else ""
        note += "  (alpha at the search bound: the data do not pin it)" if s["at_bound"] else ""
        note += "  (E clamped at 0: these points show no floor yet)" if s["E"] == 0 else ""
        lines.append(f"Saturating fit: L = {s['E']:.4f} + {s['A']:.4g} × N^(-{s['alpha']:.4f})   "
                     f"R² = {s['r_squared']:.4f}{note}")
    else:
        lines.append("Saturating fit: needs at least three sizes")
    lines += [f"Loss vs compute: L = {c['a']:.4f} × C^({c['slope']:.4f})   R² = {c['r_squared']:.4f}",
              "-" * 50,
              f"Reference (Kaplan et al. 2020): alpha_N ≈ {KAPLAN_ALPHA_N}, alpha_C(min) ≈ {KAPLAN_ALPHA_C}",
              f"Reference (Hoffmann et al. 2022): alpha ≈ {HOFFMANN_ALPHA}, E ≈ {HOFFMANN_E} (their data)",
              f"Your measured exponent: {p['exponent']:.4f} (power law)"
              + (f", {s['alpha']:.4f} (saturating)" if s is not None else ""),
              "Note: Exponent depends on data size and training tokens."]
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="one or more scaling results JSON files (merged)")
    ap.add_argument("--output", "-o", type=str, default=None, help="image path to write (PNG); none: no file")
    ap.add_argument("--no-show", "--no_show", dest="no_show", action="store_true",
                    help="do not open a window (for scripts and headless machines)")
    ap.add_argument("--params", choices=["total", "non_embedding"], default="total",
                    help="N on the x axis: all parameters (the seed) or non-embedding ones (Kaplan)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        data = load_results(args.results)
        import matplotlib
        if args.no_show:
            matplotlib.use("Agg")   # no display needed
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(14, 10))
        fits = analyse(data, args.params, fig)
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        if args.output:
            out = Path(args.output)
            out.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(out, dpi=100, bbox_inches="tight")
            print(f"Plot saved to: {out}")
    except ScalingFileError as e:
        sys.exit(f"error: {e}")
    print("\n".join(report_lines(fits, args.params)))
    if not args.no_show:
        plt.show()
    plt.close(fig)


if __name__ == "__main__":
    main()

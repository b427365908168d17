"""Run the five notebooks on one model, headless, and write one self-contained HTML report.

The notebooks are executed with nbclient in ONE Jupyter kernel (imports and the haiku model's
2,345-row next-token matrix are paid once). Like papermill, a cell tagged `injected-parameters` is
inserted after each notebook's `parameters` cell. The report inlines plotly.js once, so its
interactive figures work offline; every static figure is also written as a PNG file.

    python -m visualize.render --model model.json --out runs/report_names
    python -m visualize.render --model ../shared/data/seed_models/haiku_orgparam_model.json \\
        --out runs/report_haiku --compare model.json
    python -m visualize.render --model model.json --out runs/v2 --notebooks v2
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import sys
import time
from pathlib import Path

VIS_DIR = Path(__file__).resolve().parent
NOTEBOOKS = ["v1_model_structure", "v2_attention_heatmap", "v3_embedding_space",
             "v4_inference_animation", "v5_probability_distribution"]
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class RenderError(Exception):
    """A problem reported as one line."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Execute the visualize/ notebooks on a microGPT model and "
                                            "write an offline HTML report plus PNG figures.")
    p.add_argument("--model", required=True, help="microGPT JSON model file")
    p.add_argument("--out", required=True, help="output folder (report.html, figures/, notebooks/)")
    p.add_argument("--compare", default="", help="second model for V5's side-by-side view (optional)")
    p.add_argument("--notebooks", nargs="+", default=["all"],
                   help="which notebooks: all, or prefixes such as v1 v5 (default: all)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell")
    return p.parse_args(argv)


def select(names: list[str]) -> list[str]:
    if names == ["all"]:
        return list(NOTEBOOKS)
    chosen = [nb for nb in NOTEBOOKS if any(nb.startswith(n) for n in names)]
    unknown = [n for n in names if not any(nb.startswith(n) for nb in NOTEBOOKS)]
    if unknown or not chosen:
        raise RenderError(f"--notebooks {' '.join(unknown or names)}: unknown; choose from all, v1 .. v5")
    return chosen


def inject_parameters(nb, params: dict) -> None:
    """papermill's convention: a cell tagged injected-parameters right after the parameters cell."""
    import nbformat
    src = "# injected by visualize/render.py\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(src)
    cell.metadata["tags"] = ["injected-parameters"]
    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if idx is None:
        raise RenderError("notebook has no cell tagged 'parameters'")
    nb.cells.insert(idx + 1, cell)


def start_kernel():
    """A python3 kernel in visualize/, told to emit plotly figures as JSON (HEADLESS_ENV)."""
    from jupyter_client.manager import KernelManager
    from .plots import HEADLESS_ENV  # plots.show() then emits plotly figures as JSON mimetype
    env = dict(os.environ, **{HEADLESS_ENV: "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(VIS_DIR), env=env)
    return km


def execute_notebooks(model: str, compare: str = "", names=None, timeout: int = 600,
                      extra_params: dict | None = None, log=print, km=None) -> list[tuple[str, object, float]]:
    """Execute the notebooks in one kernel (km: reuse a running one, e.g. across models in the
    tests; it is then left running). Returns [(name, executed notebook, seconds)]."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    params = {"MODEL": str(Path(model).resolve())}
    if compare:
        params["COMPARE"] = str(Path(compare).resolve())
    params.update(extra_params or {})
    own = km is None
    km = km or start_kernel()
    results = []
    try:
        for name in names or NOTEBOOKS:
            nb = nbformat.read(VIS_DIR / f"{name}.ipynb", as_version=4)
            inject_parameters(nb, params)
            t0 = time.perf_counter()
            client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(VIS_DIR)}})
            try:
                client.execute()
            except CellExecutionError as err:
                last = [l for l in str(err).strip().splitlines() if l.strip()][-1]
                raise RenderError(f"{name}.ipynb failed: {last}") from None
            dt = time.perf_counter() - t0
            log(f"executed {name}.ipynb in {dt:.1f} s")
            results.append((name, nb, dt))
    finally:
        if own:
            km.shutdown_kernel(now=True)
    return results


# ----------------------------------------------------------------------------------------------
# HTML report

CSS = """body{font-family:system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #ddd} h2{margin-top:2em} pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:13px}
details{margin:.3em 0;color:#555} img{max-width:100%} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:2px 6px} .nb{border-top:4px solid #3498db;margin-top:3em}
blockquote{border-left:4px solid #e74c3c;margin-left:0;padding-left:1em;color:#444}"""


def _markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return markdown2html_mistune(text)


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in s).strip("_") or "figure"


def render_output(out: dict, nb_name: str, fig_dir: Path, counter: dict, figures: list) -> str:
    """HTML for one cell output; PNGs are also written to fig_dir."""
    kind = out.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(out.get('text', ''))}</pre>"
    if kind == "error":
        return f"<pre style='color:#c0392b'>{html.escape(out.get('ename', ''))}: {html.escape(out.get('evalue', ''))}</pre>"
    data = out.get("data", {})
    name = (out.get("metadata") or {}).get("microgpt_name")
    if "image/png" in data:
        counter["n"] += 1
        fname = f"{_slug(name)}.png" if name else f"{nb_name.split('_')[0]}_{counter['n']:02d}.png"
        png = data["image/png"]
        png = png if isinstance(png, str) else png[0]
        (fig_dir / fname).write_bytes(base64.b64decode(png))
        figures.append(fname)
        return f"<img alt='{html.escape(fname)}' src='data:image/png;base64,{png.strip()}'>"
    if PLOTLY_MIME in data:
        import plotly.io as pio
        counter["n"] += 1
        return pio.to_html(data[PLOTLY_MIME], include_plotlyjs=False, full_html=False, validate=False,
                           auto_play=False, div_id=f"{nb_name}_{counter['n']}")
    if "text/html" in data:
        return data["text/html"]
    if "text/markdown" in data:
        return _markdown(data["text/markdown"])
    if "text/plain" in data:
        return f"<pre>{html.escape(data['text/plain'])}</pre>"
    return ""


def build_report(executed, out_dir: Path, title: str) -> tuple[Path, list[str]]:
    """Write out_dir/report.html (self-contained) and out_dir/figures/*.png. Returns (path, PNGs)."""
    from plotly.offline import get_plotlyjs
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    body, toc = [], []
    for name, nb, dt in executed:
        counter = {"n": 0}
        toc.append(f"<li><a href='#{name}'>{name}</a> ({dt:.1f} s)</li>")
        body.append(f"<section class='nb' id='{name}'>")
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                body.append(_markdown(cell.source))
            elif cell.cell_type == "code":
                if "injected-parameters" in cell.metadata.get("tags", []):
                    body.append(f"<pre>{html.escape(cell.source)}</pre>")
                else:
                    body.append(f"<details><summary>code</summary><pre>{html.escape(cell.source)}</pre></details>")
                body.extend(render_output(o, name, fig_dir, counter, figures) for o in cell.get("outputs", []))
        body.append("</section>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Generated {time.strftime('%Y-%m-%d %H:%M')} by "
            f"<code>python -m visualize.render</code>; interactive figures work offline.</p>"
            f"<ul>{''.join(toc)}</ul>{''.join(body)}</body></html>")
    path = out_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path, figures


def render(args: argparse.Namespace) -> dict:
    names = select(args.notebooks)
    from .model_analyzer import ModelAnalyzer
    an = ModelAnalyzer(args.model)  # fail fast, with the loader's one-line message
    if args.compare:
        ModelAnalyzer(args.compare)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    executed = execute_notebooks(args.model, args.compare, names, args.timeout)
    nb_dir = out_dir / "notebooks"
    nb_dir.mkdir(exist_ok=True)
    import nbformat
    for name, nb, _ in executed:
        nbformat.write(nb, nb_dir / f"{name}.ipynb")
    path, figures = build_report(executed, out_dir, f"Inside {an.name} ({an.vocab_size} tokens, "
                                                    f"{an.total_params():,} parameters)")
    summary = {"model": str(args.model), "compare": args.compare or None,
               "seconds": {n: round(dt, 2) for n, _, dt in executed},
               "total_seconds": round(time.perf_counter() - t0, 2), "figures": figures,
               "report_bytes": path.stat().st_size}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB), {len(figures)} PNG figures in "
          f"{out_dir / 'figures'}, {summary['total_seconds']:.1f} s in total")
    return summary


def main(argv=None) -> None:
    args = parse_args(argv)
    from .model_analyzer import microgpt
    try:
        render(args)
    except (RenderError, microgpt.MicroGPTError, OSError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the report was not written")


if __name__ == "__main__":
    main()

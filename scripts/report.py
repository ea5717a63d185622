"""Write a self-contained HTML results page for a pipeline run folder.

    python scripts/report.py run=runs/pipeline/...      # writes run/report.html

Everything (table, training curves, probe figures, videos) is embedded in the one file, so it opens
from disk in any browser with no server and can be mailed or attached as is.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hydra
from matplotlib.figure import Figure
from omegaconf import DictConfig

from envs.errors import UserInputError
from worldmodel.runtime import cli_main, find_browser

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
video { margin: 4px; border: 1px solid #ccc; }
figure { display: inline-block; margin: 4px; font-size: 0.8em; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path} is not valid JSON ({err.msg}); re-run the stage that writes it") from err


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def results_section(results: dict[str, Any]) -> str:
    agents = results["agents"]
    rows = []
    for name, s in agents.items():
        low, high = s["success_rate_95ci"]
        rows.append([name, f"{s['success_rate']:.1%}", f"[{low:.2f}, {high:.2f}]", f"{s['distance']:.4f}",
                     f"{s['plan_ms_median']:.1f}", s["episodes"]])
    text = table(["agent", "success", "95% interval", "final distance", "plan ms (median)", "episodes"], rows)
    if "jepa" in agents and "oracle" in agents and agents["oracle"]["success_rate"] > 0:
        ratio = agents["jepa"]["success_rate"] / agents["oracle"]["success_rate"]
        text += f"<p>JEPA / Oracle success ratio: <b>{ratio:.2f}</b></p>"
    return "<h2>Planning on held-out start/goal pairs</h2>" + text


def curves_png(metrics_csv: Path) -> str:
    """Every logged loss term against the step, one panel each, as a base64 PNG."""
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in (rows[0] if rows else {}) if k != "step"]
    fig = Figure(figsize=(11, 2.4 * ((len(keys) + 2) // 3)))
    for i, key in enumerate(keys):
        ax = fig.add_subplot((len(keys) + 2) // 3, 3, i + 1)
        points = [(float(r["step"]), float(r[key])) for r in rows if r.get(key) not in ("", None)]
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode()


def surprise_png(surprise: dict[str, Any]) -> str:
    """Mean +- std surprise against the step from the teleport, teleported vs. normal clips, as a base64 PNG."""
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot(1, 1, 1)
    offsets = surprise["offsets"]
    for key, label, color in (("curve_impossible", "teleported", "tab:red"), ("curve_normal", "normal", "tab:blue")):
        mean, std = surprise[key], surprise[f"{key}_std"]
        ax.plot(offsets, mean, color=color, label=label)
        ax.fill_between(offsets, [m - s for m, s in zip(mean, std, strict=True)],
                        [m + s for m, s in zip(mean, std, strict=True)], color=color, alpha=0.2)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.axhline(surprise["threshold"], color="black", lw=0.8, ls=":", label=f"threshold (q={surprise['threshold_quantile']})")
    ax.set_xlabel("step from the teleport", fontsize=8)
    ax.set_ylabel("one-step prediction error", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode()


def surprise_section(surprise: dict[str, Any] | None) -> str:
    """Does the latent flag an impossible event? Figures, and the curve where probe.json has one."""
    if not surprise:
        return ""
    text = "<h3>Surprise: held-out clips in which the world teleports</h3>"
    if "skipped" in surprise:
        return text + f"<p>Skipped: {html.escape(str(surprise['skipped']))}</p>"
    text += table(["figure", "value"], scalar_rows(surprise))
    if "curve_impossible" in surprise:
        text += f'<img src="data:image/png;base64,{surprise_png(surprise)}">'
    return text


def scalar_rows(figures: dict[str, Any]) -> list[list[Any]]:
    return [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in figures.items()
            if isinstance(v, (int, float, str))]


def videos_section(video_dir: Path) -> str:
    clips = sorted(video_dir.glob("*.mp4")) if video_dir.exists() else []
    if not clips:
        return ""
    parts = []
    for clip in clips:
        data = base64.b64encode(clip.read_bytes()).decode()
        parts.append(f'<figure><video controls autoplay loop muted playsinline '
                     f'src="data:video/mp4;base64,{data}"></video>'
                     f"<figcaption>{html.escape(clip.stem)}</figcaption></figure>")
    return "<h2>Episodes (observation | goal, energy and distance below)</h2>" + "".join(parts)


def build_report(run: Path) -> str:
    """The page for a pipeline run folder holding collect/, train/, probe/ and evaluate/."""
    results = read_json(run / "evaluate" / "results.json")
    if results is None:
        raise UserInputError(f"no evaluate/results.json under {run}: run the pipeline (or its evaluate stage) first")
    spec = results.get("spec", {})
    sections = [f"<h1>jepa-planner: {html.escape(str(spec.get('task', '')))} "
                f"({html.escape(str(spec.get('obs', '')))})</h1>",
                f"<p>Run folder: <code>{html.escape(str(run.resolve()))}</code></p>",
                results_section(results),
                videos_section(run / "evaluate" / "videos")]  # right under the table: what a success looks like
    if (metrics := run / "train" / "metrics.csv").exists():
        sections.append(f'<h2>World-model training</h2><img src="data:image/png;base64,{curves_png(metrics)}">')
    if probe := read_json(run / "probe" / "probe.json"):
        warnings = "".join(f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in probe.get("warnings", []))
        sections.append("<h2>Does the latent know the state? (held-out episodes)</h2>"
                        + warnings + table(["figure", "value"], scalar_rows(probe))
                        + surprise_section(probe.get("surprise")))
    if collect := read_json(run / "collect" / "summary.json"):
        sections.append("<h2>Data collection</h2>" + table(["figure", "value"], scalar_rows(collect)))
    if spec:
        sections.append("<h2>Evaluation protocol</h2><pre>" + html.escape(json.dumps(spec, indent=2)) + "</pre>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>jepa-planner report</title>" \
           f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"


@hydra.main(config_path="../configs", config_name="report", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    run = Path(cfg.run)
    if not run.is_dir():
        raise UserInputError(f"run folder {run} does not exist")
    page = run / "report.html"
    page.write_text(build_report(run))
    print(f"report: {page}")
    if cfg.screenshot:
        screenshot(page, Path(cfg.screenshot), cfg.browser)
        print(f"screenshot: {cfg.screenshot}")


def screenshot(page: Path, png: Path, browser: DictConfig) -> None:
    """Render the page once in headless Chromium: proof that it opens from disk with no server."""
    executable = find_browser(browser.executable)
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--no-first-run", "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", f"--virtual-time-budget={browser.settle_ms}", f"--user-data-dir={profile}",
                   f"--screenshot={png.resolve()}",
                   f"--window-size={browser.window[0]},{browser.window[1]}", page.resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=browser.timeout_s, check=False)
    if result.returncode != 0 or not png.exists():
        raise UserInputError(f"{browser.executable} could not render {page}: {result.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()

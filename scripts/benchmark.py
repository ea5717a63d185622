"""Measure everything we publish, in one run, and write BENCHMARKS.md from those measurements.

    python scripts/benchmark.py suite=quick      # laptop-sized
    python scripts/benchmark.py suite=full       # every task and obs mode

Raw env and collection speeds are measured here; each suite run is a full ``scripts/pipeline.py``
(collect -> train -> probe -> evaluate -> report) whose output files are read back, so every number
in the document comes from this run's files. ``measurements.json`` in the run folder holds them all.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from envs.collection import measure_collection_speed
from envs.dataset import load_episodes
from envs.errors import UserInputError
from envs.speed import measure_env_speed
from worldmodel.data import measure_window_rate
from worldmodel.runtime import cli_main, find_browser, prepare_run_dir, to_overrides

ROOT = Path(__file__).resolve().parents[1]
AGENT_ORDER = ("jepa", "oracle", "gcbc", "random")
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {device}, torch {torch.__version__}, Python {platform.python_version()}"


def env_speeds(cfg: DictConfig) -> list[dict[str, Any]]:
    rows = []
    for task in cfg.tasks:
        state = measure_env_speed(task, "state", cfg.state_steps, seed=0)
        pixels = measure_env_speed(task, "pixels", cfg.pixel_steps, seed=0)
        rows.append({"task": task, "state_steps_per_s": state["steps_per_s"],
                     "pixel_frames_per_s": pixels["steps_per_s"]})
        print(f"env speed {task}: {rows[-1]}", flush=True)
    return rows


def check_screenshot_browser(runs: list[DictConfig]) -> None:
    """A run that asks for a report screenshot needs the browser only at its last stage: look for it
    before the hours of work ahead of that, not after them."""
    default = OmegaConf.load(ROOT / "configs" / "report.yaml").browser.executable
    for run in runs:
        if OmegaConf.select(run, "report.screenshot"):
            find_browser(OmegaConf.select(run, "report.browser.executable", default=default))


def run_pipeline(run: DictConfig, out: Path, device: str, reuse: bool) -> None:
    sections = OmegaConf.to_container(run, resolve=True)
    overrides = [f"task={run.task}", f"obs={run.obs}", f"out={out}", f"device={device}", f"force={not reuse}"]
    for stage in ("collect", "train", "probe", "evaluate", "report"):
        # ++: add keys the pipeline config lacks
        overrides += to_overrides(sections.get(stage) or {}, prefix=f"++{stage}.")
    command = [sys.executable, str(ROOT / "scripts" / "pipeline.py"), *overrides]
    print(f"\n### {run.task} / {run.obs}: {' '.join(command[1:])}", flush=True)
    if subprocess.run(command, check=False).returncode != 0:
        raise UserInputError(f"pipeline for {run.task}/{run.obs} failed; its output is in {out}")


def read_run(run: DictConfig, out: Path, window_cfg: DictConfig) -> dict[str, Any]:
    results = json.loads((out / "evaluate" / "results.json").read_text())
    probe = json.loads((out / "probe" / "probe.json").read_text())
    collect = json.loads((out / "collect" / "summary.json").read_text())
    train = json.loads((out / "train" / "summary.json").read_text())
    episodes = load_episodes(out / "collect")
    windows = measure_window_rate(episodes, window_cfg.window, window_cfg.batch_size, window_cfg.seconds)
    return {"task": run.task, "obs": run.obs, "agents": results["agents"], "spec": results["spec"],
            "probe": probe, "collect": collect, "train": train, "windows_per_s": windows, "folder": str(out)}


def fmt_success(agent: dict[str, Any] | None) -> str:
    if agent is None:
        return "–"
    low, high = agent["success_rate_95ci"]
    return f"{agent['success_rate']:.0%} [{low:.2f}, {high:.2f}]"


def planner_label(spec: dict[str, Any]) -> str:
    """``cem_dense (H=5, 512x6)``: the config name and the budget it resolved to (results files from
    before planner names were recorded show the optimizer's class instead)."""
    planner = spec["planner"]
    name = spec.get("planner_name") or planner["optimizer"]["_target_"].rsplit(".", 1)[-1]
    budget = [f"H={planner['horizon']}"]
    if "samples" in planner["optimizer"]:
        budget.append(f"{planner['optimizer']['samples']}x{planner['optimizer']['iterations']}")
    return f"{name} ({', '.join(budget)})"


def results_table(runs: list[dict[str, Any]]) -> str:
    lines = ["| task | obs | JEPA | Oracle | GCBC | random | JEPA/Oracle | JEPA plan ms | JEPA planner, energy | episodes | train min | probe R² |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        agents = r["agents"]
        jepa, oracle = agents.get("jepa"), agents.get("oracle")
        ratio = f"{jepa['success_rate'] / oracle['success_rate']:.2f}" if jepa and oracle and oracle["success_rate"] else "–"
        plan_ms = f"{jepa['plan_ms_median']:.0f}" if jepa else "–"
        lines.append(
            f"| {r['task']} | {r['obs']} | {fmt_success(jepa)} | {fmt_success(oracle)} | "
            f"{fmt_success(agents.get('gcbc'))} | {fmt_success(agents.get('random'))} | {ratio} | {plan_ms} | "
            f"{planner_label(r['spec'])}, {r['spec'].get('energy_name', '–')} | "
            f"{jepa['episodes'] if jepa else '–'} | {r['train']['seconds_this_run'] / 60:.1f} | {r['probe']['probe_r2']:.3f} |")
    return "\n".join(lines)


def write_docs(cfg: DictConfig, measured: dict[str, Any], command: str) -> None:
    runs = measured["runs"]
    env_rows = "\n".join(f"| {r['task']} | {r['state_steps_per_s']:,.0f} | {r['pixel_frames_per_s']:,.0f} |"
                         for r in measured["env_speed"])
    c = measured["collection_speed"]
    n = c["workers"]
    data_rows = "\n".join(
        f"| {r['task']} | {r['obs']} | {r['collect']['episodes']} | {r['collect']['frames_per_s']} | "
        f"{r['collect']['coverage']} | {r['collect']['bytes_on_disk'] / 1e6:.1f} MB | {r['windows_per_s']:,.0f} | "
        f"{r['train']['samples_per_s']:,.0f} |" for r in runs)
    probe_rows = "\n".join(
        f"| {r['task']} | {r['obs']} | {r['probe']['probe_r2']:.3f} | {r['probe']['effective_rank']:.1f} | "
        f"{r['probe']['latent_std_min']:.3f} | {r['probe']['pred_error']:.4f} | {r['probe']['copy_baseline_error']:.4f} | "
        f"{r['probe']['plannability']:.2f} |" for r in runs)
    doc = f"""# Benchmarks

Generated by `{command}` on {measured['date']} — do not edit by hand; re-run the command instead.
Machine: {measured['machine']}. Raw numbers: `measurements.json` in the run folder.
Pipeline stages that had already finished in the run folder are reused (`reuse=true`), so their
figures (success, training time, probes) are those of the invocation that ran them; the speeds below
are measured anew every time.

## Planning success on held-out start/goal pairs

Success rate with its 95% Wilson interval; the same pairs for every agent (pair seed
{', '.join(sorted({str(r['spec']['seed']) for r in runs}))}, never the collection seed). JEPA = MPC on the learned world
model; Oracle = the same planner and budget on the true simulator; GCBC = goal-conditioned behaviour
cloning on the same data; plan ms = median wall time per control step. JEPA planner
(`configs/planner/`, chosen per task and obs mode in `configs/task/`) with its horizon H and candidates (GD: starts) x iterations
where the optimizer has one such budget. JEPA energy
(`configs/energy/`, chosen per task and obs mode): latent = straight latent distance to the goal;
geodesic = distance along a graph of the dataset's encoded observations (`agents/landmarks.py`), which
goes round walls (geodesic_wide: with a two-step hop radius; geodesic_whitened: in units of one-step
latent motion; geodesic_subgoal: whitened, each plan aimed at a waypoint on the graph's shortest path,
_wide: with a wider radius; _dense: wider, and every dataset observation a landmark);
the oracle always uses the straight distance between true positions.

{results_table(runs)}

## Simulation and collection speed

| task | state env steps/s | pixel frames/s (64x64) |
|---|---|---|
{env_rows}

Collection of {c['task']} / {c['obs']} ({c['episodes']} episodes, same episodes both times): 1 worker
{c['frames_per_s_1_worker']} frames/s, {n} workers {c[f'frames_per_s_{n}_workers']} frames/s: **{c['speedup']}x**.

| task | obs | episodes | collect frames/s | coverage | dataset size | windows/s (sampler) | train samples/s |
|---|---|---|---|---|---|---|---|
{data_rows}

## What the latent learned (held-out episodes)

| task | obs | probe R² | effective rank | min latent std | pred. error | copy-last error | plannability |
|---|---|---|---|---|---|---|---|
{probe_rows}

Probe R²: linear map from latent to the true state, fit on training episodes. Pred./copy-last error:
open-loop latent prediction error against repeating the last latent. Plannability: how often the
true action sequence has lower energy than random ones.

Targets missed and the experiments tried on them (planner budgets, horizons, pixel-model variants):
[docs/EXPERIMENTS.md](docs/EXPERIMENTS.md).
"""
    (ROOT / "BENCHMARKS.md").write_text(doc)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if RESULTS_BEGIN in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_BEGIN, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        section = (f"{RESULTS_BEGIN}\nFrom `{command}` on {measured['date']} ({measured['machine']}); "
                   f"details in [BENCHMARKS.md](BENCHMARKS.md).\n\n{results_table(runs)}\n{RESULTS_END}")
        readme.write_text(head + section + tail)


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    suite = cfg.suite
    check_screenshot_browser(suite.runs)
    run_dir = prepare_run_dir(cfg.out, cfg)
    measured: dict[str, Any] = {
        "suite": suite.name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "env_speed": env_speeds(suite.env_speed),
    }
    cs = suite.collection_speed
    measured["collection_speed"] = measure_collection_speed(cs.task, cs.obs, cs.episodes, cs.workers)
    print(f"collection speed: {measured['collection_speed']}", flush=True)
    measured["runs"] = []
    for run in suite.runs:
        out = run_dir / f"{run.task}-{run.obs}"
        run_pipeline(run, out, cfg.device, cfg.reuse)
        measured["runs"].append(read_run(run, out, suite.window_rate))
        (run_dir / "measurements.json").write_text(json.dumps(measured, indent=2))
    if cfg.write_docs:
        write_docs(cfg, measured, f"python scripts/benchmark.py suite={suite.name}")
        print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    print(f"measurements: {run_dir / 'measurements.json'}")


if __name__ == "__main__":
    main()

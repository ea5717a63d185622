"""Measure everything we publish, in one run, and write BENCHMARKS.md from those measurements.

    python scripts/benchmark.py suite=quick      # laptop-sized
    python scripts/benchmark.py suite=full       # every task and obs mode, three training seeds
    python scripts/benchmark.py suite=scale      # the landmark graph at a million, many envs per plan, FLOP/s
    python scripts/benchmark.py docs_only=true   # rewrite BENCHMARKS.md from docs/benchmarks/*.json

A suite is a list of rows (a task and obs mode). Each row runs its recipe, the tuned experiment file
``configs/experiment/<task>-<obs>.yaml`` where there is one, else the default, once per training
seed, each a full ``scripts/pipeline.py`` (collect -> train -> probe -> evaluate -> report); with a tuned
file it also trains and evaluates ``experiment=default`` on the same data and budget. The Oracle and
random do not depend on the training seed and run in the first seed's evaluation only. Raw env and
collection speeds are measured here; every other number is read back from the pipelines' files and
goes to ``measurements.json`` (the run folder, and ``docs/benchmarks/`` with ``write_docs``), from
which BENCHMARKS.md and the README's Results block are written. ``reuse=true`` keeps finished stages,
so a stopped benchmark continues where it was; a finished stage whose recipe has changed since is redone
(the pipeline's ``changed=redo``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
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
from worldmodel.checkpoint import load_world_model
from worldmodel.data import measure_window_rate
from worldmodel.runtime import cli_main, find_browser, prepare_run_dir, to_overrides
from worldmodel.speed import matmul_peak_gflops, rollout_gflops

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "docs" / "benchmarks" / "measurements.json"
SCALE = ROOT / "docs" / "benchmarks" / "scale.json"
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"
SECONDS_FILE = "benchmark_seconds.json"  # wall time the benchmark spent on a pipeline folder, all sittings
Row = dict[str, Any]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()  # each pipeline stage inherits the environment (OMP_NUM_THREADS)
    return (f"{os.cpu_count()} CPU cores ({cpu}), {device}, torch {torch.__version__} with {threads} thread"
            f"{'s' if threads > 1 else ''} per process, Python {platform.python_version()}")


def env_speeds(cfg: DictConfig) -> list[dict[str, Any]]:
    rows = []
    for task in cfg.tasks:
        state = measure_env_speed(task, "state", cfg.state_steps, seed=0)
        pixels = measure_env_speed(task, "pixels", cfg.pixel_steps, seed=0)
        rows.append({"task": task, "state_steps_per_s": state["steps_per_s"],
                     "pixel_frames_per_s": pixels["steps_per_s"]})
        print(f"env speed {task}: {rows[-1]}", flush=True)
    return rows


def check_screenshot_browser(rows: list[DictConfig]) -> None:
    """A row that asks for a report screenshot needs the browser only at its last stage: look for it
    before the hours of work ahead of that, not after them."""
    default = OmegaConf.load(ROOT / "configs" / "report.yaml").browser.executable
    for row in rows:
        if OmegaConf.select(row, "report.screenshot"):
            find_browser(OmegaConf.select(row, "report.browser.executable", default=default))


def resolve_row(row: DictConfig) -> Row:
    """A suite row as the runs need it: task, obs, budget and the recipes to run on it.

    ``{experiment: reacher-pixels}`` takes task, obs and budget from that file; ``{task, obs, budget}``
    runs the default recipe only. Either may override the budget (``budget: {episodes: ...}``).
    """
    row = OmegaConf.to_container(row, resolve=True)
    tuned = row.get("experiment")
    if tuned == "default":
        raise UserInputError("a suite row names a tuned experiment or none (the default always runs)")
    overrides = [f"experiment={tuned}"] if tuned else ["experiment=default", f"task={row['task']}", f"obs={row['obs']}"]
    recipe = hydra.compose(config_name="train", overrides=[*overrides, "data=unused"])
    budget = {**OmegaConf.to_container(recipe.budget, resolve=True), **row.get("budget", {})}
    budget.pop("eval_episodes")  # the suite's evaluation protocol, the same for every row (suite.eval)
    return {"task": recipe.task.name, "obs": recipe.obs, "name": f"{recipe.task.name}-{recipe.obs}",
            "experiment": tuned or "default", "recipes": [tuned, "default"] if tuned else ["default"],
            "budget": budget, "report": row.get("report", {})}


def run_pipeline(overrides: list[str], out: Path, label: str) -> None:
    """One pipeline run; the seconds it took are added to ``out/benchmark_seconds.json``."""
    command = [sys.executable, str(ROOT / "scripts" / "pipeline.py"), *overrides, f"out={out}"]
    print(f"\n### {label}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    if subprocess.run(command, check=False).returncode != 0:
        raise UserInputError(f"pipeline {label} failed; its output is in {out}")
    seconds_file = out / SECONDS_FILE
    spent = json.loads(seconds_file.read_text())["seconds"] if seconds_file.exists() else 0.0
    seconds_file.write_text(json.dumps({"seconds": spent + time.perf_counter() - started}))


def run_row(row: Row, suite: DictConfig, row_dir: Path, device: str, reuse: bool) -> dict[str, dict[int, Path]]:
    """Every recipe x seed pipeline of a row; returns their folders by recipe and seed.

    The row's own recipe (tuned, else default) collects, trains and evaluates JEPA and GCBC for every
    seed of ``suite.seeds``, with the Oracle and random in the first seed only; the default beside a
    tuned recipe (seeds ``suite.default_seeds``) reuses that seed's dataset and evaluates JEPA alone.
    """
    main_recipe = row["recipes"][0]
    folders: dict[str, dict[int, Path]] = {recipe: {} for recipe in row["recipes"]}
    budget = [f"budget.{k}={v}" for k, v in row["budget"].items()] + [f"budget.eval_episodes={suite.eval.episodes}"]
    for recipe in row["recipes"]:
        for i, seed in enumerate(suite.seeds if recipe == main_recipe else suite.default_seeds):
            out = row_dir / f"{recipe}-seed{seed}"
            overrides = [f"experiment={recipe}", f"task={row['task']}", f"obs={row['obs']}", *budget, f"seed={seed}",
                         f"eval_seed={suite.eval.seed}", f"device={device}", f"force={not reuse}",
                         "changed=redo"]  # a reused stage whose recipe changed since is redone
            if recipe == main_recipe:
                agents = "[jepa,oracle,gcbc,random]" if i == 0 else "[jepa,gcbc]"
                if i == 0:
                    overrides += to_overrides(row["report"], prefix="++report.")
            else:  # the default beside a tuned recipe: the same seed's data, JEPA only
                agents = "[jepa]"
                overrides += [f"data={folders[main_recipe][seed] / 'collect'}", "stages=[train,probe,evaluate]"]
            run_pipeline([*overrides, f"evaluate.agents={agents}"], out, f"{row['name']} {recipe} seed {seed}")
            folders[recipe][seed] = out
    return folders


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def seed_record(folder: Path, seed: int) -> dict[str, Any]:
    """One pipeline's figures: success of every agent it ran, JEPA's plan ms, training minutes, probe R²."""
    results = read_json(folder / "evaluate" / "results.json")
    train = read_json(folder / "train" / "summary.json")
    probe = read_json(folder / "probe" / "probe.json")
    jepa = results["agents"]["jepa"]
    return {
        "seed": seed,
        "success": {name: agent["success_rate"] for name, agent in results["agents"].items()},
        "success_95ci": {name: agent["success_rate_95ci"] for name, agent in results["agents"].items()},
        "episodes": jepa["episodes"],
        "plan_ms": jepa["plan_ms_median"],
        "train_min": train["seconds_this_run"] / 60,
        "probe_r2": probe["probe_r2"],
        "probe": {k: v for k, v in probe.items() if isinstance(v, int | float)},
        "warnings": probe.get("warnings", []),
        "experiment": results["spec"].get("experiment"),
        "variant": results["spec"].get("variant"),  # absent in results written before variants existed
        "predictor": results["spec"].get("predictor", "deterministic"),
        "per_task": {name: agent["per_task"] for name, agent in results["agents"].items() if "per_task" in agent},
        "planner": planner_label(results["spec"]),
        "folder": str(folder),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and the worst (lowest) of success rates."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "worst": min(values)}


def row_measurements(row: Row, folders: dict[str, dict[int, Path]], window_cfg: DictConfig) -> Row:
    """The row's entry of measurements.json (the shape BENCHMARKS.md documents)."""
    main = [seed_record(folder, seed) for seed, folder in folders[row["recipes"][0]].items()]
    shared = {k: main[0]["success"][k] for k in ("oracle", "random") if k in main[0]["success"]}
    for record in main[1:]:  # the Oracle and random ran with the first seed: the same pairs for every seed
        record["success"].update(shared)
    default = main if row["recipes"] == ["default"] else [
        seed_record(folder, seed) for seed, folder in folders["default"].items()]
    every = [folder for recipe_folders in folders.values() for folder in recipe_folders.values()]
    seconds = sum(read_json(f / SECONDS_FILE)["seconds"] for f in every if (f / SECONDS_FILE).exists())
    first = next(iter(folders[row["recipes"][0]].values()))
    jepa = spread([r["success"]["jepa"] for r in main])
    default_jepa = spread([r["success"]["jepa"] for r in default])
    return {
        "task": row["task"], "obs": row["obs"], "experiment": row["experiment"], "budget": row["budget"],
        "variant": main[0]["variant"], "predictor": main[0]["predictor"],
        "seeds": main,
        "default": {"experiment": "default", "seeds": [{k: r[k] for k in ("seed", "plan_ms", "train_min", "probe_r2",
                                                                          "folder")} | {"success": {"jepa": r["success"]["jepa"]}}
                                                      for r in default]},
        "summary": {"jepa": jepa, "default": default_jepa,
                    "gcbc": spread([r["success"]["gcbc"] for r in main if "gcbc" in r["success"]] or [float("nan")]),
                    **{k: {"mean": v} for k, v in shared.items()},
                    "default_over_tuned": default_jepa["mean"] / jepa["mean"] if jepa["mean"] else None},
        "row_minutes": seconds / 60,
        "collect": read_json(first / "collect" / "summary.json"),
        "train_samples_per_s": read_json(first / "train" / "summary.json")["samples_per_s"],
        "windows_per_s": measure_window_rate(load_episodes(first / "collect"), window_cfg.window,
                                             window_cfg.batch_size, window_cfg.seconds),
    }


def planner_label(spec: dict[str, Any]) -> str:
    """``cem_dense (H=5, 256x6)``: the config name and the budget it resolved to."""
    planner = spec["planner"]
    name = spec.get("planner_name") or planner["optimizer"]["_target_"].rsplit(".", 1)[-1]
    budget = [f"H={planner['horizon']}"]
    if "samples" in planner["optimizer"]:
        budget.append(f"{planner['optimizer']['samples']}x{planner['optimizer']['iterations']}")
    return f"{name} ({', '.join(budget)})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """The one place a table is formatted: a header, its rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.0%}"


def mean_std(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.0%} ± {stats['std']:.0%}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def success_table(rows: list[Row], detailed: bool) -> str:
    """Planning success per row: the recipe's mean ± std over seeds beside the default's and the baselines'.
    ``detailed`` (BENCHMARKS.md) adds the worst seed, every seed's rate, speeds and probes."""
    header = ["task", "obs", "recipe", "JEPA (mean ± std)", "default recipe", "Oracle", "GCBC", "random", "JEPA/Oracle"]
    if detailed:
        header[5:5] = ["default / recipe"]
        header[4:4] = ["worst seed", "per seed"]
        header += ["plan ms", "train min", "probe R² per seed", "row min"]
    lines = []
    for r in rows:
        s = r["summary"]
        oracle = s.get("oracle", {}).get("mean")
        line = [r["task"], r["obs"], r["experiment"], mean_std(s["jepa"]), mean_std(s["default"]), pct(oracle),
                pct(s["gcbc"]["mean"]), pct(s.get("random", {}).get("mean")), ratio(s["jepa"]["mean"], oracle)]
        if detailed:
            seeds = r["seeds"]
            line[5:5] = ["same recipe" if r["experiment"] == "default" else ratio(s["default"]["mean"], s["jepa"]["mean"])]
            line[4:4] = [pct(s["jepa"]["worst"]), " / ".join(pct(x["success"]["jepa"]) for x in seeds)]
            line += [f"{statistics.median(x['plan_ms'] for x in seeds):.0f}",
                     f"{statistics.fmean(x['train_min'] for x in seeds):.1f}",
                     " / ".join(f"{x['probe_r2']:.2f}" for x in seeds), f"{r['row_minutes']:.0f}"]
        lines.append(line)
    return markdown_table(header, lines)


def per_task_table(rows: list[Row]) -> str:
    """Rows whose task has its own evaluation tasks (OGBench's five): each agent's success per task and
    their mean (OGBench's headline), every seed; empty (no section) when no row has them."""
    lines = [[r["task"], r["obs"], str(x["seed"]), agent, " / ".join(f"{name} {pct(t['success_rate'])}" for name, t in
                                                                    p["tasks"].items()), pct(p["mean_success_rate"])]
             for r in rows for x in r["seeds"] for agent, p in x.get("per_task", {}).items()]
    if not lines:
        return ""
    table = markdown_table(["task", "obs", "seed", "agent", "success per evaluation task", "mean over tasks"], lines)
    return f"Per evaluation task (the pairs cycle the task's own evaluation tasks):\n\n{table}\n\n"


def write_docs(measured: dict[str, Any], command: str) -> None:
    rows = measured["rows"]
    seeds = measured["seeds"]
    c = measured["collection_speed"]
    n = c["workers"]
    env_table = markdown_table(["task", "state env steps/s", "pixel frames/s (64x64)"], [
        [r["task"], f"{r['state_steps_per_s']:,.0f}", f"{r['pixel_frames_per_s']:,.0f}"] for r in measured["env_speed"]])
    data_table = markdown_table(
        ["task", "obs", "episodes", "collect frames/s", "coverage", "dataset size", "windows/s (sampler)", "train samples/s"],
        [[r["task"], r["obs"], str(r["collect"]["episodes"]), str(r["collect"]["frames_per_s"]),
          str(r["collect"]["coverage"]), f"{r['collect']['bytes_on_disk'] / 1e6:.1f} MB", f"{r['windows_per_s']:,.0f}",
          f"{r['train_samples_per_s']:,.0f}"] for r in rows])
    probe_table = markdown_table(
        ["task", "obs", "recipe", "seed", "probe R²", "effective rank", "min latent std", "pred. error", "copy-last error",
         "plannability", "warnings"],
        [[r["task"], r["obs"], r["experiment"], str(x["seed"]), f"{x['probe']['probe_r2']:.3f}",
          f"{x['probe']['effective_rank']:.1f}", f"{x['probe']['latent_std_min']:.3f}", f"{x['probe']['pred_error']:.4f}",
          f"{x['probe']['copy_baseline_error']:.4f}", f"{x['probe']['plannability']:.2f}", str(len(x["warnings"]))]
         for r in rows for x in r["seeds"]])
    per_task = per_task_table(rows)
    recipe_table = markdown_table(["task", "obs", "recipe", "planner", "budget"], [
        [r["task"], r["obs"], f"`configs/experiment/{r['experiment']}.yaml`", r["seeds"][0]["planner"],
         ", ".join(f"{k} {v}" for k, v in r["budget"].items())] for r in rows])
    doc = f"""# Benchmarks

Generated by `{command}` on {measured['date']} — do not edit by hand; re-run the command instead.
Machine: {measured['machine']}. The raw numbers are in
[`docs/benchmarks/measurements.json`](docs/benchmarks/measurements.json) (shape below).
Pipeline stages that had already finished in the run folder are reused (`reuse=true`), so a benchmark
can run over several sittings; their figures (success, training time, probes) are those of the
invocation that ran them, and the speeds below are measured anew every time.

## Planning success on held-out start/goal pairs

Every row trains and evaluates with training seeds {', '.join(map(str, seeds))}; each seed also collects its own
dataset (the collection seed is the training seed). The pairs are the same for every seed and agent
(pair seed {measured['eval_seed']}, never a collection seed), {measured['eval_episodes']} per evaluation. JEPA = MPC on the
learned world model with the row's recipe (its tuned `configs/experiment/<task>-<obs>.yaml`, or
`default`), mean ± sample standard deviation over seeds, the worst seed and every seed's rate; default
recipe = `experiment=default` trained on the same data and budget. Oracle = the same planner and budget
on the true simulator, scoring the task's true cost-to-go (the shortest path round the walls), and
random run once per row (they do not depend on the training seed); GCBC = goal-conditioned
behaviour cloning on each seed's data (mean). plan ms = median wall time per control step; row min =
wall minutes of every pipeline of the row, over all sittings.

{success_table(rows, detailed=True)}

{per_task}The recipes (planner with its horizon H and candidates x iterations) and the budgets of the rows:

{recipe_table}

## Simulation and collection speed

{env_table}

Collection of {c['task']} / {c['obs']} ({c['episodes']} episodes, same episodes both times): 1 worker
{c['frames_per_s_1_worker']} frames/s, {n} workers {c[f'frames_per_s_{n}_workers']} frames/s: **{c['speedup']}x**.

{data_table}

## What the latent learned (held-out episodes, every seed)

{probe_table}

Probe R²: linear map from latent to the true state, fit on training episodes. Pred./copy-last error:
open-loop latent prediction error against repeating the last latent. Plannability: how often the
true action sequence has lower energy than random ones. Warnings: the probe's (`scripts/probe.py`).

## measurements.json

`{{"suite", "date", "machine", "seeds", "eval_seed", "eval_episodes", "env_speed", "collection_speed",
"rows": [{{"task", "obs", "experiment", "budget", "variant", "predictor", "seeds": [{{"seed", "success": {{"jepa",
"oracle", "gcbc", "random"}}, "success_95ci", "episodes", "plan_ms", "train_min", "probe_r2", "probe", "warnings",
"experiment", "variant", "predictor", "per_task", "planner", "folder"}}], "default": {{"experiment", "seeds": [{{"seed", "success": {{"jepa"}},
"plan_ms", "train_min", "probe_r2", "folder"}}]}}, "summary": {{"jepa", "default", "gcbc": {{"mean", "std",
"worst"}}, "oracle", "random": {{"mean"}}, "default_over_tuned"}}, "row_minutes", "collect",
"windows_per_s", "train_samples_per_s"}}]}}`. Success rates are fractions; oracle and random are copied into
every seed's entry from the first seed's evaluation.

Targets missed and the experiments tried on them: [docs/EXPERIMENTS.md](docs/EXPERIMENTS.md).
"""
    if SCALE.exists():
        doc += "\n" + scale_section(read_json(SCALE))
    (ROOT / "BENCHMARKS.md").write_text(doc)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if RESULTS_BEGIN in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_BEGIN, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        section = (f"{RESULTS_BEGIN}\nFrom `{command}` on {measured['date']} ({measured['machine']}), "
                   f"mean ± std over training seeds {', '.join(map(str, seeds))}; details in [BENCHMARKS.md](BENCHMARKS.md).\n\n"
                   f"{success_table(rows, detailed=False)}\n{RESULTS_END}")
        readme.write_text(head + section + tail)


def run_scale(suite: DictConfig, run_dir: Path, device: str, reuse: bool) -> dict[str, Any]:
    """``suite=scale``: the dense landmark graph at ``scale.landmarks`` synthetic landmarks (a fresh
    process, for its peak memory), then per row a trained default model (collect + train, reused),
    its rollout's GFLOP/s against the matmul peak, and JEPA's evaluation at each ``scale.num_envs``
    (fresh processes, the same pairs): episodes/s, median plan ms, and whether every episode is identical."""
    s = suite.scale
    measured: dict[str, Any] = {"suite": suite.name, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                "machine": machine(), "eval_seed": suite.eval.seed, "eval_episodes": suite.eval.episodes,
                                "load_average_at_start": os.getloadavg()[1]}  # 5-minute: other jobs on the cores skew speeds
    done = subprocess.run([sys.executable, "-m", "agents.speed", str(s.landmarks)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise UserInputError(f"the landmark measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    graph = json.loads(done.stdout.strip().splitlines()[-1])
    measured.update(landmarks=graph, landmarks_1m_build_s=graph["build_s"], landmarks_1m_peak_gb=graph["peak_gb"],
                    goal_query_s=graph["goal_query_s"])
    print(f"landmark graph: {graph}", flush=True)
    measured["matmul_peak_gflops"] = matmul_peak_gflops()
    by_row: dict[str, Any] = {}
    for row in (resolve_row(r) for r in suite.rows):
        out = run_dir / row["name"]
        budget = [f"budget.{k}={v}" for k, v in row["budget"].items()]
        run_pipeline([f"experiment={row['experiment']}", f"task={row['task']}", f"obs={row['obs']}", *budget,
                      f"seed={suite.seeds[0]}", f"device={device}", f"force={not reuse}", "changed=redo",
                      "stages=[collect,train]"], out, f"{row['name']} (scale)")
        model, model_cfg = load_world_model(out / "train", device="cpu")
        rollout = rollout_gflops(model.eval(), s.rollout.candidates, int(model_cfg.planner.horizon), s.rollout.repeats)
        evaluations = {}
        for n in s.num_envs:
            folder = out / f"evaluate-{n}envs"
            command = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), f"checkpoint={out / 'train'}",
                       "agents=[jepa]", f"episodes={suite.eval.episodes}", f"seed={suite.eval.seed}", f"num_envs={n}",
                       "video.episodes=0", f"device={device}", f"out={folder}"]
            print(f"\n### {row['name']} num_envs={n}: {' '.join(command[1:])}", flush=True)
            if subprocess.run(command, check=False).returncode != 0:
                raise UserInputError(f"evaluation {row['name']} num_envs={n} failed; its output is in {folder}")
            evaluations[n] = read_json(folder / "results.json")
        first = evaluations[s.num_envs[0]]
        by_row[row["name"]] = {
            "episodes_per_s": {str(n): r["agents"]["jepa"]["episodes_per_s"] for n, r in evaluations.items()},
            "plan_ms": {str(n): r["agents"]["jepa"]["plan_ms_median"] for n, r in evaluations.items()},
            "success": {str(n): r["agents"]["jepa"]["success_rate"] for n, r in evaluations.items()},
            "identical": all(r["episodes"]["jepa"] == first["episodes"]["jepa"] for r in evaluations.values()),
            "rollout": rollout, "rollout_fraction_of_peak": rollout["gflops"] / measured["matmul_peak_gflops"],
        }
    headline = next(iter(by_row.values()))  # the first row's figures are the suite's headline keys
    measured["load_average_at_end"] = os.getloadavg()[1]
    measured.update(rows=by_row, episodes_per_s=headline["episodes_per_s"],
                    plan_ms={name: r["plan_ms"][str(s.num_envs[0])] for name, r in by_row.items()},
                    rollout_fraction_of_peak=headline["rollout_fraction_of_peak"])
    return measured


def scale_section(scale: dict[str, Any]) -> str:
    """BENCHMARKS.md's section on ``suite=scale`` (docs/benchmarks/scale.json)."""
    graph = scale["landmarks"]
    counts = list(next(iter(scale["rows"].values()))["episodes_per_s"])
    table = markdown_table(
        ["row", *[f"episodes/s, {n} env{'s' if n != '1' else ''}" for n in counts], f"{counts[-1]} / {counts[0]}",
         *[f"plan ms, {n}" for n in counts], "success", "identical episodes", "rollout GFLOP/s", "of matmul peak"],
        [[name, *[f"{r['episodes_per_s'][n]:.2f}" for n in counts],
          f"**{r['episodes_per_s'][counts[-1]] / r['episodes_per_s'][counts[0]]:.2f}x**",
          *[f"{r['plan_ms'][n]:.1f}" for n in counts], " / ".join(pct(r["success"][n]) for n in counts),
          "yes" if r["identical"] else "**no**", f"{r['rollout']['gflops']:.0f}", f"{r['rollout_fraction_of_peak']:.2f}"]
         for name, r in scale["rows"].items()])
    return f"""## Scale and speed

Generated by `python scripts/benchmark.py suite=scale` on {scale['date']} ({scale['machine']}); raw numbers
in [`docs/benchmarks/scale.json`](docs/benchmarks/scale.json). Load average (5 min) at its start and end:
{scale.get('load_average_at_start', float('nan')):.1f} and {scale.get('load_average_at_end', float('nan')):.1f} on {os.cpu_count()} cores: above the core
count, other jobs shared the cores and every speed below is lower than on an idle machine.

The dense landmark graph (`configs/energy/geodesic_subgoal_dense.yaml`) on {graph['landmarks']:,} synthetic
landmarks (a point mass's episodes mapped into 64 dimensions, `agents/speed.py`), in a fresh process:
built in **{graph['build_s']:.1f} s** with a peak of **{graph['peak_gb']:.2f} GB** resident, a new goal's
distances and paths in **{graph['goal_query_s']:.2f} s** ({graph['edges']:,} directed edges, {graph['torch_threads']} torch thread).

JEPA (default recipe, training seed 0) on the same {scale['eval_episodes']} held-out pairs (seed {scale['eval_seed']})
with N envs planned together (`evaluate.py num_envs=N`, each N a fresh process); plan ms = median wall
time per control step, one planner call's time shared by its envs. Rollout GFLOP/s: the predictor's
matrix products over one CEM iteration's candidates, against a 1024-square matmul on this machine,
{scale['matmul_peak_gflops']:.0f} GFLOP/s (`worldmodel/speed.py`).

{table}
"""


def rewrite_docs() -> None:
    """BENCHMARKS.md and the README written again from the committed ``measurements.json`` (and scale.json)."""
    measured = read_json(MEASUREMENTS)
    write_docs(measured, f"python scripts/benchmark.py suite={measured['suite']}")


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    suite = cfg.suite
    if cfg.docs_only:  # the committed measurements, written out again (e.g. after a change to this file)
        rewrite_docs()
        print(f"wrote {ROOT / 'BENCHMARKS.md'} from {MEASUREMENTS.parent}")
        return
    if "scale" in suite:
        run_dir = prepare_run_dir(cfg.out, cfg)
        scale = run_scale(suite, run_dir, cfg.device, cfg.reuse)
        (run_dir / "scale.json").write_text(json.dumps(scale, indent=2))
        if cfg.write_docs:
            SCALE.parent.mkdir(parents=True, exist_ok=True)
            SCALE.write_text(json.dumps(scale, indent=2))
            if MEASUREMENTS.exists():
                rewrite_docs()
            print(f"wrote {SCALE}" + (" and BENCHMARKS.md" if MEASUREMENTS.exists() else ""))
        print(f"measurements: {run_dir / 'scale.json'}")
        return
    check_screenshot_browser(suite.rows)
    rows = [resolve_row(row) for row in suite.rows]  # every recipe composes before any work
    run_dir = prepare_run_dir(cfg.out, cfg)
    measured: dict[str, Any] = {
        "suite": suite.name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seeds": list(suite.seeds), "eval_seed": suite.eval.seed, "eval_episodes": suite.eval.episodes,
        "env_speed": env_speeds(suite.env_speed),
    }
    cs = suite.collection_speed
    measured["collection_speed"] = measure_collection_speed(cs.task, cs.obs, cs.episodes, cs.workers)
    print(f"collection speed: {measured['collection_speed']}", flush=True)
    measured["rows"] = []
    for row in rows:
        folders = run_row(row, suite, run_dir / row["name"], cfg.device, cfg.reuse)
        measured["rows"].append(row_measurements(row, folders, suite.window_rate))
        (run_dir / "measurements.json").write_text(json.dumps(measured, indent=2))
    if cfg.write_docs:
        MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
        MEASUREMENTS.write_text(json.dumps(measured, indent=2))
        write_docs(measured, f"python scripts/benchmark.py suite={suite.name}")
        print(f"wrote {ROOT / 'BENCHMARKS.md'} and {MEASUREMENTS}")
    print(f"measurements: {run_dir / 'measurements.json'}")


if __name__ == "__main__":
    main()

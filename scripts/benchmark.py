"""Measure everything we publish, in one run, and write BENCHMARKS.md from those measurements.

    python scripts/benchmark.py suite=quick      # laptop-sized
    python scripts/benchmark.py suite=full       # every task and obs mode, three training seeds
    python scripts/benchmark.py suite=scale      # the landmark graph at a million, many envs per plan, FLOP/s
    python scripts/benchmark.py docs_only=true   # rewrite BENCHMARKS.md from docs/benchmarks/*.json
    python scripts/benchmark.py docs_only=true merge_from=RUN/measurements.json  # add a run's rows first

A suite is a list of rows (a task and obs mode). Each row runs its recipe, the tuned experiment file
``configs/experiment/<task>-<obs>.yaml`` where there is one, else the default, once per training
seed, each a full ``scripts/pipeline.py`` (collect -> train -> probe -> evaluate -> report); with a tuned
file it also trains and evaluates ``experiment=default`` on the same data and budget. The Oracle and
random do not depend on the training seed and run in the first seed's evaluation only. Raw env and
collection speeds are measured here; every other number is read back from the pipelines' files and
goes to ``measurements.json`` (the run folder, and ``docs/benchmarks/`` with ``write_docs``), from
which BENCHMARKS.md and the README's Results block are written. ``reuse=true`` keeps finished stages,
so a stopped benchmark continues where it was; a finished stage whose recipe has changed since is redone
(the pipeline's ``changed=redo``). ``only=[wall-pixels,...]`` measures some of a suite's rows; the
committed measurements keep the suite's other rows, so a suite longer than a sitting (or a machine that
does not keep its run folder) is measured a few rows at a time. ``only_seeds=[2]`` runs some of a
row's seeds and measures nothing, so that two processes share a long row's seeds in one folder (e.g.
``only_seeds=[0,1]`` beside ``only_seeds=[2]``); a last pass without it, once both have ended, reuses
every seed's stages and measures the row.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import torch
from benchmark_docs import (  # scripts/, beside this file
    MEASUREMENTS,
    SCALE,
    Row,
    merge_rows,
    read_json,
    rewrite_docs,
    write_docs,
)
from omegaconf import DictConfig, OmegaConf

from agents.branches import BRANCHING_VARIANTS, branch_errors
from envs.collection import measure_collection_speed
from envs.dataset import load_episodes
from envs.errors import UserInputError
from envs.speed import measure_env_speed
from worldmodel.checkpoint import load_world_model
from worldmodel.data import measure_window_rate
from worldmodel.runtime import cli_main, find_browser, prepare_run_dir, to_overrides
from worldmodel.speed import matmul_peak_gflops, rollout_gflops

ROOT = Path(__file__).resolve().parents[1]
STAGE_RECORDS = {"collect": ("summary.json", "seconds_this_run"), "settle": ("summary.json", "seconds"),
                 "train": ("summary.json", "seconds"), "probe": ("probe.json", "seconds"),
                 "evaluate": ("results.json", "seconds")}  # where each stage records its own seconds


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


def check_screenshot_browser(rows: list[Row]) -> None:
    """A row about to run that asks for a report screenshot needs the browser only at its last stage:
    look for it before the hours of work ahead of that, not after them (rows not run need none)."""
    default = OmegaConf.load(ROOT / "configs" / "report.yaml").browser.executable
    for row in rows:
        report = row.get("report", {})
        if report.get("screenshot"):
            find_browser(report.get("browser", {}).get("executable", default))


def resolve_row(row: DictConfig) -> Row:
    """A suite row as the runs need it: task, obs, budget and the recipes to run on it.

    ``{experiment: <task>-<obs>}`` (a tuned file) takes task, obs and budget from that file; ``{task, obs, budget}``
    runs the default recipe only; ``{experiment: latent-variable, task, obs}`` runs a recipe made for
    any task on this one. Each may override the budget (``budget: {episodes: ...}``).
    """
    row = OmegaConf.to_container(row, resolve=True)
    tuned = row.get("experiment")
    if tuned == "default":
        raise UserInputError("a suite row names a tuned experiment or none (the default always runs)")
    place = [f"{key}={row[key]}" for key in ("task", "obs") if key in row]  # a recipe for any task takes them
    overrides = [f"experiment={tuned}", *place] if tuned else ["experiment=default", *place]
    recipe = hydra.compose(config_name="train", overrides=[*overrides, "data=unused"])
    budget = {**OmegaConf.to_container(recipe.budget, resolve=True), **row.get("budget", {})}
    budget.pop("eval_episodes")  # the suite's evaluation protocol, the same for every row (suite.eval)
    budget = {k: v for k, v in budget.items() if v is not None}  # unset (settle_steps: one phase) stays unset
    return {"task": recipe.task.name, "obs": recipe.obs, "name": f"{recipe.task.name}-{recipe.obs}",
            "experiment": tuned or "default", "recipes": [tuned, "default"] if tuned else ["default"],
            "budget": budget, "report": row.get("report", {})}


def select_rows(rows: list[Row], only: list[str] | None) -> list[Row]:
    """The suite's rows named in ``only`` (``<task>-<obs>``), all of them when it is unset: a long suite
    measured a few rows per sitting, each sitting's rows merged into the committed measurements."""
    if only is None:
        return rows
    names = [row["name"] for row in rows]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise UserInputError(f"only={list(only)}: {', '.join(unknown)} not in this suite's rows ({', '.join(names)})")
    return [row for row in rows if row["name"] in only]


def check_seeds(seeds: list[int], only_seeds: list[int] | None) -> list[int]:
    """The suite's seeds to run now: ``only_seeds`` (each one of the suite's), all of them when unset."""
    if only_seeds is None:
        return list(seeds)
    unknown = [seed for seed in only_seeds if seed not in seeds]
    if unknown:
        raise UserInputError(f"only_seeds={list(only_seeds)}: {unknown} not in this suite's seeds {list(seeds)}")
    return list(only_seeds)


def budget_overrides(budget: dict[str, Any]) -> list[str]:
    """A row's budget as the pipeline's ``budget.<key>=<value>`` overrides."""
    return [f"budget.{k}={v}" for k, v in budget.items()]


def run_pipeline(overrides: list[str], out: Path, label: str) -> None:
    """One pipeline run (its stages record their own seconds: :func:`stage_seconds`)."""
    command = [sys.executable, str(ROOT / "scripts" / "pipeline.py"), *overrides, f"out={out}"]
    print(f"\n### {label}: {' '.join(command[1:])}", flush=True)
    if subprocess.run(command, check=False).returncode != 0:
        raise UserInputError(f"pipeline {label} failed; its output is in {out}")


def stage_seconds(folder: Path) -> dict[str, float]:
    """The seconds each stage of a pipeline folder spent, as the stage recorded them: training over all
    its sittings (:func:`worldmodel.train.logged_seconds`), evaluation and probe for the whole script.
    Whoever ran the pipeline (this benchmark, a later sitting, a hand-run ``pipeline.py``), the row's
    time is the same. A stage the folder does not hold (the default beside a tuned recipe reads its
    data from the tuned run; a one-phase recipe has no settle) is not counted."""
    seconds = {}
    for stage, (name, key) in STAGE_RECORDS.items():
        record = folder / stage / name
        if record.exists():
            value = read_json(record).get(key)
            if value is None:
                raise UserInputError(f"{record} has no '{key}' (written before stages timed themselves); "
                                     f"re-run that stage (delete {record.parent}) so the row's time is measured")
            seconds[stage] = float(value)
    return seconds


def run_row(row: Row, suite: DictConfig, row_dir: Path, device: str, reuse: bool,
            run_seeds: list[int]) -> dict[str, dict[int, Path]]:
    """Every recipe x seed pipeline of a row (seeds outside ``run_seeds`` skipped); returns their
    folders by recipe and seed.

    The row's own recipe (tuned, else default) collects, trains and evaluates JEPA and GCBC for every
    seed of ``suite.seeds``, with the Oracle and random in the first seed only; the default beside a
    tuned recipe (seeds ``suite.default_seeds``) reuses that seed's dataset and evaluates JEPA alone.
    The first seed is the suite's whatever ``run_seeds`` holds, so a seed's stages are the same
    whichever process ran them.
    """
    main_recipe = row["recipes"][0]
    folders: dict[str, dict[int, Path]] = {recipe: {} for recipe in row["recipes"]}
    budget = {**row["budget"], "eval_episodes": suite.eval.episodes}
    one_phase = {k: v for k, v in budget.items() if k != "settle_steps"}  # the default trains in one phase
    for recipe in row["recipes"]:
        for i, seed in enumerate(suite.seeds if recipe == main_recipe else suite.default_seeds):
            if seed not in run_seeds:
                continue
            out = row_dir / f"{recipe}-seed{seed}"
            overrides = [f"experiment={recipe}", f"task={row['task']}", f"obs={row['obs']}",
                         *budget_overrides(budget if recipe == main_recipe else one_phase), f"seed={seed}",
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


def seed_record(folder: Path, seed: int) -> dict[str, Any]:
    """One pipeline's figures: success of every agent it ran, JEPA's plan ms, training minutes, probe R²."""
    results = read_json(folder / "evaluate" / "results.json")
    spent = stage_seconds(folder)
    train_seconds = spent["train"] + spent.get("settle", 0.0)
    probe = read_json(folder / "probe" / "probe.json")
    jepa = results["agents"]["jepa"]
    return {
        "seed": seed,
        "success": {name: agent["success_rate"] for name, agent in results["agents"].items()},
        "success_95ci": {name: agent["success_rate_95ci"] for name, agent in results["agents"].items()},
        "episodes": jepa["episodes"],
        "plan_ms": jepa["plan_ms_median"],
        "train_min": train_seconds / 60,
        "stage_min": {stage: value / 60 for stage, value in spent.items()},
        "probe_r2": probe["probe_r2"],
        "probe_r2_per_dim": probe.get("probe_r2_per_dim"),  # absent in probes written before it existed
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
    default = main if row["recipes"] == ["default"] else [  # none where the suite runs no default beside
        seed_record(folder, seed) for seed, folder in folders["default"].items()]
    every = main if default is main else main + default  # one record per pipeline folder of the row
    minutes = sum(sum(record["stage_min"].values()) for record in every)
    first = next(iter(folders[row["recipes"][0]].values()))
    jepa = spread([r["success"]["jepa"] for r in main])
    default_jepa = spread([r["success"]["jepa"] for r in default]) if default else None
    return {
        "task": row["task"], "obs": row["obs"], "experiment": row["experiment"], "budget": row["budget"],
        "variant": main[0]["variant"], "predictor": main[0]["predictor"],
        "commit": commit(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seeds": main,
        "default": {"experiment": "default", "seeds": [{k: r[k] for k in ("seed", "plan_ms", "train_min", "probe_r2",
                                                                          "folder")} | {"success": {"jepa": r["success"]["jepa"]}}
                                                      for r in default]},
        "summary": {"jepa": jepa, "default": default_jepa,
                    "gcbc": spread([r["success"]["gcbc"] for r in main if "gcbc" in r["success"]] or [float("nan")]),
                    **{k: {"mean": v} for k, v in shared.items()},
                    "default_over_tuned": default_jepa["mean"] / jepa["mean"] if default_jepa and jepa["mean"] else None},
        "row_minutes": minutes,
        "collect": read_json(first / "collect" / "summary.json"),
        "train_samples_per_s": read_json(first / "train" / "summary.json")["samples_per_s"],
        "windows_per_s": measure_window_rate(load_episodes(first / "collect"), window_cfg.window,
                                             window_cfg.batch_size, window_cfg.seconds),
    }


def add_branch_errors(row: Row, cfg: DictConfig, seed: int) -> None:
    """Each seed's model against the two real futures where the door is drawn (:mod:`agents.branches`),
    in the seed's record as ``branches``."""
    for record in row["seeds"]:
        model, _ = load_world_model(Path(record["folder"]) / "train", device="cpu")
        record["branches"] = branch_errors(model.eval(), row["task"], row["obs"], cfg.episodes, seed, cfg.approach,
                                           cfg.horizon, cfg.samples)
        print(f"{row['task']} {row['experiment']} seed {record['seed']} branches: {record['branches']}", flush=True)


def commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files differ from it ("unknown" outside git).
    What the benchmark itself writes (docs/, e.g. a row's report screenshot, BENCHMARKS.md and the
    README) does not count: it changes no result."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs", ":!BENCHMARKS.md", ":!README.md")
    return (head + ("+dirty" if changed else "")) if head else "unknown"


def planner_label(spec: dict[str, Any]) -> str:
    """``cem_dense (H=5, 256x6)``: the config name and the budget it resolved to."""
    planner = spec["planner"]
    name = spec.get("planner_name") or planner["optimizer"]["_target_"].rsplit(".", 1)[-1]
    budget = [f"H={planner['horizon']}"]
    if "samples" in planner["optimizer"]:
        budget.append(f"{planner['optimizer']['samples']}x{planner['optimizer']['iterations']}")
    return f"{name} ({', '.join(budget)})"


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
        run_pipeline([f"experiment={row['experiment']}", f"task={row['task']}", f"obs={row['obs']}",
                      *budget_overrides(row["budget"]),
                      f"seed={suite.seeds[0]}", f"device={device}", f"force={not reuse}", "changed=redo",
                      "stages=[collect,settle,train]"], out, f"{row['name']} (scale)")
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


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    suite = cfg.suite
    if cfg.docs_only:  # the committed measurements, written out again (e.g. after a change to this file)
        if cfg.merge_from:  # a run folder's measurements.json (e.g. a benchmark run in another checkout)
            run = read_json(Path(cfg.merge_from))
            run["rows"] = [{"commit": cfg.merge_commit, **r} if cfg.merge_commit else r for r in run["rows"]]
            merged = merge_rows(read_json(MEASUREMENTS) if MEASUREMENTS.exists() else None, run)
            MEASUREMENTS.write_text(json.dumps(merged, indent=2))
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
    rows = [resolve_row(row) for row in suite.rows]  # every recipe composes before any work
    chosen = select_rows(rows, cfg.only)
    check_screenshot_browser(chosen)
    every_seed = sorted({*suite.seeds, *suite.get("default_seeds", [])})
    run_seeds = check_seeds(every_seed, cfg.only_seeds)
    partial = sorted(run_seeds) != every_seed  # some seeds only: their stages run, no row is measured
    # a partial run writes nothing of its own, so it takes no lock on the folder: two such processes
    # share it, and each seed's pipeline still holds its own folder's lock
    run_dir = prepare_run_dir(cfg.out, None if partial else cfg)
    measured: dict[str, Any] = {
        "suite": suite.name, "suite_rows": [[r["task"], r["obs"], r["experiment"]] for r in rows],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "seeds": list(suite.seeds), "eval_seed": suite.eval.seed, "eval_episodes": suite.eval.episodes,
    }
    if suite.get("env_speed") and not partial:  # a suite that only adds rows (suite=chance) measures none
        measured["speed_load_average"] = os.getloadavg()[0]  # 1-minute: another job on the cores slows every speed
        measured["env_speed"] = env_speeds(suite.env_speed)
        cs = suite.collection_speed
        measured["collection_speed"] = measure_collection_speed(cs.task, cs.obs, cs.episodes, cs.workers)
        print(f"collection speed: {measured['collection_speed']}", flush=True)
    measured["rows"] = []
    for row in chosen:
        folders = run_row(row, suite, run_dir / row["name"], cfg.device, cfg.reuse, run_seeds)
        if partial:
            print(f"{row['name']}: seeds {run_seeds} only, nothing measured (a pass without only_seeds= "
                  "reuses them and measures the row)", flush=True)
            continue
        measured["rows"].append(row_measurements(row, folders, suite.window_rate))
        if suite.get("branches") and measured["rows"][-1]["variant"] in BRANCHING_VARIANTS:
            add_branch_errors(measured["rows"][-1], suite.branches, suite.eval.seed)
        (run_dir / "measurements.json").write_text(json.dumps(measured, indent=2))
    if cfg.write_docs and not partial:
        MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
        merged = merge_rows(read_json(MEASUREMENTS) if MEASUREMENTS.exists() else None, measured)
        MEASUREMENTS.write_text(json.dumps(merged, indent=2))
        write_docs(merged, f"python scripts/benchmark.py suite={merged['suite']}")
        print(f"wrote {ROOT / 'BENCHMARKS.md'} and {MEASUREMENTS}")
    print(f"measurements: {run_dir / 'measurements.json'}")


if __name__ == "__main__":
    main()

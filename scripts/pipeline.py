"""The main job: collect -> train -> evaluate on a small default, each stage its own script.

Each stage runs as ``python scripts/<stage>.py`` in a child process with the overrides printed, so
any stage can be re-run alone from the previous stage's output folder, exactly as shown. A stage
whose output already exists is skipped, so re-running the pipeline resumes it; ``force=true`` deletes
the chosen stages' folders and redoes them.

    python scripts/pipeline.py                                  # state reacher, the default recipe, ~2.5 minutes on 2 cores
    python scripts/pipeline.py experiment=wall-pixels out=runs/wall    # a recipe (configs/experiment/)
    python scripts/pipeline.py task=wall obs=state out=runs/wall        # the default recipe on a task
    python scripts/pipeline.py stages=[evaluate,report] out=runs/wall evaluate.episodes=50
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from envs.errors import UserInputError
from worldmodel.runtime import cli_main, experiment_name, prepare_run_dir, to_overrides

SCRIPTS = Path(__file__).resolve().parent
STAGES = ("collect", "train", "probe", "evaluate", "report")
# Command-line overrides under these keys change the recipe, which every stage composes the same way.
RECIPE_KEYS = ("model", "planner", "energy", "budget")


def recipe_overrides(cfg: DictConfig, command_line: list[str], experiment: str) -> list[str]:
    """The recipe as overrides for a stage: experiment, task and obs, then the command line's own
    changes to it (``model.*``, ``planner=``, ``energy.*``, ``budget.*``) in the order given."""
    chosen = [arg for arg in command_line if re.split(r"[./=]", arg.lstrip("+~"), maxsplit=1)[0] in RECIPE_KEYS]
    return [f"experiment={experiment}", f"task={cfg.task.name}", f"obs={cfg.obs}", *chosen]


def stage_plan(cfg: DictConfig, run_dir: Path, recipe: list[str]) -> dict[str, tuple[list[str], Path | None]]:
    """For every stage: its command-line overrides and the file that proves it finished.

    Each stage reads the previous stage's folder (or ``data=``), so the printed command re-runs it
    alone; collect and train run with ``resume=true`` so that re-running a killed pipeline continues
    where it stopped. ``recipe`` (:func:`recipe_overrides`) goes to every stage that composes one.
    """
    folder = {stage: run_dir / stage for stage in STAGES[:-1]}
    data = cfg.data or folder["collect"]
    shared = [f"seed={cfg.seed}", f"device={cfg.device}"]
    plan = {
        "collect": ([*recipe, f"seed={cfg.seed}", "resume=true"], "summary.json"),
        "train": ([*recipe, f"data={data}", "resume=true", *shared], "summary.json"),
        "probe": ([f"checkpoint={folder['train']}", f"data={data}", *shared], "probe.json"),
        "evaluate": ([f"checkpoint={folder['train']}", *recipe, f"seed={cfg.eval_seed}", f"device={cfg.device}"],
                     "results.json"),
    }
    if cfg.data:
        del plan["collect"]
    stages = {}
    for stage, (overrides, marker) in plan.items():
        section = to_overrides(OmegaConf.to_container(cfg[stage], resolve=True))
        stages[stage] = ([*overrides, f"out={folder[stage]}", *section], folder[stage] / marker)
    report = to_overrides(OmegaConf.to_container(cfg.report, resolve=True))
    stages["report"] = ([f"run={run_dir}", *report], None)  # cheap: always rebuilt from the others
    return stages


def run_stage(stage: str, overrides: list[str]) -> None:
    command = [sys.executable, str(SCRIPTS / f"{stage}.py"), *overrides]
    print(f"\n== {stage}: {shlex.join(command[1:])}", flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise UserInputError(f"stage '{stage}' failed (exit {result.returncode}); fix it and re-run the line above")


@hydra.main(config_path="../configs", config_name="pipeline", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown:
        raise UserInputError(f"unknown stage(s) {unknown}; known: {list(STAGES)}")
    run_dir = prepare_run_dir(cfg.out, cfg)
    recipe = recipe_overrides(cfg, list(HydraConfig.get().overrides.task), experiment_name())
    for stage, (overrides, done_marker) in stage_plan(cfg, run_dir, recipe).items():
        if stage not in cfg.stages:
            continue
        if cfg.force and stage != "report":
            shutil.rmtree(run_dir / stage, ignore_errors=True)
        elif done_marker is not None and done_marker.exists():
            print(f"\n== {stage}: already done ({done_marker}); force=true redoes it")
            continue
        run_stage(stage, overrides)
    print(f"\nResults table: {run_dir / 'evaluate' / 'results.json'}")
    print(f"Videos:        {run_dir / 'evaluate' / 'videos'}")
    print(f"Training:      {run_dir / 'train'} (metrics.csv, loss_curve.png, tensorboard/)")
    print(f"Probe:         {run_dir / 'probe' / 'probe.json'}")
    print(f"Report:        {run_dir / 'report.html'} (open it in a browser)")


if __name__ == "__main__":
    main()

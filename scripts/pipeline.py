"""The main job: collect -> train -> evaluate on a small default, each stage its own script.

Each stage runs as ``python scripts/<stage>.py`` in a child process with the overrides printed, so
any stage can be re-run alone from the previous stage's output folder, exactly as shown. A stage
whose output already exists is skipped, so re-running the pipeline resumes it; ``force=true`` deletes
the chosen stages' folders and redoes them. A finished stage is reused only if its recorded config
(``<stage>/config.yaml``) is the one this run would compose: a changed recipe or budget is refused in
one line, or redone with ``changed=redo``; every finished stage after one that ran is redone, since
its input was replaced.

    python scripts/pipeline.py                                  # state reacher, the default recipe, ~2.5 minutes on 2 cores
    python scripts/pipeline.py experiment=latent-variable task=wall-branching out=runs/branching  # a recipe (configs/experiment/)
    python scripts/pipeline.py task=wall obs=state out=runs/wall        # the default recipe on a task
    python scripts/pipeline.py stages=[evaluate,report] out=runs/wall evaluate.episodes=50

A recipe with ``budget.settle_steps`` set trains in two phases: ``settle`` trains the same model with
the deterministic predictor for that many steps, then ``train`` adopts its encoder, frozen
(``train.py encoder_from=``), and fits the recipe's own predictor on latents that no longer move.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from envs.errors import UserInputError
from worldmodel.runtime import cli_main, experiment_name, prepare_run_dir, to_overrides

SCRIPTS = Path(__file__).resolve().parent
STAGES = ("collect", "settle", "train", "probe", "evaluate", "report")
SCRIPT = {"settle": "train"}  # a stage run by another stage's script (the rest: scripts/<stage>.py)
# Command-line overrides under these keys change the recipe, which every stage composes the same way.
RECIPE_KEYS = ("model", "planner", "energy", "budget")
# Keys that say where or how a stage runs, not what it computes: a change to them does not make it stale.
RUN_KEYS = ("out", "resume", "force", "device", "num_envs")
# what a stage composes with the recipe but never reads: a change there leaves the stage's result as it is
UNREAD = {"collect": ("model", "planner", "energy", "uncertainty"), "train": ("planner", "energy", "uncertainty"),
          "probe": ("planner", "energy", "uncertainty")}
# the budget: each stage records the part it reads under its own key (collect's episodes=, train's steps=)
BUDGET = "budget"
DETERMINISTIC = "model/predictor=residual"  # the settle stage's predictor (configs/model/predictor/)


def recipe_overrides(cfg: DictConfig, command_line: list[str], experiment: str) -> list[str]:
    """The recipe as overrides for a stage: experiment, task and obs, then the command line's own
    changes to it (``model.*``, ``planner=``, ``energy.*``, ``budget.*``) in the order given."""
    chosen = [arg for arg in command_line if re.split(r"[./=]", arg.lstrip("+~"), maxsplit=1)[0] in RECIPE_KEYS]
    return [f"experiment={experiment}", f"task={cfg.task.name}", f"obs={cfg.obs}", *chosen]


def settle_recipe(recipe: list[str]) -> list[str]:
    """``recipe`` with the deterministic predictor: the command line's changes to the recipe's own
    predictor (``model.predictor.*``, ``model/predictor=``) are the train stage's alone."""
    own = [arg for arg in recipe if not re.match(r"[+~]*model[./]predictor\b", arg)]
    return [*own, DETERMINISTIC]


def stage_plan(cfg: DictConfig, run_dir: Path, recipe: list[str]) -> dict[str, tuple[list[str], Path | None]]:
    """For every stage: its command-line overrides and the file that proves it finished.

    Each stage reads the previous stage's folder (or ``data=``), so the printed command re-runs it
    alone; collect and train run with ``resume=true`` so that re-running a killed pipeline continues
    where it stopped. ``recipe`` (:func:`recipe_overrides`) goes to every stage that composes one.
    The settle stage is planned only for a two-phase recipe (``budget.settle_steps`` set).
    """
    folder = {stage: run_dir / stage for stage in STAGES[:-1]}
    data = cfg.data or folder["collect"]
    shared = [f"seed={cfg.seed}", f"device={cfg.device}"]
    settles = bool(cfg.budget.get("settle_steps"))
    adopted = [f"encoder_from={folder['settle']}"] if settles else []
    plan = {
        "collect": ([*recipe, f"seed={cfg.seed}", "resume=true"], "summary.json"),
        "settle": ([*settle_recipe(recipe), f"data={data}", "resume=true", *shared], "summary.json"),
        "train": ([*recipe, f"data={data}", "resume=true", *shared, *adopted], "summary.json"),
        "probe": ([f"checkpoint={folder['train']}", f"data={data}", *shared], "probe.json"),
        "evaluate": ([f"checkpoint={folder['train']}", *recipe, f"seed={cfg.eval_seed}", f"device={cfg.device}"],
                     "results.json"),
    }
    if cfg.data:
        del plan["collect"]
    if not settles:
        del plan["settle"]
    stages = {}
    for stage, (overrides, marker) in plan.items():
        section = to_overrides(OmegaConf.to_container(cfg[stage], resolve=True))
        stages[stage] = ([*overrides, f"out={folder[stage]}", *section], folder[stage] / marker)
    report = to_overrides(OmegaConf.to_container(cfg.report, resolve=True))
    stages["report"] = ([f"run={run_dir}", *report], None)  # cheap: always rebuilt from the others
    return stages


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_keys(stage: str, overrides: list[str], folder: Path) -> list[str]:
    """The config keys (dotted) on which ``folder``'s finished run differs from the one ``overrides``
    would compose now; ``[]`` if they agree or the folder has no recorded ``config.yaml``."""
    recorded = folder / "config.yaml"
    if not recorded.exists():
        return []
    now = _flatten(OmegaConf.to_container(hydra.compose(config_name=SCRIPT.get(stage, stage), overrides=overrides),
                                          resolve=True))
    before = _flatten(yaml.safe_load(recorded.read_text()) or {})
    def filled_at_run_time(key: str) -> bool:  # a node the config leaves empty and the script fills (collect's policy)
        parts = key.split(".")
        prefixes = [".".join(parts[:i]) for i in range(1, len(parts))]
        return key not in now and any(now.get(p) is None and p not in before for p in prefixes)

    keys = sorted(set(now) | set(before))
    ignored = (*RUN_KEYS, BUDGET, *UNREAD.get(SCRIPT.get(stage, stage), ()))
    return [k for k in keys if k.split(".")[0] not in ignored and now.get(k) != before.get(k)
            and not filled_at_run_time(k)]


def stale_stages(cfg: DictConfig, plan: dict[str, tuple[list[str], Path | None]]) -> dict[str, str]:
    """Finished stages that must be redone, with why: a changed config (refused unless
    ``changed=redo``), or a stage before it that will run again (its input is replaced)."""
    stale: dict[str, str] = {}
    upstream_runs = bool(cfg.force)
    for stage, (overrides, done_marker) in plan.items():
        if done_marker is None:
            continue
        folder = done_marker.parent
        if not done_marker.exists():
            upstream_runs = True
            continue
        if upstream_runs:
            stale[stage] = "an earlier stage runs again"
            continue
        changed = changed_keys(stage, overrides, folder)
        if changed and cfg.changed != "redo":
            raise UserInputError(f"stage '{stage}' in {folder} finished under another config "
                                 f"({', '.join(changed[:5])}); changed=redo or force=true redoes it, "
                                 "another out= keeps both")
        if changed:
            stale[stage] = f"its config changed: {', '.join(changed[:5])}"
            upstream_runs = True
    return stale


def run_stage(stage: str, overrides: list[str]) -> None:
    command = [sys.executable, str(SCRIPTS / f"{SCRIPT.get(stage, stage)}.py"), *overrides]
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
    recipe = recipe_overrides(cfg, list(HydraConfig.get().overrides.task), experiment_name())
    plan = {stage: step for stage, step in stage_plan(cfg, Path(cfg.out), recipe).items() if stage in cfg.stages}
    stale = stale_stages(cfg, plan)  # refusals come before the run folder is touched
    run_dir = prepare_run_dir(cfg.out, cfg)
    for stage, (overrides, done_marker) in plan.items():
        folder = run_dir / stage
        if cfg.force and stage != "report":
            shutil.rmtree(folder, ignore_errors=True)
        elif stage in stale:
            print(f"\n== {stage}: redone, {stale[stage]}")
            shutil.rmtree(folder)
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

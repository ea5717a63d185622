"""The task registry: names, Gymnasium ids, entry points and episode lengths of every task.

Two kinds of task live here. The built-in ones (``TASKS`` below) have their own code in ``envs/``;
their episode lengths are mirrored in ``configs/task/<name>.yaml`` (a test keeps the two equal), and
tests/test_envs.py checks that a scripted controller solves sampled mazes and wall episodes well
within them. Every other ``configs/task/<name>.yaml`` has an ``env:`` section and is a third-party
env behind the adapter (``envs/adapter.py``): the registry reads those files, so adding such a task
touches that one file. Entry points are import strings so that ``import envs`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from envs.errors import UserInputError
from envs.task_config import AdapterConfig

TASK_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "task"
ADAPTER_ENTRY_POINT = "envs.adapter:GoalEnvTask"


@dataclass(frozen=True)
class TaskEntry:
    gym_id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    source_env: str | None = None  # the Gymnasium id whose Minari datasets (D4RL) import as this task
    requires: str | None = None  # the optional package the task needs (pip install -e ".[<it>]")
    reversible: bool = True  # what the agent does it can undo: the landmark graph takes transitions both ways

    @property
    def adapted(self) -> bool:
        """Whether it is a third-party env behind the adapter rather than a built-in task."""
        return self.entry_point == ADAPTER_ENTRY_POINT

    @property
    def action_repeat(self) -> int:
        """Simulator steps per control step (1 for a task without the knob), read without building the env:
        how a dataset of the source env is resampled to this task's steps (``envs/d4rl.py``)."""
        if self.adapted:
            return AdapterConfig.parse(self.kwargs["task"], self.kwargs["config"]).action_repeat
        return int(self.kwargs.get("action_repeat", 1))


BUILT_IN: dict[str, TaskEntry] = {
    # Reacher-v5's own length: 50 steps of 0.02 s.
    "reacher": TaskEntry("JepaPlanner/Reacher-v0", "envs.reacher:ReacherTask", 50),
    # 5 simulator steps per action: 100 steps = 5 s of PointMaze_UMaze-v3 time (its default is 3 s).
    "pointmaze-umaze": TaskEntry(
        "JepaPlanner/PointMazeUMaze-v0", "envs.pointmaze:PointMazeTask", 100, {"maze": "umaze", "action_repeat": 5},
        source_env="PointMaze_UMaze-v3",
    ),
    # 200 steps = 10 s of PointMaze_Medium-v3 time (its default is 6 s).
    "pointmaze-medium": TaskEntry(
        "JepaPlanner/PointMazeMedium-v0", "envs.pointmaze:PointMazeTask", 200, {"maze": "medium", "action_repeat": 5},
        source_env="PointMaze_Medium-v3",
    ),
    # 100 steps of 0.05 s (5 simulator steps per action). make_wall builds WallTask, or with variant= one of
    # the stochastic variants (envs/wall_chance.py), whose wall and episode length are the wall's.
    "wall": TaskEntry("JepaPlanner/Wall-v0", "envs.wall_chance:make_wall", 100, {"action_repeat": 5}),
    "wall-branching": TaskEntry(
        "JepaPlanner/WallBranching-v0", "envs.wall_chance:make_wall", 100, {"action_repeat": 5, "variant": "branching"},
    ),
    "wall-trap": TaskEntry(
        "JepaPlanner/WallTrap-v0", "envs.wall_chance:make_wall", 100, {"action_repeat": 5, "variant": "trap"},
        reversible=False,  # a caught ball stays caught
    ),
    "wall-noisy": TaskEntry(
        "JepaPlanner/WallNoisy-v0", "envs.wall_chance:make_wall", 100, {"action_repeat": 5, "variant": "noisy"},
    ),
    # 300 steps of 0.1 s (20 simulator steps per action), gym-pusht's episode length and control rate.
    "pusht": TaskEntry("JepaPlanner/PushT-v0", "envs.pusht:PushTTask", 300, {"action_repeat": 20}),
}
BROKEN: dict[str, str] = {}  # task config files that do not parse: name -> the one-line error, raised by make()


def _adapted_tasks() -> dict[str, TaskEntry]:
    """Every ``configs/task/*.yaml`` with an ``env:`` section; a file that does not parse goes to BROKEN,
    so that ``import envs`` never fails and ``make`` names the problem."""
    entries = {}
    for path in sorted(TASK_CONFIGS.glob("*.yaml")):
        name = path.stem
        try:
            cfg = yaml.safe_load(path.read_text())
            if not isinstance(cfg, dict) or "env" not in cfg or name in BUILT_IN:
                continue
            if cfg.get("name") != name or not isinstance(cfg.get("max_episode_steps"), int):
                raise UserInputError(f"configs/task/{name}.yaml needs name: {name} and max_episode_steps: N")
            config = AdapterConfig.parse(name, cfg["env"])
        except (yaml.YAMLError, UserInputError) as err:
            BROKEN[name] = str(err).splitlines()[0]
            continue
        entries[name] = TaskEntry(
            f"JepaPlanner/{name}-v0", ADAPTER_ENTRY_POINT, cfg["max_episode_steps"], {"task": name, "config": cfg["env"]},
            source_env=config.env_id, requires=config.module,
        )
    return entries


TASKS: dict[str, TaskEntry] = {**BUILT_IN, **_adapted_tasks()}


def task_is_reversible(task: str | None) -> bool:
    """Whether ``task``'s transitions can be undone (:attr:`TaskEntry.reversible`); True for a name
    that is not a registered task (data of an env we do not know: the graph's old assumption)."""
    return TASKS[task].reversible if task in TASKS else True


def task_names() -> list[str]:
    return sorted(TASKS)


def task_for_source_env(env_id: str | None) -> str | None:
    """The task whose datasets an env id's Minari datasets are (D4RL import), or None."""
    return next((name for name, entry in sorted(TASKS.items()) if env_id and entry.source_env == env_id), None)


def source_envs() -> list[str]:
    return sorted({entry.source_env for entry in TASKS.values() if entry.source_env})


def register_tasks() -> None:
    """Register every task with Gymnasium (idempotent), so ``gymnasium.make(<gym_id>, obs=...)`` works."""
    for entry in TASKS.values():
        if entry.gym_id not in gym.registry:
            gym.register(
                entry.gym_id,
                entry_point=entry.entry_point,
                max_episode_steps=entry.max_episode_steps,
                kwargs=entry.kwargs,
            )


def make(task: str, obs: str = "pixels", image_size: int = 64, collection: bool = False, **kwargs: Any) -> gym.Env:
    """Make a registered task (wrapped in Gymnasium's TimeLimit); ``kwargs`` go to the task's constructor
    or to ``gymnasium.make`` (e.g. ``max_episode_steps``, ``render_mode``). ``collection``: the env as
    data collection builds it (an adapted task's ``collect_kwargs``, e.g. OGBench's data-collection mode)."""
    if task in BROKEN:
        raise UserInputError(BROKEN[task])
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}'; choose one of: {', '.join(task_names())}")
    register_tasks()
    if TASKS[task].adapted:
        kwargs["collection"] = collection
    return gym.make(TASKS[task].gym_id, obs=obs, image_size=image_size, **kwargs)

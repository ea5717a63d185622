"""The task registry: one table of names, Gymnasium ids, entry points and episode lengths.

Entry points are import strings so that ``import envs`` stays light (gymnasium-robotics is only
imported when a maze is made). Episode lengths are the ones planners are judged with; they are
mirrored in ``configs/task/<name>.yaml`` (a test keeps the two equal); tests/test_envs.py checks that
a scripted controller solves sampled mazes and wall episodes well within them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from envs.errors import UserInputError


@dataclass(frozen=True)
class TaskEntry:
    gym_id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)


TASKS: dict[str, TaskEntry] = {
    # Reacher-v5's own length: 50 steps of 0.02 s.
    "reacher": TaskEntry("JepaPlanner/Reacher-v0", "envs.reacher:ReacherTask", 50),
    # 5 simulator steps per action: 100 steps = 5 s of PointMaze_UMaze-v3 time (its default is 3 s).
    "pointmaze-umaze": TaskEntry(
        "JepaPlanner/PointMazeUMaze-v0", "envs.pointmaze:PointMazeTask", 100, {"maze": "umaze"}
    ),
    # 200 steps = 10 s of PointMaze_Medium-v3 time (its default is 6 s).
    "pointmaze-medium": TaskEntry(
        "JepaPlanner/PointMazeMedium-v0", "envs.pointmaze:PointMazeTask", 200, {"maze": "medium"}
    ),
    # 100 steps of 0.05 s (5 simulator steps per action).
    "wall": TaskEntry("JepaPlanner/Wall-v0", "envs.wall:WallTask", 100),
}


def task_names() -> list[str]:
    return sorted(TASKS)


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


def make(task: str, obs: str = "pixels", image_size: int = 64, **kwargs: Any) -> gym.Env:
    """Make a registered task (wrapped in Gymnasium's TimeLimit); ``kwargs`` go to the task's constructor
    or to ``gymnasium.make`` (e.g. ``max_episode_steps``, ``render_mode``)."""
    if task not in TASKS:
        raise UserInputError(f"unknown task '{task}'; choose one of: {', '.join(task_names())}")
    register_tasks()
    return gym.make(TASKS[task].gym_id, obs=obs, image_size=image_size, **kwargs)

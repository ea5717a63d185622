"""Goal-conditioned MuJoCo tasks: ``envs.make("reacher", obs="pixels")``; see docs/ARCHITECTURE.md."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless by default; must happen before mujoco is imported

from envs.registry import TASKS, make, register_tasks, task_names  # noqa: E402

register_tasks()

__all__ = ["TASKS", "make", "register_tasks", "task_names"]

"""Goal-conditioned MuJoCo tasks: ``envs.make("reacher", obs="pixels")``; see docs/ARCHITECTURE.md."""

import logging
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless by default; must happen before mujoco is imported
# PyOpenGL announces a missing optional accelerator at INFO, which Hydra's log config would print.
logging.getLogger("OpenGL").setLevel(logging.WARNING)

from envs.registry import TASKS, make, register_tasks, task_names  # noqa: E402

register_tasks()

__all__ = ["TASKS", "make", "register_tasks", "task_names"]

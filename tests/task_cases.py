"""Parametrizations over every registered task, so that adding a task (one configs/task file) adds its cases.

A task that needs an optional package (``TaskEntry.requires``: OGBench) is a third-party scene whose
frames we do not draw: OGBench's arm renders at 0.1-0.3 s a frame on a CPU rasteriser, so its pixel
cases are marked ``slow`` (the adapter's pixel path is the same for every env, and runs fast on
pointmaze-large and the toy env); without the package they are skipped (tests/conftest.py).
"""

from __future__ import annotations

import pytest

import envs
from envs.registry import TASKS

TASK_NAMES = envs.task_names()


def _pixel_marks(task: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if TASKS[task].requires else []


PIXEL_TASKS = [pytest.param(task, marks=_pixel_marks(task), id=task) for task in TASK_NAMES]  # tests that render
TASKS_AND_OBS = [pytest.param(task, obs, marks=_pixel_marks(task) if obs == "pixels" else [], id=f"{obs}-{task}")
                 for obs in ("state", "pixels") for task in TASK_NAMES]

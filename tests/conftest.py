"""Test-wide settings: headless rendering, small thread pools, repo root and scripts/ importable."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))  # a script's sibling modules (benchmark.py imports benchmark_docs)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _task_requirements(request: pytest.FixtureRequest) -> None:
    """A test parametrized over a task skips when the task's optional package (``ogbench``) is missing."""
    from envs.registry import TASKS

    callspec = getattr(request.node, "callspec", None)
    task = callspec.params.get("task") if callspec is not None else None
    if isinstance(task, str) and task in TASKS and TASKS[task].requires:
        pytest.importorskip(TASKS[task].requires)

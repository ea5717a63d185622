"""What callers may ask of a task beyond the Gymnasium API (``env.unwrapped``), as typed Protocols.

Both kinds of task satisfy them: the built-in ``GoalTask`` subclasses and the adapter that makes a
third-party env a task (``envs/adapter.py``). Callers check them with ``isinstance`` rather than
probing for attributes, so that a task lacking one is refused in one line where it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.navigation import CostFn


@runtime_checkable
class Simulator(Protocol):
    """A task whose simulator state can be saved, restored and rolled forward: the oracle's needs."""

    @property
    def simulator_unavailable(self) -> str | None:
        """Why not, in one line (an env that exposes no MuJoCo state); None when all of this works."""

    def get_sim_state(self) -> np.ndarray: ...

    def set_sim_state(self, state: np.ndarray) -> None: ...

    def simulate_batch(self, start_state: np.ndarray, actions: np.ndarray, scored: bool = False) -> np.ndarray:
        """``info["achieved_goal"]`` after every step of ``actions (N, H, A)`` from one saved state;
        ``scored=True``: each row followed by whatever else :meth:`cost_to_go` reads (Push-T: the pusher)."""

    def cost_to_go(self, goal: np.ndarray) -> CostFn:
        """The true cost-to-go to ``goal`` of achieved goals, or of ``simulate_batch(..., scored=True)`` rows."""


@runtime_checkable
class ChanceSimulator(Protocol):
    """A simulator with chance of its own (the stochastic wall variants): the same start and actions
    have several futures, so the oracle scores each candidate on several simulated ones."""

    def simulate_futures(self, start_state: np.ndarray, actions: np.ndarray, futures: int,
                         scored: bool = False) -> np.ndarray:
        """``simulate_batch`` rows of each of ``actions (N, H, A)`` under ``futures`` draws of chance,
        ``(N, futures, H, g)``; draw ``k`` is the same for every candidate (common random numbers)."""


@runtime_checkable
class EvaluationTasks(Protocol):
    """A task that ships its own evaluation tasks (OGBench: five per env), reported one by one."""

    def evaluation_tasks(self) -> list[str]:
        """Their names, in order; empty when the env has none."""

    def sample_evaluation_task(self, task: int, rng: np.random.Generator) -> dict[str, Any]:
        """An episode spec of evaluation task ``task`` (an index into :meth:`evaluation_tasks`)."""

    def evaluation_task_of(self, spec: Mapping[str, Any]) -> str | None:
        """The name of the evaluation task ``spec`` belongs to, or None."""


@runtime_checkable
class TrajectoryPairs(Protocol):
    """A task whose episode spec can hold a start and a goal taken from a trajectory (evaluation
    protocol (a), ``protocol=trajectory``: Push-T); a task without it is refused there in one line."""

    def spec_from_states(self, start_state: np.ndarray, goal_state: np.ndarray) -> dict[str, Any]:
        """The episode spec that starts at ``start_state`` and whose goal is ``goal_state`` (two
        ``info["state"]`` of one trajectory); the task says what it drops (velocities: specs start at rest)."""


@runtime_checkable
class GoalErrors(Protocol):
    """A task whose goal is more than one distance (Push-T's pose: position and angle); evaluation
    videos plot these errors per step instead of the single distance."""

    def goal_errors(self, achieved: np.ndarray, desired: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
        """Per step errors of ``achieved (T, g)`` goals to ``desired (g,)``: ``{label: (errors (T,), tolerance)}``."""

    def goal_outline(self, size: int) -> np.ndarray:
        """The current goal's outline in a ``size`` pixel frame of the observation camera: ``(K, 2)``
        polygon corners as (column, row), drawn onto video frames only, never into observations."""

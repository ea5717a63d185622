"""The MuJoCo state of a wrapped env: save and restore it, and put the agent at its goal for a moment.

Any env built on MuJoCo holds its physics in one ``MjModel`` / ``MjData`` pair. Its integration state
(positions, velocities, controls, mocap poses, the solver's warm start) fixes the next step, so it is
what the adapter saves for the oracle and restores. Derived quantities (body positions, contact
forces) are recomputed after a restore; the adapter also recomputes them after every step of the
wrapped env, so that an env whose controller reads them (OGBench's inverse kinematics reads the
effector's site) steps the same from a restored state as from the one that was saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import mujoco
import numpy as np

INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


@runtime_checkable
class MujocoBacked(Protocol):
    """An env (``env.unwrapped``) that exposes its simulator, as gymnasium-robotics' and OGBench's do."""

    model: mujoco.MjModel
    data: mujoco.MjData


def mujoco_of(env: Any) -> tuple[mujoco.MjModel, mujoco.MjData] | None:
    """The env's ``(model, data)``, or None when it exposes no MuJoCo simulator."""
    if isinstance(env, MujocoBacked) and isinstance(env.model, mujoco.MjModel) and isinstance(env.data, mujoco.MjData):
        return env.model, env.data
    return None


def state_size(model: mujoco.MjModel) -> int:
    return mujoco.mj_stateSize(model, INTEGRATION)


def get_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    state = np.empty(state_size(model))
    mujoco.mj_getState(model, data, state, INTEGRATION)
    return state


def refresh(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Derived quantities from the integration state: kinematics, forces, and contact forces
    (``cfrc_ext``, which ``mj_forward`` leaves alone and grippers read)."""
    mujoco.mj_forward(model, data)
    mujoco.mj_rnePostConstraint(model, data)


def set_state(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
    mujoco.mj_setState(model, data, state, INTEGRATION)
    refresh(model, data)


def locate(vector: np.ndarray, part: np.ndarray) -> slice | None:
    """Where ``part`` sits in ``vector`` as a contiguous run of exactly equal numbers, if at one place only.

    The achieved goal of a MuJoCo env is usually copied from ``qpos`` (PointMaze's ball x, y; a
    free-jointed cube's position), which is how the adapter knows which joints put the agent at a goal.
    """
    part = np.asarray(part, dtype=np.float64).reshape(-1)
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if part.size == 0 or part.size > vector.size:
        return None
    starts = [i for i in range(vector.size - part.size + 1) if np.array_equal(vector[i : i + part.size], part)]
    return slice(starts[0], starts[0] + part.size) if len(starts) == 1 else None


@contextmanager
def placed_at_goal(model: mujoco.MjModel, data: mujoco.MjData, joints: slice, goal: np.ndarray) -> Iterator[None]:
    """Inside the block, ``qpos[joints]`` is ``goal`` and everything is at rest; then all is put back."""
    saved = get_state(model, data)
    data.qpos[joints] = goal
    data.qvel[:] = 0.0
    refresh(model, data)
    try:
        yield
    finally:
        set_state(model, data, saved)

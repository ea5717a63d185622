"""The oracle's simulator for an adapted MuJoCo env, in C: a task config's ``env.batch`` section.

An adapted env (``envs/adapter.py``) steps in Python, one env step at a time, and the simulator
oracle scores hundreds of action sequences per control step: on PointMaze_Large that is most of an
evaluation's time. Many MuJoCo envs step the same simple way, Gymnasium's ``MujocoEnv.do_simulation``:
the controls are set to the action and the physics advances ``substeps`` calls of ``mj_step``;
PointMaze first clips the ball's velocity (``_clip_velocity``). :class:`BatchSimulator` does exactly
that for all sequences at once with ``mujoco.batch`` and reads the achieved goal where it sits in
``qpos``. It knows nothing else of the env, so the adapter checks it against the env's own steps when
the task is built and refuses, in one line, a config whose batch does not reproduce them bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mujoco
import mujoco.batch
import numpy as np

from envs.errors import UserInputError
from envs.readers import dotted_attribute

KEYS = frozenset({"substeps", "clip_qvel"})


@dataclass(frozen=True)
class BatchSpec:
    """``env.batch``: how one env step advances the physics."""

    substeps: int | str  # mj_step calls per env step, or a dotted attribute of env.unwrapped that holds it
    clip_qvel: float | None = None  # |qvel| clipped to this before every env step (PointMaze's _clip_velocity)

    @classmethod
    def parse(cls, value: Any, where: str) -> BatchSpec:
        if not isinstance(value, Mapping) or set(value) - KEYS or "substeps" not in value:
            raise UserInputError(f"{where} must be a mapping with substeps (and optionally clip_qvel), got {value!r}")
        substeps, clip = value["substeps"], value.get("clip_qvel")
        if isinstance(substeps, bool) or not (isinstance(substeps, str) or (isinstance(substeps, int) and substeps > 0)):
            raise UserInputError(f"{where}.substeps must be a positive integer or an attribute name, got {substeps!r}")
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float) or clip <= 0):
            raise UserInputError(f"{where}.clip_qvel must be a positive number or null, got {clip!r}")
        return cls(substeps, None if clip is None else float(clip))

    def resolve_substeps(self, env: Any, task: str) -> int:
        """``substeps`` as a number, read from the env where the config names an attribute."""
        if isinstance(self.substeps, int):
            return self.substeps
        value = dotted_attribute(env, self.substeps)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise UserInputError(f"task {task}: env.batch.substeps names {self.substeps}, which is not a positive "
                                 f"integer attribute of the env (got {value!r})")
        return int(value)


class BatchSimulator:
    """N copies of the env's physics stepped together; returns the achieved goal after every control step."""

    def __init__(self, model: mujoco.MjModel, substeps: int, clip_qvel: float | None, action_repeat: int,
                 goal_qpos: slice) -> None:
        self.model, self.substeps, self.clip_qvel = model, substeps, clip_qvel
        self.action_repeat, self.goal_qpos = action_repeat, goal_qpos
        self._batches: dict[int, mujoco.batch.Batch] = {}

    def _batch(self, size: int) -> mujoco.batch.Batch:
        if size not in self._batches:  # one thread: planning batches are small and torch wants the cores
            self._batches[size] = mujoco.batch.Batch(self.model, size, nthread=1)
        return self._batches[size]

    def run(self, physics: np.ndarray, env_actions: np.ndarray) -> np.ndarray:
        """``physics`` a MuJoCo integration state ``(nstate,)``, ``env_actions (N, H, A)`` in the env's
        units; ``float32 (N, H, g)``."""
        n, horizon = env_actions.shape[:2]
        batch = self._batch(n)
        batch.state[:] = physics
        qpos, qvel = batch.qpos, batch.qvel  # live views of the state rows
        achieved = np.empty((n, horizon, self.goal_qpos.stop - self.goal_qpos.start), np.float32)
        for t in range(horizon):
            for _ in range(self.action_repeat):
                if self.clip_qvel is not None:
                    np.clip(qvel, -self.clip_qvel, self.clip_qvel, out=qvel)
                batch.ctrl = env_actions[:, t]
                batch.step(nstep=self.substeps)
            achieved[:, t] = qpos[:, self.goal_qpos]
        return achieved

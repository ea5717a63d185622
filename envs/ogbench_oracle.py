"""OGBench's scripted Markov oracles as an exploration policy: its "noisy" datasets, through our collector.

OGBench collects its manipulation datasets with closed-loop scripted oracles
(``ogbench.manipspace.oracles.markov``) on an env made with ``mode="data_collection"``, whose info
carries the privileged positions they read. Per episode a noise level ``xi ~ U(0, max_noise)`` is
drawn and each action gets Gaussian noise of std ``xi * noise_scale`` per dimension; when the oracle
is done with a target the env draws a new one (``set_new_target``), so one episode moves the cube
again and again. Here that runs inside ``envs.collection.rollout``: the actions come from the
episode's own generator (the oracle's own draws from numpy's global generator are seeded from it),
so a dataset depends only on (collection seed, episode index), as every collection does.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

from envs.adapter import GoalEnvTask
from envs.errors import UserInputError
from envs.policies import ExplorationPolicy

# OGBench's Markov oracle per target kind (``info["privileged/target_task"]``)
ORACLES = {
    "cube": "ogbench.manipspace.oracles.markov.cube_markov:CubeMarkovOracle",
    "button": "ogbench.manipspace.oracles.markov.button_markov:ButtonMarkovOracle",
    "drawer": "ogbench.manipspace.oracles.markov.drawer_markov:DrawerMarkovOracle",
    "window": "ogbench.manipspace.oracles.markov.window_markov:WindowMarkovOracle",
}
TARGET_TASK = "privileged/target_task"  # the info key naming the current target's kind
SEED_RANGE = 2**32  # numpy's global generator takes seeds below this


@contextmanager
def seeded_global_numpy(rng: np.random.Generator):
    """Run a block with numpy's global generator seeded from ``rng``, then put its state back."""
    saved = np.random.get_state()
    np.random.seed(int(rng.integers(SEED_RANGE)))
    try:
        yield
    finally:
        np.random.set_state(saved)


class OGBenchMarkovOracle(ExplorationPolicy):
    """Actions of OGBench's Markov oracle for the current target, plus OGBench's per-episode noise."""

    def __init__(self, min_norm: float, max_noise: float, noise_scale: list[float], p_stack: float) -> None:
        self.min_norm = min_norm  # the oracle's smallest commanded displacement (OGBench's --min_norm)
        self.max_noise = max_noise  # per-episode noise level drawn from U(0, max_noise) (OGBench's --noise)
        self.noise_scale = np.asarray(noise_scale, dtype=np.float64)  # noise std per action dim, in units of it
        self.p_stack = p_stack  # chance a new target stacks the cube on another (0 with a single cube)
        self._oracles: dict[str, Any] = {}
        self._env: Any = None

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        task = env.unwrapped
        if not isinstance(task, GoalEnvTask):
            raise UserInputError(f"policy OGBenchMarkovOracle drives an OGBench env through the adapter "
                                 f"(a task with an env: section), not {type(task).__name__}")
        if task is not self._env:
            self._env, self._oracles = task, {}
        self.noise = float(rng.uniform(0.0, self.max_noise))
        self.current: Any = None  # the oracle of the current target, chosen at the first action

    def act(self, info: dict[str, Any]) -> np.ndarray:
        env_info = info.get("env_info", {})
        if TARGET_TASK not in env_info:
            raise UserInputError("policy OGBenchMarkovOracle needs an OGBench env in mode=data_collection (its "
                                 "privileged info); give the task's env: section collect_kwargs: {mode: data_collection}")
        if self.current is None:
            self._start(env_info)
        elif self.current.done:  # OGBench's loop: a finished target is replaced by a new one
            _, env_info = self._env.inner.set_new_target(p_stack=self.p_stack)
            self._start(env_info)
        action = np.asarray(self.current.select_action(None, env_info), dtype=np.float64)
        action = action + self.rng.normal(0.0, self.noise * self.noise_scale, action.shape)
        return self._env.to_unit_action(np.clip(action, self._env.inner.action_space.low,
                                                 self._env.inner.action_space.high))

    def _start(self, env_info: dict[str, Any]) -> None:
        kind = str(env_info[TARGET_TASK])
        if kind not in ORACLES:
            raise UserInputError(f"no OGBench Markov oracle for target kind {kind!r}; known: {', '.join(ORACLES)}")
        if kind not in self._oracles:
            module, name = ORACLES[kind].split(":")
            oracle_class = getattr(importlib.import_module(module), name)
            self._oracles[kind] = oracle_class(env=self._env.inner, min_norm=self.min_norm)
        self.current = self._oracles[kind]
        with seeded_global_numpy(self.rng):  # the oracle draws its resting pose from numpy's global generator
            self.current.reset(None, env_info)

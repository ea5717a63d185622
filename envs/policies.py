"""Exploration policies for data collection, one interface, chosen by ``configs/policy/*.yaml``.

A policy is built once per worker (``envs.builder.build``, the project's allowlisted classes), then ``reset`` at the start of
every episode with the env and the episode's own generator, so that an episode's actions depend
only on (collection seed, episode index) and never on which worker ran it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np

from envs.errors import UserInputError
from envs.navigation import Navigable


class ExplorationPolicy(ABC):
    """Chooses an action from the env's ``info`` (true state, positions), never from pixels."""

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        self.low = env.action_space.low
        self.high = env.action_space.high
        self.rng = rng

    @abstractmethod
    def act(self, info: dict[str, Any]) -> np.ndarray: ...


class UniformRandom(ExplorationPolicy):
    """Independent uniform actions: jittery, stays near the start, the classic floor."""

    def act(self, info: dict[str, Any]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class OrnsteinUhlenbeck(ExplorationPolicy):
    """Temporally correlated noise ``x += -theta * x + sigma * N(0, 1)``: long sweeping moves.

    The stationary standard deviation is ``sigma / sqrt(theta * (2 - theta))``; actions are the
    state clipped to the action box.
    """

    def __init__(self, theta: float, sigma: float) -> None:
        self.theta = theta
        self.sigma = sigma

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        stationary_std = self.sigma / np.sqrt(self.theta * (2 - self.theta))
        self.x = rng.normal(0.0, stationary_std, size=self.low.shape)

    def act(self, info: dict[str, Any]) -> np.ndarray:
        self.x += -self.theta * self.x + self.sigma * self.rng.normal(size=self.x.shape)
        return np.clip(self.x, self.low, self.high).astype(np.float32)


class WaypointFollower(ExplorationPolicy):
    """Drives the agent cell by cell along shortest paths to random free cells, again and again.

    Random walks in a maze rarely pass a door; following grid paths crosses rooms by construction,
    and the noise spreads the visits around the cell centres. The grid is the task's own
    (``Navigable.navigation_grid``: a built-in maze's map, an adapted env's maze). Assumes the first
    two action components push along world x and y (point-mass tasks) and reads the position from
    ``info["achieved_goal"]``; velocity is the position change over the last step.
    """

    def __init__(
        self,
        gain: float,
        damping: float,
        noise: float,
        reach: float,
        patience: int,
        push_range: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        self.gain = gain  # action per cell of distance to the waypoint
        self.damping = damping  # action per cell moved over the last step
        self.noise = noise  # std of Gaussian action noise
        self.reach = reach  # waypoint reached within this many cell sizes
        self.patience = patience  # steps allowed per waypoint before choosing a new destination
        # the largest push towards a waypoint, drawn per destination from this range: slow moves too,
        # not only the top speed a saturated controller would always reach
        self.push_range = tuple(push_range)

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        task = env.unwrapped
        grid = task.navigation_grid() if isinstance(task, Navigable) else None
        if grid is None:
            raise UserInputError(
                f"policy=waypoints needs a maze-like task (one whose navigation_grid() is not None), not "
                f"{type(task).__name__}; use policy=uniform or policy=ou"
            )
        self.grid = grid
        self.cells = self.grid.free_cells()
        self.route: list[tuple[int, int]] = []
        self.last_position: np.ndarray | None = None
        self.steps_on_waypoint = 0
        self.max_push = 1.0

    def act(self, info: dict[str, Any]) -> np.ndarray:
        position = np.asarray(info["achieved_goal"], dtype=np.float64)[:2]
        velocity = np.zeros(2) if self.last_position is None else position - self.last_position
        self.last_position = position
        reached = bool(self.route) and (
            np.linalg.norm(self.grid.center(self.route[0]) - position) < self.reach * self.grid.cell_size
        )
        if reached:
            self.route.pop(0)
            self.steps_on_waypoint = 0
        if not self.route or self.steps_on_waypoint > self.patience:
            self._new_destination(position)
        self.steps_on_waypoint += 1
        push = (
            self.gain * (self.grid.center(self.route[0]) - position) - self.damping * velocity
        ) / self.grid.cell_size
        norm = np.linalg.norm(push)
        if norm > self.max_push:
            push *= self.max_push / norm
        action = self.noise * self.rng.normal(size=self.low.shape)
        action[:2] += push
        return np.clip(action, self.low, self.high).astype(np.float32)

    def _new_destination(self, position: np.ndarray) -> None:
        here = self.grid.cell_of(position)
        self.steps_on_waypoint = 0
        destination = self.cells[self.rng.integers(len(self.cells))]
        self.max_push = float(self.rng.uniform(*self.push_range))
        self.route = self.grid.path(here, destination) or [here]


class Mixture(ExplorationPolicy):
    """Each episode follows one of ``policies``, drawn with probabilities ``weights``.

    E.g. waypoints to cross rooms, mixed with correlated noise that bumps into walls and drifts
    slowly: the states a planner meets (at rest, pressed against a wall) that waypoint runs skip.
    """

    def __init__(self, policies: list[ExplorationPolicy], weights: list[float]) -> None:
        if len(policies) != len(weights) or not policies or min(weights) < 0 or sum(weights) <= 0:
            raise UserInputError("policy mixture needs one non-negative weight per policy, not all zero")
        self.policies = list(policies)
        self.weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.current: ExplorationPolicy = self.policies[0]

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        self.current = self.policies[rng.choice(len(self.policies), p=self.weights)]
        self.current.reset(env, rng)

    def act(self, info: dict[str, Any]) -> np.ndarray:
        return self.current.act(info)

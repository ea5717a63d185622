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
from envs.pusht import PushTTask, split_state, to_block_frame, to_world


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


class EdgePushes(ExplorationPolicy):
    """Pushing tasks (``pusht``): noisy pushes at random points of the block's edges, with spells of noise.

    Uniform random actions jiggle the pusher about its start and seldom touch the block, so a world
    model trained on them never sees the block move. Here each segment is, with probability
    ``explore``, a spell of correlated noise (Ornstein-Uhlenbeck ``theta``, ``sigma``) for a random
    number of steps in ``explore_steps``; otherwise a push. A push draws a point uniformly along the T's
    outline and goes to ``standoff`` metres beyond it along the edge's outward normal, from outside: on
    a straight line where that keeps the pusher clear of the block, else round a circle just clear of
    it. Then it moves along the inward normal for a number of steps in ``push_steps``, at a speed
    drawn from ``speed_range`` (a share of the top speed), the direction jittered by Gaussian
    ``noise``. An approach that takes more than ``patience`` steps (the block against a wall) is given
    up for a new segment. Reads the pusher and the block from ``info["state"]``, and the T's outline,
    the pusher's size and reach from the task at reset, as the waypoint follower reads its maze.
    """

    _MARGIN = 0.003  # metres the pusher keeps clear of the block while it approaches
    _ARRIVED = 0.25  # a staging point is reached within this share of one top-speed step
    _ROUND_STEP = 0.6  # radians round the block per waypoint while going round it
    _TRIES = 20  # edge points drawn per push before giving up on a push for a noise spell

    def __init__(
        self,
        push_steps: tuple[int, int],
        speed_range: tuple[float, float],
        noise: float,
        standoff: float,
        explore: float,
        explore_steps: tuple[int, int],
        theta: float,
        sigma: float,
        patience: int,
    ) -> None:
        if not 0.0 <= explore <= 1.0:
            raise UserInputError(f"policy explore must be a probability in [0, 1], got {explore}")
        self.push_steps = tuple(push_steps)
        self.speed_range = tuple(speed_range)
        self.noise = noise
        self.standoff = standoff
        self.explore = explore
        self.explore_steps = tuple(explore_steps)
        self.theta, self.sigma = theta, sigma
        self.patience = patience

    def reset(self, env: gym.Env, rng: np.random.Generator) -> None:
        super().reset(env, rng)
        task = env.unwrapped
        if not isinstance(task, PushTTask):
            raise UserInputError(
                f"policy=pushes needs a pushing task (pusht), not {type(task).__name__}; use policy=uniform or policy=ou"
            )
        self.task = task
        self.circle = task.shape.outer_radius + task.radius + self._MARGIN  # going round the block
        self.ou = rng.normal(0.0, self.sigma / np.sqrt(self.theta * (2 - self.theta)), size=self.low.shape)
        self.mode: str | None = None  # "explore", "approach" or "push"; the first act chooses

    def act(self, info: dict[str, Any]) -> np.ndarray:
        pusher, pose = split_state(info["state"])
        if self.mode is None or (self.mode == "approach" and self.steps > self.patience):
            self._new_segment(pose)
        if self.mode == "explore":
            action = self._ou_step()
        elif self.mode == "approach":
            point, normal = to_world(self.point, pose), to_world(self.normal, np.array([0.0, 0.0, pose[2]]))
            staging = point + normal * (self.task.radius + self.standoff)
            if np.linalg.norm(staging - pusher) < self._ARRIVED * self.task.max_step:
                self.mode, self.direction = "push", -normal
                self.steps, self.length = 0, int(self.rng.integers(self.push_steps[0], self.push_steps[1] + 1))
                self.speed = float(self.rng.uniform(*self.speed_range))
                action = self._push_step()
            else:
                action = self._towards(pusher, self._waypoint(pusher, staging, pose), 1.0)
        else:
            action = self._push_step()
        self.steps += 1
        if self.mode != "approach" and self.steps >= self.length:
            self._new_segment(pose)
        return np.clip(action, self.low, self.high).astype(np.float32)

    def _new_segment(self, pose: np.ndarray) -> None:
        """A noise spell with probability ``explore`` (or where no edge point can be stood at), else a push."""
        self.steps = 0
        if self.rng.uniform() >= self.explore:
            for _ in range(self._TRIES):
                point, normal = self.task.shape.boundary_point(float(self.rng.uniform()))
                if self._can_stand_at(point + normal * (self.task.radius + self.standoff), pose):
                    self.mode, self.point, self.normal = "approach", point, normal
                    return
        self.mode = "explore"
        self.length = int(self.rng.integers(self.explore_steps[0], self.explore_steps[1] + 1))

    def _can_stand_at(self, staging: np.ndarray, pose: np.ndarray) -> bool:
        """Whether the pusher fits at block-frame point ``staging``: clear of the T (not in the corner
        under the bar, beside the stem) and inside the walls."""
        clear = self.task.shape.signed_distance(staging) >= self.task.radius + self._MARGIN
        return bool(clear and np.abs(to_world(staging, pose)).max() <= self.task.reach)

    def _waypoint(self, pusher: np.ndarray, target: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """``target`` if the straight way there keeps clear of the block; else a point further round the
        circle about the block, turning the shorter way towards ``target``; else (touching the block)
        straight away from it."""
        along = np.linspace(0.0, 1.0, 12)[:, None]
        path = to_block_frame(pusher + along * (target - pusher), pose)
        gaps = self.task.shape.signed_distance(path) - self.task.radius
        if gaps.min() >= self._MARGIN:
            return target
        if gaps[0] < self._MARGIN:  # too close to the block to go round: step away from it first
            away = pusher - pose[:2]
            return pusher + away / max(np.linalg.norm(away), 1e-9) * self.task.max_step
        here = np.arctan2(*(pusher - pose[:2])[::-1])
        there = np.arctan2(*(target - pose[:2])[::-1])
        turn = np.sign((there - here + np.pi) % (2 * np.pi) - np.pi) * self._ROUND_STEP
        return pose[:2] + self.circle * np.array([np.cos(here + turn), np.sin(here + turn)])

    def _towards(self, pusher: np.ndarray, target: np.ndarray, speed: float) -> np.ndarray:
        step = (target - pusher) / self.task.max_step  # the action that lands on target in one step
        norm = np.linalg.norm(step)
        return step * (speed / norm) if norm > speed else step

    def _push_step(self) -> np.ndarray:
        direction = self.direction + self.noise * self.rng.normal(size=2)
        return self.speed * direction / max(np.linalg.norm(direction), 1e-9)

    def _ou_step(self) -> np.ndarray:
        self.ou += -self.theta * self.ou + self.sigma * self.rng.normal(size=self.ou.shape)
        return self.ou.copy()

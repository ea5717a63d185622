"""Stochastic variants of the wall task (issue 24): worlds where the present and the action do not
determine the future, so that a model which predicts one future predicts the average of the branches.

* ``branching`` (:class:`BranchingWallTask`, task ``wall-branching``): the divider has two doors. The
  *risky* door lies on the way (between the start's and the goal's heights, as ``WallTask`` reckons
  it: the short route), marked by an amber strip on the floor; the *safe* door does not (the detour)
  and is always open. The first time the
  ball's centre comes within ``REVEAL_DISTANCE`` of the risky door's centre (checked after every env
  step), the door is drawn: shut with probability ``shut_probability`` (a wall segment then fills it
  for the rest of the episode), else open. A planner that trusts the average walks into a door that is
  only sometimes open; one that knows the risk weighs the detour against ``p`` times the way back.
* ``noisy`` (:class:`NoisyWallTask`, task ``wall-noisy``): after the physics of every env step, with
  probability ``kick_probability`` the ball's velocity is kicked by ``N(0, kick_std^2)`` m/s per axis.

Randomness is a function of the episode, never of a global generator: the spec holds a ``noise_seed``
(drawn by ``reset(seed=s)`` from its seeded generator after the layout), the door's draw is
``default_rng(noise_seed)`` and step ``k``'s kick ``default_rng([noise_seed, k])``. So one seed gives
one episode, every agent meets the same door and the same kicks on one evaluation pair, and the sim
state (the noise seed and the door's status or the step counter follow the goal in it) restores the
future exactly. ``simulate_batch`` is the oracle's simulator with its own draws: each sequence draws
its door and kicks from a generator keyed by the start state and ``seed`` (independent of the acting
env's), so its outcomes vary across the batch, and one call repeated gives the same outcomes. With the
randomness off (``shut_probability`` 0 or 1, ``kick_std`` or ``kick_probability`` 0) it equals stepping
the env bit for bit, as the deterministic tasks' does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import mujoco
import mujoco.batch
import numpy as np

from envs.base import spec_vector
from envs.errors import UserInputError
from envs.navigation import CostFn, task_cost_to_go
from envs.wall import ASSET, WallTask

VARIANTS = ("branching", "noisy")
REVEAL_DISTANCE = 0.5  # m from the risky door's centre: the ball (at most 0.1 m per step) is still clear of it
UNDRAWN, OPEN, SHUT = 0.5, 0.0, 1.0  # the risky door's status, as the state observation's last entry shows it
PARKED = (0.0, 3.0, 0.1)  # where the shutter waits while the risky door is open: outside the arena and the view
MIDDLE_HALF_LENGTH = 0.2  # m, each of the two segments that close the divider between the doors
_SIMULATED = 1  # first word of the simulator's generator keys, apart from the acting env's


def make_wall(variant: str | None = None, **kwargs: Any) -> WallTask:
    """The wall task's entry point: ``variant`` None (the deterministic task), "branching" or "noisy"."""
    tasks = {None: WallTask, "branching": BranchingWallTask, "noisy": NoisyWallTask}
    if variant not in tasks:
        raise UserInputError(f"unknown wall variant {variant!r}; choose one of: None, {', '.join(VARIANTS)}")
    return tasks[variant](**kwargs)


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise UserInputError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class _ChanceWall(WallTask):
    """What both variants share: the episode's noise seed and a simulator with draws of its own."""

    def __init__(self, **kwargs: Any) -> None:
        self._noise_seed = 0
        self._sim_rng = np.random.default_rng(0)  # simulate_batch's, set per call
        super().__init__(**kwargs)

    def _draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        return {**self._draw_layout(rng), "noise_seed": int(rng.integers(2**31))}

    def _draw_layout(self, rng: np.random.Generator) -> dict[str, Any]:
        return super()._draw_task(rng)

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        seed = spec["noise_seed"]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**53:
            raise UserInputError(f"episode spec 'noise_seed' must be a non-negative integer, got {seed!r}")
        super()._apply_task(spec)
        self._noise_seed = int(seed)

    def simulate_batch(self, start_state: np.ndarray, actions: np.ndarray, scored: bool = False,
                       seed: int = 0) -> np.ndarray:
        """As :meth:`GoalTask.simulate_batch`, each sequence with chance of its own (module docstring):
        drawn from the start state and ``seed``, never from the acting env's noise seed."""
        start_state = self._check_sim_state(start_state)
        digest = hashlib.blake2b(start_state.tobytes(), digest_size=8).digest()
        self._sim_rng = np.random.default_rng([_SIMULATED, int.from_bytes(digest, "little"), int(seed)])
        self._begin_batch(start_state, len(actions))
        return super().simulate_batch(start_state, actions, scored)

    def _begin_batch(self, start_state: np.ndarray, size: int) -> None:
        """Draw what each of ``size`` simulated sequences from ``start_state`` needs up front."""


class BranchingWallTask(_ChanceWall):
    """Episode spec: ``{"start", "goal", "door" (the safe door), "risky_door": [y], "noise_seed"}``.

    The state observation is ``(x, y, vx, vy, safe door, risky door, status)``, status 0.5 until the
    door is drawn, then 0 (open) or 1 (shut); pixels show a shut door as wall and the risky door's
    strip from the start (undrawn and drawn-open doors look alike). The goal observation shows the
    ball at its goal in the world as it is: the door undrawn until the draw, then as drawn (a goal
    that kept the undrawn status would be a state the episode can no longer reach). The doors' centres are ``door_width + 0.4`` to ``door_width + 0.8`` m apart (two 0.4 m
    segments close the divider between them).
    """

    variant = "branching"
    spec_keys = ("start", "goal", "door", "risky_door", "noise_seed")
    state_dim = 7  # x, y, vx, vy, safe door, risky door, risky door's status
    goal_dim = 4  # goal position, noise seed, risky door's status

    def __init__(self, shut_probability: float = 0.5, **kwargs: Any) -> None:
        self.shut_probability = _probability("shut_probability", shut_probability)
        self._status = UNDRAWN
        self._rows = np.zeros(0)  # simulate_batch: each sequence's door status
        self._row_draws = np.zeros(0)  # and the uniform number that decides its door
        super().__init__(**kwargs)
        self._shutter = self.model.body("shutter").mocapid[0]
        self._marker = self.model.body("marker").mocapid[0]
        self._middle = (self.model.body("divider_middle_upper").mocapid[0],
                        self.model.body("divider_middle_lower").mocapid[0])
        self.door_separation = (self.door_width + 2 * MIDDLE_HALF_LENGTH, self.door_width + 4 * MIDDLE_HALF_LENGTH)

    def _load_model(self) -> mujoco.MjModel:
        spec = mujoco.MjSpec.from_file(str(ASSET))
        box = mujoco.mjtGeom.mjGEOM_BOX
        for name in ("divider_middle_upper", "divider_middle_lower"):
            body = spec.worldbody.add_body(name=name, mocap=True, pos=[0.0, 0.0, 0.1])
            body.add_geom(name=name, type=box, size=[0.05, MIDDLE_HALF_LENGTH, 0.1])
        shutter = spec.worldbody.add_body(name="shutter", mocap=True, pos=list(PARKED))
        shutter.add_geom(name="shutter", type=box, size=[0.05, 0.2, 0.1])  # drawn like the walls
        marker = spec.worldbody.add_body(name="marker", mocap=True, pos=[0.0, 0.0, 0.001])
        marker.add_geom(name="marker", type=box, size=[0.15, 0.2, 0.001], contype=0, conaffinity=0,
                        rgba=[0.95, 0.7, 0.1, 1.0])  # an amber strip across the risky door, never touched
        return spec.compile()

    # ----- episodes ----------------------------------------------------------------------------
    def _draw_layout(self, rng: np.random.Generator) -> dict[str, Any]:
        """The risky door on the way (between the start's and goal's heights, with the wall's slack), the safe one not."""
        low, high = self.door_separation
        while True:
            risky = rng.uniform(-self.door_range, self.door_range)
            safe = risky + rng.choice([-1.0, 1.0]) * rng.uniform(low, high)
            side = rng.choice([-1.0, 1.0])
            start, goal = self._point_in_room(rng, side), self._point_in_room(rng, -side)
            if (abs(safe) <= self.half_arena - self.door_width / 2 and self._door_on_the_way(start, goal, risky)
                    and not self._door_on_the_way(start, goal, safe)):
                return {"start": start.tolist(), "goal": goal.tolist(), "door": [float(safe)],
                        "risky_door": [float(risky)]}

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        super()._apply_task(spec)  # the safe door, start and goal; the segments are laid out again below
        safe, risky = float(spec_vector(spec, "door", 1)[0]), float(spec_vector(spec, "risky_door", 1)[0])
        limit, (low, high) = self.half_arena - self.door_width / 2, self.door_separation
        if abs(risky) > limit or not low - 1e-9 <= abs(safe - risky) <= high + 1e-9:
            raise UserInputError(
                f"wall risky_door {risky:.3f} must lie in [-{limit}, {limit}] and {low:.2f} to {high:.2f} m "
                f"from the door {safe:.3f}"
            )
        top, bottom = max(safe, risky), min(safe, risky)
        half_door = self.door_width / 2
        self.data.mocap_pos[self._upper, 1] = top + half_door + self._segment_half_length
        self.data.mocap_pos[self._lower, 1] = bottom - half_door - self._segment_half_length
        self.data.mocap_pos[self._middle[0], 1] = top - half_door - MIDDLE_HALF_LENGTH
        self.data.mocap_pos[self._middle[1], 1] = bottom + half_door + MIDDLE_HALF_LENGTH
        self.data.mocap_pos[self._marker, 1] = risky
        self.data.mocap_pos[self._shutter] = PARKED
        self._status = UNDRAWN

    # ----- the draw ----------------------------------------------------------------------------
    def _advance(self, action: np.ndarray) -> None:
        super()._advance(action)
        if self._status == UNDRAWN and self._near_risky_door(self.data.qpos[None, :2])[0]:
            shut = np.random.default_rng(self._noise_seed).random() < self.shut_probability
            self._status = SHUT if shut else OPEN
            if shut:
                self.data.mocap_pos[self._shutter] = (0.0, self.risky_door(), PARKED[2])
            self._refresh_goal()  # the goal is the ball at its goal in the world as it now is

    def _begin_batch(self, start_state: np.ndarray, size: int) -> None:
        self._rows = np.full(size, start_state[-1])
        self._row_draws = self._sim_rng.random(size)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        super()._advance_batch(batch, action)
        drawn = (self._rows == UNDRAWN) & self._near_risky_door(batch.qpos[:, :2])
        shut = drawn & (self._row_draws < self.shut_probability)
        self._rows[drawn] = np.where(shut[drawn], SHUT, OPEN)
        batch.mocap_pos[shut, self._shutter] = (0.0, self.risky_door(), PARKED[2])

    def _near_risky_door(self, xy: np.ndarray) -> np.ndarray:
        return np.linalg.norm(xy - np.array([0.0, self.risky_door()]), axis=-1) <= REVEAL_DISTANCE

    # ----- doors, observations and the oracle's cost-to-go --------------------------------------
    def risky_door(self) -> float:
        return float(self.data.mocap_pos[self._marker, 1])

    def door(self) -> float:
        """The safe door's height: of the divider's two gaps, the one away from the risky door's strip."""
        top = float(self.data.mocap_pos[self._upper, 1]) - self.door_width / 2 - self._segment_half_length
        bottom = float(self.data.mocap_pos[self._lower, 1]) + self.door_width / 2 + self._segment_half_length
        return top if abs(top - self.risky_door()) > abs(bottom - self.risky_door()) else bottom

    def door_status(self) -> float:
        """0.5 until the risky door is drawn, then 0 (open) or 1 (shut)."""
        return self._status

    def open_doors(self) -> list[float]:
        return [self.door()] + ([] if self._status == SHUT else [self.risky_door()])

    def cost_to_go(self, goal: np.ndarray) -> CostFn:
        """The shortest path through the doors this env knows to be passable *when called*: both until
        the risky door is seen shut, then the safe one (the oracle keeps one per episode, and so
        re-routes when the door shuts); the simulated sequences' own draws are not seen here."""
        costs: dict[bool, CostFn] = {}

        def cost(positions: np.ndarray) -> np.ndarray:
            shut = self._status == SHUT
            if shut not in costs:
                costs[shut] = task_cost_to_go(self.navigation_grid(), self.path_resolution, goal)
            return costs[shut](positions)

        return cost

    def agent_state(self) -> np.ndarray:
        return np.array([*self.data.qpos, *self.data.qvel, self.door(), self.risky_door(), self._status],
                        dtype=np.float32)

    def _place_at_goal(self) -> None:
        super()._place_at_goal()  # the ball at its goal; the door stays as drawn (undrawn before the draw)

    def _get_goal_params(self) -> np.ndarray:
        return np.array([*self._goal, self._noise_seed, self._status])

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._goal, self._noise_seed, self._status = params[:2].copy(), int(params[2]), float(params[3])


class NoisyWallTask(_ChanceWall):
    """Episode spec: the wall's and ``"noise_seed"``; state observation and success as the wall's.

    ``kick_probability`` (q) and ``kick_std`` (sigma, m/s per axis): after step k's physics, with
    probability q, ``qvel += N(0, sigma^2 I)``, so the velocity the step ends with is the deterministic
    one plus the kick (the next step's motion carries it; the ball's damping halves it in 0.07 s).
    """

    variant = "noisy"
    spec_keys = ("start", "goal", "door", "noise_seed")
    goal_dim = 4  # goal position, noise seed, env steps taken (the next kick's key)

    def __init__(self, kick_std: float = 1.0, kick_probability: float = 0.2, **kwargs: Any) -> None:
        if isinstance(kick_std, bool) or not isinstance(kick_std, (int, float)) or not 0.0 <= kick_std < np.inf:
            raise UserInputError(f"kick_std must be a non-negative number of m/s, got {kick_std!r}")
        self.kick_std = float(kick_std)
        self.kick_probability = _probability("kick_probability", kick_probability)
        self._steps = 0
        super().__init__(**kwargs)

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        super()._apply_task(spec)
        self._steps = 0

    def _kicks_on(self) -> bool:
        return self.kick_std > 0 and self.kick_probability > 0

    def _advance(self, action: np.ndarray) -> None:
        super()._advance(action)
        self._steps += 1
        rng = np.random.default_rng([self._noise_seed, self._steps])
        if rng.random() < self.kick_probability and self._kicks_on():
            self.data.qvel[:] += rng.normal(0.0, self.kick_std, 2)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        super()._advance_batch(batch, action)
        hits = self._sim_rng.random(batch.nsim) < self.kick_probability
        kicks = self._sim_rng.normal(0.0, self.kick_std, (batch.nsim, 2))
        if self._kicks_on():
            batch.qvel[hits] += kicks[hits]

    def _place_at_goal(self) -> None:
        super()._place_at_goal()
        self._steps = 0  # the goal observation does not change with the step

    def _get_goal_params(self) -> np.ndarray:
        return np.array([*self._goal, self._noise_seed, self._steps])

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._goal, self._noise_seed, self._steps = params[:2].copy(), int(params[2]), int(params[3])

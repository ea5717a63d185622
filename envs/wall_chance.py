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
from collections.abc import Callable, Mapping
from typing import Any

import mujoco
import mujoco.batch
import numpy as np

from envs.base import spec_vector
from envs.errors import UserInputError
from envs.navigation import CostFn, task_cost_to_go
from envs.wall import ASSET, WallTask

VARIANTS = ("branching", "noisy", "trap")
REVEAL_DISTANCE = 0.5  # m from the risky door's centre: the ball (at most 0.1 m per step) is still clear of it
UNDRAWN, OPEN, SHUT = 0.5, 0.0, 1.0  # the risky door's status, as the state observation's last entry shows it
PARKED = (0.0, 3.0, 0.1)  # where the shutter waits while the risky door is open: outside the arena and the view
MIDDLE_HALF_LENGTH = 0.2  # m, each of the two segments that close the divider between the doors
_SIMULATED = 1  # first word of the simulator's generator keys, apart from the acting env's


def make_wall(variant: str | None = None, **kwargs: Any) -> WallTask:
    """The wall task's entry point: ``variant`` None (the deterministic task), "branching", "noisy" or "trap"."""
    tasks = {None: WallTask, "branching": BranchingWallTask, "noisy": NoisyWallTask, "trap": TrapWallTask}
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
        self._futures = 1  # simulate_futures: rows per candidate that share nothing but their draws
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

    def simulate_futures(self, start_state: np.ndarray, actions: np.ndarray, futures: int,
                         scored: bool = False) -> np.ndarray:
        """Each of ``actions (N, H, A)`` under ``futures`` draws, ``(N, futures, H, g)``: future ``k`` of
        every candidate meets the same door and kicks (common random numbers, so that the oracle
        compares candidates on the same futures, as :class:`~agents.cost.LatentCost` does the model's)."""
        if isinstance(futures, bool) or not isinstance(futures, int) or futures < 1:
            raise UserInputError(f"futures must be a positive integer, got {futures!r}")
        actions = np.asarray(actions)
        self._futures = futures
        try:
            rows = self.simulate_batch(start_state, np.repeat(actions, futures, axis=0), scored)
        finally:
            self._futures = 1
        return rows.reshape(len(actions), futures, *rows.shape[1:])

    def _per_row(self, draw: Callable[[int], np.ndarray], size: int) -> np.ndarray:
        """``draw(n)`` (n rows of random numbers) for this call's ``size`` simulated sequences: one row
        each, or within :meth:`simulate_futures` the same ``futures`` rows for every candidate's group."""
        if self._futures == 1:
            return draw(size)
        shared = draw(self._futures)
        return np.tile(shared, (size // self._futures,) + (1,) * (shared.ndim - 1))

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
        return self._build_spec().compile()

    def _build_spec(self) -> mujoco.MjSpec:
        """The wall's arena with the second door's segments, the shutter and the risky door's strip."""
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
        return spec

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
        if self._status == UNDRAWN and self._near_risky_door(self.data.qpos[None, :2], self.risky_door())[0]:
            shut = np.random.default_rng(self._noise_seed).random() < self.shut_probability
            self._status = SHUT if shut else OPEN
            if shut:
                self._shut()
            self._refresh_goal()  # the goal is the ball at its goal in the world as it now is

    def _shut(self) -> None:
        """What a shut draw does to the acting env: the shutter fills the risky door."""
        self.data.mocap_pos[self._shutter] = (0.0, self.risky_door(), PARKED[2])

    def _begin_batch(self, start_state: np.ndarray, size: int) -> None:
        self._rows = np.full(size, start_state[-1])
        self._row_draws = self._per_row(self._sim_rng.random, size)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        super()._advance_batch(batch, action)
        # each simulation's own risky door (its mocap row): this env's own layout may be another episode's
        drawn = (self._rows == UNDRAWN) & self._near_risky_door(batch.qpos[:, :2], self._risky_rows(batch))
        shut = drawn & (self._row_draws < self.shut_probability)
        self._rows[drawn] = np.where(shut[drawn], SHUT, OPEN)
        self._shut_batch(batch, shut)

    def _shut_batch(self, batch: mujoco.batch.Batch, rows: np.ndarray) -> None:
        """:meth:`_shut` for the simulated sequences of boolean mask ``rows``."""
        batch.mocap_pos[rows, self._shutter] = self._at_risky_door(batch, rows, PARKED[2])

    def _risky_rows(self, batch: mujoco.batch.Batch) -> np.ndarray:
        """``(N,)`` the risky door's height in each simulation (its strip's mocap row)."""
        return batch.mocap_pos[:, self._marker, 1].copy()

    def _at_risky_door(self, batch: mujoco.batch.Batch, rows: np.ndarray, z: float) -> np.ndarray:
        """``(rows.sum(), 3)`` the point ``(0, risky door, z)`` of each simulation in boolean mask ``rows``."""
        risky = self._risky_rows(batch)[rows]
        return np.stack([np.zeros_like(risky), risky, np.full_like(risky, z)], axis=1)

    def _near_risky_door(self, xy: np.ndarray, risky: float | np.ndarray) -> np.ndarray:
        """Whether each ball centre ``(N, 2)`` is within the reveal distance of its risky door's centre."""
        return np.hypot(xy[:, 0], xy[:, 1] - risky) <= REVEAL_DISTANCE

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


class TrapWallTask(BranchingWallTask):
    """The branching wall whose risky door is a trapdoor (variant ``trap``, task ``wall-trap``): a wrong
    guess costs the episode.

    On ``wall-branching`` a shut door is seen 0.5 m ahead and costs a detour that the episode has time
    for, so a planner that ignores the risk loses little. Here the draw falls as the ball's centre
    enters the risky doorway (within the divider's half-thickness plus the ball's radius of its plane,
    and half a door's width of its centre; at most 0.1 m per step, the ball cannot skip that band):
    with probability ``shut_probability`` the trap closes on the ball, which is held where it stands
    for the rest of the episode, and the episode is lost; else the ball passes, and the door stays open.
    The safe door is always open and reachable in time (tested on sampled episodes), so the plan that weighs the
    risk takes the detour from the start, and the one that trusts the average of the two futures walks
    in and loses ``shut_probability`` of its episodes.

    Observations as the branching wall's: the status entry is 0.5 before the draw, then 0 (passed) or
    1 (caught); pixels show a caught ball's doorway in dark red over the amber strip. The oracle's
    cost-to-go routes through the safe door before the draw and prices a catch as lost (:meth:`cost_to_go`).
    Its transitions are not reversible (the registry's ``reversible=False``): the landmark graph takes
    the recorded catch one way.
    """

    variant = "trap"
    scored_extra = 1  # each simulated sequence's status, which the oracle's cost-to-go reads

    def __init__(self, shut_probability: float = 0.5, **kwargs: Any) -> None:
        super().__init__(shut_probability, **kwargs)
        self._caught = self.model.body("caught").mocapid[0]

    def _build_spec(self) -> mujoco.MjSpec:
        spec = super()._build_spec()
        caught = spec.worldbody.add_body(name="caught", mocap=True, pos=[*PARKED[:2], 0.002])
        caught.add_geom(name="caught", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.15, 0.2, 0.001], contype=0,
                        conaffinity=0, rgba=[0.55, 0.05, 0.05, 1.0])  # drawn over the amber strip once caught
        return spec

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        super()._apply_task(spec)
        self.data.mocap_pos[self._caught] = (*PARKED[:2], 0.002)

    def _near_risky_door(self, xy: np.ndarray, risky: float | np.ndarray) -> np.ndarray:
        """Whether each ball centre ``(N, 2)`` is in its risky doorway (the trap's draw; class docstring)."""
        band = self.half_divider + self.radius
        return (np.abs(xy[:, 0]) <= band) & (np.abs(xy[:, 1] - risky) <= self.door_width / 2)

    def _shut(self) -> None:
        self.data.qvel[:] = 0.0
        self.data.mocap_pos[self._caught] = (0.0, self.risky_door(), 0.002)

    def _shut_batch(self, batch: mujoco.batch.Batch, rows: np.ndarray) -> None:
        batch.qvel[rows] = 0.0
        batch.mocap_pos[rows, self._caught] = self._at_risky_door(batch, rows, 0.002)

    def _advance(self, action: np.ndarray) -> None:
        held = self.data.qpos.copy() if self._status == SHUT else None
        super()._advance(action)
        if held is not None:  # a caught ball stays where the trap closed on it
            self.data.qpos[:] = held
            self.data.qvel[:] = 0.0

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        caught = self._rows == SHUT
        held = batch.qpos[caught].copy()
        super()._advance_batch(batch, action)
        batch.qpos[caught] = held
        batch.qvel[caught] = 0.0

    def _scored_extra_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        return self._rows[:, None].copy()

    def open_doors(self) -> list[float]:
        """Both doors: the trapdoor lets a ball through unless it catches it, and a caught ball goes nowhere."""
        return [self.door(), self.risky_door()]

    def cost_to_go(self, goal: np.ndarray) -> CostFn:
        """The true cost-to-go of the success-maximising ball, by the trap's status: undrawn, the path
        through the safe door (the trap wins an episode with probability ``1 - p`` at best, the safe door
        every time, tested); passed, the path through either door; caught, twice the longest path to the
        goal, dearer than any sequence that can still finish. Rows with a status column
        (``simulate_batch(..., scored=True)``) are priced by their own status, others by this env's."""
        resolution = self.path_resolution
        safe = self.grid_through([self.door()]).refined(resolution).cost_to_go(goal)
        both = self.grid_through(self.open_doors()).refined(resolution).cost_to_go(goal)
        lost = 2.0 * float(safe.distance[np.isfinite(safe.distance)].max())

        def cost(rows: np.ndarray) -> np.ndarray:
            rows = np.asarray(rows)
            status = rows[..., 2] if rows.shape[-1] > 2 else np.full(rows.shape[:-1], self._status)
            return np.where(status == SHUT, lost, np.where(status == OPEN, both(rows), safe(rows)))

        return cost


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
        hits = self._per_row(self._sim_rng.random, batch.nsim) < self.kick_probability
        kicks = self._per_row(lambda n: self._sim_rng.normal(0.0, self.kick_std, (n, 2)), batch.nsim)
        if self._kicks_on():
            batch.qvel[hits] += kicks[hits]

    def _place_at_goal(self) -> None:
        super()._place_at_goal()
        self._steps = 0  # the goal observation does not change with the step

    def _get_goal_params(self) -> np.ndarray:
        return np.array([*self._goal, self._noise_seed, self._steps])

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._goal, self._noise_seed, self._steps = params[:2].copy(), int(params[2]), int(params[3])

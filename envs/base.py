"""The goal-conditioned task contract shared by every env in ``envs/`` (see docs/ARCHITECTURE.md).

A task subclass only says how to draw and apply an episode spec, how to step its physics, what the
agent's state is and where the goal configuration puts the agent. This base turns that into the
Gymnasium API: ``obs="pixels" | "state"``, a goal observation in the same modality (the observation
of the agent *at* the goal), ``info`` with success/distance, reset to a spec, and full sim state I/O.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import mujoco
import mujoco.batch
import numpy as np
from gymnasium import spaces

from envs.errors import UserInputError
from envs.navigation import CostFn, NavigationGrid, task_cost_to_go
from envs.rendering import FrameRenderer, TopDownView

OBS_MODES = ("pixels", "state")
# The simulator state that fully determines the next step: positions, velocities, controls,
# mocap poses (the wall's door) and the constraint solver's warm start.
_SIM_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
_GOAL_SCENE = mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL | mujoco.mjtState.mjSTATE_MOCAP_POS


def spec_vector(spec: Mapping[str, Any], key: str, size: int) -> np.ndarray:
    """Read ``spec[key]`` as a finite float vector of ``size`` numbers, or raise a clear error."""
    try:
        value = np.asarray(spec[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise UserInputError(f"episode spec '{key}' must be {size} numbers, got {spec[key]!r}") from err
    if value.shape != (size,) or not np.all(np.isfinite(value)):
        raise UserInputError(f"episode spec '{key}' must be {size} finite numbers, got {spec[key]!r}")
    return value


def check_make_options(obs: str, image_size: int, render_mode: str | None, render_modes: list[str]) -> None:
    """The arguments every task takes, refused in one line (any task: ``GoalTask`` and the adapter)."""
    if obs not in OBS_MODES:
        raise UserInputError(f"unknown obs mode '{obs}'; choose one of: {', '.join(OBS_MODES)}")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise UserInputError(f"image_size must be a positive integer, got {image_size!r}")
    if render_mode not in (None, *render_modes):
        raise UserInputError(f"unknown render_mode '{render_mode}'; choose rgb_array or leave it unset")


class GoalTask(gym.Env, abc.ABC):
    """Base of all tasks: one MuJoCo model, a fixed top-down camera, a goal reached by the agent."""

    metadata = {"render_modes": ["rgb_array"]}  # render_fps is set per instance from dt
    success_threshold: float
    spec_keys: tuple[str, ...]  # the keys of an episode spec, e.g. ("start", "goal")
    state_dim: int
    goal_dim: int  # size of the goal parameters stored in the sim state after the MuJoCo state
    variant: str | None = None  # a stochastic variant's name ("branching", "noisy"); None: deterministic
    batch_outputs: tuple[str, ...] = ()  # derived MjData fields _achieved_goal_batch reads (e.g. "xpos")
    path_resolution: int = 1  # the oracle's cost-to-go splits each navigation-grid cell into this many per side
    scored_extra: int = 0  # numbers the oracle's cost-to-go reads after the achieved goal (_scored_extra_batch)

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        view: TopDownView,
        dt: float,
        obs: str = "pixels",
        image_size: int = 64,
        render_mode: str | None = None,
    ) -> None:
        check_make_options(obs, image_size, render_mode, self.metadata["render_modes"])
        self.model, self.data = model, data
        self.dt = dt  # seconds of simulated time per env step
        self.metadata = {**self.metadata, "render_fps": round(1.0 / dt)}
        self.obs_mode, self.image_size, self.render_mode = obs, image_size, render_mode
        self._frames = FrameRenderer(model, view)
        self._goal_key: np.ndarray | None = None  # the goal scene the cached goal observations show
        self._goal_state = np.zeros(self.state_dim, np.float32)
        self._goal_frame: np.ndarray | None = None
        self._batches: dict[int, mujoco.batch.Batch] = {}  # by size, for simulate_batch
        self.action_space = spaces.Box(-1.0, 1.0, (model.nu,), np.float32)
        if obs == "pixels":
            x_space = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        else:
            x_space = spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
        self.observation_space = spaces.Dict({"observation": x_space, "goal": x_space})

    # ----- what a task defines -----------------------------------------------------------------
    @abc.abstractmethod
    def _draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random JSON-serialisable episode spec (may still start at the goal; filtered here)."""

    @abc.abstractmethod
    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        """Validate ``spec`` (UserInputError) and put the simulator at its start with its goal."""

    @abc.abstractmethod
    def _advance(self, action: np.ndarray) -> None:
        """Advance the physics by one env step under ``action`` (already in [-1, 1])."""

    @abc.abstractmethod
    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        """Advance every simulation of ``batch`` by one env step, as :meth:`_advance` does one
        simulator; ``action (N, A)`` is already in [-1, 1]."""

    @abc.abstractmethod
    def _achieved_goal_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        """:meth:`achieved_goal` of every simulation of ``batch`` after :meth:`_advance_batch`, ``(N, g)``."""

    def _scored_extra_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        """What the oracle's :meth:`cost_to_go` reads of every simulation of ``batch`` besides its achieved
        goal, ``(N, scored_extra)``: nothing by default; a task whose goal moves only under the agent's
        contact (Push-T) adds the agent's position, or no short plan sees a way to the goal."""
        return np.empty((batch.nsim, 0))

    @abc.abstractmethod
    def agent_state(self) -> np.ndarray:
        """The agent's low-dimensional state (the state observation), float32 ``(state_dim,)``."""

    @abc.abstractmethod
    def _place_at_goal(self) -> None:
        """Move the agent into the goal configuration (at rest); the base saves and restores around it."""

    @abc.abstractmethod
    def achieved_goal(self) -> np.ndarray:
        """The position the task metric is measured from (fingertip, ball...)."""

    @abc.abstractmethod
    def desired_goal(self) -> np.ndarray:
        """The position the task metric is measured to."""

    @abc.abstractmethod
    def _get_goal_params(self) -> np.ndarray:
        """Goal variables kept outside MuJoCo's state, ``(goal_dim,)``."""

    @abc.abstractmethod
    def _set_goal_params(self, params: np.ndarray) -> None:
        """Restore what :meth:`_get_goal_params` returned."""

    def is_success(self) -> bool:
        return self.distance() < self.success_threshold

    @property
    def simulator_unavailable(self) -> str | None:
        """Why the simulator state cannot be saved (None: it can); every built-in task can."""
        return None

    def navigation_grid(self) -> NavigationGrid | None:
        """Maze-like tasks: the free space of the current episode (waypoint policies, the oracle's
        cost-to-go); ``None`` where nothing stands between the agent and its goal."""
        return None

    def cost_to_go(self, goal: np.ndarray) -> CostFn:
        """The true cost-to-go to ``goal`` of achieved-goal positions ``(..., g) -> (...)``: the
        shortest path through free space on maze-like tasks, else the straight distance. It also takes
        the rows of ``simulate_batch(..., scored=True)`` ``(..., g + scored_extra)``, which begin with the
        achieved goal; a task with ``scored_extra`` reads the rest (Push-T: the pusher's position)."""
        return task_cost_to_go(self.navigation_grid(), self.path_resolution, goal)

    # ----- episode specs -----------------------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw an episode spec whose start does not already succeed; the simulator is left as it was."""
        saved = self.get_sim_state()
        while True:
            spec = self._draw_task(rng)
            self._load_physics(spec)
            if not self.is_success():
                break
        self._restore(saved)
        return spec

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``options`` is an episode spec from :meth:`sample_task`; without one (None or {}) it is drawn from ``seed``."""
        super().reset(seed=seed)
        spec = options if options else self.sample_task(self.np_random)
        self._load_physics(spec)
        self._refresh_goal()
        return self._observe(), self._info()

    def _load_physics(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise UserInputError(f"reset options must be an episode spec dict, got {type(spec).__name__}")
        missing = [k for k in self.spec_keys if k not in spec]
        unknown = [k for k in spec if k not in self.spec_keys]
        if missing or unknown:
            raise UserInputError(
                f"episode spec needs exactly the keys {list(self.spec_keys)}; "
                f"missing {missing}, unknown {unknown}"
            )
        mujoco.mj_resetData(self.model, self.data)
        self._apply_task(spec)
        mujoco.mj_forward(self.model, self.data)

    # ----- stepping and observations -------------------------------------------------------------
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Reward is 1.0 while successful (planners use their own energy); episodes never terminate
        early, the TimeLimit wrapper ends them, so every episode of a task has the same length."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise UserInputError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        self._advance(np.clip(action, -1.0, 1.0))
        mujoco.mj_forward(self.model, self.data)  # positions after the step, as a restore would give
        info = self._info()
        return self._observe(), float(info["success"]), False, False, info

    def simulate_batch(self, start_state: np.ndarray, actions: np.ndarray, scored: bool = False) -> np.ndarray:
        """``info["achieved_goal"]`` after every step of N action sequences from one sim state.

        ``start_state`` is a :meth:`get_sim_state`, ``actions`` ``(N, H, A)``; returns ``float32 (N, H, g)``,
        what N copies of this env restored to ``start_state`` and stepped through ``actions[i]`` give (bit
        for bit: each simulation is a full integration-state row of ``mujoco.batch``). The simulator
        oracle scores thousands of sequences per control step: here they step in C, one Python call per
        env step for all N, and this env's own state is untouched. ``scored=True`` (the oracle) appends
        what :meth:`cost_to_go` reads besides, ``(N, H, g + scored_extra)`` (:meth:`_scored_extra_batch`;
        no column more on a task with ``scored_extra == 0``).
        """
        start_state = self._check_sim_state(start_state)
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        if actions.ndim != 3 or actions.shape[2:] != self.action_space.shape:
            raise UserInputError(f"actions must have shape (N, H, {self.model.nu}), got {actions.shape}")
        n, horizon = actions.shape[:2]
        batch = self._batch(n)
        batch.state[:] = start_state[: batch.nstate]
        g = self.achieved_goal().size
        achieved = np.empty((n, horizon, g + (self.scored_extra if scored else 0)), np.float32)
        for t in range(horizon):
            self._advance_batch(batch, actions[:, t])
            achieved[:, t, :g] = self._achieved_goal_batch(batch)
            if scored and self.scored_extra:
                achieved[:, t, g:] = self._scored_extra_batch(batch)
        return achieved

    def _batch(self, size: int) -> mujoco.batch.Batch:
        """A cached batch of ``size`` simulations on the calling thread: planning batches are small, and
        more threads compete with torch for a few cores. It copies the model when first made."""
        if size not in self._batches:
            batch = mujoco.batch.Batch(self.model, size, nthread=1)
            for name in self.batch_outputs:
                batch.bind(name)  # a derived field is copied out only by the calls after it is bound
            self._batches[size] = batch
        return self._batches[size]

    def distance(self) -> float:
        return float(np.linalg.norm(self.achieved_goal() - self.desired_goal()))

    def _observe(self) -> dict[str, np.ndarray]:
        if self.obs_mode == "pixels":
            return {"observation": self.render_frame(self.image_size), "goal": self._goal_frame.copy()}
        return {"observation": self.agent_state(), "goal": self._goal_state.copy()}

    def _info(self) -> dict[str, Any]:
        return {
            "success": self.is_success(),
            "distance": self.distance(),
            "state": self.agent_state(),
            "goal_state": self._goal_state.copy(),
            "achieved_goal": self.achieved_goal(),
            "desired_goal": self.desired_goal(),
        }

    # ----- goal observations -------------------------------------------------------------------
    def _refresh_goal(self) -> None:
        """Recompute the goal state/frame; skipped when the goal scene did not change (cheap restores)."""
        scene = self._at_goal(self._goal_scene)
        if np.array_equal(scene, self._goal_key):
            return
        self._goal_key = scene
        self._goal_state = self._at_goal(self.agent_state)
        self._goal_frame = self.render_goal_frame(self.image_size) if self.obs_mode == "pixels" else None

    def _goal_scene(self) -> np.ndarray:
        """What the goal observation depends on: positions, velocities, mocap poses (the wall's door)
        and the goal parameters, read with the agent at the goal."""
        scene = np.empty(mujoco.mj_stateSize(self.model, _GOAL_SCENE))
        mujoco.mj_getState(self.model, self.data, scene, _GOAL_SCENE)
        return np.concatenate([scene, self._get_goal_params()])

    def _at_goal(self, read: Any) -> Any:
        """Call ``read()`` with the agent placed in the goal configuration, then put everything back."""
        saved = self.get_sim_state()
        self._place_at_goal()
        mujoco.mj_forward(self.model, self.data)
        try:
            return read()
        finally:
            self._restore(saved)

    # ----- rendering ---------------------------------------------------------------------------
    def render_frame(self, size: int) -> np.ndarray:
        """The observation camera's view of the current state, ``uint8 (size, size, 3)``."""
        return self._frames.render(self.data, size)

    def render_goal_frame(self, size: int) -> np.ndarray:
        """The observation camera's view of the goal configuration, ``uint8 (size, size, 3)``."""
        return self._at_goal(lambda: self.render_frame(size))

    def render(self) -> np.ndarray | None:
        return self.render_frame(self.image_size) if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self._frames.close()

    # ----- simulator state ---------------------------------------------------------------------
    def get_sim_state(self) -> np.ndarray:
        """MuJoCo's full integration state followed by the goal parameters, float64."""
        state = np.empty(mujoco.mj_stateSize(self.model, _SIM_STATE))
        mujoco.mj_getState(self.model, self.data, state, _SIM_STATE)
        return np.concatenate([state, self._get_goal_params()])

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore :meth:`get_sim_state`; the next observations are identical to the saved env's."""
        state = self._check_sim_state(state)
        self._restore(state)
        self._refresh_goal()

    def _check_sim_state(self, state: np.ndarray) -> np.ndarray:
        """``state`` as float64, or a UserInputError if it is not a sim state of this task."""
        state = np.asarray(state, dtype=np.float64)
        expected = mujoco.mj_stateSize(self.model, _SIM_STATE) + self.goal_dim
        if state.shape != (expected,):
            raise UserInputError(f"sim state must have shape ({expected},) for this task, got {state.shape}")
        return state

    def _restore(self, state: np.ndarray) -> None:
        physics = state[: state.size - self.goal_dim]
        mujoco.mj_setState(self.model, self.data, physics, _SIM_STATE)
        self._set_goal_params(state[state.size - self.goal_dim :])
        mujoco.mj_forward(self.model, self.data)

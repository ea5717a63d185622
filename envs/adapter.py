"""Any goal-conditioned Gymnasium env as a task, from one config file (``configs/task/<name>.yaml``).

The config says how to build the env, which convention it follows (``envs/conventions.py``) and
how success and the goal positions are read (``envs/readers.py``); the rest follows from the env:

* Episodes: a spec is ``{"seed": s}`` (plus ``"task_id"`` for an env with evaluation tasks), and the
  env's own ``reset`` with it draws start and goal, so held-out pairs are seeds the collection never
  drew: both draw 31-bit seeds from generators of different seeds, which coincide with chance 2^-31
  per pair and training episode.
* Goal observation: the observation of the agent at the goal. Where the env exposes MuJoCo and its
  achieved goal is a run of ``qpos`` (``envs/mujoco_state.py``), those joints are set to the goal,
  everything at rest, and the env's own ``observe`` method (state) or ``render()`` (pixels) is read;
  otherwise (state only) it is the current observation with its achieved-goal entries replaced by the
  goal vector. OGBench's own ``info["goal"]`` is not used: OGBench settles that scene with two actions
  from an unseeded sampler, so it differs between two resets with one seed.
* Pixels: the env's ``render()``, built at the requested size. Actions: [-1, 1], rescaled to the env's box.
* Simulator state: MuJoCo's integration state plus the episode's spec; a restore into another env
  first resets it with that spec (the env's Python-side goal) and then sets the physics. An env
  without MuJoCo has no saved state, and so no oracle (``simulator_unavailable`` says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.adapter_batch import BatchSimulator
from envs.base import check_make_options
from envs.conventions import build_env, check_spec, convention_of, env_method
from envs.errors import UserInputError
from envs.mujoco_state import get_state, locate, mujoco_of, placed_at_goal, refresh, set_state, state_size
from envs.navigation import CostFn, MazeLayout, NavigationGrid, maze_grid, task_cost_to_go
from envs.readers import ActionScale
from envs.rendering import resize_frame
from envs.task_config import AdapterConfig

SEEDS = 2**31  # episode seeds are drawn below this (and stored exactly in a float64 sim state)
SPEC_SLOTS = 2  # a sim state ends with the episode's seed and task_id (0: none)
DRAWS = 100  # specs drawn before concluding that every start succeeds (a success rule that is always true)


class GoalEnvTask(gym.Env):
    """A third-party goal-conditioned env behind the task contract of docs/ARCHITECTURE.md."""

    metadata = {"render_modes": ["rgb_array"]}
    variant: str | None = None  # a third-party env's chance is its own: no stochastic variant of ours

    def __init__(
        self,
        task: str,
        config: Mapping[str, Any],
        obs: str = "pixels",
        image_size: int = 64,
        render_mode: str | None = None,
        collection: bool = False,
    ) -> None:
        """``collection``: build the env as data collection wants it (the config's ``collect_kwargs``)."""
        check_make_options(obs, image_size, render_mode, self.metadata["render_modes"])
        self.config = AdapterConfig.parse(task, config)
        self.obs_mode, self.image_size, self.render_mode = obs, image_size, render_mode
        self.convention = convention_of(self.config)
        self.wrapped = build_env(self.config, collection, image_size)
        self.inner = self.wrapped.unwrapped
        self.name = self.config.env_name
        self._scale = ActionScale(self.inner.action_space, self.name)
        self.action_space = spaces.Box(-1.0, 1.0, self._scale.shape, np.float32)
        self._sim = self._spec = self._goal_key = self._goal_state = self._goal_frame = None
        obs_now, info = self._reset_inner({"seed": 0, **self.convention.probe_task(collection)})
        self.convention.check(self.inner, obs_now, info, self.name, collection)
        self._achieved = self.config.achieved or self.convention.achieved
        self._desired = self.config.desired or self.convention.desired
        if self._achieved is None or self._desired is None:
            raise UserInputError(f"task {task}: the {self.convention.name} convention reads no goal positions; "
                                 "give achieved_goal and desired_goal readers in its env: section")
        self._sim = mujoco_of(self.inner)  # after a reset: OGBench compiles its model there
        self._after_env_call(obs_now, info)
        self._tasks = self.convention.task_names(self.inner, collection)
        achieved, desired = self.achieved_goal(), self.desired_goal()
        if achieved.size == 0 or achieved.shape != desired.shape:
            raise UserInputError(f"task {task}: achieved_goal reads {achieved.size} numbers and desired_goal "
                                 f"{desired.size}; they must be the same positive number")
        self._goal_joints = locate(self._sim[1].qpos, achieved) if self._sim else None
        self._observe_now = env_method(self.inner, self.config.observe or self.convention.observe,
                                       required=self.config.observe is not None, task=task)
        self.state_dim, self.goal_dim = self.agent_state().size, achieved.size
        self._batch = self._batch_simulator(task)
        self.success_threshold = self.config.success.threshold  # None where the env's own flag decides
        self.path_resolution = self.config.path_resolution
        if obs == "pixels":
            x_space = spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
            if self._goal_joints is None:  # checked without rendering: no GL context before a fork
                raise UserInputError(self._cannot_draw())
        else:
            x_space = spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
        self.observation_space = spaces.Dict({"observation": x_space, "goal": x_space})
        fps = self.inner.metadata.get("render_fps")
        if fps:
            self.metadata = {**self.metadata, "render_fps": fps / self.config.action_repeat}
        self._goal_state_for(desired)  # a goal the env cannot show is refused now, not in an episode
        self._spec = None  # that reset was no episode: the next restore must reset

    # ----- episodes ----------------------------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """An episode spec (a reset seed, and a task for envs with tasks) whose start does not already
        succeed; the env is left as it was (with MuJoCo; without, its episode restarts)."""
        saved = self._snapshot()
        for _ in range(DRAWS):
            spec: dict[str, Any] = {"seed": int(rng.integers(SEEDS))}
            if self._tasks:
                spec["task_id"] = int(rng.integers(1, len(self._tasks) + 1))
            self._load(spec, goal=False)
            if not self.is_success():
                self._restore_snapshot(saved)
                return spec
        raise UserInputError(f"task {self.config.name}: all {DRAWS} episodes drawn start at success; check its "
                             f"success rule ({self.config.success})")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """``options`` is an episode spec from :meth:`sample_task`; without one it is drawn from ``seed``."""
        super().reset(seed=seed)
        self._load(dict(options) if options else self.sample_task(self.np_random))
        return self._observe(), self._info_dict()

    def _load(self, spec: Mapping[str, Any], goal: bool = True) -> None:
        """Reset the env to ``spec`` (validated first); ``goal``: also recompute the goal observations."""
        self._reset_inner(check_spec(spec, self._tasks, SEEDS))
        self._goal_key = None
        if goal:
            self._refresh_goal()

    def _reset_inner(self, spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        obs, info = self.inner.reset(seed=spec["seed"], options=self.convention.reset_options(spec))
        self._after_env_call(obs, info)
        self._spec = spec
        return obs, info

    def _after_env_call(self, obs: Any, info: Mapping[str, Any]) -> None:
        """Keep what the env returned, with derived MuJoCo quantities as a restore leaves them."""
        if self._sim is not None:
            refresh(*self._sim)
        self._obs, self._info = obs, dict(info)

    # ----- stepping and observations -----------------------------------------------------------
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Reward is 1.0 while successful; ``terminated`` / ``truncated`` are the env's own (our TimeLimit
        ends episodes at the task's length)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise UserInputError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        terminated, truncated = self._advance(action)
        self._refresh_goal()  # a target moved mid-episode (OGBench's collection) gets its goal observation
        info = self._info_dict()
        return self._observe(), float(info["success"]), terminated, truncated, info

    def _advance(self, action: np.ndarray) -> tuple[bool, bool]:
        env_action = self._scale.to_env(action)
        terminated = truncated = False
        for _ in range(self.config.action_repeat):
            obs, _, terminated, truncated, info = self.inner.step(env_action)
            self._after_env_call(obs, info)
            if terminated or truncated:
                break
        return bool(terminated), bool(truncated)

    def agent_state(self) -> np.ndarray:
        return self.convention.state(self._obs)

    def achieved_goal(self) -> np.ndarray:
        return self._achieved.read(self._obs, self._info, *(self._sim or (None, None)))

    def desired_goal(self) -> np.ndarray:
        return self._desired.read(self._obs, self._info, *(self._sim or (None, None)))

    def distance(self) -> float:
        return float(np.linalg.norm(self.achieved_goal() - self.desired_goal()))

    def is_success(self) -> bool:
        return self.config.success.succeeded(self._info, self.distance())

    def _observe(self) -> dict[str, np.ndarray]:
        if self.obs_mode == "pixels":
            return {"observation": self.render_frame(self.image_size), "goal": self._goal_frame.copy()}
        return {"observation": self.agent_state(), "goal": self._goal_state.copy()}

    def _info_dict(self) -> dict[str, Any]:
        """The task contract's info, plus ``env_info``: the env's own (scripted policies read it)."""
        achieved, desired = self.achieved_goal(), self.desired_goal()
        distance = float(np.linalg.norm(achieved - desired))
        return {"success": self.config.success.succeeded(self._info, distance), "distance": distance,
                "state": self.agent_state(), "goal_state": self._goal_state.copy(),
                "achieved_goal": achieved, "desired_goal": desired, "env_info": self._info}

    # ----- goal observations -------------------------------------------------------------------
    def _refresh_goal(self) -> None:
        """Recompute the goal observations when the desired goal changed."""
        desired = self.desired_goal()
        if np.array_equal(desired, self._goal_key):
            return
        self._goal_key = desired
        self._goal_state = self._goal_state_for(desired)
        self._goal_frame = self._goal_frame_for(desired, self.image_size) if self.obs_mode == "pixels" else None

    def _goal_state_for(self, desired: np.ndarray) -> np.ndarray:
        """The state observation with the agent placed at ``desired``; else the goal vector written over
        the achieved goal's entries of the current observation (it must be a run of them)."""
        if self._goal_joints is not None and self._observe_now is not None:
            with placed_at_goal(*self._sim, self._goal_joints, desired):
                seen = self._observe_now()
            return self.convention.state(seen[0] if isinstance(seen, tuple) else seen)  # (obs, info) gives obs
        state = self.agent_state().copy()
        where = locate(state, self.achieved_goal().astype(np.float32))
        if where is None:
            raise UserInputError(f"task {self.config.name}: cannot form a goal observation: no MuJoCo joints hold "
                                 "the achieved goal (or no observe: method), and it is not a run of the observation")
        state[where] = desired
        return state

    def _goal_frame_for(self, desired: np.ndarray, size: int) -> np.ndarray:
        if self._goal_joints is None:
            raise UserInputError(self._cannot_draw())
        with placed_at_goal(*self._sim, self._goal_joints, desired):
            return self.render_frame(size)

    def _cannot_draw(self) -> str:
        return (f"task {self.config.name}: cannot draw the goal: the env exposes no MuJoCo joints that hold the "
                "achieved goal, so the agent cannot be placed there (use obs=state)")

    # ----- rendering ---------------------------------------------------------------------------
    def render_frame(self, size: int) -> np.ndarray:
        """The env's own ``render()`` of the current state, ``uint8 (size, size, 3)``."""
        frame = self.inner.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise UserInputError(f"env {self.name}'s render() gave {type(frame).__name__}, not an RGB image")
        return resize_frame(np.ascontiguousarray(frame, dtype=np.uint8), size)

    def render_goal_frame(self, size: int) -> np.ndarray:
        """The env's own ``render()`` with the agent at the goal, ``uint8 (size, size, 3)``."""
        if self._goal_frame is not None and self._goal_key is not None:
            return resize_frame(self._goal_frame, size)
        return self._goal_frame_for(self.desired_goal(), size)

    def render(self) -> np.ndarray | None:
        return self.render_frame(self.image_size) if self.render_mode == "rgb_array" else None

    # ----- simulator state ---------------------------------------------------------------------
    @property
    def simulator_unavailable(self) -> str | None:
        if self._sim is None:
            return (f"env {self.name} exposes no MuJoCo model/data on env.unwrapped: its simulator state cannot "
                    "be saved or restored, so there is no oracle for it")
        return None

    def get_sim_state(self) -> np.ndarray:
        """MuJoCo's integration state, then the episode's seed and task_id, float64."""
        if self.simulator_unavailable or self._spec is None:
            raise UserInputError(self.simulator_unavailable or "reset the env before saving its state")
        spec = [self._spec["seed"], self._spec.get("task_id", 0)]
        return np.concatenate([get_state(*self._sim), np.asarray(spec, np.float64)])

    def set_sim_state(self, state: np.ndarray) -> None:
        """Restore :meth:`get_sim_state`: the next step is the saved env's, bit for bit."""
        self._restore_physics(self._check_sim_state(state))
        self._refresh_goal()

    def _restore_physics(self, state: np.ndarray) -> None:
        spec = {"seed": int(state[-2])} | ({"task_id": int(state[-1])} if self._tasks else {})
        if spec != self._spec:
            self._load(spec, goal=False)  # the episode's Python-side state (the env's goal) comes from its reset
        set_state(*self._sim, state[:-SPEC_SLOTS])

    def _check_sim_state(self, state: np.ndarray) -> np.ndarray:
        if self.simulator_unavailable:
            raise UserInputError(self.simulator_unavailable)
        state = np.asarray(state, dtype=np.float64)
        expected = state_size(self._sim[0]) + SPEC_SLOTS
        if state.shape != (expected,):
            raise UserInputError(f"sim state must have shape ({expected},) for this task, got {state.shape}")
        return state

    def _batch_simulator(self, task: str) -> BatchSimulator | None:
        """The config's ``env.batch`` simulator, checked against the env's own steps (None without one)."""
        spec = self.config.batch
        if spec is None:
            return None
        if self._sim is None or self._goal_joints is None:
            raise UserInputError(f"task {task}: env.batch needs the env's MuJoCo model/data and the achieved goal "
                                 "in its qpos; remove env.batch to simulate with the env's own steps")
        simulator = BatchSimulator(self._sim[0], spec.resolve_substeps(self.inner, task), spec.clip_qvel,
                                   self.config.action_repeat, self._goal_joints)
        start = self.get_sim_state()  # the probe reset's, from __init__
        actions = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 3, *self.action_space.shape))
        expected = self._simulate_in_python(start, actions)
        got = simulator.run(start[:-SPEC_SLOTS], self._scale.to_env(actions))
        if not np.array_equal(got, expected):
            raise UserInputError(f"task {task}: env.batch does not reproduce the env's own steps (largest difference "
                                 f"{np.abs(got - expected).max():.3g}); remove env.batch, or fix substeps / clip_qvel")
        return simulator

    def simulate_batch(self, start_state: np.ndarray, actions: np.ndarray, scored: bool = False) -> np.ndarray:
        """``info["achieved_goal"]`` after every step of ``actions (N, H, A)`` from ``start_state``,
        ``float32 (N, H, g)``: exactly what stepping the env gives. With ``env.batch`` in the task config,
        all N in C (checked bit for bit against the env when the task was built); otherwise the env's own
        steps from a restore, in Python, one env step at a time. Its cost-to-go reads the achieved goal
        alone, so ``scored=True`` adds nothing."""
        start_state = self._check_sim_state(start_state)
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[2:] != self.action_space.shape:
            raise UserInputError(f"actions must have shape (N, H, {self.action_space.shape[0]}), got {actions.shape}")
        if self._batch is not None:
            return self._batch.run(start_state[:-SPEC_SLOTS], self._scale.to_env(actions))
        return self._simulate_in_python(start_state, actions)

    def _simulate_in_python(self, start_state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        saved = self._snapshot()
        achieved = np.empty((*actions.shape[:2], self.goal_dim), np.float32)
        for i, sequence in enumerate(actions):
            self._restore_physics(start_state)  # physics only: no goal observation (no render) is needed here
            for t, action in enumerate(sequence):
                self._advance(action)
                achieved[i, t] = self.achieved_goal()
        self._restore_snapshot(saved)
        return achieved

    def _snapshot(self) -> tuple[Any, ...]:
        """Everything :meth:`_restore_snapshot` needs to put this env back (None before any episode)."""
        if self._spec is None:
            return (None,)
        physics = None if self.simulator_unavailable else self.get_sim_state()
        return (dict(self._spec), physics, self._obs, self._info, self._goal_key, self._goal_state, self._goal_frame)

    def _restore_snapshot(self, saved: tuple[Any, ...]) -> None:
        spec = saved[0]
        if spec is None:
            return
        if saved[1] is None:
            self._load(spec, goal=False)
        else:
            self._restore_physics(saved[1])
        self._obs, self._info, self._goal_key, self._goal_state, self._goal_frame = saved[2:]

    # ----- what the env knows beyond its observations ------------------------------------------
    def navigation_grid(self) -> NavigationGrid | None:
        """The free space of the env's maze (``navigation: {maze: ATTR}``), or None."""
        if self.config.maze is None:
            return None
        maze = getattr(self.inner, self.config.maze, None)
        if not isinstance(maze, MazeLayout):
            raise UserInputError(f"task {self.config.name}: env.unwrapped.{self.config.maze} is not a "
                                 "gymnasium-robotics Maze (maze_map, maze_size_scaling, x/y_map_center)")
        return maze_grid(maze)

    def cost_to_go(self, goal: np.ndarray) -> CostFn:
        return task_cost_to_go(self.navigation_grid(), self.path_resolution, goal)

    def evaluation_tasks(self) -> list[str]:
        return list(self._tasks)

    def sample_evaluation_task(self, task: int, rng: np.random.Generator) -> dict[str, Any]:
        if not 0 <= task < len(self._tasks):
            raise UserInputError(f"evaluation task {task} is not one of 0..{len(self._tasks) - 1}")
        return {"seed": int(rng.integers(SEEDS)), "task_id": task + 1}

    def evaluation_task_of(self, spec: Mapping[str, Any]) -> str | None:
        task = spec.get("task_id") if self._tasks else None
        return self._tasks[task - 1] if isinstance(task, int) and 1 <= task <= len(self._tasks) else None

    def to_unit_action(self, env_action: np.ndarray) -> np.ndarray:
        """An action in the env's own units (a scripted policy's) as one of ours, in [-1, 1]."""
        return self._scale.to_unit(env_action)

    def close(self) -> None:
        self.wrapped.close()

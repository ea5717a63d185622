"""The two conventions goal-conditioned envs follow, and building such an env from its task config.

* ``goal_env`` (gymnasium-robotics' ``GoalEnv``): a dict observation ``observation`` /
  ``achieved_goal`` / ``desired_goal``; the goal is drawn by ``reset(seed=...)``.
* ``ogbench`` (OGBench's goal-conditioned envs): a flat observation, five fixed evaluation tasks chosen
  by ``reset(options=dict(task_id=k))`` with the goal observation in ``info["goal"]`` and success in
  ``info["success"]``. Its ``mode="data_collection"`` envs (the scripted oracles' privileged info,
  targets re-drawn during an episode) have no tasks; their goal is what ``desired_goal`` reads.

An env that follows neither, or one that cannot be built, is refused in one line naming what is missing.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator

from envs.errors import UserInputError, first_line
from envs.readers import Reader, dotted_attribute
from envs.task_config import AdapterConfig

GOAL_ENV_KEYS = ("observation", "achieved_goal", "desired_goal")
# gymnasium-robotics 1.4.2's joint helpers compare mujoco 4's joint-type enums with `in`, which is always
# false: the Fetch, Hand and Kitchen envs assert there while they are built.
ROBOTICS_JOINT_HELPERS = ("set_joint_qpos", "get_joint_qpos", "set_joint_qvel", "get_joint_qvel")


@runtime_checkable
class OGBenchTasks(Protocol):
    """An OGBench env in its task mode: its evaluation tasks, ``task_id`` 1..``num_tasks``."""

    task_infos: list[dict[str, Any]]
    num_tasks: int


class Convention:
    """What differs between conventions: the check, the state vector, default readers, evaluation tasks."""

    name = ""
    achieved: Reader | None = None  # default readers, when the task config names none
    desired: Reader | None = None
    observe: str | None = None  # default dotted method giving the state observation of the simulator now

    def check(self, env: Any, obs: Any, info: Mapping[str, Any], env_name: str, collection: bool) -> None:
        """Raise a one-line UserInputError if the env (``env.unwrapped``, just reset) does not follow it."""

    def state(self, obs: Any) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32).reshape(-1)

    def task_names(self, env: Any, collection: bool) -> list[str]:
        """The env's own evaluation tasks, in ``task_id`` order (none for most envs)."""
        return []

    def reset_options(self, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def probe_task(self, collection: bool) -> dict[str, Any]:
        """Spec entries of the reset the adapter checks the env with, beside its seed."""
        return {}


class GoalEnvConvention(Convention):
    name = "goal_env"
    achieved = Reader("obs", "achieved_goal")
    desired = Reader("obs", "desired_goal")

    def check(self, env: Any, obs: Any, info: Mapping[str, Any], env_name: str, collection: bool) -> None:
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or not all(k in space.spaces for k in GOAL_ENV_KEYS):
            raise UserInputError(
                f"env {env_name} does not follow the goal_env convention (no goal): its observation space is "
                f"{type(space).__name__}, not a Dict with {', '.join(GOAL_ENV_KEYS)}"
            )

    def state(self, obs: Any) -> np.ndarray:
        """The ``observation`` entry (an ``observe`` method may return it alone, as PointMaze's ball does)."""
        vector = obs["observation"] if isinstance(obs, Mapping) else obs
        return np.asarray(vector, dtype=np.float32).reshape(-1)


class OGBenchConvention(Convention):
    name = "ogbench"
    observe = "compute_observation"

    def check(self, env: Any, obs: Any, info: Mapping[str, Any], env_name: str, collection: bool) -> None:
        if isinstance(obs, Mapping):
            raise UserInputError(f"env {env_name} does not follow the ogbench convention: its observation is a "
                                 "dict (use convention: goal_env for gymnasium-robotics GoalEnvs)")
        if collection:
            return  # data-collection envs have no tasks; desired_goal reads the target
        if not isinstance(env, OGBenchTasks) or "goal" not in info:
            raise UserInputError(f"env {env_name} does not follow the ogbench convention (no goal): "
                                 "reset(options=dict(task_id=1)) gave no info['goal'] (and the env lists no task_infos)")

    def task_names(self, env: Any, collection: bool) -> list[str]:
        if collection or not isinstance(env, OGBenchTasks):
            return []
        return [str(task.get("task_name", f"task{i + 1}")) for i, task in enumerate(env.task_infos)]

    def reset_options(self, spec: Mapping[str, Any]) -> dict[str, Any] | None:
        return {"task_id": int(spec["task_id"])} if "task_id" in spec else None

    def probe_task(self, collection: bool) -> dict[str, Any]:
        return {} if collection else {"task_id": 1}  # without one OGBench draws a task from numpy's global RNG


CONVENTION_CLASSES: dict[str, type[Convention]] = {"goal_env": GoalEnvConvention, "ogbench": OGBenchConvention}


def convention_of(config: AdapterConfig) -> Convention:
    return CONVENTION_CLASSES[config.convention]()


def env_method(env: Any, dotted: str | None, required: bool, task: str) -> Any:
    """``env.<dotted>`` (e.g. PointMaze's ``point_env._get_obs``) if callable; a one-line error if the
    task config named one that is not, None if only the convention's default is missing."""
    target = dotted_attribute(env, dotted) if dotted else env
    if dotted and callable(target):
        return target
    if required:
        raise UserInputError(f"task {task}: observe: {dotted} is not a method of the env")
    return None


def check_spec(spec: Any, tasks: list[str], seeds: int) -> dict[str, Any]:
    """An adapted task's episode spec: ``{"seed": s}``, plus ``"task_id"`` (1-based) where the env has tasks."""
    keys = {"seed", "task_id"} if tasks else {"seed"}
    if not isinstance(spec, Mapping) or set(spec) != keys:
        raise UserInputError(f"episode spec needs exactly the keys {sorted(keys)}, got {spec!r}")
    seed, task = spec["seed"], spec.get("task_id", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seed, task)) or not 0 <= seed < seeds:
        raise UserInputError(f"episode spec seed must be an integer in [0, {seeds}) and task_id an integer; got {spec!r}")
    if not 1 <= task <= max(len(tasks), 1):
        raise UserInputError(f"episode spec task_id {task} is not one of 1..{len(tasks)} ({', '.join(tasks)})")
    return dict(spec)


def build_env(config: AdapterConfig, collection: bool, frame_size: int) -> gym.Env:
    """The env of ``config``: its id's entry point (or the factory) called with the id's registered
    kwargs, then the config's, then rendering at ``frame_size``. No Gymnasium wrappers: the adapter
    keeps its own time limit, and an env's own would end episodes early."""
    if config.module is not None:
        try:
            importlib.import_module(config.module)
        except ModuleNotFoundError as err:
            extra = f' (pip install -e ".[{config.module}]")' if config.module == "ogbench" else ""
            raise UserInputError(f"task {config.name} needs the package {config.module}, which is not "
                                 f"installed{extra}") from err
    creator, kwargs = _creator(config)
    kwargs.update(config.kwargs)
    if collection:
        kwargs.update(config.collect_kwargs)
    kwargs.update({"render_mode": "rgb_array", **{key: frame_size for key in config.size_kwargs}})
    try:
        env = creator(**kwargs)
    except AssertionError as err:
        raise UserInputError(_assertion_message(config.env_name, err)) from err
    except TypeError as err:
        raise UserInputError(f"env {config.env_name} cannot be built with {sorted(kwargs)}: {first_line(err)}") from err
    if not isinstance(env, gym.Env):
        raise UserInputError(f"env {config.env_name} built a {type(env).__name__}, not a gymnasium.Env")
    return env


def _creator(config: AdapterConfig) -> tuple[Any, dict[str, Any]]:
    if config.factory is not None:
        module, name = config.factory.split(":", 1)
        try:
            return getattr(importlib.import_module(module), name), {}
        except (ImportError, AttributeError) as err:
            raise UserInputError(f"task {config.name}: factory {config.factory} cannot be imported "
                                 f"({first_line(err)})") from err
    try:
        spec = gym.spec(config.env_id)
    except gym.error.Error as err:
        hint = f" (is {config.module} installed?)" if config.module else " (name the package that registers it: module:)"
        raise UserInputError(f"task {config.name}: {first_line(err)}{hint}") from err
    creator = spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
    return creator, dict(spec.kwargs)


def _assertion_message(env_name: str, err: AssertionError) -> str:
    """Name where the env's own assertion failed; the gymnasium-robotics/mujoco 4 clash by its cause."""
    frame = traceback.extract_tb(err.__traceback__)[-1]
    if "gymnasium_robotics" in frame.filename and frame.name in ROBOTICS_JOINT_HELPERS:
        return (f"env {env_name} cannot be built: gymnasium-robotics {version('gymnasium-robotics')}'s "
                f"mujoco_utils.{frame.name} never recognises a joint type under mujoco {mujoco.__version__} "
                "(its `in` test of the new joint-type enums is always false; the Fetch, Hand and Kitchen envs hit it)")
    return f"env {env_name} cannot be built: an assertion failed in {frame.filename}:{frame.lineno} ({frame.name})"

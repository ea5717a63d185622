"""The ``env:`` section of a task config: everything the adapter needs to make a third-party env a task.

``configs/task/<name>.yaml`` with an ``env:`` section is a task with no code of its own
(``envs/adapter.py``); the registry finds it there. Every key is checked here, once, so that a typo
is one line naming the file and the key rather than an error deep inside an episode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envs.adapter_batch import BatchSpec
from envs.errors import UserInputError
from envs.readers import Reader, SuccessRule

CONVENTIONS = ("goal_env", "ogbench")
KEYS = frozenset({"id", "factory", "module", "kwargs", "collect_kwargs", "convention", "action_repeat", "success",
                  "achieved_goal", "desired_goal", "observe", "size_kwargs", "navigation", "batch"})
NAVIGATION_KEYS = frozenset({"maze", "path_resolution"})
DEFAULT_SIZE_KWARGS = ("width", "height")  # how Gymnasium's MuJoCo envs and OGBench take their frame size


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserInputError(f"{where} must be a positive integer, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise UserInputError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


@dataclass(frozen=True)
class AdapterConfig:
    name: str  # the task name, used in errors
    env_id: str | None  # a registered Gymnasium id ...
    factory: str | None  # ... or "package.module:callable" returning the env
    module: str | None  # imported first: the package that registers the id (an optional extra)
    convention: str  # one of CONVENTIONS
    success: SuccessRule
    achieved: Reader | None  # None: the convention's default
    desired: Reader | None
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments on top of the id's own
    collect_kwargs: dict[str, Any] = field(default_factory=dict)  # added for collection only (OGBench's mode)
    action_repeat: int = 1  # env steps per control step
    observe: str | None = None  # dotted method of env.unwrapped: the state observation of the simulator now
    size_kwargs: tuple[str, ...] = DEFAULT_SIZE_KWARGS  # constructor arguments that set the frame size
    maze: str | None = None  # attribute of env.unwrapped holding a gymnasium-robotics Maze (navigation grid)
    path_resolution: int = 1  # the oracle's cost-to-go splits each maze cell into this many per side
    batch: BatchSpec | None = None  # how an env step advances the physics: the oracle then simulates in C

    @property
    def env_name(self) -> str:
        return self.env_id or self.factory or self.name

    @classmethod
    def parse(cls, name: str, env: Any) -> AdapterConfig:
        where = f"configs/task/{name}.yaml env"
        env = _mapping(env, where)
        unknown = sorted(set(env) - KEYS)
        if unknown:
            raise UserInputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}")
        if ("id" in env) == ("factory" in env):
            raise UserInputError(f"{where} needs exactly one of id (a Gymnasium id) or factory (module:callable)")
        source = env.get("id", env.get("factory"))
        if not isinstance(source, str) or ("factory" in env and ":" not in source):
            raise UserInputError(f"{where}: {'factory' if 'factory' in env else 'id'} must be a string"
                                 f"{' module:callable' if 'factory' in env else ''}, got {source!r}")
        if env.get("convention") not in CONVENTIONS:
            raise UserInputError(f"{where}.convention must be one of: {', '.join(CONVENTIONS)}; got {env.get('convention')!r}")
        if "success" not in env:
            raise UserInputError(f"{where} needs success: {{info: KEY}} or {{distance_below: X}}")
        navigation = _mapping(env.get("navigation", {}), f"{where}.navigation")
        if set(navigation) - NAVIGATION_KEYS:
            raise UserInputError(f"{where}.navigation takes only {', '.join(sorted(NAVIGATION_KEYS))}")
        size_kwargs = env.get("size_kwargs", list(DEFAULT_SIZE_KWARGS))
        if not isinstance(size_kwargs, list | tuple) or not all(isinstance(k, str) for k in size_kwargs):
            raise UserInputError(f"{where}.size_kwargs must be a list of argument names, got {size_kwargs!r}")
        observe = env.get("observe")
        if observe is not None and not isinstance(observe, str):
            raise UserInputError(f"{where}.observe must be a dotted method name of env.unwrapped, got {observe!r}")
        return cls(
            name=name,
            env_id=env.get("id"),
            factory=env.get("factory"),
            module=env.get("module"),
            convention=env["convention"],
            success=SuccessRule.parse(env["success"], f"{where}.success"),
            achieved=Reader.parse(env["achieved_goal"], f"{where}.achieved_goal") if "achieved_goal" in env else None,
            desired=Reader.parse(env["desired_goal"], f"{where}.desired_goal") if "desired_goal" in env else None,
            kwargs=_mapping(env.get("kwargs", {}), f"{where}.kwargs"),
            collect_kwargs=_mapping(env.get("collect_kwargs", {}), f"{where}.collect_kwargs"),
            action_repeat=_positive_int(env.get("action_repeat", 1), f"{where}.action_repeat"),
            observe=observe,
            size_kwargs=tuple(size_kwargs),
            maze=navigation.get("maze"),
            path_resolution=_positive_int(navigation.get("path_resolution", 1), f"{where}.navigation.path_resolution"),
            batch=BatchSpec.parse(env["batch"], f"{where}.batch") if "batch" in env else None,
        )

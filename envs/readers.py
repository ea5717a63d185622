"""How the adapter reads a wrapped env: goal positions, success, and the action bounds it rescales.

A task config names where a value comes from in one small mapping, so that no env needs code of its
own here: ``{obs: KEY}`` (an entry of a dict observation), ``{info: KEY}`` (an entry of the step's
info), or a MuJoCo position by name, ``{body: NAME}`` (the body's ``xpos``), ``{site: NAME}`` or
``{mocap: NAME}`` (the mocap body's ``mocap_pos``: OGBench keeps its cube targets there). MuJoCo
readers look at the simulator itself, so they stay right after a state restore; the others read
what the env returned from its last reset or step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from envs.errors import UserInputError

READER_KINDS = ("obs", "info", "body", "site", "mocap")
MUJOCO_KINDS = ("body", "site", "mocap")


@dataclass(frozen=True)
class Reader:
    """One value of the wrapped env, read as a flat float64 vector."""

    kind: str  # one of READER_KINDS
    name: str

    @classmethod
    def parse(cls, node: Any, where: str) -> Reader:
        if not isinstance(node, Mapping) or len(node) != 1:
            raise UserInputError(f"{where} must be one entry KIND: NAME, KIND one of {', '.join(READER_KINDS)}; got {node!r}")
        ((kind, name),) = node.items()
        if kind not in READER_KINDS or not isinstance(name, str):
            raise UserInputError(f"{where}: {kind!r} is not a reader; choose one of: {', '.join(READER_KINDS)}")
        return cls(kind, name)

    @property
    def live(self) -> bool:
        """Whether it reads the simulator (right after a restore) rather than the last step's output."""
        return self.kind in MUJOCO_KINDS

    def read(self, obs: Any, info: Mapping[str, Any], model: Any, data: Any) -> np.ndarray:
        """The value now; a one-line error naming the reader when the env has no such entry."""
        if self.kind == "obs":
            if not isinstance(obs, Mapping) or self.name not in obs:
                raise UserInputError(f"the env's observation has no entry {self.name!r} (reader {{obs: {self.name}}})")
            value = obs[self.name]
        elif self.kind == "info":
            if self.name not in info:
                raise UserInputError(f"the env's info has no entry {self.name!r} (reader {{info: {self.name}}}); "
                                     f"it has: {', '.join(sorted(info))}")
            value = info[self.name]
        else:
            value = self._read_mujoco(model, data)
        return np.asarray(value, dtype=np.float64).reshape(-1).copy()

    def _read_mujoco(self, model: Any, data: Any) -> np.ndarray:
        if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
            raise UserInputError(f"reader {{{self.kind}: {self.name}}} needs an env that exposes MuJoCo's model and data")
        try:
            if self.kind == "body":
                return data.body(self.name).xpos
            if self.kind == "site":
                return data.site(self.name).xpos
            mocap = model.body(self.name).mocapid[0]
        except KeyError as err:
            raise UserInputError(f"the env's MuJoCo model has no {'site' if self.kind == 'site' else 'body'} "
                                 f"{self.name!r} (reader {{{self.kind}: {self.name}}})") from err
        if mocap < 0:
            raise UserInputError(f"body {self.name!r} is not a mocap body (reader {{mocap: {self.name}}})")
        return data.mocap_pos[mocap]


@dataclass(frozen=True)
class SuccessRule:
    """``{info: KEY}``: the env's own flag (missing on reset, as OGBench's is: not yet a success);
    ``{distance_below: X}``: the achieved goal within X of the desired one."""

    info_key: str | None
    threshold: float | None

    @classmethod
    def parse(cls, node: Any, where: str) -> SuccessRule:
        if isinstance(node, Mapping) and set(node) == {"info"} and isinstance(node["info"], str):
            return cls(node["info"], None)
        if isinstance(node, Mapping) and set(node) == {"distance_below"}:
            threshold = node["distance_below"]
            if isinstance(threshold, int | float) and not isinstance(threshold, bool) and threshold > 0:
                return cls(None, float(threshold))
        raise UserInputError(f"{where} must be {{info: KEY}} or {{distance_below: POSITIVE_NUMBER}}, got {node!r}")

    def succeeded(self, info: Mapping[str, Any], distance: float) -> bool:
        if self.info_key is None:
            return distance < self.threshold
        return bool(info.get(self.info_key, False))


def dotted_attribute(obj: Any, dotted: str) -> Any:
    """``obj.<dotted>`` followed part by part (e.g. PointMaze's ``point_env.frame_skip``); None where a part is missing."""
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


class ActionScale:
    """Our actions lie in [-1, 1]; the env's in its own box, reached by an affine map per dimension."""

    def __init__(self, space: Any, env_name: str) -> None:
        if not isinstance(space, spaces.Box):
            raise UserInputError(f"env {env_name} has a {type(space).__name__} action space; the adapter needs a "
                                 "continuous Box (planners search real-valued action sequences)")
        low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or np.any(high <= low):
            raise UserInputError(f"env {env_name}'s action bounds cannot be rescaled to [-1, 1]: low={low.tolist()}, "
                                 f"high={high.tolist()} (they must be finite, with high > low)")
        self.low, self.high, self.dtype, self.shape = low, high, space.dtype, space.shape
        self.identity = bool(np.all(low == -1.0) and np.all(high == 1.0))

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """``action`` in [-1, 1] (clipped first) in the env's own units and dtype."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if not self.identity:
            action = self.low + (action + 1.0) * 0.5 * (self.high - self.low)
        return action.astype(self.dtype)

    def to_unit(self, env_action: np.ndarray) -> np.ndarray:
        """The inverse map: an action in the env's units (a scripted policy's) as ours, clipped to [-1, 1]."""
        env_action = np.asarray(env_action, dtype=np.float64)
        if not self.identity:
            env_action = 2.0 * (env_action - self.low) / (self.high - self.low) - 1.0
        return np.clip(env_action, -1.0, 1.0).astype(np.float32)

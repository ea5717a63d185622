"""Build project objects from configs: only the project's own classes, with plain-valued arguments.

Why not ``hydra.utils.instantiate``: it calls whatever ``_target_`` names, with whatever
arguments, and configs do not only come from the user's own command line. A checkpoint header,
GCBC weights, a run's ``config.yaml`` or a dataset's ``policy_config`` can be shared files, and
through them a crafted ``_target_`` (``subprocess.run``, ``builtins.open``, ``torch.load``, nested
inside a hyper-parameter) would run while a script merely loads a model. Here a ``_target_`` must be
one of :data:`BUILDABLE`, each key must be a parameter of its constructor, and every value must be a
plain number, string, bool, None, or a list/dict of those or of further buildable configs. Anything
else is refused with one line naming the offending key and target, before any constructor runs.

This module sits in ``envs`` (the lowest package) so that every package can use it; the classes are
imported lazily by their fixed names, so listing ``agents`` classes here adds no import cycle.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from envs.errors import UserInputError

# Every class a config may name. Nothing else is ever called by a config.
BUILDABLE = frozenset({
    "worldmodel.encoders.MLPEncoder",
    "worldmodel.encoders.CNNEncoder",
    "worldmodel.encoders.KeypointEncoder",
    "worldmodel.predictors.ResidualMLPPredictor",
    "worldmodel.predictors.LatentVariablePredictor",
    "worldmodel.losses.InverseDynamicsHead",
    "worldmodel.losses.VICReg",
    "worldmodel.losses.SIGReg",
    "worldmodel.losses.NoRegularizer",
    "agents.planners.CEM",
    "agents.planners.ICEM",
    "agents.planners.MPPI",
    "agents.planners.GradientPlanner",
    "agents.planners.CEMGradient",
    "agents.energy.Energy",
    "agents.energy.GoalDistance",
    "agents.energy.GeodesicGoalDistance",
    "agents.energy.ActionMagnitude",
    "agents.energy.ActionSmoothness",
    "envs.policies.UniformRandom",
    "envs.policies.OrnsteinUhlenbeck",
    "envs.policies.WaypointFollower",
    "envs.policies.Mixture",
    "envs.policies.EdgePushes",
    "envs.ogbench_oracle.OGBenchMarkovOracle",
})
# Hydra keys that are harmless here: ``_convert_`` only says how Hydra would pass containers, and
# this builder always passes plain lists and dicts. ``_args_``, ``_partial_``, ``_recursive_`` and
# any other ``_x_`` key are refused rather than interpreted.
IGNORED_SPECIAL_KEYS = frozenset({"_convert_"})
PLAIN = (bool, int, float, str, type(None))


def _is_special(key: str) -> bool:
    return key.startswith("_") and key.endswith("_") and len(key) > 2


def _resolve_class(target: Any, where: str) -> type:
    if not isinstance(target, str) or target not in BUILDABLE:
        raise UserInputError(
            f"config {where}: _target_ {target!r} is not one of the project's buildable classes "
            "(refused: a config may only build the project's own encoders, predictors, losses, planners, "
            "energies and policies)"
        )
    module, name = target.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _check_arguments(cls: type, target: str, keys: set[str], given: set[str], where: str) -> None:
    """Refuse keys the constructor does not take and say which required ones are missing."""
    params = inspect.signature(cls.__init__).parameters
    named = {n: p for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(keys - named.keys())
    if unknown:
        raise UserInputError(f"config {where}: {target} takes no argument(s) {', '.join(unknown)} "
                             f"(it takes: {', '.join(named) or 'none'})")
    missing = [n for n, p in named.items() if p.default is p.empty and n not in keys | given]
    if missing:
        raise UserInputError(f"config {where}: {target} is missing required argument(s) {', '.join(missing)}")


def _value(node: Any, where: str) -> Any:
    """A plain value, a list/dict of values, or a built object for a nested ``_target_`` config."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            return _build(node, where, {})
        special = [k for k in node if isinstance(k, str) and _is_special(k)]
        if special:
            raise UserInputError(f"config {where}: key {special[0]} is not allowed outside a _target_ config")
        return {k: _value(v, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_value(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, PLAIN):
        return node
    raise UserInputError(f"config {where}: a {type(node).__name__} is not a plain config value")


def _build(node: Mapping[str, Any], where: str, kwargs: dict[str, Any]) -> Any:
    target = node["_target_"]
    cls = _resolve_class(target, where)
    for key in node:
        if not isinstance(key, str):
            raise UserInputError(f"config {where}: key {key!r} is not a string")
        if _is_special(key) and key != "_target_" and key not in IGNORED_SPECIAL_KEYS:
            raise UserInputError(f"config {where}: {target} may not use {key} (refused: it could call code)")
    arguments = {k: v for k, v in node.items() if not _is_special(k)}
    _check_arguments(cls, target, set(arguments), set(kwargs), where)
    # every argument is validated (and nested configs built) before this constructor runs
    built = {k: _value(v, f"{where}.{k}") for k, v in arguments.items()}
    try:
        return cls(**{**built, **kwargs})
    except ValueError as err:  # a constructor's own range check (UserInputError is one too)
        raise UserInputError(f"config {where} ({target}): {err}") from err


def build(config: Mapping[str, Any] | DictConfig, where: str = "config", **kwargs: Any) -> Any:
    """The object a ``_target_`` config describes; ``kwargs`` (from code, not config) are added as is.

    ``where`` names the config in errors, e.g. ``model.encoder``.
    """
    if isinstance(config, DictConfig | ListConfig):
        config = OmegaConf.to_container(config, resolve=True)
    if not isinstance(config, Mapping) or "_target_" not in config:
        raise UserInputError(f"config {where} has no _target_ naming what to build")
    return _build(config, where, kwargs)


def _refuse_interpolations(node: Any, where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_interpolations(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_interpolations(value, f"{where}[{i}]")
    elif isinstance(node, str) and "${" in node:
        raise UserInputError(f"{where}: {node!r} is an interpolation (refused: stored configs are saved "
                             "resolved, and a resolver can run code)")
    elif not isinstance(node, PLAIN):
        raise UserInputError(f"{where}: a {type(node).__name__} is not a plain config value")


def load_stored_config(text: str, source: str) -> DictConfig:
    """A config read back from a file someone else may have written (checkpoint header, config.yaml).

    Parsed as plain YAML (no tags, no Python objects); interpolations are refused, because resolving
    one calls a resolver (``oc.env`` reads the environment, ``writable_dir`` creates folders).
    Building objects from it still goes through :func:`build`.
    """
    try:
        cfg = OmegaConf.create(text)  # OmegaConf's YAML loader is a SafeLoader: no tags, no objects
    except yaml.YAMLError as err:
        raise UserInputError(f"stored config in {source} is not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(cfg, DictConfig):
        raise UserInputError(f"stored config in {source} is not a mapping")
    for key, value in OmegaConf.to_container(cfg, resolve=False).items():
        _refuse_interpolations(value, f"stored config in {source}, {key}")
    return cfg

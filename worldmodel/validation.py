"""Type and range checks for every script's configuration, before any file is touched.

Hydra hands over what the command line says: ``overwrite=no`` arrives as the string ``"no"``
(which Python treats as true), ``steps=1e3`` as a float, ``episodes=abc`` as a string. Each
script's keys are declared once here (:data:`SCRIPT_CHECKS`, keyed by the script's config name)
and :func:`worldmodel.runtime.cli_main` checks them before the script's own code runs, so a
mistake is one line (exit 2) and nothing is created, deleted or rewritten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from envs.errors import UserInputError

# The smallest image the project's pixel encoders take at their default depth: the CNN halves the
# image four times (configs/model/jepa.yaml), so 16 pixels end as a 1x1 map (tests/test_trust.py).
MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class Checks:
    """What one script's keys must be; each key is a dotted path into its config."""

    required: tuple[str, ...] = ()  # mandatory (``???`` in the YAML): must be given
    booleans: tuple[str, ...] = ()  # true or false, nothing else
    positive_ints: tuple[str, ...] = ()  # 1, 2, ...
    optional_positive_ints: tuple[str, ...] = ()  # null or 1, 2, ...
    non_negative_ints: tuple[str, ...] = ()  # 0, 1, ... (seeds, counts that may be 0)
    positive_numbers: tuple[str, ...] = ()  # finite and > 0
    non_negative_numbers: tuple[str, ...] = ()  # finite and >= 0
    fractions: tuple[str, ...] = ()  # strictly between 0 and 1
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # key, allowed values
    image_sizes: tuple[str, ...] = ()  # positive ints of at least MIN_IMAGE_SIZE


BUDGET = ("budget.episodes", "budget.train_steps", "budget.eval_episodes")  # a recipe's (configs/recipe.yaml)

SCRIPT_CHECKS: dict[str, Checks] = {
    "collect": Checks(
        booleans=("resume", "overwrite", "progress"),
        positive_ints=("episodes", "storage.chunk_frames", *BUDGET),
        optional_positive_ints=("workers",),
        non_negative_ints=("seed",),
        image_sizes=("image_size",),
        choices=(("obs", ("pixels", "state")), ("start_method", ("spawn", "forkserver")),
                 ("storage.compression", ("gzip", "lzf", None))),
    ),
    "train": Checks(
        required=("data",),
        booleans=("resume",),
        positive_ints=("steps", "batch_size", "window", "log_every", "checkpoint_every", "model.latent_dim",
                       "model.frame_stack", *BUDGET),
        non_negative_ints=("seed",),
        positive_numbers=("optim.lr", "optim.grad_clip"),
        non_negative_numbers=("optim.weight_decay",),
        choices=(("obs", ("pixels", "state")),),
    ),
    "evaluate": Checks(
        required=("checkpoint",),
        booleans=("stop_on_success",),
        positive_ints=("episodes", "threads", "video.size", "video.fps", "gcbc.steps", "gcbc.max_goal_offset",
                       "gcbc.latent_dim", "gcbc.hidden_dim", "planner.horizon", "planner.replan_every",
                       "oracle.replan_every", "pairs.offset", "uncertainty.samples", "oracle.uncertainty.samples",
                       *BUDGET),
        optional_positive_ints=("max_steps", "gcbc.threads", "pairs.max_steps"),
        non_negative_ints=("seed", "video.episodes", "gcbc.depth"),
        positive_numbers=("gcbc.lr",),
        non_negative_numbers=("oracle.final_weight", "oracle.running_weight"),
        choices=(("obs", ("pixels", "state", None)), ("oracle.cost", ("path", "straight")),
                 ("pairs.kind", ("sampled", "trajectory")), ("uncertainty.statistic", ("mean", "cvar")),
                 ("oracle.uncertainty.statistic", ("mean", "cvar"))),
    ),
    "probe": Checks(
        required=("checkpoint", "data"),
        positive_ints=("horizon", "num_windows", "num_random", "batch_size"),
        non_negative_ints=("seed",),
        non_negative_numbers=("ridge",),
        fractions=("holdout_fraction",),
    ),
    "pipeline": Checks(
        booleans=("force",),
        positive_ints=BUDGET,
        non_negative_ints=("seed", "eval_seed"),
        choices=(("obs", ("pixels", "state")), ("changed", ("refuse", "redo"))),
    ),
    "gallery": Checks(positive_ints=("pairs",), non_negative_ints=("seed",)),
    "report": Checks(required=("run",)),
    "benchmark": Checks(booleans=("reuse", "write_docs")),
    "reliability": Checks(booleans=("write_docs",), positive_ints=("kills", "parallel"), non_negative_ints=("seed",)),
}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of ``kind``, or None when it is."""
    if kind == "booleans":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "positive_ints":
        return None if _is_int(value) and value > 0 else "must be a whole number of at least 1"
    if kind == "optional_positive_ints":
        return None if value is None or (_is_int(value) and value > 0) else "must be null or a whole number of at least 1"
    if kind == "non_negative_ints":
        return None if _is_int(value) and value >= 0 else "must be a whole number of at least 0"
    if kind == "positive_numbers":
        return None if _is_number(value) and value > 0 else "must be a finite number above 0"
    if kind == "non_negative_numbers":
        return None if _is_number(value) and value >= 0 else "must be a finite number of at least 0"
    if kind == "fractions":
        return None if _is_number(value) and 0 < value < 1 else "must be a number strictly between 0 and 1"
    if kind == "image_sizes":
        ok = _is_int(value) and value >= MIN_IMAGE_SIZE
        return None if ok else f"must be a whole number of at least {MIN_IMAGE_SIZE} (the pixel encoders' smallest input)"
    raise ValueError(f"unknown check {kind}")


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    """``(present, value)``; a key the config does not have at all is skipped (e.g. another model)."""
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True, default=_ABSENT)
    except MissingMandatoryValue as err:
        raise UserInputError(f"{key}= is required (e.g. {key}=PATH)") from err
    if value is _ABSENT:
        return False, None
    return True, value


_ABSENT = object()


def check_config(cfg: DictConfig, checks: Checks) -> None:
    """Raise a one-line :class:`UserInputError` for the first key that is missing or of the wrong kind."""
    for key in checks.required:
        present, value = _select(cfg, key)
        if not present or value is None or value == "":
            raise UserInputError(f"{key}= is required (e.g. {key}=PATH)")
    for key, allowed in checks.choices:
        present, value = _select(cfg, key)
        if present and value not in allowed:
            shown = ", ".join("null" if a is None else str(a) for a in allowed)
            raise UserInputError(f"{key} must be one of: {shown}; got {_describe(value)}")
    for kind in ("booleans", "positive_ints", "optional_positive_ints", "non_negative_ints", "positive_numbers",
                 "non_negative_numbers", "fractions", "image_sizes"):
        for key in getattr(checks, kind):
            present, value = _select(cfg, key)
            if present and (why := _problem(kind, value)) is not None:
                raise UserInputError(f"{key} {why}, got {_describe(value)}")


def check_script_config(cfg: DictConfig, script: str) -> None:
    """The checks declared for ``script`` (its config name); scripts without a declaration pass."""
    checks = SCRIPT_CHECKS.get(script)
    if checks is not None:
        check_config(cfg, checks)

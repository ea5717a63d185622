"""Checkpoints as one safetensors file: weights, optimizer state, RNG, resolved config, metadata.

Nothing is ever unpickled: tensors go in the safetensors body, everything else (config YAML,
metadata, optimizer hyper-parameters) as JSON strings in its header. A file is written next to
its final name and moved into place with ``os.replace``, so a kill mid-write leaves the previous
``latest.safetensors`` intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from envs.errors import UserInputError
from worldmodel.runtime import resolve_device
from worldmodel.world_model import WorldModel, build_world_model

CHECKPOINT_DIR = "checkpoint"
LATEST = "latest.safetensors"
FORMAT = "jepa-planner-checkpoint-v1"
# Metadata that must agree between a checkpoint and the data or run it is used with.
COMPATIBILITY_KEYS = ("task", "obs", "image_size", "action_dim", "obs_shape", "state_dim")


def checkpoint_path(run_dir_or_file: str | os.PathLike) -> Path:
    """A run folder's latest checkpoint, or the given file itself."""
    path = Path(run_dir_or_file)
    if path.is_dir():
        path = path / CHECKPOINT_DIR / LATEST
    if not path.is_file():
        raise UserInputError(f"no checkpoint at {path} (give a training run folder or a .safetensors file)")
    return path


def save_checkpoint(
    path: str | os.PathLike,
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    cfg: DictConfig,
    meta: dict[str, Any],
) -> None:
    """Write everything needed to use the model or resume training, atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim_state = optimizer.state_dict()
    for index, state in optim_state["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    header = {
        "format": FORMAT,
        "config": OmegaConf.to_yaml(cfg, resolve=True),
        "meta": json.dumps(meta),
        "optim_param_groups": json.dumps(optim_state["param_groups"]),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=header)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and header of a checkpoint file (config as DictConfig, meta as dict)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserInputError(f"checkpoint {path} is unreadable or truncated: {err}") from err
    if header.get("format") != FORMAT:
        raise UserInputError(f"{path} is not a {FORMAT} file (format={header.get('format')!r})")
    info = {
        "config": OmegaConf.create(header["config"]),
        "meta": json.loads(header["meta"]),
        "optim_param_groups": json.loads(header["optim_param_groups"]),
    }
    return tensors, info


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """What a checkpoint file was made for (task, obs, experiment, shapes, step), from its header only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        return json.loads(header["meta"])
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise UserInputError(f"checkpoint {path} is unreadable or has no metadata: {err}") from err


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    """Refuse a checkpoint made for another task, obs mode or data shape, naming every difference."""
    diffs = [f"{k}: checkpoint {meta.get(k)!r} vs {what} {expected[k]!r}"
             for k in COMPATIBILITY_KEYS if k in expected and meta.get(k) != expected[k]]
    if diffs:
        raise UserInputError(f"checkpoint does not match the {what} ({'; '.join(diffs)})")


def _load_weights(model: WorldModel, tensors: dict[str, torch.Tensor], path: Path) -> None:
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        wrong = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
        raise UserInputError(f"checkpoint {path} has a different model shape (differs in: {', '.join(wrong[:5])})")
    model.load_state_dict(weights)


def load_world_model(run_dir_or_file: str | os.PathLike, device: str = "auto") -> tuple[WorldModel, DictConfig]:
    """The trained model in eval mode and the resolved training config.

    ``cfg.meta`` holds what the checkpoint was made for (task, obs, image_size, action_dim,
    obs_shape, state_dim, step) so that callers can refuse a mismatch.
    """
    path = checkpoint_path(run_dir_or_file)
    tensors, info = read_checkpoint(path)
    meta = info["meta"]
    model = build_world_model(info["config"].model, meta["obs_shape"], meta["action_dim"])
    _load_weights(model, tensors, path)
    cfg = info["config"]
    cfg.meta = meta
    return model.to(resolve_device(device)).eval(), cfg


def restore_training_state(
    path: str | os.PathLike, model: WorldModel, optimizer: torch.optim.Optimizer, cfg: DictConfig,
    meta: dict[str, Any],
) -> int:
    """Load weights, optimizer and RNG state for ``resume=true``; returns the step to continue from.

    The model config and data must be the ones the checkpoint was trained with.
    """
    path = Path(path)
    tensors, info = read_checkpoint(path)
    check_compatible(info["meta"], meta, "data")
    if OmegaConf.to_container(info["config"].model) != OmegaConf.to_container(cfg.model, resolve=True):
        raise UserInputError(f"checkpoint {path} was trained with another model config; resume with the same model=")
    _load_weights(model, tensors, path)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["optim_param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return int(info["meta"]["step"])

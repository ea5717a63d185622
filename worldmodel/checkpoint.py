"""Checkpoints as one safetensors file: weights, optimizer state, RNG, resolved config, metadata.

Nothing is ever unpickled: tensors go in the safetensors body, everything else (config YAML,
metadata, optimizer hyper-parameters) as JSON strings in its header, and the stored config can only
build the project's own classes (:mod:`envs.builder`). The header also carries a SHA-256 of the
tensors, which loading checks, so damaged tensor bytes are refused rather than evaluated. A file is
written next to its final name (``.<name>.tmp-<pid>``: unique per run; the next run in the folder
deletes any a kill left, :func:`worldmodel.runtime.claim_run_dir`) and moved into place with
``os.replace``, so a kill mid-write leaves the previous ``latest.safetensors`` intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from envs.builder import load_stored_config
from envs.errors import UserInputError, is_disk_full
from worldmodel.runtime import resolve_device
from worldmodel.world_model import WorldModel, build_world_model

CHECKPOINT_DIR = "checkpoint"
LATEST = "latest.safetensors"
FORMAT = "jepa-planner-checkpoint-v2"  # v2: the header holds tensors_sha256
LEGACY_FORMATS = ("jepa-planner-checkpoint-v1",)  # written before checksums: loaded unverified
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


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def verify_digest(tensors: dict[str, torch.Tensor], expected: str | None, path: Path) -> None:
    """Refuse a file whose tensors changed since it was written (bit rot, a bad copy, an edit)."""
    if expected is None:
        raise UserInputError(f"{path} carries no tensors_sha256 checksum; it cannot be verified")
    if tensors_digest(tensors) != expected:
        raise UserInputError(f"{path} is corrupt: its tensors do not match the checksum stored in its header")


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], header: dict[str, str]) -> None:
    """Write aside, fsync, ``os.replace``; a full disk is a one-line error that keeps the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={**header, "tensors_sha256": tensors_digest(tensors)})
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, SafetensorError) as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            kept = f"; the previous {path.name} was kept" if path.exists() else ""
            raise UserInputError(f"disk full while writing {path}{kept}; free space and resume=true") from err
        raise


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
    write_safetensors(Path(path), tensors, header)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and header of a checkpoint file (config as DictConfig, meta as dict)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserInputError(f"checkpoint {path} is unreadable or truncated: {err}") from err
    if header.get("format") not in (FORMAT, *LEGACY_FORMATS):
        raise UserInputError(f"{path} is not a {FORMAT} file (format={header.get('format')!r})")
    if header["format"] == FORMAT:
        verify_digest(tensors, header.get("tensors_sha256"), path)
    try:
        info = {
            "config": load_stored_config(header["config"], f"checkpoint {path}"),
            "meta": json.loads(header["meta"]),
            "optim_param_groups": json.loads(header["optim_param_groups"]),
        }
    except (KeyError, json.JSONDecodeError) as err:
        raise UserInputError(f"checkpoint {path} has a damaged header ({type(err).__name__}: {err})") from err
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
    shape, action_dim = meta.get("obs_shape"), meta.get("action_dim")
    if not (isinstance(shape, list) and shape and all(type(s) is int and s > 0 for s in shape)
            and type(action_dim) is int and action_dim > 0):
        raise UserInputError(f"checkpoint {path} has a damaged header (obs_shape={shape!r}, action_dim={action_dim!r})")
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
    # the optimizer's moments come back, its hyper-parameters come from this run's config: resuming
    # with a lower optim.lr (what the divergence message advises) must train at the lower rate
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = float(cfg.optim.lr), float(cfg.optim.weight_decay)
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return int(info["meta"]["step"])

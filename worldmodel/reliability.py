"""The hostile files and bad command lines the project must refuse, shared by tests and the docs.

``tests/test_trust.py`` runs every entry in-process; ``scripts/reliability.py`` runs them through
the real scripts and writes docs/RELIABILITY.md from what happened, so the counts there are
measured, never typed. Each attack edits a genuine checkpoint's stored config (the tensors'
checksum is recomputed, so only the config rule can refuse it) and must leave ``marker`` absent:
the file that the named code would have created if it had run.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from worldmodel.checkpoint import save_checkpoint, tensors_digest
from worldmodel.world_model import build_world_model

TINY_MODEL = ["obs=state", "data=unused", "model.latent_dim=8", "model.encoder_by_obs.state.hidden_dim=16",
              "model.predictor.hidden_dim=16", "model.inverse_dynamics.hidden_dim=16"]
TINY_META = {"task": "reacher", "obs": "state", "image_size": None, "action_dim": 2, "obs_shape": [10],
             "state_dim": 10, "collection_seed": 0, "step": 0}


def tiny_checkpoint(path: Path, cfg: DictConfig) -> Path:
    """A real, loadable reacher-state checkpoint of a small model (``cfg``: a composed train config)."""
    model = build_world_model(cfg.model, TINY_META["obs_shape"], TINY_META["action_dim"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    save_checkpoint(path, model, optimizer, cfg, TINY_META)
    return path


class _TouchOnUnpickle:
    """Unpickling this runs ``open(marker, "w")``: what ``torch.load(..., weights_only=False)`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return open, (self.marker, "w")


def _shell(marker: Path) -> dict[str, Any]:
    return {"_target_": "subprocess.run", "args": ["touch", str(marker)]}


def _torch_load(marker: Path) -> dict[str, Any]:
    payload = marker.with_name(marker.name + ".pkl")
    payload.write_bytes(pickle.dumps(_TouchOnUnpickle(marker)))
    return {"_target_": "torch.load", "f": str(payload), "weights_only": False}


def _set(path: str, value_of: Callable[[Path], Any]) -> Callable[[dict[str, Any], Path], None]:
    def edit(cfg: dict[str, Any], marker: Path) -> None:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[last] = value_of(marker)

    return edit


# name -> (edit of the stored train config, text the one-line refusal must contain)
ATTACKS: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "shell command as the encoder (subprocess.run)": (_set("model.encoder", _shell), "subprocess.run"),
    "file-writing target (builtins.open)": (
        _set("model.encoder", lambda m: {"_target_": "builtins.open", "file": str(m), "mode": "w"}), "builtins.open"),
    "unpickling target (torch.load, weights_only=False)": (_set("model.encoder", _torch_load), "torch.load"),
    "nested target inside a hyper-parameter": (_set("model.predictor.hidden_dim", _shell), "subprocess.run"),
    "nested target inside a list": (_set("model.encoder.hidden_dim", lambda m: [1, _shell(m)]), "subprocess.run"),
    "positional _args_ carrying a target": (
        _set("model.predictor._args_", lambda m: [_shell(m)]), "may not use _args_"),
    "_partial_ on a project class": (_set("model.predictor._partial_", lambda m: True), "may not use _partial_"),
    "_recursive_ switched off": (_set("model.predictor._recursive_", lambda m: False), "may not use _recursive_"),
    "resolver that creates folders (${writable_dir:...})": (
        _set("model.latent_dim", lambda m: "${writable_dir:" + str(m) + "}"), "is an interpolation"),
    "resolver that reads the environment (${oc.env:...})": (
        _set("model.predictor.hidden_dim", lambda m: "${oc.env:HOME}"), "is an interpolation"),
    "YAML tag that builds a Python object": (None, "not valid YAML"),  # type: ignore[dict-item]
}
# The raw YAML of the last attack: a python/object tag, which a non-safe YAML loader would call.
PYTHON_TAG_YAML = "model: !!python/object/apply:os.system ['touch {marker}']\n"


def craft_checkpoint(source: Path, target: Path, attack: str, marker: Path) -> Path:
    """Copy ``source`` to ``target`` with the stored config edited by ``attack`` and a valid checksum."""
    with safe_open(str(source), framework="pt") as f:
        header = dict(f.metadata())
    tensors = load_file(str(source))
    edit, _ = ATTACKS[attack]
    if edit is None:
        header["config"] = PYTHON_TAG_YAML.format(marker=marker)
    else:
        cfg = yaml.safe_load(header["config"])
        edit(cfg, marker)
        header["config"] = yaml.safe_dump(cfg)
    header["tensors_sha256"] = tensors_digest(tensors)
    save_file(tensors, str(target), metadata=header)
    return target


def rewrite_header(path: Path, key: str, edit: Callable[[str], str]) -> Path:
    """Rewrite one header entry of a safetensors file in place, keeping its tensors (and so its checksum)."""
    with safe_open(str(path), framework="pt") as f:
        header = dict(f.metadata())
    header[key] = edit(header[key])
    save_file(load_file(str(path)), str(path), metadata=header)
    return path


def corrupt_tensor_bytes(path: Path, count: int = 64) -> None:
    """Flip every bit of ``count`` bytes in the middle of the tensor data (the header stays valid)."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        data_start = 8 + int.from_bytes(f.read(8), "little")
        f.seek(data_start + (size - data_start) // 2)
        original = f.read(count)
        f.seek(-len(original), os.SEEK_CUR)
        f.write(bytes(255 - b for b in original))


# (script, overrides, text the one-line error must contain): mistakes caught before any file is touched.
BAD_INPUTS: list[tuple[str, list[str], str]] = [
    ("collect", ["overwrite=no"], "overwrite must be true or false, got 'no'"),
    ("collect", ["resume=maybe"], "resume must be true or false, got 'maybe'"),
    ("collect", ["progress=1"], "progress must be true or false, got 1"),
    ("collect", ["episodes=abc"], "episodes must be a whole number of at least 1, got 'abc'"),
    ("collect", ["episodes=0"], "episodes must be a whole number of at least 1, got 0"),
    ("collect", ["episodes=-3"], "episodes must be a whole number of at least 1, got -3"),
    ("collect", ["episodes=2.5"], "episodes must be a whole number of at least 1, got 2.5"),
    ("collect", ["workers=0"], "workers must be null or a whole number of at least 1, got 0"),
    ("collect", ["image_size=7"], "image_size must be a whole number of at least 16"),
    ("collect", ["seed=-1"], "seed must be a whole number of at least 0, got -1"),
    ("collect", ["obs=rgb"], "obs must be one of: pixels, state; got 'rgb'"),
    ("collect", ["storage.chunk_frames=0"], "storage.chunk_frames must be a whole number of at least 1"),
    ("train", ["data=d", "resume=yes"], "resume must be true or false, got 'yes'"),
    ("train", ["data=d", "steps=1e3"], "steps must be a whole number of at least 1, got 1000.0"),
    ("train", ["data=d", "steps=0"], "steps must be a whole number of at least 1, got 0"),
    ("train", ["data=d", "log_every=0"], "log_every must be a whole number of at least 1, got 0"),
    ("train", ["data=d", "checkpoint_every=-5"], "checkpoint_every must be a whole number of at least 1"),
    ("train", ["data=d", "batch_size=0"], "batch_size must be a whole number of at least 1"),
    ("train", ["data=d", "window=0"], "window must be a whole number of at least 1"),
    ("train", ["data=d", "optim.lr=-1"], "optim.lr must be a finite number above 0, got -1"),
    ("train", ["data=d", "optim.lr=nan"], "optim.lr must be a finite number above 0, got nan"),
    ("train", ["data=d", "optim.grad_clip=0"], "optim.grad_clip must be a finite number above 0"),
    ("train", [], "data= is required"),
    ("evaluate", [], "checkpoint= is required"),
    ("evaluate", ["checkpoint=c", "max_steps=0"], "max_steps must be null or a whole number of at least 1, got 0"),
    ("evaluate", ["checkpoint=c", "episodes=abc"], "episodes must be a whole number of at least 1"),
    ("evaluate", ["checkpoint=c", "stop_on_success=no"], "stop_on_success must be true or false"),
    ("evaluate", ["checkpoint=c", "threads=0"], "threads must be a whole number of at least 1"),
    ("evaluate", ["checkpoint=c", "video.episodes=-1"], "video.episodes must be a whole number of at least 0"),
    ("evaluate", ["checkpoint=c", "planner.horizon=0"], "planner.horizon must be a whole number of at least 1"),
    ("probe", ["data=d"], "checkpoint= is required"),
    ("probe", ["checkpoint=c"], "data= is required"),
    ("probe", ["checkpoint=c", "data=d", "holdout_fraction=1.5"], "holdout_fraction must be a number strictly between"),
    ("probe", ["checkpoint=c", "data=d", "horizon=0"], "horizon must be a whole number of at least 1"),
    ("pipeline", ["force=no"], "force must be true or false, got 'no'"),
    ("pipeline", ["seed=abc"], "seed must be a whole number of at least 0"),
    ("gallery", ["pairs=0"], "pairs must be a whole number of at least 1"),
    ("benchmark", ["reuse=yes"], "reuse must be true or false, got 'yes'"),
    ("benchmark", ["write_docs=0"], "write_docs must be true or false, got 0"),
]

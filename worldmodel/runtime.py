"""Run-time plumbing shared by every script: seeding, devices, run folders, metrics, clean errors."""

from __future__ import annotations

import csv
import functools
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError

from envs.errors import UserInputError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so that the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device={name} asked for, but CUDA is not available (use device=auto or cpu)")
    return device


def prepare_run_dir(out: str | os.PathLike, cfg: DictConfig | None = None) -> Path:
    """Create the run folder and write the resolved config into it as ``config.yaml``."""
    run_dir = Path(out)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"cannot create run folder {run_dir}: {err.strerror}") from err
    if not os.access(run_dir, os.W_OK):
        raise UserInputError(f"run folder {run_dir} is not writable")
    if cfg is not None:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return run_dir


class MetricsLogger:
    """Appends scalar metrics to ``metrics.csv`` and TensorBoard in one call.

    The CSV header grows when new keys appear (the file is rewritten then), so callers can log
    whatever terms a config switches on without declaring them up front.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.fields: list[str] = []
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():  # resuming: keep what was logged before
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or [])
                self.rows = list(reader)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        new_fields = [k for k in row if k not in self.fields]
        self.rows.append(row)
        if new_fields:
            self.fields += new_fields
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow(row)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, float(value), step)

    def truncate(self, last_step: int) -> None:
        """Drop rows logged after ``last_step`` (used when resuming from an older checkpoint)."""
        self.rows = [r for r in self.rows if int(float(r["step"])) <= last_step]
        if self.fields:
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(self.rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def to_overrides(section: dict[str, Any], prefix: str = "") -> list[str]:
    """Flatten a nested dict into Hydra ``key=value`` overrides (lists as ``[a,b]``)."""
    overrides = []
    for key, value in section.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            overrides += to_overrides(value, prefix=f"{path}.")
        elif isinstance(value, list):
            overrides.append(f"{path}=[{','.join(str(v) for v in value)}]")
        elif value is None:
            overrides.append(f"{path}=null")
        else:
            overrides.append(f"{path}={value}")
    return overrides


def experiment_name() -> str | None:
    """The ``configs/experiment/`` file the running script's config was composed with (``experiment=``),
    or None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get("experiment")


def find_browser(executable: str) -> str:
    """Path of the headless browser that takes report screenshots, or a one-line error saying how to get it."""
    path = shutil.which(executable)
    if path is None:
        raise UserInputError(f"browser '{executable}' not found (Debian: apt-get install -y chromium)")
    return path


def writable_dir(path: str) -> str:
    """``hydra.run.dir: ${writable_dir:${out}}``: the run folder, created, or a one-line error (exit 2).

    Hydra makes the run folder before a script's own code runs, and would answer an unwritable
    ``out=`` with a traceback; this resolver runs at that moment instead.
    """
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        print(f"error: cannot write to out={path} ({err.strerror or err})", file=sys.stderr)
        sys.exit(2)
    return path


OmegaConf.register_new_resolver("writable_dir", writable_dir, replace=True)


def cli_main(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a script's main so that user errors print one line (exit 2) and Ctrl-C exits 130.

    Put it *under* ``@hydra.main`` (closest to the function): Hydra would otherwise catch the error
    first and print a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserInputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except InterpolationKeyError as err:  # a choice key naming nothing, e.g. model.pixel_encoder=foo
            print(f"error: config {err.full_key}: {str(err).splitlines()[0]}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: everything finished so far was kept", file=sys.stderr)
            sys.exit(130)

    return wrapper

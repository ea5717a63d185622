"""Run-time plumbing shared by every script: seeding, devices, run folders, metrics, clean errors."""

from __future__ import annotations

import csv
import fcntl
import functools
import json
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
from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

from envs.errors import UserInputError, is_disk_full


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so that the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def usable_threads() -> int:
    """Torch threads a process may take for a large batch: ``OMP_NUM_THREADS`` where the environment
    sets it (a benchmark leaving cores to other jobs), else every core. Threads beyond the free cores
    wait on each other: a second process on 2 cores made training 10-50 times slower here."""
    pinned = os.environ.get("OMP_NUM_THREADS", "")
    return int(pinned) if pinned.isdigit() and int(pinned) > 0 else os.cpu_count() or 1


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device={name} asked for, but CUDA is not available (use device=auto or cpu)")
    return device


LOCK_FILE = ".run.lock"
# What a run folder written before lock files existed holds, per script: how a folder of another
# kind is recognised (``train out=<a collect folder>`` would overwrite its summary.json).
SIGNATURES = {"collect": "*/data/metadata.json", "train": "checkpoint/latest.safetensors",
              "probe": "probe.json", "evaluate": "results.json"}
_held_locks: dict[Path, int] = {}  # run folder -> open lock file descriptor, for the process lifetime


def _folder_kind(run_dir: Path) -> str | None:
    """The script a folder belongs to: from its lock file, else from what it holds, else None."""
    try:
        return json.loads((run_dir / LOCK_FILE).read_text())["script"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for script, pattern in SIGNATURES.items():
        if next(run_dir.glob(pattern), None) is not None:
            return script
    return None


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` / ``.<name>.tmp`` files a killed run left half-written.

    Called with the folder's lock held, so no other run can be writing them; sub-folders that are
    run folders of their own (a pipeline's stages) are left to their own next run.
    """
    removed = []
    for path in sorted(run_dir.rglob(".*.tmp*")):
        inside = path.relative_to(run_dir).parents
        if any((run_dir / p / LOCK_FILE).exists() for p in inside if str(p) != "."):
            continue
        if path.is_file() and (path.name.endswith(".tmp") or ".tmp-" in path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def claim_run_dir(out: str | os.PathLike, script: str) -> Path:
    """Create the run folder and hold an exclusive lock on it until this process ends.

    A second run into a locked folder is refused in one line; the kernel drops the lock (``flock``)
    when its holder dies, however it dies, so a killed run never blocks the next one. A folder that
    belongs to another script is refused too. Once the lock is held, temp files a kill left behind
    are deleted. Nothing of the folder's record is written here: :func:`record_run` does that once
    the run has been accepted.
    """
    run_dir = Path(out)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"cannot create run folder {run_dir}: {err.strerror}") from err
    if not os.access(run_dir, os.W_OK):
        raise UserInputError(f"run folder {run_dir} is not writable")
    key = run_dir.resolve()
    if key in _held_locks:
        return run_dir
    kind = _folder_kind(run_dir)
    if kind is not None and kind != script:
        raise UserInputError(f"out={run_dir} holds a {kind} run; give this {script} run another out=")
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserInputError(f"out={run_dir} is in use by another running {script} (it holds {run_dir / LOCK_FILE}); "
                             "wait for it or choose another out=") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"script": script, "pid": os.getpid()}).encode())
    _held_locks[key] = fd
    remove_stale_temp_files(run_dir)
    return run_dir


def record_run(run_dir: Path, cfg: DictConfig) -> None:
    """Write the accepted run's config as ``config.yaml`` and Hydra's record as ``.hydra/``.

    The configs set ``hydra.output_subdir: null`` so that Hydra writes nothing before a script's
    checks have run; a refused run thus leaves the record of the run already in the folder as it was.
    """
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        record = run_dir / ".hydra"
        record.mkdir(exist_ok=True)
        OmegaConf.save(cfg, record / "config.yaml")
        OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), record / "hydra.yaml")
        OmegaConf.save(OmegaConf.create(list(hydra_cfg.overrides.task)), record / "overrides.yaml")


def prepare_run_dir(out: str | os.PathLike, cfg: DictConfig | None = None, script: str | None = None) -> Path:
    """Claim the run folder (:func:`claim_run_dir`) and, given ``cfg``, record the run in it.

    For scripts whose every refusal comes before this call; ``script`` defaults to the Hydra job's
    config name. Without ``cfg`` (a folder to copy files into) the folder is only created.
    """
    if cfg is None:
        run_dir = Path(out)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserInputError(f"cannot create run folder {run_dir}: {err.strerror}") from err
        return run_dir
    run_dir = claim_run_dir(out, script or _script_name())
    record_run(run_dir, cfg)
    return run_dir


def _script_name() -> str:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().job.config_name if HydraConfig.initialized() else "run"


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

The config's types and ranges are checked first (:mod:`worldmodel.validation`, by the Hydra job's
config name), and a full disk is one line too.

    Put it *under* ``@hydra.main`` (closest to the function): Hydra would otherwise catch the error
    first and print a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if args and isinstance(args[0], DictConfig):  # types and ranges, before any file is touched
                from worldmodel.validation import check_script_config

                check_script_config(args[0], _script_name())
            return func(*args, **kwargs)
        except UserInputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except MissingMandatoryValue as err:  # a ``???`` key no check declared
            print(f"error: {err.full_key}= is required", file=sys.stderr)
            sys.exit(2)
        except OSError as err:
            if not is_disk_full(err):
                raise
            print(f"error: disk full ({err}); everything finished so far was kept", file=sys.stderr)
            sys.exit(2)
        except InterpolationKeyError as err:  # a choice key naming nothing, e.g. model.pixel_encoder=foo
            print(f"error: config {err.full_key}: {str(err).splitlines()[0]}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: everything finished so far was kept", file=sys.stderr)
            sys.exit(130)

    return wrapper

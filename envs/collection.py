"""Parallel rollout collection into a Minari dataset (see :mod:`envs.dataset` for the layout, :mod:`envs.writer`).

Each worker process owns its env, renderer and policy (made in the child: GL contexts do not
survive a fork), runs whole episodes and stages each finished one on disk itself, so compression
runs in parallel too and a kill loses only the episodes in flight. Episode ``i`` draws its spec and
its actions from a generator seeded with ``(seed, i)``: the dataset does not depend on the number
of workers, and resuming just runs the indices that are missing.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import envs
from envs.builder import build
from envs.errors import UserInputError, is_disk_full
from envs.policies import ExplorationPolicy
from envs.writer import DatasetHeader, DatasetWriter, Episode, StorageOptions

# The info keys of the task contract (docs/ARCHITECTURE.md), stored per step in the dataset.
INFO_KEYS = ("success", "distance", "state", "goal_state", "achieved_goal", "desired_goal")
# Stored too where a task's info has them: "contact" (pusht: the pusher touches the block), whose
# share of steps the summary reports as contact_fraction.
OPTIONAL_INFO_KEYS = ("contact",)
START_METHODS = ("spawn", "forkserver")


@dataclass(frozen=True)
class CollectionSpec:
    """What defines a dataset's content: everything a worker needs to rebuild env and policy."""

    task: str
    obs: str
    image_size: int
    seed: int
    policy: dict[str, Any] = field(default_factory=lambda: {"_target_": "envs.policies.UniformRandom"})

    @property
    def dataset_id(self) -> str:
        return f"{self.task}-{self.obs}-v0"

    def make_env(self) -> Any:
        """The task as collection builds it (an adapted env's ``collect_kwargs``, e.g. OGBench's mode)."""
        return envs.make(self.task, obs=self.obs, image_size=self.image_size, collection=True)

    def info(self) -> dict[str, Any]:
        """Stored in the dataset metadata; a resumed run must match it."""
        return {
            "task": self.task,
            "obs": self.obs,
            "image_size": self.image_size,
            "seed": self.seed,
            "policy": self.policy["_target_"].rsplit(".", 1)[-1],
            "policy_config": self.policy,
        }


@dataclass(frozen=True)
class CoverageGrid:
    """Share of the cells of a regular grid over the first ``len(low)`` numbers of the achieved goal
    (the agent's position; pusht: the block's x, y and yaw) that the data visited.

    ``cells`` per axis, or one count for every axis. Cells the agent can never enter (maze walls)
    count as unvisited, so a maze never reaches 1.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    cells: int | tuple[int, ...]

    def fraction(self, positions: np.ndarray) -> float:
        low, high = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
        cells = np.broadcast_to(np.asarray(self.cells, dtype=np.int64), low.shape)
        cell = np.floor((positions[:, : low.size] - low) / (high - low) * cells).astype(np.int64)
        cell = np.clip(cell, 0, cells - 1)
        return np.unique(np.ravel_multi_index(tuple(cell.T), tuple(cells))).size / int(np.prod(cells))


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of episode ``index``: its spec, reset seed and policy noise come from it."""
    return np.random.default_rng([seed, index])


def rollout(env: Any, policy: ExplorationPolicy, seed: int, index: int) -> Episode:
    """Run episode ``index`` of a collection to the env's time limit."""
    rng = episode_rng(seed, index)
    spec = env.unwrapped.sample_task(rng)
    reset_seed = int(rng.integers(2**31))
    obs, info = env.reset(seed=reset_seed, options=spec)
    policy.reset(env, rng)
    observations, infos, actions, rewards, terminations, truncations = [obs], [info], [], [], [], []
    done = False
    while not done:
        action = policy.act(info)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        done = terminated or truncated
    return Episode(
        index=index,
        seed=reset_seed,
        spec=spec,
        observations={k: np.stack([o[k] for o in observations]) for k in observations[0]},
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terminations, dtype=bool),
        truncations=np.asarray(truncations, dtype=bool),
        infos={k: np.stack([np.asarray(i[k]) for i in infos]) for k in (*INFO_KEYS, *OPTIONAL_INFO_KEYS) if k in info},
    )


_worker: dict[str, Any] = {}


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Have the kernel send SIGTERM to this worker when its parent dies (Linux).

    A collect parent killed with ``kill -9`` cannot stop its pool, whose workers would otherwise
    keep rolling out episodes and print ``BrokenPipeError`` tracebacks; SIGTERM ends them silently.
    (The parent is the collect process under ``spawn``, the fork server under ``forkserver``, which
    exits with the collect process.)
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _quiet_disk_full(unraisable: Any) -> None:
    """h5py reports a full disk again from every object it frees after the write failed, as an
    "Exception ignored" traceback per object; the parent already says "disk full" in one line."""
    if not is_disk_full(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def _quiet_disk_full_traceback(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """The same reports, printed through ``sys.excepthook`` (Cython prints the traceback first)."""
    if not is_disk_full(value):
        sys.__excepthook__(kind, value, tb)


def _init_worker(spec: CollectionSpec, writer: DatasetWriter, render_threads: int) -> None:
    die_with_parent()
    sys.unraisablehook, sys.excepthook = _quiet_disk_full, _quiet_disk_full_traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and keeps what is done
    # Without a GPU, EGL renders with Mesa's llvmpipe, which starts a thread per core in every
    # worker; giving each worker its share of the cores avoids oversubscribing them.
    os.environ.setdefault("LP_NUM_THREADS", str(render_threads))
    try:
        _worker.update(spec=spec, writer=writer, env=spec.make_env(), policy=build(spec.policy, "policy"))
    except Exception as err:  # noqa: BLE001  a Pool restarts a worker whose initializer raises, forever
        _worker["error"] = err


def _collect_one(index: int) -> int:
    """Run and stage one episode in a worker; returns its frame count for the progress bar."""
    if "error" in _worker:  # from _init_worker: raised here, it reaches the parent
        raise _worker["error"]
    episode = rollout(_worker["env"], _worker["policy"], _worker["spec"].seed, index)
    _worker["writer"].add(episode)
    return episode.num_steps + 1


def default_workers() -> int:
    return len(os.sched_getaffinity(0))


def collect(
    spec: CollectionSpec,
    dataset_dir: str | os.PathLike,
    episodes: int,
    *,
    coverage: CoverageGrid | None = None,
    storage: StorageOptions | None = None,
    workers: int | None = None,
    start_method: str = "spawn",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Collect episodes ``0..episodes-1`` (those not on disk yet) and return the run summary.

    ``on_start`` runs once the dataset has been accepted (opened, resumed or replaced) and before
    any episode: scripts record the run there, so that a refused run rewrites nothing.
    """
    if episodes < 1:
        raise UserInputError(f"episodes must be a positive number, got {episodes}")
    if workers is not None and workers < 1:
        raise UserInputError(f"workers must be a positive number or null (every core), got {workers}")
    if start_method not in START_METHODS:
        raise UserInputError(
            f"unknown start_method '{start_method}'; choose one of: {', '.join(START_METHODS)}"
        )
    build(spec.policy, "policy")  # a bad policy config is one line here, not an error in every worker
    env = spec.make_env()
    header = DatasetHeader(
        dataset_id=spec.dataset_id,
        observation_space=env.observation_space,
        action_space=env.action_space,
        env_spec=env.spec.to_json() if env.spec is not None else None,
        info=spec.info(),
    )
    env.close()
    writer = DatasetWriter.open(
        dataset_dir, header, storage or StorageOptions(), resume=resume, overwrite=overwrite
    )
    if on_start is not None:
        on_start()
    done = writer.done_indices()
    todo = [i for i in range(episodes) if i not in done]
    workers = min(workers or default_workers(), max(len(todo), 1))
    frames = 0
    start = time.perf_counter()
    disk_full: Exception | None = None
    try:
        if todo:
            context = multiprocessing.get_context(start_method)
            with (
                context.Pool(
                    workers, _init_worker, (spec, writer, max(1, default_workers() // workers))
                ) as pool,
                tqdm(total=episodes, initial=len(done), unit="ep", disable=not progress) as bar,
            ):
                for episode_frames in pool.imap_unordered(_collect_one, todo):
                    frames += episode_frames
                    bar.update()
                    bar.set_postfix(frames_per_s=f"{frames / (time.perf_counter() - start):.0f}")
    except (OSError, RuntimeError) as err:  # from a worker staging an episode (h5py raises either)
        if not is_disk_full(err):
            raise
        disk_full = err
    finally:
        seconds = time.perf_counter() - start
        writer.finalize()  # on a full disk too: itself a one-line error if the fold does not fit
    if disk_full is not None:
        raise UserInputError(f"disk full while collecting into {writer.dataset_dir}: {writer.total_episodes()} "
                             "finished episodes were kept; free space and resume=true") from disk_full
    per_episode = writer.info_arrays("achieved_goal")
    positions = np.concatenate(per_episode)
    summary = {
        "task": spec.task,
        "obs": spec.obs,
        "dataset_id": spec.dataset_id,
        "dataset_dir": str(writer.dataset_dir),
        "episodes": writer.total_episodes(),
        "episodes_this_run": len(todo),
        "frames": int(len(positions)),
        "frames_this_run": frames,
        "seconds_this_run": round(seconds, 3),
        "frames_per_s": round(frames / seconds, 1) if frames else None,
        "workers": workers if todo else 0,
        "bytes_on_disk": writer.size_bytes(),
    }
    if coverage is not None:
        summary["coverage"] = round(coverage.fraction(positions), 4)
        # Random starts alone spread a dataset over the arena; this says how far single episodes explore.
        summary["coverage_per_episode"] = round(
            float(np.mean([coverage.fraction(p) for p in per_episode])), 4
        )
    contact = writer.info_arrays("contact")  # steps after each action; the reset's frame is not a step
    if contact:
        summary["contact_fraction"] = round(float(np.mean(np.concatenate([c[1:] for c in contact]))), 4)
    return summary


def measure_collection_speed(
    task: str, obs: str, episodes: int, workers: int, *, image_size: int = 64
) -> dict[str, Any]:
    """Frames/s of 1 worker and of ``workers`` workers on the same episodes, measured back to back."""
    spec = CollectionSpec(task=task, obs=obs, image_size=image_size, seed=0)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, workers):
            summary = collect(spec, Path(tmp) / f"workers-{n}", episodes, workers=n, progress=False)
            rates[n] = summary["frames_per_s"]
    return {
        "task": task,
        "obs": obs,
        "episodes": episodes,
        "frames_per_s_1_worker": rates[1],
        f"frames_per_s_{workers}_workers": rates[workers],
        "workers": workers,
        "speedup": round(rates[workers] / rates[1], 2),
    }

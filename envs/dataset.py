"""Episodes on disk (standard Minari datasets) and in memory (:class:`EpisodeSet`).

A collection run folder holds one Minari dataset, readable with ``minari.load_dataset`` once
``MINARI_DATASETS_PATH`` points at the run folder::

    <out>/<dataset_id>/data/metadata.json, main_data.hdf5   the Minari dataset
    <out>/<dataset_id>/staging/episode_000042.hdf5          finished episodes not folded in yet

Each finished episode is first written to its own staging file (written aside, then renamed, so a
file there is always complete); :meth:`DatasetWriter.finalize` folds them into ``main_data.hdf5``
by rebuilding it aside and renaming it over the old one. A kill at any moment therefore leaves a
valid Minari file plus complete staged episodes, and :func:`load_episodes` reads both.

Our datasets keep Minari's HDF5 layout but store pixels as raw, chunked and compressed ``uint8``
(``jpeg_encoding: false`` in the metadata: lossless, still read by Minari); the task, obs mode,
image size, collection seed and policy sit under the ``jepa_planner`` metadata key.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import minari
import numpy as np
from minari.serialization import serialize_space

from envs.errors import UserInputError, is_disk_full

META_KEY = "jepa_planner"
_MAIN_FILE = "main_data.hdf5"
_METADATA_FILE = "metadata.json"


@dataclass
class EpisodeSet:
    """Episodes concatenated into flat arrays, so that windows are cheap slices.

    Episode ``i`` owns ``episode_lengths[i]`` actions and one more observation/state than actions;
    ``obs_starts`` / ``action_starts`` give where each episode begins in the flat arrays.
    """

    observations: np.ndarray  # (sum(L_i + 1), *obs_shape)
    actions: np.ndarray  # (sum(L_i), A) float32
    states: np.ndarray  # (sum(L_i + 1), S) float32
    goals: np.ndarray  # (E, *obs_shape)
    episode_lengths: np.ndarray  # (E,) int64, actions per episode
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_episodes(cls, episodes: list[dict[str, np.ndarray]], metadata: dict[str, Any]) -> EpisodeSet:
        """Concatenate per-episode arrays (keys ``observations, actions, states, goal``)."""
        return cls(
            observations=np.concatenate([e["observations"] for e in episodes]),
            actions=np.concatenate([e["actions"] for e in episodes]).astype(np.float32, copy=False),
            states=np.concatenate([e["states"] for e in episodes]).astype(np.float32, copy=False),
            goals=np.stack([e["goal"] for e in episodes]),
            episode_lengths=np.array([len(e["actions"]) for e in episodes], dtype=np.int64),
            metadata=metadata,
        )

    @property
    def num_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def action_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)

    @property
    def obs_starts(self) -> np.ndarray:
        return self.action_starts + np.arange(self.num_episodes, dtype=np.int64)

    def check_finite(self, source: str = "dataset") -> None:
        """Refuse NaN/inf anywhere in the float arrays, naming the first episode, field and step.

        Once, on the flat arrays (uint8 pixels cannot hold either). Without it one NaN observation
        reaches the normalisation statistics and training reports a divergence instead of bad data.
        """
        fields = {"observations": (self.observations, self.obs_starts), "actions": (self.actions, self.action_starts),
                  "states": (self.states, self.obs_starts), "goals": (self.goals, np.arange(self.num_episodes))}
        for name, (array, starts) in fields.items():
            if not np.issubdtype(array.dtype, np.floating):
                continue
            finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
            if finite.all():
                continue
            row = int(np.argmin(finite))
            episode = int(np.searchsorted(starts, row, side="right")) - 1
            where = "its goal" if name == "goals" else f"step {row - int(starts[episode])}"
            raise UserInputError(f"{source} has NaN/inf in episode {episode}'s {name} ({where}): the data is "
                                 f"corrupt; re-collect it or drop that episode")

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i`` as views: ``observations, actions, states`` and its ``goal``."""
        o, a, length = self.obs_starts[i], self.action_starts[i], self.episode_lengths[i]
        return {
            "observations": self.observations[o : o + length + 1],
            "actions": self.actions[a : a + length],
            "states": self.states[o : o + length + 1],
            "goal": self.goals[i],
        }


@dataclass(frozen=True)
class Episode:
    """One finished rollout in Minari's per-episode layout, as a worker hands it to the writer.

    ``observations`` and ``infos`` have one more entry than ``actions`` (the reset comes first).
    """

    index: int  # position in the collection: its spec was drawn from (seed, index)
    seed: int  # the env reset seed
    spec: dict[str, Any]  # env.unwrapped.sample_task output, reset options
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray]

    @property
    def num_steps(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class StorageOptions:
    """How image arrays are laid out on disk; other arrays are small and stored plainly."""

    compression: str | None = "gzip"  # h5py filter: gzip, lzf or None
    compression_opts: int | None = 4  # gzip level; must be None for lzf
    chunk_frames: int = 32  # frames per chunk: one chunk is decompressed per window read

    def dataset_kwargs(self, array: np.ndarray) -> dict[str, Any]:
        if array.dtype != np.uint8 or array.ndim < 4 or self.compression is None:
            return {}
        return {
            "chunks": (min(self.chunk_frames, len(array)), *array.shape[1:]),
            "compression": self.compression,
            "compression_opts": self.compression_opts,
        }


@dataclass(frozen=True)
class DatasetHeader:
    """What a dataset is about; fixed when it is created and checked again on resume."""

    dataset_id: str
    observation_space: gym.Space
    action_space: gym.Space
    env_spec: str | None  # gymnasium EnvSpec JSON, lets Minari recover the env
    info: dict[str, Any]  # task, obs, image_size, seed, policy (stored under META_KEY)


class DatasetWriter:
    """Writes finished episodes so that a kill never loses one, and folds them into the Minari file."""

    def __init__(self, dataset_dir: Path, storage: StorageOptions) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.data_dir = self.dataset_dir / "data"
        self.staging_dir = self.dataset_dir / "staging"
        self.storage = storage

    @classmethod
    def open(
        cls,
        dataset_dir: str | os.PathLike,
        header: DatasetHeader,
        storage: StorageOptions,
        *,
        resume: bool = False,
        overwrite: bool = False,
    ) -> DatasetWriter:
        """Start a dataset, or continue one (``resume``) after checking it is the same collection."""
        writer = cls(Path(dataset_dir), storage)
        exists = (writer.data_dir / _METADATA_FILE).exists()
        if exists and resume:
            writer._check_resumable(header)
            return writer
        if exists and not overwrite:
            raise UserInputError(
                f"a dataset already exists at {writer.dataset_dir}; pass resume=true to continue it "
                "or overwrite=true to replace it"
            )
        if exists:
            shutil.rmtree(writer.dataset_dir)
        try:
            writer.staging_dir.mkdir(parents=True, exist_ok=True)
            writer.data_dir.mkdir(parents=True, exist_ok=True)
            with h5py.File(writer.data_dir / _MAIN_FILE, "w"):
                pass
            writer._write_metadata(_initial_metadata(header))
        except OSError as err:
            raise UserInputError(
                f"cannot write a dataset at {writer.dataset_dir}: {err.strerror or err}"
            ) from err
        return writer

    def _check_resumable(self, header: DatasetHeader) -> None:
        stored = read_metadata(self.data_dir).get(META_KEY, {})
        diffs = [f"{k}={stored.get(k)!r} (now {v!r})" for k, v in header.info.items() if stored.get(k) != v]
        if diffs:
            raise UserInputError(
                f"cannot resume {self.dataset_dir}: it was collected with " + ", ".join(diffs)
            )

    def done_indices(self) -> set[int]:
        """Collection indices of every finished episode, folded in or staged."""
        with _open_h5(self.data_dir / _MAIN_FILE) as f:
            done = {int(f[name].attrs["index"]) for name in f}
        return done | {_staged_index(p) for p in self._staged_files()}

    def add(self, episode: Episode) -> None:
        """Stage one finished episode: complete on disk once this returns, whatever happens next."""
        final = self.staging_dir / f"episode_{episode.index:06d}.hdf5"
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as f:
                _write_episode(f.create_group("episode"), episode, self.storage)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk or a stop mid-write: nothing half-written stays
            raise

    def finalize(self) -> None:
        """Fold staged episodes into ``main_data.hdf5`` in index order, then update the metadata.

        Runs with no worker left writing, so any ``.tmp-<pid>`` file in staging was cut off by a kill
        or a full disk: deleted first (which also frees the space the fold needs).
        """
        for path in self.staging_dir.glob(".*.tmp*"):
            path.unlink()
        staged = {_staged_index(p): p for p in self._staged_files()}
        main = self.data_dir / _MAIN_FILE
        tmp = main.with_name(f".{_MAIN_FILE}.tmp-{os.getpid()}")
        try:
            total_episodes, total_steps = self._rebuild_main(main, tmp, staged)
        except (OSError, RuntimeError) as err:  # h5py reports a failed write as either
            tmp.unlink(missing_ok=True)
            if is_disk_full(err):
                raise UserInputError(
                    f"disk full while folding episodes into {main}; the finished episodes stay staged in "
                    f"{self.staging_dir}; free space and resume=true"
                ) from err
            raise
        metadata = read_metadata(self.data_dir)
        size_mb = round(main.stat().st_size / 1e6, 1)  # Minari's unit for dataset_size
        metadata.update(total_episodes=total_episodes, total_steps=total_steps, dataset_size=size_mb)
        self._write_metadata(metadata)
        for path in staged.values():
            path.unlink()

    def _rebuild_main(self, main: Path, tmp: Path, staged: dict[int, Path]) -> tuple[int, int]:
        """Write the old episodes plus ``staged`` into ``tmp`` in index order, then move it over ``main``."""
        total_steps = 0
        with _open_h5(main) as old, h5py.File(tmp, "w", track_order=True) as new:
            sources: dict[int, tuple[Path | None, str]] = {int(old[n].attrs["index"]): (None, n) for n in old}
            for index, path in staged.items():
                sources.setdefault(index, (path, "episode"))
            for new_id, index in enumerate(sorted(sources)):
                path, name = sources[index]
                if path is None:
                    old.copy(old[name], new, name=f"episode_{new_id}")
                else:
                    with _open_h5(path) as src:
                        src.copy(src[name], new, name=f"episode_{new_id}")
                new[f"episode_{new_id}"].attrs["id"] = new_id
                total_steps += int(new[f"episode_{new_id}"].attrs["total_steps"])
            total_episodes = len(sources)
        os.replace(tmp, main)
        return total_episodes, total_steps

    def total_episodes(self) -> int:
        """Episodes folded into ``main_data.hdf5`` (all of them after :meth:`finalize`)."""
        with _open_h5(self.data_dir / _MAIN_FILE) as f:
            return len(f)

    def info_arrays(self, key: str) -> list[np.ndarray]:
        """Per-episode ``infos[key]`` of the folded-in episodes, e.g. positions for coverage."""
        with _open_h5(self.data_dir / _MAIN_FILE) as f:
            return [f[name]["infos"][key][()] for name in f]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dataset_dir.rglob("*") if p.is_file())

    def _staged_files(self) -> list[Path]:
        return sorted(self.staging_dir.glob("episode_*.hdf5"))

    def _write_metadata(self, metadata: dict[str, Any]) -> None:
        path = self.data_dir / _METADATA_FILE
        tmp = path.with_name(f".{_METADATA_FILE}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(metadata))
        os.replace(tmp, path)


def _initial_metadata(header: DatasetHeader) -> dict[str, Any]:
    metadata = {
        "dataset_id": header.dataset_id,
        "total_episodes": 0,
        "total_steps": 0,
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "observation_space": serialize_space(header.observation_space),
        "action_space": serialize_space(header.action_space),
        "minari_version": minari.__version__,
        "algorithm_name": str(header.info.get("policy")),
        "description": "jepa-planner exploration rollouts; see the jepa_planner key for how they were collected",
        META_KEY: header.info,
    }
    if header.env_spec is not None:
        metadata["env_spec"] = header.env_spec
    return metadata


def _write_episode(group: h5py.Group, episode: Episode, storage: StorageOptions) -> None:
    group.attrs.update(
        id=episode.index,
        index=episode.index,
        seed=episode.seed,
        total_steps=episode.num_steps,
        spec=json.dumps(episode.spec),
    )
    arrays = {
        "observations": episode.observations,
        "actions": episode.actions,
        "rewards": episode.rewards,
        "terminations": episode.terminations,
        "truncations": episode.truncations,
        "infos": episode.infos,
    }
    _write_tree(group, arrays, storage)


def _write_tree(group: h5py.Group, tree: dict[str, Any], storage: StorageOptions) -> None:
    for name, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(name), value, storage)
        else:
            array = np.asarray(value)
            group.create_dataset(name, data=array, **storage.dataset_kwargs(array))


def _staged_index(path: Path) -> int:
    return int(path.stem.split("_")[1])


@contextmanager
def _open_h5(path: Path) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading; a damaged file becomes a one-line UserInputError."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise UserInputError(f"dataset file {path} is corrupt or truncated ({_first_line(err)})") from err
    try:
        yield f
    except (OSError, KeyError, ValueError) as err:
        if isinstance(err, UserInputError) or is_disk_full(err):  # a full disk is not a corrupt file
            raise
        raise UserInputError(f"dataset file {path} is corrupt or truncated ({_first_line(err)})") from err
    finally:
        f.close()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def read_metadata(data_dir: Path) -> dict[str, Any]:
    """The Minari ``metadata.json`` of a dataset ``data`` folder."""
    path = Path(data_dir) / _METADATA_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserInputError(
            f"dataset metadata {path} is unreadable or corrupt ({_first_line(err)})"
        ) from err


def find_data_dir(path: str | os.PathLike) -> Path:
    """Resolve a run folder, a Minari dataset folder, its ``data`` folder or a local Minari dataset id."""
    root = Path(path)
    if not root.exists():
        by_id = Path(minari.storage.get_dataset_path(str(path))) / "data"
        if by_id.is_dir():
            return by_id
        raise UserInputError(
            f"no dataset at {path} (give a collection run folder, a Minari dataset folder or id)"
        )
    for candidate in (root, root / "data"):
        if (candidate / _METADATA_FILE).exists():
            return candidate
    found = sorted(p.parent for p in root.glob(f"*/data/{_METADATA_FILE}"))
    if len(found) == 1:
        return found[0]
    if found:
        raise UserInputError(f"{path} holds several datasets; pass one of: {', '.join(map(str, found))}")
    raise UserInputError(f"no dataset at {path} (no {_METADATA_FILE} found in it or in <id>/data below it)")


def load_episodes(path: str | os.PathLike, task: str | None = None, obs: str | None = None) -> EpisodeSet:
    """Read every finished episode of a dataset, refusing one of another task or obs mode."""
    data_dir = find_data_dir(path)
    metadata = read_metadata(data_dir)
    if META_KEY in metadata:
        info = dict(metadata[META_KEY])
        _check_matches(path, info, task, obs)
        episodes = _read_collected(data_dir.parent)
    else:
        info = _external_info(path, metadata)
        _check_matches(path, info, task, obs)
        episodes = _read_external(data_dir, info["task"])
    if not episodes:
        raise UserInputError(f"dataset at {path} holds no finished episodes")
    episode_set = EpisodeSet.from_episodes(episodes, info)
    episode_set.check_finite(f"dataset at {path}")
    return episode_set


def _check_matches(path: str | os.PathLike, info: dict[str, Any], task: str | None, obs: str | None) -> None:
    asked = {"task": task, "obs": obs}
    wrong = {k: v for k, v in asked.items() if v is not None and info.get(k) != v}
    if wrong:
        asked_text = " ".join(f"{k}={v}" for k, v in wrong.items())
        raise UserInputError(
            f"dataset at {path} holds task={info.get('task')} obs={info.get('obs')}, but {asked_text} was asked for"
        )


def _read_collected(dataset_dir: Path) -> list[dict[str, np.ndarray]]:
    """Folded-in and staged episodes, in collection order, each once."""
    by_index: dict[int, dict[str, np.ndarray]] = {}
    main = dataset_dir / "data" / _MAIN_FILE
    with _open_h5(main) as f:
        for name in f:
            by_index[int(f[name].attrs["index"])] = _episode_arrays(f[name], main)
    for staged in sorted((dataset_dir / "staging").glob("episode_*.hdf5")):
        index = _staged_index(staged)
        if index not in by_index:
            with _open_h5(staged) as f:
                by_index[index] = _episode_arrays(f["episode"], staged)
    return [by_index[i] for i in sorted(by_index)]


def _episode_arrays(group: h5py.Group, path: Path) -> dict[str, np.ndarray]:
    episode = {
        "observations": group["observations"]["observation"][()],
        "goal": group["observations"]["goal"][0],
        "actions": group["actions"][()],
        "states": group["infos"]["state"][()],
    }
    steps = len(episode["actions"])
    if len(episode["observations"]) != steps + 1 or len(episode["states"]) != steps + 1:
        raise UserInputError(
            f"dataset file {path} is corrupt: an episode's observations and actions disagree"
        )
    return episode


# Minari datasets made by others, e.g. ``D4RL/pointmaze/umaze-v2``: their env id -> our task. Their
# ``observation`` is the PointMaze state (x, y, vx, vy), the same vector as our ``obs=state``.
EXTERNAL_TASKS = {"PointMaze_UMaze-v3": "pointmaze-umaze", "PointMaze_Medium-v3": "pointmaze-medium"}


def _external_info(path: str | os.PathLike, metadata: dict[str, Any]) -> dict[str, Any]:
    env_id = json.loads(metadata.get("env_spec") or "{}").get("id")
    if env_id not in EXTERNAL_TASKS:
        raise UserInputError(
            f"dataset at {path} is for env {env_id}; importable Minari envs: {', '.join(EXTERNAL_TASKS)}"
        )
    return {
        "task": EXTERNAL_TASKS[env_id],
        "obs": "state",
        "image_size": None,
        "seed": None,
        "policy": metadata.get("algorithm_name"),
        "source": metadata.get("dataset_id"),
    }


def _read_external(data_dir: Path, task: str) -> list[dict[str, np.ndarray]]:
    """PointMaze episodes cut where the goal moves (D4RL re-samples it on arrival), at our step size.

    Our PointMaze step repeats an action over ``action_repeat`` simulator steps while D4RL changes
    it every simulator step, so every ``action_repeat``-th state is kept with the mean of the
    actions in between: an approximation of our dynamics, close while the ball is below top speed.
    """
    import envs  # the registry; imported here because envs.dataset must stay importable without tasks

    env = envs.make(task, obs="state")
    stride = env.unwrapped.action_repeat
    env.close()
    try:
        raw = list(minari.MinariDataset(data_dir).iterate_episodes())
    except (OSError, KeyError, ValueError, AssertionError) as err:
        raise UserInputError(
            f"Minari dataset {data_dir} is corrupt or truncated ({_first_line(err)})"
        ) from err
    return [piece for episode in raw for piece in _split_at_goal_changes(episode, stride)]


def _split_at_goal_changes(episode: Any, stride: int) -> list[dict[str, np.ndarray]]:
    state = np.asarray(episode.observations["observation"], dtype=np.float32)
    desired = np.asarray(episode.observations["desired_goal"], dtype=np.float32)
    actions = np.asarray(episode.actions, dtype=np.float32)
    changes = np.flatnonzero(np.any(desired[1:] != desired[:-1], axis=1)) + 1
    pieces = []
    for start, end in zip(np.r_[0, changes], np.r_[changes, len(state)], strict=True):
        steps = (end - 1 - start) // stride
        if steps < 1:
            continue
        goal = np.concatenate([desired[start], np.zeros(state.shape[1] - desired.shape[1], np.float32)])
        kept = state[start : start + steps * stride + 1 : stride]
        pieces.append(
            {
                "observations": kept,
                "goal": goal,
                "actions": actions[start : start + steps * stride].reshape(steps, stride, -1).mean(axis=1),
                "states": kept,
            }
        )
    return pieces

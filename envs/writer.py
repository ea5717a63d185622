"""Writing datasets so that a kill never loses a finished episode (the layout: :mod:`envs.dataset`).

Each finished episode is first written to its own staging file (written aside, then renamed, so a
file there is always complete); :meth:`DatasetWriter.finalize` folds them into ``main_data.hdf5``
by rebuilding it aside and renaming it over the old one. A kill at any moment therefore leaves a
valid Minari file plus complete staged episodes, and :func:`envs.dataset.load_episodes` reads both.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import minari
import numpy as np
from minari.serialization import serialize_space

from envs.dataset import MAIN_FILE, META_KEY, METADATA_FILE, open_h5, read_metadata, staged_index
from envs.errors import UserInputError, is_disk_full


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
        exists = (writer.data_dir / METADATA_FILE).exists()
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
            with h5py.File(writer.data_dir / MAIN_FILE, "w"):
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
        with open_h5(self.data_dir / MAIN_FILE) as f:
            done = {int(f[name].attrs["index"]) for name in f}
        return done | {staged_index(p) for p in self._staged_files()}

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
        staged = {staged_index(p): p for p in self._staged_files()}
        main = self.data_dir / MAIN_FILE
        tmp = main.with_name(f".{MAIN_FILE}.tmp-{os.getpid()}")
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
        with open_h5(main) as old, h5py.File(tmp, "w", track_order=True) as new:
            sources: dict[int, tuple[Path | None, str]] = {int(old[n].attrs["index"]): (None, n) for n in old}
            for index, path in staged.items():
                sources.setdefault(index, (path, "episode"))
            for new_id, index in enumerate(sorted(sources)):
                path, name = sources[index]
                if path is None:
                    old.copy(old[name], new, name=f"episode_{new_id}")
                else:
                    with open_h5(path) as src:
                        src.copy(src[name], new, name=f"episode_{new_id}")
                new[f"episode_{new_id}"].attrs["id"] = new_id
                total_steps += int(new[f"episode_{new_id}"].attrs["total_steps"])
            total_episodes = len(sources)
        os.replace(tmp, main)
        return total_episodes, total_steps

    def total_episodes(self) -> int:
        """Episodes folded into ``main_data.hdf5`` (all of them after :meth:`finalize`)."""
        with open_h5(self.data_dir / MAIN_FILE) as f:
            return len(f)

    def info_arrays(self, key: str) -> list[np.ndarray]:
        """Per-episode ``infos[key]`` of the folded-in episodes that store it, e.g. positions for coverage."""
        with open_h5(self.data_dir / MAIN_FILE) as f:
            return [f[name]["infos"][key][()] for name in f if key in f[name]["infos"]]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dataset_dir.rglob("*") if p.is_file())

    def _staged_files(self) -> list[Path]:
        return sorted(self.staging_dir.glob("episode_*.hdf5"))

    def _write_metadata(self, metadata: dict[str, Any]) -> None:
        path = self.data_dir / METADATA_FILE
        tmp = path.with_name(f".{METADATA_FILE}.tmp-{os.getpid()}")
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

"""Episodes on disk: the Minari dataset layout, its metadata, and reading it into an :class:`EpisodeSet`.

A collection run folder holds one Minari dataset, readable with ``minari.load_dataset`` once
``MINARI_DATASETS_PATH`` points at the run folder::

    <out>/<dataset_id>/data/metadata.json, main_data.hdf5   the Minari dataset
    <out>/<dataset_id>/staging/episode_000042.hdf5          finished episodes not folded in yet

``envs/writer.py`` writes it (kill-safe: staged episodes are complete files), and
:func:`load_episodes` reads the folded-in and the staged episodes alike. Our datasets keep Minari's
HDF5 layout but store pixels as raw, chunked and compressed ``uint8`` (``jpeg_encoding: false`` in
the metadata: lossless, still read by Minari); the task, obs mode, image size, collection seed and
policy sit under the ``jepa_planner`` metadata key. A Minari dataset made by others (D4RL's
PointMaze) is imported by ``envs/d4rl.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import minari
import numpy as np

from envs import d4rl
from envs.episodes import EpisodeSet
from envs.errors import UserInputError, first_line, is_disk_full

META_KEY = "jepa_planner"
MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"


def staged_index(path: Path) -> int:
    """The collection index in a staging file's name, ``episode_000042.hdf5`` -> 42."""
    return int(path.stem.split("_")[1])


@contextmanager
def open_h5(path: Path) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading; a damaged file becomes a one-line UserInputError."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise UserInputError(f"dataset file {path} is corrupt or truncated ({first_line(err)})") from err
    try:
        yield f
    except (OSError, KeyError, ValueError) as err:
        if isinstance(err, UserInputError) or is_disk_full(err):  # a full disk is not a corrupt file
            raise
        raise UserInputError(f"dataset file {path} is corrupt or truncated ({first_line(err)})") from err
    finally:
        f.close()


def read_metadata(data_dir: Path) -> dict[str, Any]:
    """The Minari ``metadata.json`` of a dataset ``data`` folder."""
    path = Path(data_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserInputError(
            f"dataset metadata {path} is unreadable or corrupt ({first_line(err)})"
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
        if (candidate / METADATA_FILE).exists():
            return candidate
    found = sorted(p.parent for p in root.glob(f"*/data/{METADATA_FILE}"))
    if len(found) == 1:
        return found[0]
    if found:
        raise UserInputError(f"{path} holds several datasets; pass one of: {', '.join(map(str, found))}")
    raise UserInputError(f"no dataset at {path} (no {METADATA_FILE} found in it or in <id>/data below it)")


def load_episodes(path: str | os.PathLike, task: str | None = None, obs: str | None = None) -> EpisodeSet:
    """Read every finished episode of a dataset, refusing one of another task or obs mode."""
    data_dir = find_data_dir(path)
    metadata = read_metadata(data_dir)
    if META_KEY in metadata:
        info = dict(metadata[META_KEY])
        _check_matches(path, info, task, obs)
        episodes = _read_collected(data_dir.parent)
    else:
        info = d4rl.external_info(path, metadata)
        _check_matches(path, info, task, obs)
        episodes = d4rl.read_external(data_dir, info["task"])
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
    main = dataset_dir / "data" / MAIN_FILE
    with open_h5(main) as f:
        for name in f:
            by_index[int(f[name].attrs["index"])] = _episode_arrays(f[name], main)
    for staged in sorted((dataset_dir / "staging").glob("episode_*.hdf5")):
        index = staged_index(staged)
        if index not in by_index:
            with open_h5(staged) as f:
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

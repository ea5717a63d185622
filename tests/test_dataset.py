"""envs.dataset: Minari round trips, kill-safe staging, flat EpisodeSet layout and every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from envs.dataset import load_episodes
from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from envs.writer import DatasetHeader, DatasetWriter, Episode, StorageOptions

SIZE, STATE, ACTION = 8, 3, 2
INFO = {"task": "toy", "obs": "pixels", "image_size": SIZE, "seed": 0, "policy": "UniformRandom"}


def header(**info_changes: object) -> DatasetHeader:
    frames = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
    return DatasetHeader(
        dataset_id="toy-pixels-v0",
        observation_space=gym.spaces.Dict({"observation": frames, "goal": frames}),
        action_space=gym.spaces.Box(-1, 1, (ACTION,), np.float32),
        env_spec=None,
        info={**INFO, **info_changes},
    )


def episode(index: int, steps: int) -> Episode:
    rng = np.random.default_rng(index)
    goal = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return Episode(
        index=index,
        seed=1000 + index,
        spec={"start": [0.1 * index, 0.2], "goal": [0.3, 0.4]},
        observations={
            "observation": rng.integers(0, 256, (steps + 1, SIZE, SIZE, 3), dtype=np.uint8),
            "goal": np.repeat(goal[None], steps + 1, axis=0),
        },
        actions=rng.uniform(-1, 1, (steps, ACTION)).astype(np.float32),
        rewards=np.zeros(steps),
        terminations=np.zeros(steps, dtype=bool),
        truncations=np.arange(steps) == steps - 1,
        infos={
            "success": np.zeros(steps + 1, dtype=bool),
            "distance": rng.uniform(size=steps + 1),
            "state": rng.normal(size=(steps + 1, STATE)).astype(np.float32),
            "achieved_goal": rng.normal(size=(steps + 1, 2)),
        },
    )


def open_writer(run: Path, **kwargs: object) -> DatasetWriter:
    return DatasetWriter.open(run / "toy-pixels-v0", header(), StorageOptions(), **kwargs)


def assert_same(loaded: EpisodeSet, episodes: list[Episode]) -> None:
    assert loaded.num_episodes == len(episodes)
    for i, ep in enumerate(episodes):
        got = loaded.episode(i)
        np.testing.assert_array_equal(got["observations"], ep.observations["observation"])
        np.testing.assert_array_equal(got["actions"], ep.actions)
        np.testing.assert_array_equal(got["states"], ep.infos["state"])
        np.testing.assert_array_equal(got["goal"], ep.observations["goal"][0])


def test_round_trip_is_exact_and_minari_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = [episode(i, steps) for i, steps in enumerate([5, 3, 7])]
    writer = open_writer(tmp_path)
    for ep in episodes:
        writer.add(ep)
    writer.finalize()
    loaded = load_episodes(tmp_path, task="toy", obs="pixels")
    assert_same(loaded, episodes)
    assert loaded.metadata == INFO
    np.testing.assert_array_equal(loaded.episode_lengths, [5, 3, 7])
    np.testing.assert_array_equal(loaded.obs_starts, [0, 6, 10])
    np.testing.assert_array_equal(loaded.action_starts, [0, 5, 8])
    assert loaded.observations.shape == (18, SIZE, SIZE, 3) and loaded.observations.dtype == np.uint8
    assert loaded.actions.shape == (15, ACTION) and loaded.states.shape == (18, STATE)

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset("toy-pixels-v0")
    assert (dataset.total_episodes, dataset.total_steps) == (3, 15)
    second = dataset[1]
    np.testing.assert_array_equal(second.observations["observation"], episodes[1].observations["observation"])
    np.testing.assert_array_equal(second.infos["distance"], episodes[1].infos["distance"])
    metadata = next(iter(dataset.storage.get_episode_metadata([1])))
    assert metadata["seed"] == 1001 and json.loads(metadata["spec"]) == episodes[1].spec


def test_pixels_are_compressed_chunks(tmp_path: Path) -> None:
    writer = open_writer(tmp_path)
    writer.add(episode(0, 40))
    writer.finalize()
    with h5py.File(tmp_path / "toy-pixels-v0" / "data" / "main_data.hdf5") as f:
        frames = f["episode_0"]["observations"]["observation"]
        assert (
            frames.dtype == np.uint8 and frames.compression == "gzip" and frames.chunks == (32, SIZE, SIZE, 3)
        )
        assert f["episode_0"]["actions"].compression is None


def test_staged_episodes_are_read_before_finalize_and_never_twice(tmp_path: Path) -> None:
    episodes = [episode(i, 4) for i in range(4)]
    writer = open_writer(tmp_path)
    for ep in (episodes[2], episodes[0]):  # workers finish out of order
        writer.add(ep)
    writer.finalize()
    writer.add(episodes[3])
    writer.add(episodes[1])
    staged = tmp_path / "toy-pixels-v0" / "staging" / "episode_000001.hdf5"
    kept = staged.read_bytes()
    assert writer.done_indices() == {0, 1, 2, 3}
    assert_same(load_episodes(tmp_path), episodes)  # as after a kill: main file + staging
    writer.finalize()
    staged.write_bytes(kept)  # as a kill between folding in and deleting the staged file
    assert_same(load_episodes(tmp_path), episodes)
    writer.finalize()
    assert writer.total_episodes() == 4 and not list(staged.parent.iterdir())


def test_refuses_to_overwrite_and_checks_resume(tmp_path: Path) -> None:
    writer = open_writer(tmp_path)
    writer.add(episode(0, 3))
    with pytest.raises(UserInputError, match="resume=true .* overwrite=true"):
        open_writer(tmp_path)
    with pytest.raises(UserInputError, match="seed=0 \\(now 7\\)"):
        DatasetWriter.open(tmp_path / "toy-pixels-v0", header(seed=7), StorageOptions(), resume=True)
    assert open_writer(tmp_path, resume=True).done_indices() == {0}
    assert open_writer(tmp_path, overwrite=True).done_indices() == set()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "data" / "main_data.hdf5").write_bytes(b"not hdf5 at all"), "corrupt or truncated"),
        (lambda d: _truncate(d / "data" / "main_data.hdf5"), "corrupt or truncated"),
        (lambda d: (d / "data" / "metadata.json").write_text("{oops"), "unreadable or corrupt"),
        (lambda d: shutil.rmtree(d / "data"), "no dataset at"),
    ],
)
def test_damaged_dataset_is_one_clear_error(tmp_path: Path, damage: object, message: str) -> None:
    writer = open_writer(tmp_path)
    writer.add(episode(0, 40))
    writer.finalize()
    damage(tmp_path / "toy-pixels-v0")
    with pytest.raises(UserInputError, match=message) as err:
        load_episodes(tmp_path)
    assert "\n" not in str(err.value)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_wrong_task_or_obs_zero_episodes_and_missing_path(tmp_path: Path) -> None:
    writer = open_writer(tmp_path)
    with pytest.raises(UserInputError, match="no finished episodes"):
        load_episodes(tmp_path)
    writer.add(episode(0, 3))
    with pytest.raises(UserInputError, match="holds task=toy obs=pixels, but obs=state was asked for"):
        load_episodes(tmp_path, task="toy", obs="state")
    with pytest.raises(UserInputError, match="but task=wall was asked for"):
        load_episodes(tmp_path, task="wall")
    with pytest.raises(UserInputError, match="no dataset at"):
        load_episodes(tmp_path / "missing")


def test_imports_a_d4rl_style_pointmaze_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's own Minari PointMaze dataset: cut where the goal moves, resampled to our 5-step actions."""
    import gymnasium_robotics  # noqa: F401  (registers PointMaze_UMaze-v3)
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    steps = 21
    state = np.arange((steps + 1) * 4, dtype=np.float64).reshape(steps + 1, 4)
    desired = np.where(np.arange(steps + 1)[:, None] < 11, [[1.0, 1.0]], [[-1.0, 0.0]])
    actions = np.linspace(-1, 1, steps * 2).reshape(steps, 2)
    buffer = EpisodeBuffer(
        observations={"observation": state, "achieved_goal": state[:, :2], "desired_goal": desired},
        actions=actions,
        rewards=list(np.zeros(steps)),
        terminations=list(np.zeros(steps, dtype=bool)),
        truncations=list(np.arange(steps) == steps - 1),
        infos={"success": np.zeros(steps + 1, dtype=bool)},
    )
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers("pointmaze/umaze-mine-v0", [buffer], env="PointMaze_UMaze-v3")
    loaded = load_episodes("pointmaze/umaze-mine-v0", task="pointmaze-umaze", obs="state")
    np.testing.assert_array_equal(loaded.episode_lengths, [2, 2])  # 10 simulator steps each, 5 per action
    np.testing.assert_array_equal(loaded.episode(0)["observations"], state[[0, 5, 10]])
    np.testing.assert_array_equal(loaded.episode(1)["observations"], state[[11, 16, 21]])
    np.testing.assert_allclose(loaded.episode(1)["actions"][0], actions[11:16].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(loaded.goals, [[1, 1, 0, 0], [-1, 0, 0, 0]])
    assert (
        loaded.metadata["task"] == "pointmaze-umaze"
        and loaded.metadata["source"] == "pointmaze/umaze-mine-v0"
    )
    with pytest.raises(UserInputError, match="obs=pixels was asked for"):
        load_episodes("pointmaze/umaze-mine-v0", obs="pixels")

"""Fixed-length training windows cut from an EpisodeSet, never crossing an episode boundary.

Every window start is enumerated once up front, so drawing a batch is one random integer draw plus
fancy indexing into the flat episode arrays (no Python loop per sample). A batch depends only on
``(seed, rank, step)``, which is what makes resumed and distributed runs reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch

from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from worldmodel.frames import history_index, stack_frames


class WindowBatch(NamedTuple):
    obs: torch.Tensor  # (B, T+1, *obs_shape) with frame_stack frames on the last axis; dtype as stored
    actions: torch.Tensor  # (B, T, A) float32
    states: torch.Tensor  # (B, T+1, S) float32


class WindowSampler:
    """Draws batches of ``window`` transitions (``window + 1`` observations) from whole episodes.

    ``episode_ids`` restricts sampling to a subset (e.g. training episodes only, for held-out probes).
    ``rank`` gives each distributed process its own stream of batches from the same seed.
    ``frame_stack``: each observation comes with the ones before it (see :mod:`worldmodel.frames`).
    """

    def __init__(
        self,
        episodes: EpisodeSet,
        window: int,
        batch_size: int,
        seed: int = 0,
        episode_ids: Sequence[int] | None = None,
        rank: int = 0,
        frame_stack: int = 1,
    ) -> None:
        if window < 1 or batch_size < 1 or frame_stack < 1:
            raise UserInputError("window, batch_size and frame_stack must be >= 1 "
                                 f"(got window={window}, batch_size={batch_size}, frame_stack={frame_stack})")
        self.episodes = episodes
        self.window, self.batch_size, self.seed, self.rank = window, batch_size, seed, rank
        self.frame_stack = frame_stack
        lengths = np.asarray(episodes.episode_lengths, dtype=np.int64)
        ids = np.arange(len(lengths)) if episode_ids is None else np.asarray(episode_ids, dtype=np.int64)
        usable = ids[lengths[ids] >= window]
        if len(usable) == 0:
            longest = int(lengths[ids].max()) if len(ids) else 0
            raise UserInputError(
                f"no episode is long enough for window={window} (longest has {longest} actions); "
                f"use a window <= {longest} or collect longer episodes"
            )
        obs_starts, action_starts = episodes.obs_starts, episodes.action_starts
        per_episode = lengths[usable] - window + 1  # number of window starts in each usable episode
        offsets = np.concatenate([np.arange(n) for n in per_episode])
        episode_of_window = np.repeat(usable, per_episode)
        self.obs_index = obs_starts[episode_of_window] + offsets
        self.action_index = action_starts[episode_of_window] + offsets
        self.episode_start = obs_starts[episode_of_window]  # where frame histories stop
        self.observations = torch.from_numpy(np.ascontiguousarray(episodes.observations))
        self.actions = torch.from_numpy(np.ascontiguousarray(episodes.actions, dtype=np.float32))
        self.states = torch.from_numpy(np.ascontiguousarray(episodes.states, dtype=np.float32))

    @property
    def num_windows(self) -> int:
        return len(self.obs_index)

    def sample(self, step: int) -> WindowBatch:
        """The batch for training step ``step``; the same arguments always give the same batch."""
        rng = np.random.default_rng([self.seed, self.rank, step])
        pick = rng.integers(self.num_windows, size=self.batch_size)
        obs_idx = self.obs_index[pick][:, None] + np.arange(self.window + 1)
        act_idx = torch.from_numpy(self.action_index[pick][:, None] + np.arange(self.window))
        frames_idx = torch.from_numpy(history_index(obs_idx, self.episode_start[pick][:, None], self.frame_stack))
        obs = stack_frames(self.observations[frames_idx], self.observations.ndim - 1)
        return WindowBatch(obs, self.actions[act_idx], self.states[torch.from_numpy(obs_idx)])

    def __iter__(self) -> Iterator[WindowBatch]:
        step = 0
        while True:
            yield self.sample(step)
            step += 1


def measure_window_rate(episodes: EpisodeSet, window: int, batch_size: int, seconds: float) -> float:
    """Windows per second the sampler delivers on this machine (to check data is not the bottleneck)."""
    sampler = WindowSampler(episodes, window, batch_size)
    count, step, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sampler.sample(step)
        count += batch_size
        step += 1
    return count / (time.perf_counter() - start)

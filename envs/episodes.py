"""Episodes in memory: :class:`EpisodeSet`, every episode of a dataset concatenated into flat arrays.

Kept apart from the files they come from (``envs/dataset.py`` reads them, ``envs/writer.py`` writes
them) because every consumer (window sampler, landmark graph, GCBC, diagnostics) needs only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.errors import UserInputError


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

"""The landmark graph at scale, on synthetic latents shaped like the real ones (``benchmark.py suite=scale``).

    python -m agents.speed 1000000     # one JSON line: build seconds, peak GB, a new goal's seconds

Run in a fresh process per size, so that the peak resident memory it reports (Python, torch and the
data included) is this build's. The latents: episodes of a point mass (2-d position reflected in the
unit square, 2-d velocity a damped random walk) mapped linearly into 64 dimensions plus noise, what a
maze encoder's latents look like to the graph, built with the options of
``configs/energy/geodesic_subgoal_dense.yaml`` (every observation a landmark).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from agents.landmarks import LandmarkGraph
from envs.episodes import EpisodeSet

DENSE = Path(__file__).resolve().parents[1] / "configs" / "energy" / "geodesic_subgoal_dense.yaml"


class IdentityEncoder(torch.nn.Module):
    """The graph's view of a model: observations already are the latents."""

    frame_stack = 1
    device = torch.device("cpu")

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32)


def synthetic_latent_episodes(frames: int, dim: int = 64, length: int = 100, noise: float = 1e-3,
                              seed: int = 0) -> EpisodeSet:
    """About ``frames`` observations in episodes of ``length`` steps, as latents ``(dim,)``."""
    rng = np.random.default_rng(seed)
    count = max(1, frames // (length + 1))
    position = np.empty((count, length + 1, 2))
    position[:, 0] = rng.uniform(0, 1, (count, 2))
    velocity = np.zeros((count, 2))
    for t in range(length):
        velocity = 0.9 * velocity + 0.01 * rng.standard_normal((count, 2))  # damped random walk
        step = position[:, t] + velocity
        position[:, t + 1] = np.abs(step) - 2 * np.maximum(np.abs(step) - 1, 0)  # reflected into [0, 1]
    lift = rng.standard_normal((2, dim)) / np.sqrt(2)
    latents = position @ lift + noise * rng.standard_normal((count, length + 1, dim))
    latents = latents.astype(np.float32).reshape(-1, dim)
    return EpisodeSet(
        observations=latents,
        actions=np.zeros((count * length, 2), np.float32),
        states=position.reshape(-1, 2).astype(np.float32),
        goals=latents[:count],
        episode_lengths=np.full(count, length, np.int64),
    )


def peak_memory_gb() -> float:
    """This process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def landmark_scale(frames: int, seed: int = 0) -> dict[str, Any]:
    """Build the dense recipe's graph on ``frames`` synthetic latents; time a new goal's distances."""
    options = yaml.safe_load(DENSE.read_text())["terms"]["goal"]
    episodes = synthetic_latent_episodes(frames, seed=seed)
    start = time.perf_counter()
    graph = LandmarkGraph.from_episodes(IdentityEncoder(), episodes, **options["landmarks"])
    build_s = time.perf_counter() - start
    goal = torch.as_tensor(episodes.observations[-1])
    start = time.perf_counter()
    to_goal = graph.distances_to(goal)
    graph.next_hops(goal, to_goal)  # what the subgoal energy computes when the goal changes
    goal_s = time.perf_counter() - start
    return {"landmarks": len(graph.nodes), "build_s": build_s, "peak_gb": peak_memory_gb(), "goal_query_s": goal_s,
            "edges": int(graph.edges.nnz), "torch_threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(landmark_scale(int(sys.argv[1]))))

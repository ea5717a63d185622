"""Raw simulation speed of a task: env steps per second under random actions (one frame per step for pixels)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from envs.registry import make


def measure_env_speed(task: str, obs: str, steps: int, seed: int, image_size: int = 64) -> dict[str, Any]:
    """Time ``steps`` calls of ``env.step`` with uniform random actions; resets are not timed.

    For ``obs="pixels"`` every step renders one observation, so ``steps_per_s`` is also frames/s.
    """
    env = make(task, obs=obs, image_size=image_size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    env.step(env.action_space.sample())  # first call creates the GL renderer: not part of the rate
    elapsed = 0.0
    for _ in range(steps):
        action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    env.close()
    return {
        "task": task,
        "obs": obs,
        "image_size": image_size,
        "steps": steps,
        "seconds": elapsed,
        "steps_per_s": steps / elapsed,
    }

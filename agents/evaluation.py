"""Held-out evaluation: the same start/goal pairs for every agent, honest statistics, a table.

Pairs come from ``env.unwrapped.sample_task`` with generators ``default_rng([seed, i])`` (the
collection draws episode ``i`` from ``[collection_seed, i]``), so an evaluation seed that differs from
the dataset's collection seed never replays a training episode; equal seeds are refused. A task with
its own evaluation tasks (``envs.protocols.EvaluationTasks``: OGBench's five) gets pairs of each in
turn, and its success is also reported per task and as their mean, as OGBench reports it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from envs.errors import UserInputError
from envs.protocols import EvaluationTasks


class Agent(Protocol):
    last_energy: float

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray: ...


@dataclass
class EpisodeResult:
    """One agent on one pair. ``success``: ``info["success"]`` after the last step taken."""

    pair: int
    success: bool
    final_distance: float
    steps: int
    steps_to_success: int | None
    act_ms: list[float] = field(repr=False)
    distances: list[float] = field(repr=False)  # at reset and after every step
    energies: list[float] = field(repr=False)  # the agent's planned energy before every step (NaN if none)
    frames: list[np.ndarray] | None = field(default=None, repr=False)  # observation frames, if recorded


def held_out_pairs(env: Any, episodes: int, seed: int, collection_seed: int | None) -> tuple[list[dict], int]:
    """``episodes`` episode specs from the evaluation seed, and how many drawn specs were already solved.

    ``sample_task`` already avoids starts that succeed; a reset that still reports success (a task
    whose check differs after settling) is counted and replaced rather than scored as a free win.
    """
    if collection_seed is not None and seed == collection_seed:
        raise UserInputError(
            f"seed={seed} is the dataset's collection seed: evaluation pairs would repeat training episodes; "
            "pick another seed"
        )
    tasks = evaluation_tasks(env)
    pairs, solved_at_start, index = [], 0, 0
    while len(pairs) < episodes:
        rng = np.random.default_rng([seed, index])
        if tasks:  # each evaluation task in turn
            spec = env.unwrapped.sample_evaluation_task(len(pairs) % len(tasks), rng)
        else:
            spec = env.unwrapped.sample_task(rng)
        index += 1
        _, info = env.reset(seed=seed, options=spec)
        if info["success"]:
            solved_at_start += 1
            continue
        pairs.append(spec)
    return pairs, solved_at_start


def evaluation_tasks(env: Any) -> list[str]:
    """The env's own evaluation tasks (OGBench's), or none."""
    task = env.unwrapped
    return task.evaluation_tasks() if isinstance(task, EvaluationTasks) else []


def run_episode(
    env: Any,
    agent: Agent,
    spec: dict,
    pair: int,
    seed: int,
    max_steps: int,
    stop_on_success: bool,
    frame_size: int | None = None,
) -> EpisodeResult:
    """Reset to ``spec`` and let ``agent`` act for ``max_steps``; time every ``act`` call.

    With ``stop_on_success`` the first success ends the episode; without, the agent must still be at
    the goal after the last step, so passing through it by chance (a random arm does) does not count.
    """
    agent.reset(seed=seed + pair)
    obs, info = env.reset(seed=seed + pair, options=spec)
    distances, energies, act_ms = [float(info["distance"])], [], []
    frames = [env.unwrapped.render_frame(frame_size)] if frame_size else None
    steps_to_success = None
    for step in range(1, max_steps + 1):
        start = time.perf_counter()
        action = agent.act(obs, info)
        act_ms.append(1000.0 * (time.perf_counter() - start))
        energies.append(float(agent.last_energy))
        obs, _, terminated, truncated, info = env.step(action)
        distances.append(float(info["distance"]))
        if frames is not None:
            frames.append(env.unwrapped.render_frame(frame_size))
        if info["success"] and steps_to_success is None:
            steps_to_success = step
        if (info["success"] and stop_on_success) or terminated or truncated:
            break
    return EpisodeResult(
        pair=pair,
        success=bool(info["success"]),
        final_distance=distances[-1],
        steps=len(act_ms),
        steps_to_success=steps_to_success,
        act_ms=act_ms,
        distances=distances,
        energies=energies,
        frames=frames,
    )


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: unlike the normal approximation it stays in [0, 1] at 0% and 100%."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Per-agent numbers for ``results.json``; times are wall ms per control step (``act`` call)."""
    successes = sum(r.success for r in results)
    act_ms = np.concatenate([r.act_ms for r in results]) if results else np.zeros(0)
    reached = [r.steps_to_success for r in results if r.success]
    return {
        "episodes": len(results),
        "successes": successes,
        "success_rate": successes / len(results) if results else float("nan"),
        "success_rate_95ci": list(wilson_interval(successes, len(results))),
        "distance": float(np.mean([r.final_distance for r in results])) if results else float("nan"),
        "plan_ms_median": float(np.median(act_ms)) if act_ms.size else float("nan"),
        "plan_ms_mean": float(np.mean(act_ms)) if act_ms.size else float("nan"),
        "steps_to_success_median": float(np.median(reached)) if reached else None,
    }


def summarize_per_task(results: list[EpisodeResult], pairs: list[dict], env: Any) -> dict[str, Any] | None:
    """Success per evaluation task and the mean of those rates (OGBench's headline), or None for a
    task without evaluation tasks."""
    names = evaluation_tasks(env)
    if not names:
        return None
    by_task: dict[str, list[bool]] = {name: [] for name in names}
    for result in results:
        by_task[env.unwrapped.evaluation_task_of(pairs[result.pair])].append(result.success)
    tasks = {name: {"episodes": len(s), "successes": int(sum(s)), "success_rate": sum(s) / len(s) if s else float("nan")}
             for name, s in by_task.items()}
    rates = [t["success_rate"] for t in tasks.values() if t["episodes"]]
    return {"tasks": tasks, "mean_success_rate": float(np.mean(rates)) if rates else float("nan")}


def episode_record(result: EpisodeResult) -> dict[str, Any]:
    """The JSON-friendly part of an episode (no frames, no per-step timings)."""
    record = asdict(result)
    for key in ("frames", "act_ms", "energies"):
        record.pop(key)
    return record


def evaluate_agent(
    env: Any,
    agent: Agent,
    pairs: list[dict],
    seed: int,
    max_steps: int,
    name: str,
    stop_on_success: bool,
    videos: int = 0,
    frame_size: int = 128,
) -> list[EpisodeResult]:
    """Every pair in order, with a progress bar.

    Frames are rendered only while fewer than ``videos`` successes or failures have been kept, and
    dropped from episodes of a kind already filled, so memory stays bounded by ``2 * videos`` episodes.
    """
    results: list[EpisodeResult] = []
    kept = {True: 0, False: 0}
    for i, spec in enumerate(tqdm(pairs, desc=f"eval {name}", unit="ep")):
        record = min(kept.values()) < videos
        result = run_episode(env, agent, spec, i, seed, max_steps, stop_on_success, frame_size if record else None)
        if result.frames is not None:
            if kept[result.success] < videos:
                kept[result.success] += 1
            else:
                result.frames = None
        results.append(result)
    return results


def select_for_video(results: list[EpisodeResult], videos: int) -> list[EpisodeResult]:
    """Up to ``videos`` recorded episodes, half successes and half failures when both exist."""
    recorded = [r for r in results if r.frames is not None]
    successes = [r for r in recorded if r.success]
    failures = [r for r in recorded if not r.success]
    n_fail = min(len(failures), max(videos // 2, videos - len(successes)))
    n_success = min(len(successes), videos - n_fail)
    return sorted(successes[:n_success] + failures[:n_fail], key=lambda r: r.pair)


def format_table(summaries: dict[str, dict[str, Any]]) -> str:
    """A fixed-width table of the headline numbers, one agent per row."""
    header = f"{'agent':<10} {'success':>8} {'95% CI':>15} {'distance':>9} {'plan ms':>8} {'episodes':>8}"
    rows = [header, "-" * len(header)]
    for name, s in summaries.items():
        low, high = s["success_rate_95ci"]
        rows.append(
            f"{name:<10} {s['success_rate']:>8.1%} {f'[{low:.2f}, {high:.2f}]':>15} "
            f"{s['distance']:>9.4f} {s['plan_ms_median']:>8.1f} {s['episodes']:>8d}"
        )
    for name, s in summaries.items():
        if s.get("per_task"):
            rates = ", ".join(f"{task} {t['success_rate']:.0%}" if t["episodes"] else f"{task} (no pairs)"
                              for task, t in s["per_task"]["tasks"].items())
            rows.append(f"{name}: per task {rates}; mean {s['per_task']['mean_success_rate']:.1%}")
    return "\n".join(rows)

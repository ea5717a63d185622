"""Held-out evaluation: the same start/goal pairs for every agent, played in one env or many, honest
statistics, a table.

The pairs come from :mod:`agents.pairs` (protocol (b), sampled, or (a), on held-out trajectories).
:func:`play` runs them, N envs side by side with one ``act_batch`` call for all running episodes; a
task with its own evaluation tasks (OGBench's five) is also reported per task and as their mean, as
OGBench reports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from agents.pairs import evaluation_tasks
from envs.errors import UserInputError


@runtime_checkable
class Agent(Protocol):
    """An agent that acts in one env at a time (tests' scripted agents)."""

    last_energy: float

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray: ...


@runtime_checkable
class BatchAgent(Protocol):
    """An agent that acts in many envs at once, env ``i`` in slot ``i`` (the JEPA agent, the
    baselines): one ``act_batch`` call gives every slot's next action, planned together."""

    def reset(self, seed: int | None = None, slot: int = 0) -> None: ...

    def act_batch(self, slots: Sequence[int], observations: Sequence[dict[str, np.ndarray]],
                  infos: Sequence[dict[str, Any]]) -> np.ndarray:
        """``(len(slots), A)`` actions."""
        ...

    def energy_of(self, slot: int) -> float:
        """The energy of the plan the slot executes (NaN for an agent that does not plan)."""
        ...


class OneEnv:
    """An :class:`Agent` seen as a :class:`BatchAgent` with a single slot."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        self.agent.reset(seed=seed)

    def act_batch(self, slots: Sequence[int], observations: Sequence[dict[str, np.ndarray]],
                  infos: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.asarray(self.agent.act(observations[0], infos[0]))[None]

    def energy_of(self, slot: int) -> float:
        return float(self.agent.last_energy)


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
    # info["achieved_goal"] at reset and after every step, kept with the frames only (the video's error plot)
    achieved_goals: list[np.ndarray] | None = field(default=None, repr=False)


class Episode:
    """An episode in progress in one env: reset to its pair's spec, stepped with the agent's actions."""

    def __init__(self, env: Any, spec: dict, pair: int, seed: int, frame_size: int | None) -> None:
        self.env, self.pair, self.frame_size = env, pair, frame_size
        self.obs, self.info = env.reset(seed=seed + pair, options=spec)
        self.distances, self.energies, self.act_ms = [float(self.info["distance"])], [], []
        self.frames = [env.unwrapped.render_frame(frame_size)] if frame_size else None
        keep = frame_size and "achieved_goal" in self.info  # the task contract's; a test's toy env may lack it
        self.achieved_goals = [np.asarray(self.info["achieved_goal"])] if keep else None
        self.steps_to_success: int | None = None

    def step(self, action: np.ndarray, ms: float, energy: float, max_steps: int, stop_on_success: bool) -> bool:
        """Take ``action`` (planned in ``ms``, with ``energy``); whether the episode is over."""
        self.act_ms.append(ms)
        self.energies.append(float(energy))
        self.obs, _, terminated, truncated, self.info = self.env.step(action)
        self.distances.append(float(self.info["distance"]))
        if self.frames is not None:
            self.frames.append(self.env.unwrapped.render_frame(self.frame_size))
        if self.achieved_goals is not None:
            self.achieved_goals.append(np.asarray(self.info["achieved_goal"]))
        if self.info["success"] and self.steps_to_success is None:
            self.steps_to_success = len(self.act_ms)
        return (self.info["success"] and stop_on_success) or terminated or truncated or len(self.act_ms) >= max_steps

    def result(self) -> EpisodeResult:
        return EpisodeResult(
            pair=self.pair,
            success=bool(self.info["success"]),
            final_distance=self.distances[-1],
            steps=len(self.act_ms),
            steps_to_success=self.steps_to_success,
            act_ms=self.act_ms,
            distances=self.distances,
            energies=self.energies,
            frames=self.frames,
            achieved_goals=self.achieved_goals,
        )


def play(
    envs: Any | Sequence[Any],
    agent: Agent | BatchAgent,
    pairs: Sequence[tuple[int, dict]],
    seed: int,
    max_steps: int,
    stop_on_success: bool,
    record: Callable[[], int | None] = lambda: None,
    on_done: Callable[[EpisodeResult], None] = lambda result: None,
) -> list[EpisodeResult]:
    """Play ``pairs`` (``(index, spec)``) with one episode per env at a time; results in pair order.

    With several envs, each free env takes the next pair and the agent acts for all running episodes
    in one ``act_batch`` call; that call's time is shared equally among them (``act_ms``). An episode
    is reset with seed ``seed + index`` in env and agent alike, so it plays out the same whatever the
    number of envs. ``record()`` says whether the episode starting now keeps frames (a frame size or
    None), ``on_done(result)`` sees each finished episode (its frames may be dropped there).
    """
    envs = list(envs) if isinstance(envs, (list, tuple)) else [envs]
    if len(envs) > 1 and not isinstance(agent, BatchAgent):
        raise UserInputError(f"{type(agent).__name__} acts in one env at a time; evaluate it with one env")
    batch = agent if isinstance(agent, BatchAgent) else OneEnv(agent)
    queue = iter(pairs)
    running: dict[int, Episode] = {}
    results: list[EpisodeResult] = []

    def start(slot: int) -> None:
        nxt = next(queue, None)
        if nxt is not None:
            index, spec = nxt
            batch.reset(seed=seed + index, slot=slot)
            running[slot] = Episode(envs[slot], spec, index, seed, record())

    for slot in range(len(envs)):
        start(slot)
    while running:
        slots = sorted(running)
        begin = time.perf_counter()
        actions = batch.act_batch(slots, [running[s].obs for s in slots], [running[s].info for s in slots])
        ms = 1000.0 * (time.perf_counter() - begin) / len(slots)
        for slot, action in zip(slots, actions, strict=True):
            episode = running[slot]
            if episode.step(action, ms, batch.energy_of(slot), max_steps, stop_on_success):
                result = episode.result()
                on_done(result)
                results.append(result)
                del running[slot]
                start(slot)
    return sorted(results, key=lambda r: r.pair)


def run_episode(
    env: Any,
    agent: Agent | BatchAgent,
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
    return play(env, agent, [(pair, spec)], seed, max_steps, stop_on_success, record=lambda: frame_size)[0]


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
    for key in ("frames", "achieved_goals", "act_ms", "energies"):
        record.pop(key)
    return record


def evaluate_agent(
    envs: Any | Sequence[Any],
    agent: Agent | BatchAgent,
    pairs: list[dict],
    seed: int,
    max_steps: int,
    name: str,
    stop_on_success: bool,
    videos: int = 0,
    frame_size: int = 128,
) -> list[EpisodeResult]:
    """Every pair, in ``envs`` side by side (one env, or a list: see :func:`play`), with a progress bar.

    Frames are rendered only while fewer than ``videos`` successes or failures have been kept, for at
    most ``2 * videos`` running episodes at once, and dropped from episodes of a kind already filled,
    so memory stays bounded by ``4 * videos`` episodes however many envs run.
    """
    kept = {True: 0, False: 0}
    recording = [0]  # running episodes that keep frames
    progress = tqdm(total=len(pairs), desc=f"eval {name}", unit="ep")

    def record() -> int | None:
        if min(kept.values()) >= videos or recording[0] >= 2 * videos:
            return None
        recording[0] += 1
        return frame_size

    def done(result: EpisodeResult) -> None:
        progress.update()
        if result.frames is not None:
            recording[0] -= 1
            if kept[result.success] < videos:
                kept[result.success] += 1
            else:
                result.frames = result.achieved_goals = None

    try:
        return play(envs, agent, list(enumerate(pairs)), seed, max_steps, stop_on_success, record, done)
    finally:
        progress.close()


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

"""Held-out evaluation: the same start/goal pairs for every agent, honest statistics, a table.

Two ways to draw pairs (``scripts/evaluate.py pairs=sampled | trajectory``). :func:`held_out_pairs`
(protocol (b)): ``env.unwrapped.sample_task`` with generators ``default_rng([seed, i])`` (the
collection draws episode ``i`` from ``[collection_seed, i]``), so an evaluation seed that differs from
the dataset's collection seed never replays a training episode; equal seeds are refused. A task with
its own evaluation tasks (``envs.protocols.EvaluationTasks``: OGBench's five) gets pairs of each in
turn, and its success is also reported per task and as their mean, as OGBench reports it.
:func:`trajectory_pairs` (protocol (a), the anchors'): start and goal ``offset`` steps apart on
held-out trajectories of the collection policy, rolled from the evaluation seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from envs.collection import rollout
from envs.errors import UserInputError
from envs.policies import ExplorationPolicy
from envs.protocols import EvaluationTasks, TrajectoryPairs

# An achieved goal that changed by at most this much (norm) between start and goal "did not move"
MOVED = 1e-6


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


def held_out_pairs(env: Any, episodes: int, seed: int, collection_seed: int | None) -> tuple[list[dict], int]:
    """``episodes`` episode specs from the evaluation seed, and how many drawn specs were already solved.

    ``sample_task`` already avoids starts that succeed; a reset that still reports success (a task
    whose check differs after settling) is counted and replaced rather than scored as a free win.
    """
    check_seeds(seed, collection_seed)
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


def check_seeds(seed: int, collection_seed: int | None) -> None:
    if collection_seed is not None and seed == collection_seed:
        raise UserInputError(
            f"seed={seed} is the dataset's collection seed: evaluation pairs would repeat training episodes; "
            "pick another seed"
        )


def trajectory_pairs(
    env: Any,
    episodes: int,
    seed: int,
    collection_seed: int | None,
    offset: int,
    policy: ExplorationPolicy,
    make_rollout_env: Callable[[], Any],
) -> tuple[list[dict], dict[str, int]]:
    """Protocol (a): ``episodes`` specs whose start and goal lie ``offset`` steps apart on held-out trajectories.

    Trajectory ``i`` is :func:`envs.collection.rollout` of ``policy`` in ``make_rollout_env()`` (the task as
    collection builds it, to its time limit) from ``default_rng([seed, i])``: episode ``i`` of a
    collection with the evaluation seed, so never a training episode (equal seeds are refused). From
    it, ``t`` is drawn uniformly from ``0 .. steps - offset`` with ``default_rng([seed, i, 1])``, and
    the spec is the task's ``spec_from_states(state[t], state[t + offset])`` (``envs.protocols.
    TrajectoryPairs``; a task without it is refused in one line). Skipped, each for the next
    trajectory: ``unmoved`` (the achieved goal, Push-T's block, did not move between ``t`` and ``t +
    offset``: the goal would be the start) and ``solved_at_start`` (the reset to the spec already
    succeeds) and ``refused`` (the task refuses the spec: a state it cannot hold). Returns the specs
    and those counts, with ``trajectories`` (how many were rolled).
    """
    check_seeds(seed, collection_seed)
    task = env.unwrapped
    if not isinstance(task, TrajectoryPairs):
        raise UserInputError(
            f"pairs=trajectory needs a task whose episode spec can hold a state of a trajectory (spec_from_states); "
            f"{type(task).__name__} has none: use pairs=sampled"
        )
    if not isinstance(offset, int) or offset < 1:
        raise UserInputError(f"pairs.offset must be a whole number of at least 1, got {offset!r}")
    rollout_env = make_rollout_env()
    counts = {"trajectories": 0, "unmoved": 0, "solved_at_start": 0, "refused": 0}
    pairs: list[dict] = []
    limit = max(100, 20 * episodes)  # trajectories tried before the policy is said to seldom move the goal
    try:
        while len(pairs) < episodes:
            if counts["trajectories"] >= limit:
                raise UserInputError(
                    f"pairs=trajectory found {len(pairs)} of {episodes} pairs in {limit} trajectories "
                    f"({counts['unmoved']} did not move in {offset} steps, {counts['solved_at_start']} started "
                    "solved): the policy seldom moves what the goal measures; try another pairs.policy or pairs.offset"
                )
            index = counts["trajectories"]
            trajectory = rollout(rollout_env, policy, seed, index)
            counts["trajectories"] += 1
            if trajectory.num_steps < offset:
                raise UserInputError(
                    f"pairs.offset={offset} is longer than the task's trajectories ({trajectory.num_steps} steps)"
                )
            t = int(np.random.default_rng([seed, index, 1]).integers(trajectory.num_steps - offset + 1))
            achieved, states = trajectory.infos["achieved_goal"], trajectory.infos["state"]
            if np.linalg.norm(achieved[t + offset] - achieved[t]) <= MOVED:
                counts["unmoved"] += 1
                continue
            spec = task.spec_from_states(states[t], states[t + offset])
            try:
                _, info = env.reset(seed=seed, options=spec)
            except UserInputError:  # a state the spec cannot hold (Push-T: the pusher squeezed into the block)
                counts["refused"] += 1
                continue
            if info["success"]:
                counts["solved_at_start"] += 1
                continue
            pairs.append(spec)
    finally:
        rollout_env.close()
    return pairs, counts


def evaluation_tasks(env: Any) -> list[str]:
    """The env's own evaluation tasks (OGBench's), or none."""
    task = env.unwrapped
    return task.evaluation_tasks() if isinstance(task, EvaluationTasks) else []


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

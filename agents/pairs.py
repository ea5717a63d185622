"""Held-out start/goal pairs: the same for every agent, never a training episode.

Two ways to draw them (``scripts/evaluate.py protocol=sampled | trajectory``). :func:`held_out_pairs`
(protocol (b)): ``env.unwrapped.sample_task`` with generators ``default_rng([seed, i])`` (the
collection draws episode ``i`` from ``[collection_seed, i]``), so an evaluation seed that differs from
the dataset's collection seed never replays a training episode; equal seeds are refused. A task with
its own evaluation tasks (``envs.protocols.EvaluationTasks``: OGBench's five) gets pairs of each in
turn. :func:`trajectory_pairs` (protocol (a), the anchors'): start and goal ``offset`` steps apart on
held-out trajectories of the collection policy, rolled from the evaluation seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from envs.collection import rollout
from envs.errors import UserInputError
from envs.policies import ExplorationPolicy
from envs.protocols import EvaluationTasks, TrajectoryPairs

# An achieved goal that changed by at most this much (norm) between start and goal "did not move"
MOVED = 1e-6


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
            f"protocol=trajectory needs a task whose episode spec can hold a state of a trajectory (spec_from_states); "
            f"{type(task).__name__} has none: use protocol=sampled"
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
                    f"protocol=trajectory found {len(pairs)} of {episodes} pairs in {limit} trajectories "
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

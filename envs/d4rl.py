"""Importing Minari datasets made by others (D4RL's PointMaze, ``D4RL/pointmaze/umaze-v2``) as our tasks.

Such a dataset names its Gymnasium env (``env_spec``); the task is the registered one whose
``source_env`` is that id (``envs.registry.task_for_source_env``), and its step length is the task's
registered ``action_repeat``, read from the registry, so that reading a dataset builds no env.
Their ``observation`` is the PointMaze state (x, y, vx, vy), the same vector as our ``obs=state``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import minari
import numpy as np

from envs.errors import UserInputError, first_line
from envs.registry import TASKS, source_envs, task_for_source_env


def external_info(path: str | os.PathLike, metadata: dict[str, Any]) -> dict[str, Any]:
    """Our dataset metadata for a Minari dataset of a registered task's source env."""
    env_id = json.loads(metadata.get("env_spec") or "{}").get("id")
    task = task_for_source_env(env_id)
    if task is None:
        raise UserInputError(
            f"dataset at {path} is for env {env_id}; importable Minari envs: {', '.join(source_envs())}"
        )
    return {
        "task": task,
        "obs": "state",
        "image_size": None,
        "seed": None,
        "policy": metadata.get("algorithm_name"),
        "source": metadata.get("dataset_id"),
    }


def read_external(data_dir: os.PathLike, task: str) -> list[dict[str, np.ndarray]]:
    """PointMaze episodes cut where the goal moves (D4RL re-samples it on arrival), at our step size.

    Our PointMaze step repeats an action over ``action_repeat`` simulator steps while D4RL changes
    it every simulator step, so every ``action_repeat``-th state is kept with the mean of the
    actions in between: an approximation of our dynamics, close while the ball is below top speed.
    """
    stride = TASKS[task].action_repeat
    try:
        raw = list(minari.MinariDataset(data_dir).iterate_episodes())
    except (OSError, KeyError, ValueError, AssertionError) as err:
        raise UserInputError(f"Minari dataset {data_dir} is corrupt or truncated ({first_line(err)})") from err
    return [piece for episode in raw for piece in split_at_goal_changes(episode, stride)]


def split_at_goal_changes(episode: Any, stride: int) -> list[dict[str, np.ndarray]]:
    """One piece per stretch of constant ``desired_goal``, resampled to one action per ``stride`` steps.

    The goal observation is the goal position padded with zeros: the ball at the goal, at rest.
    """
    state = np.asarray(episode.observations["observation"], dtype=np.float32)
    desired = np.asarray(episode.observations["desired_goal"], dtype=np.float32)
    actions = np.asarray(episode.actions, dtype=np.float32)
    changes = np.flatnonzero(np.any(desired[1:] != desired[:-1], axis=1)) + 1
    pieces = []
    for start, end in zip(np.r_[0, changes], np.r_[changes, len(state)], strict=True):
        steps = (end - 1 - start) // stride
        if steps < 1:
            continue
        goal = np.concatenate([desired[start], np.zeros(state.shape[1] - desired.shape[1], np.float32)])
        kept = state[start : start + steps * stride + 1 : stride]
        pieces.append(
            {
                "observations": kept,
                "goal": goal,
                "actions": actions[start : start + steps * stride].reshape(steps, stride, -1).mean(axis=1),
                "states": kept,
            }
        )
    return pieces

"""Every recipe in configs/experiment/ composes, trains a step and plans a step; the default has no task knob."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from task_cases import TASKS_AND_OBS

import envs
from agents.mpc import MPCAgent
from envs.builder import build
from envs.collection import rollout
from envs.episodes import EpisodeSet
from envs.policies import UniformRandom
from worldmodel.checkpoint import read_meta
from worldmodel.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = {p.stem: p.read_text() for p in (CONFIGS / "experiment").glob("*.yaml")}
# a tuned file names its task (`override /task`); the others (default, latent-variable) are for any task
TUNED = sorted(name for name, text in FILES.items() if "override /task" in text)
ANY_TASK = sorted(name for name in FILES if name not in TUNED and name != "default")
# the default recipe on every task and obs mode, every other any-task recipe on the stochastic wall, then
# every tuned file as it stands
RECIPES = [pytest.param("default", *case.values, marks=case.marks, id=case.id) for case in TASKS_AND_OBS] + [
    (name, "wall-branching", "state") for name in ANY_TASK] + [(name, None, None) for name in TUNED]


def composed(script: str, experiment: str, task: str | None, obs: str | None, *overrides: str):
    chosen = [f"experiment={experiment}"] + ([f"task={task}", f"obs={obs}"] if task else [])
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(script, overrides=[*chosen, *overrides])


def tiny_episodes(task: str, obs: str, episodes: int = 2, steps: int = 12) -> EpisodeSet:
    """A few random-action episodes as collection runs them (``envs.collection.rollout``), cut short."""
    env = envs.make(task, obs=obs, max_episode_steps=steps)
    recorded = [rollout(env, UniformRandom(), seed=0, index=i) for i in range(episodes)]
    return EpisodeSet.from_episodes(
        [{"observations": e.observations["observation"], "actions": e.actions, "states": e.infos["state"],
          "goal": e.observations["goal"][0]} for e in recorded],
        {"task": task, "obs": obs, "image_size": 64 if obs == "pixels" else None})


def test_tuned_files_are_named_after_their_task_and_obs_mode() -> None:
    for name in TUNED:
        cfg = composed("train", name, None, None, "data=unused")
        assert f"{cfg.task.name}-{cfg.obs}" == name


def test_the_default_recipe_is_the_same_for_every_task() -> None:
    """No per-task knob: for one obs mode, model, planner, energy and budget do not depend on the task."""
    for obs in ("state", "pixels"):
        recipes = set()
        for task in envs.task_names():
            cfg = composed("evaluate", "default", task, obs, "checkpoint=unused")
            resolved = OmegaConf.to_container(cfg, resolve=True)
            recipes.add(str({key: resolved[key] for key in ("model", "planner", "energy", "budget")}))
        assert len(recipes) == 1, obs


@pytest.mark.parametrize("experiment,task,obs", RECIPES)
def test_every_recipe_trains_a_step_and_plans_a_step(experiment: str, task: str | None, obs: str | None,
                                                     tmp_path: Path) -> None:
    cfg = composed("train", experiment, task, obs, "data=unused", f"out={tmp_path}", "steps=2", "batch_size=4",
                   "log_every=1", "checkpoint_every=2", "device=cpu")
    episodes = tiny_episodes(cfg.task.name, cfg.obs)
    model = train(cfg, episodes, tmp_path, experiment=experiment).eval()
    assert read_meta(tmp_path / "checkpoint" / "latest.safetensors")["experiment"] == experiment

    plan_cfg = composed("evaluate", experiment, task, obs, "checkpoint=unused")
    energy = build(plan_cfg.energy, "energy")
    if energy.needs_data:
        energy.fit(model, episodes)
    planner = build(plan_cfg.planner.optimizer, "planner.optimizer", horizon=plan_cfg.planner.horizon,
                          action_dim=episodes.actions.shape[1], seed=0)
    agent = MPCAgent(model, energy, planner, plan_cfg.planner.replan_every)
    env = envs.make(cfg.task.name, obs=cfg.obs)
    obs_now, info = env.reset(seed=5)
    with torch.no_grad():
        action = agent.act(obs_now, info)
    assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1.0)
    assert np.isfinite(agent.last_energy)

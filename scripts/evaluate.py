"""Evaluate the JEPA planning agent and baselines on the same held-out start/goal pairs.

    python scripts/evaluate.py checkpoint=RUN_OR_FILE episodes=20 seed=1000 out=PATH  # the checkpoint's recipe
    python scripts/evaluate.py checkpoint=RUN_OR_FILE experiment=default planner=mppi  # or another one
    python scripts/evaluate.py ... agents=[jepa,oracle,random,gcbc] planner=mppi video.episodes=2
    python scripts/evaluate.py ... protocol=trajectory  # protocol (a): goal 25 steps ahead on held-out trajectories, 50 steps

Writes into ``out``: config.yaml, results.json (rewritten after every agent, so an interrupted run
keeps what finished), videos/<agent>_pair<i>_<success|failure>.mp4 and, with gcbc, gcbc.safetensors.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import envs
from agents.baselines import OracleMPC, RandomAgent
from agents.cost import Uncertainty
from agents.evaluation import (
    episode_record,
    evaluate_agent,
    format_table,
    select_for_video,
    summarize,
    summarize_per_task,
)
from agents.gcbc import GCBCAgent, GCBCPolicy, load_gcbc, save_gcbc, train_gcbc
from agents.mpc import MPCAgent, RecedingHorizon
from agents.pairs import held_out_pairs, trajectory_pairs
from agents.planners import Planner
from agents.video import episode_frames, write_video
from envs.builder import build
from envs.dataset import META_KEY, find_data_dir, load_episodes, read_metadata
from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from envs.protocols import GoalErrors, Simulator
from envs.registry import TASKS
from worldmodel.checkpoint import checkpoint_path, load_world_model, read_meta
from worldmodel.runtime import (
    cli_main,
    experiment_name,
    prepare_run_dir,
    resolve_device,
    seed_everything,
    usable_threads,
)
from worldmodel.world_model import WorldModel


class Context:
    """What every agent builder may need: config, the trained model, the acting envs, the run folder."""

    def __init__(self, cfg: DictConfig, model: WorldModel, model_cfg: DictConfig, envs: list[Any], run_dir: Path) -> None:
        self.cfg, self.model, self.model_cfg, self.envs, self.run_dir = cfg, model, model_cfg, envs, run_dir
        self.env = envs[0]
        self.meta = model_cfg.meta
        self.device = model.device
        self._episodes: dict[str, EpisodeSet] = {}

    def episodes(self, data: str | None) -> EpisodeSet:
        """The dataset at ``data`` (default: the world model's training data), loaded once."""
        path = str(data or self.model_cfg.data)
        if path not in self._episodes:
            self._episodes[path] = load_episodes(path, task=self.meta.task, obs=self.meta.obs)
        return self._episodes[path]

    def planner(self, device: str | torch.device) -> Planner:
        """The configured optimiser (the same for the JEPA agent and the oracle), making candidates on ``device``."""
        return build(
            self.cfg.planner.optimizer,
            "planner.optimizer",
            horizon=self.cfg.planner.horizon,
            action_dim=self.meta.action_dim,
            seed=self.cfg.seed,
            device=device,
        )


def build_jepa(ctx: Context) -> MPCAgent:
    energy = build(ctx.cfg.energy, "energy")
    if energy.needs_data:
        energy.fit(ctx.model, ctx.episodes(ctx.cfg.data))
    uncertainty = Uncertainty(**OmegaConf.to_container(ctx.cfg.uncertainty, resolve=True))
    return MPCAgent(ctx.model, energy, ctx.planner(device=ctx.device), ctx.cfg.planner.replan_every, uncertainty)


def build_oracle(ctx: Context) -> OracleMPC:
    o = ctx.cfg.oracle
    sim_env = envs.make(ctx.meta.task, obs="state")
    uncertainty = Uncertainty(**OmegaConf.to_container(o.uncertainty, resolve=True))
    return OracleMPC(ctx.envs, sim_env, ctx.planner(device="cpu"), o.replan_every, o.cost, o.final_weight,
                     o.running_weight, uncertainty)


def build_random(ctx: Context) -> RandomAgent:
    return RandomAgent(ctx.meta.action_dim, seed=ctx.cfg.seed)


def build_gcbc(ctx: Context) -> GCBCAgent:
    """Load ``gcbc.weights`` or train on the world model's dataset (or ``gcbc.data``) and save."""
    g = ctx.cfg.gcbc
    if g.weights is not None:
        policy, kwargs = load_gcbc(g.weights, ctx.device)
        if list(kwargs["obs_shape"]) != list(ctx.meta.obs_shape) or kwargs["action_dim"] != ctx.meta.action_dim:
            raise UserInputError(f"GCBC weights {g.weights} were trained for another task or obs mode")
        return GCBCAgent(policy)
    episodes = ctx.episodes(g.data)
    build_kwargs = {
        "encoder_cfg": ctx.model_cfg.model.encoder,
        "obs_shape": list(ctx.meta.obs_shape),
        "action_dim": int(ctx.meta.action_dim),
        "latent_dim": g.latent_dim,
        "hidden_dim": g.hidden_dim,
        "depth": g.depth,
    }
    policy = GCBCPolicy(**build_kwargs).to(ctx.device)
    batch_size = g.batch_size if isinstance(g.batch_size, int) else g.batch_size[ctx.meta.obs]  # one number, or per obs
    planning_threads = torch.get_num_threads()
    torch.set_num_threads(g.threads or usable_threads())  # training batches are large, unlike planning's
    try:
        train_gcbc(policy, episodes, g.steps, batch_size, g.lr, g.max_goal_offset, ctx.cfg.seed)
    finally:
        torch.set_num_threads(planning_threads)
    save_gcbc(ctx.run_dir / "gcbc.safetensors", policy, build_kwargs)
    return GCBCAgent(policy.eval())


AGENTS: dict[str, Callable[[Context], Any]] = {
    "jepa": build_jepa,
    "oracle": build_oracle,
    "random": build_random,
    "gcbc": build_gcbc,
}


def check_request(cfg: DictConfig, meta: DictConfig) -> None:
    """Refuse unknown agents and a task/obs that disagrees with the checkpoint, before any work."""
    unknown = [a for a in cfg.agents if a not in AGENTS]
    if unknown:
        raise UserInputError(f"unknown agents {unknown}; choose from: {', '.join(AGENTS)}")
    asked = {"task": cfg.task.name, "obs": cfg.obs}
    for key, value in asked.items():
        if value is not None and value != meta[key]:
            raise UserInputError(
                f"{key}={value} was asked for, but the checkpoint was trained for {key}={meta[key]} "
                f"(drop {key}= or pass a {value} checkpoint)"
            )
    if cfg.episodes < 1:
        raise UserInputError(f"episodes must be at least 1, got {cfg.episodes}")


def check_oracle(cfg: DictConfig, env: Any) -> None:
    """Refuse the oracle, before any agent runs, for a task whose simulator state cannot be restored."""
    if "oracle" not in cfg.agents:
        return
    task = env.unwrapped
    reason = task.simulator_unavailable if isinstance(task, Simulator) else "the task has no simulator interface"
    if reason:
        raise UserInputError(f"agent oracle is unavailable: {reason}; drop it from agents=")


def collection_seed(model_cfg: DictConfig) -> int | None:
    """The seed the training dataset was collected with (recorded in the checkpoint, else read from the
    dataset), or None when neither knows it."""
    recorded = OmegaConf.select(model_cfg, "meta.collection_seed")
    if recorded is not None:
        return int(recorded)
    try:
        return read_metadata(find_data_dir(model_cfg.data)).get(META_KEY, {}).get("seed")
    except UserInputError:
        print(f"note: dataset {model_cfg.data} not found; cannot check the seed against its collection seed")
        return None


def write_videos(run_dir: Path, name: str, env: Any, results: list, pairs: list[dict], cfg: DictConfig) -> None:
    """The selected episodes' videos; a task with ``GoalErrors`` (Push-T) gets its goal's outline drawn on
    the frames and its errors (block position, angle) plotted under them."""
    task = env.unwrapped
    for result in select_for_video(results, cfg.video.episodes):
        _, info = env.reset(options=pairs[result.pair])
        goal = task.render_goal_frame(cfg.video.size)
        errors = outline = None
        if isinstance(task, GoalErrors) and result.achieved_goals:
            errors = task.goal_errors(np.stack(result.achieved_goals), np.asarray(info["desired_goal"]))
            outline = task.goal_outline(cfg.video.size)
        outcome = "success" if result.success else "failure"
        if result.steps_to_success is not None:
            outcome += f" (first at step {result.steps_to_success})"
        frames = episode_frames(result.frames, goal, result.distances, result.energies,
                                f"{name} pair {result.pair}: {outcome}", errors, outline)
        kind = "success" if result.success else "failure"
        write_video(run_dir / "videos" / f"{name}_pair{result.pair:03d}_{kind}.mp4", frames, cfg.video.fps)


def pair_policy(cfg: DictConfig) -> dict[str, Any]:
    """The policy config that rolls protocol (a)'s held-out trajectories: ``pairs.policy`` names one of
    configs/policy/ (null: the task's collection default, ``task.collect.policy``), composed as collect does."""
    name = cfg.pairs.policy or cfg.task.collect.policy
    if not (Path(__file__).resolve().parents[1] / "configs" / "policy" / f"{name}.yaml").is_file():
        raise UserInputError(f"pairs.policy={name} is not in configs/policy/; name one of its files (or null)")
    return OmegaConf.to_container(hydra.compose(config_name=f"policy/{name}").policy, resolve=True)


def draw_pairs(cfg: DictConfig, env: Any, model_cfg: DictConfig, task: str) -> tuple[list[dict], dict[str, Any]]:
    """The evaluation pairs of ``cfg.pairs.kind`` and what results.json records of how they were drawn."""
    seed = collection_seed(model_cfg)
    if cfg.pairs.kind == "sampled":
        pairs, solved_at_start = held_out_pairs(env, cfg.episodes, cfg.seed, seed)
        return pairs, {
            "pairs": "protocol (b), sampled: env.unwrapped.sample_task(numpy.random.default_rng([seed, i])), i = 0, 1, ... "
            "(a task with evaluation tasks: sample_evaluation_task(pair % tasks, ...)); pairs whose reset already "
            "succeeds are replaced",
            "solved_at_start": solved_at_start,
        }
    if OmegaConf.select(cfg, "pairs.offset") is None or "policy" not in cfg.pairs:
        raise UserInputError("pairs.kind=trajectory needs pairs.offset and pairs.policy: choose it with protocol=trajectory")
    policy = pair_policy(cfg)
    pairs, counts = trajectory_pairs(env, cfg.episodes, cfg.seed, seed, cfg.pairs.offset, build(policy, "pairs.policy"),
                                     lambda: envs.make(task, obs="state", collection=True))
    return pairs, {
        "pairs": f"protocol (a), trajectory: trajectory i = envs.collection.rollout(policy, seed, i) (episode i of a "
        f"collection with the evaluation seed), t uniform in 0..steps-{cfg.pairs.offset} from default_rng([seed, i, 1]), "
        f"spec = task.spec_from_states(state[t], state[t + {cfg.pairs.offset}]) (the start at rest); trajectories whose "
        "achieved goal did not move from t to t + offset (unmoved), whose reset already succeeds (solved_at_start) or "
        "whose spec the task refuses (refused) are skipped",
        "pairs_offset": cfg.pairs.offset,
        "pairs_policy": policy,
        "pairs_trajectories": counts["trajectories"],
        "pairs_unmoved": counts["unmoved"],
        "pairs_refused": counts["refused"],
        "solved_at_start": counts["solved_at_start"],
    }


def evaluation_spec(cfg: DictConfig, meta: DictConfig, env: Any, model: WorldModel, max_steps: int,
                    drawn: dict[str, Any]) -> dict:
    """Everything needed to reproduce or compare the numbers: pair rule, budgets, thresholds."""
    threshold = env.unwrapped.success_threshold
    return {
        "task": meta.task,
        "obs": meta.obs,
        "variant": env.unwrapped.variant,  # a stochastic variant's name, or None
        "predictor": "latent_variable" if model.code_dim else "deterministic",
        "checkpoint": str(cfg.checkpoint),
        "experiment": experiment_name(),  # configs/experiment/<name>.yaml: the recipe planned with
        "pairs_kind": cfg.pairs.kind,  # configs/protocol/<kind>.yaml: sampled (protocol b) or trajectory (a)
        **drawn,
        "seed": cfg.seed,
        "max_steps": max_steps,
        "success": "info['success'] at the first success (episode stops there)" if cfg.stop_on_success
        else "info['success'] after the last step (max_steps, or earlier if the env ends the episode)",
        "success_threshold": None if threshold is None else float(threshold),  # None: the env's own flag
        "planner_name": HydraConfig.get().runtime.choices.get("planner"),  # configs/planner/<name>.yaml
        "planner": OmegaConf.to_container(cfg.planner, resolve=True),
        "energy_name": HydraConfig.get().runtime.choices.get("energy"),  # configs/energy/<name>.yaml
        "energy": OmegaConf.to_container(cfg.energy, resolve=True),
        "data": cfg.data,
        "oracle": OmegaConf.to_container(cfg.oracle, resolve=True),
        "uncertainty": OmegaConf.to_container(cfg.uncertainty, resolve=True),  # used by a latent-variable model only
        "torch_threads": torch.get_num_threads(),
        "num_envs": cfg.num_envs,  # envs planned together (per-pair results do not depend on it; plan ms do)
        "device": str(resolve_device(cfg.device)),
    }


EXPERIMENTS = Path(__file__).resolve().parents[1] / "configs" / "experiment"
RECIPE_NOTE = "from the command line"  # where the experiment came from, set by with_recorded_recipe


def with_recorded_recipe(argv: list[str]) -> list[str]:
    """The command line plus the checkpoint's recorded ``task=``, ``obs=`` and ``experiment=`` where
    it gives none, so that a checkpoint is evaluated with the recipe it was trained with."""
    global RECIPE_NOTE
    given = {arg.split("=", 1)[0].lstrip("+~") for arg in argv[1:] if "=" in arg}
    checkpoint = next((arg.split("=", 1)[1] for arg in argv[1:] if arg.startswith("checkpoint=")), None)
    if checkpoint is None:
        return argv
    try:
        meta = read_meta(checkpoint_path(checkpoint))
    except UserInputError:
        return argv  # main() reports it in one line
    added = [f"{key}={meta[key]}" for key in ("task", "obs") if key not in given and meta.get(key)]
    if "experiment" not in given:
        recorded = meta.get("experiment")
        if not recorded:
            RECIPE_NOTE, recorded = "the checkpoint records none: the default", "default"
        elif not (EXPERIMENTS / f"{recorded}.yaml").is_file():  # a shared checkpoint of someone else's recipe
            RECIPE_NOTE, recorded = f"the checkpoint's {recorded!r} is not in configs/experiment/: the default", "default"
        else:
            RECIPE_NOTE = "recorded in the checkpoint"
        added.append(f"experiment={recorded}")
    return [*argv, *added]


@hydra.main(config_path="../configs", config_name="evaluate", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    script_started = time.perf_counter()
    print(f"recipe: experiment={experiment_name()} ({RECIPE_NOTE}; experiment=NAME plans with another)")
    if cfg.threads < 1 or (cfg.gcbc.threads is not None and cfg.gcbc.threads < 1):
        raise UserInputError(f"threads and gcbc.threads must be at least 1, got {cfg.threads} and {cfg.gcbc.threads}")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model, model_cfg = load_world_model(cfg.checkpoint, device=str(resolve_device(cfg.device)))
    meta = model_cfg.meta
    check_request(cfg, meta)
    run_dir = prepare_run_dir(cfg.out, cfg)
    if cfg.num_envs < 1:
        raise UserInputError(f"num_envs must be at least 1, got {cfg.num_envs}")
    acting = [envs.make(meta.task, obs=meta.obs, image_size=meta.image_size or 64)
              for _ in range(min(cfg.num_envs, cfg.episodes))]
    env = acting[0]
    check_oracle(cfg, env)
    max_steps = cfg.max_steps or TASKS[meta.task].max_episode_steps
    pairs, drawn = draw_pairs(cfg, env, model_cfg, meta.task)
    ctx = Context(cfg, model, model_cfg, acting, run_dir)
    spec = evaluation_spec(cfg, meta, env, model, max_steps, drawn)
    results: dict[str, Any] = {"spec": spec, "agents": {}, "episodes": {}}
    for name in cfg.agents:
        agent = AGENTS[name](ctx)
        started = time.perf_counter()
        episodes = evaluate_agent(
            acting, agent, pairs, cfg.seed, max_steps, name, cfg.stop_on_success, cfg.video.episodes, cfg.video.size
        )
        seconds = time.perf_counter() - started  # the episodes only: building the agent (a graph, GCBC) is not timed
        results["agents"][name] = {**summarize(episodes), "seconds": seconds, "episodes_per_s": len(episodes) / seconds}
        per_task = summarize_per_task(episodes, pairs, env)
        if per_task is not None:
            results["agents"][name]["per_task"] = per_task
        results["episodes"][name] = [episode_record(r) for r in episodes]
        if isinstance(agent, RecedingHorizon):
            results["agents"][name]["evaluations_per_plan"] = agent.planner.last_evaluations
        write_videos(run_dir, name, env, episodes, pairs, cfg)
        results["seconds"] = time.perf_counter() - script_started  # the whole evaluation: agents built and run
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    print(format_table(results["agents"]))
    print(f"results: {run_dir / 'results.json'}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.argv = with_recorded_recipe(sys.argv)
    main()

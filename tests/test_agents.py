"""Agents and the evaluation harness: a known linear latent model, the real reacher, files on disk."""

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import envs
from agents.baselines import OracleMPC, RandomAgent
from agents.energy import ActionMagnitude, Energy, GoalDistance
from agents.evaluation import (
    evaluate_agent,
    format_table,
    run_episode,
    select_for_video,
    summarize,
    summarize_per_task,
    wilson_interval,
)
from agents.gcbc import GCBCAgent, GCBCPolicy, load_gcbc, save_gcbc, train_gcbc
from agents.mpc import MPCAgent, shift_plan
from agents.pairs import held_out_pairs, trajectory_pairs
from agents.planners import CEM
from agents.video import episode_frames, write_video
from envs.episodes import EpisodeSet
from envs.errors import UserInputError

SPEED = 0.1  # the point moves SPEED * action per step


class PointEnv:
    """A 2-D point ``x' = x + SPEED * a`` with the env contract's reset/step/info, for fast known answers."""

    success_threshold = 0.05

    def __init__(self) -> None:
        self.unwrapped = self
        self.x = self.goal = np.zeros(2)

    def sample_task(self, rng: np.random.Generator) -> dict:
        return {"start": rng.uniform(-1, 1, 2).tolist(), "goal": rng.uniform(-1, 1, 2).tolist()}

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.x, self.goal = np.array(options["start"]), np.array(options["goal"])
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.x = self.x + SPEED * np.clip(action, -1, 1)
        info = self._info()
        return self._obs(), float(info["success"]), False, False, info

    def render_frame(self, size: int) -> np.ndarray:
        frame = np.zeros((size, size, 3), np.uint8)
        i, j = ((np.clip(self.x, -1, 1) + 1) / 2 * (size - 1)).astype(int)
        frame[i, j] = 255
        return frame

    def _obs(self) -> dict:
        return {"observation": self.x.astype(np.float32), "goal": self.goal.astype(np.float32)}

    def _info(self) -> dict:
        distance = float(np.linalg.norm(self.x - self.goal))
        return {"success": distance < self.success_threshold, "distance": distance}


class LinearLatentModel(torch.nn.Module):
    """The exact model of :class:`PointEnv`: identity encoder, ``z' = z + SPEED * a``."""

    frame_stack = 1  # the position is the whole state

    def encode(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z0[:, None] + SPEED * actions.cumsum(dim=1)


def small_cem(seed: int = 0) -> CEM:
    return CEM(8, 2, samples=64, iterations=3, elites=8, init_std=0.6, min_std=0.05, seed=seed)


def latent_energy() -> Energy:
    return Energy({"goal": GoalDistance(1.0, 0.5, "l2"), "action": ActionMagnitude(0.01)})


def test_shift_plan_drops_executed_actions_and_repeats_the_last() -> None:
    plan = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(shift_plan(plan, 1), torch.tensor([[2.0, 3], [4, 5], [6, 7], [6, 7]]))


def test_mpc_agent_reaches_the_goal_of_a_known_linear_model() -> None:
    env, model = PointEnv(), LinearLatentModel()
    pairs, _ = held_out_pairs(env, 6, seed=1, collection_seed=0)
    agent = MPCAgent(model, latent_energy(), small_cem(), replan_every=1)
    results = evaluate_agent(env, agent, pairs, seed=1, max_steps=60, name="jepa", stop_on_success=False)
    assert all(r.success for r in results)
    for r, spec in zip(results, pairs, strict=True):  # near the straight-line time at full speed
        shortest = np.abs(np.subtract(spec["goal"], spec["start"])).max() / SPEED
        assert r.steps_to_success <= shortest + 6
    assert np.isfinite(results[0].energies).all()


def test_same_seed_same_episode() -> None:
    env, model = PointEnv(), LinearLatentModel()
    spec = {"start": [0.0, 0.0], "goal": [0.5, -0.4]}
    runs = [
        run_episode(env, MPCAgent(model, latent_energy(), small_cem(), 3), spec, 0, 3, 20, False)
        for _ in range(2)
    ]
    assert runs[0].distances == runs[1].distances


class TwoFrameModel(LinearLatentModel):
    """Sees the last two positions side by side (as a pixel model sees two frames); plans on the newest."""

    frame_stack = 2

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[float]] = []

    def encode(self, obs: np.ndarray) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        self.seen.append(obs[0].tolist())
        return obs[..., 2:]


def test_mpc_agent_encodes_the_frame_history_and_the_goal_at_rest() -> None:
    env, model = PointEnv(), TwoFrameModel()
    agent = MPCAgent(model, latent_energy(), small_cem(), replan_every=1)
    obs, info = env.reset(options={"start": [0.0, 0.0], "goal": [0.5, 0.0]})
    agent.reset(seed=0)
    positions = [obs["observation"].tolist()]
    for _ in range(2):
        obs, *_, info = env.step(agent.act(obs, info))
        positions.append(obs["observation"].tolist())
    agent.act(obs, info)
    start, first, second = positions
    assert model.seen == [[0.5, 0.0, 0.5, 0.0], start + start, start + first, first + second]


class ConstantAgent:
    """Moves right at full speed: passes through a goal on its way without stopping."""

    last_energy = float("nan")

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return np.array([1.0, 0.0], np.float32)


def test_passing_through_the_goal_counts_only_when_stopping_on_success() -> None:
    spec = {"start": [0.0, 0.0], "goal": [0.3, 0.0]}
    passing = run_episode(PointEnv(), ConstantAgent(), spec, 0, 0, 10, stop_on_success=False)
    assert not passing.success and passing.steps_to_success == 3 and passing.steps == 10
    stopped = run_episode(PointEnv(), ConstantAgent(), spec, 0, 0, 10, stop_on_success=True)
    assert stopped.success and stopped.steps == 3 and stopped.final_distance < 0.05


def test_random_agent_rarely_succeeds_on_reacher() -> None:
    env = envs.make("reacher", obs="state")
    pairs, _ = held_out_pairs(env, 6, seed=7, collection_seed=0)
    results = evaluate_agent(env, RandomAgent(2), pairs, seed=7, max_steps=50, name="random", stop_on_success=False)
    assert sum(r.success for r in results) <= 1


def test_oracle_reaches_reacher_goals_without_touching_the_acting_env() -> None:
    env = envs.make("reacher", obs="state")
    oracle = OracleMPC(env, envs.make("reacher", obs="state"), small_cem(), 2)
    pairs, _ = held_out_pairs(env, 3, seed=11, collection_seed=0)
    obs, info = env.reset(options=pairs[0])
    before = env.unwrapped.get_sim_state()
    oracle.act(obs, info)
    assert np.array_equal(env.unwrapped.get_sim_state(), before)  # planning only moved the private copy
    results = evaluate_agent(env, oracle, pairs, seed=11, max_steps=50, name="oracle", stop_on_success=False)
    assert sum(r.success for r in results) >= 2


def test_path_oracle_crosses_the_wall_where_the_straight_distance_stalls() -> None:
    """The oracle's true cost-to-go goes round the divider: a goal across the wall, the door far from
    both heights. Scored by the straight distance, the same planner presses into the divider."""
    env = envs.make("wall", obs="state")
    spec = {"start": [-0.6, 0.6], "goal": [0.6, 0.6], "door": [-0.5]}
    outcomes = {}
    for cost in ("path", "straight"):
        oracle = OracleMPC(env, envs.make("wall", obs="state"), CEM(10, 2, samples=64, iterations=3, elites=8,
                                                                     init_std=0.6, min_std=0.05), 1, cost=cost)
        outcomes[cost] = run_episode(env, oracle, spec, 0, 0, 100, stop_on_success=False)
    assert outcomes["path"].success
    assert not outcomes["straight"].success and outcomes["straight"].final_distance > 0.5


def test_held_out_pairs_refuse_the_collection_seed_and_repeat_exactly() -> None:
    env = PointEnv()
    with pytest.raises(UserInputError, match="collection seed"):
        held_out_pairs(env, 3, seed=5, collection_seed=5)
    first, solved = held_out_pairs(env, 3, seed=5, collection_seed=0)
    assert held_out_pairs(env, 3, seed=5, collection_seed=None)[0] == first and solved == 0
    # pair i does not depend on how many pairs are drawn
    assert held_out_pairs(env, 5, seed=5, collection_seed=0)[0][:3] == first


class TaskedPointEnv(PointEnv):
    """The point with two evaluation tasks of its own (as OGBench ships five): "left" and "right" goals."""

    TASKS = ["left", "right"]

    def evaluation_tasks(self) -> list[str]:
        return list(self.TASKS)

    def sample_evaluation_task(self, task: int, rng: np.random.Generator) -> dict:
        return {"start": rng.uniform(-0.1, 0.1, 2).tolist(), "goal": [-0.8 if task == 0 else 0.8, 0.0], "task": task}

    def evaluation_task_of(self, spec: dict) -> str | None:
        return self.TASKS[spec["task"]]


def test_evaluation_tasks_are_drawn_in_turn_and_reported_one_by_one() -> None:
    """OGBench's way: success per task, and the headline is the mean of the per-task rates."""
    env = TaskedPointEnv()
    pairs, _ = held_out_pairs(env, 5, seed=3, collection_seed=0)
    assert [p["task"] for p in pairs] == [0, 1, 0, 1, 0]

    class RightOnly:  # reaches a goal on the right in 20 steps of 0.1, never one on the left
        last_energy = float("nan")

        def reset(self, seed: int | None = None) -> None: ...

        def act(self, obs: dict, info: dict) -> np.ndarray:
            return np.clip((obs["goal"] - obs["observation"]) * 10, -1, 1) * (obs["goal"][0] > 0)

    results = evaluate_agent(env, RightOnly(), pairs, seed=3, max_steps=30, name="right", stop_on_success=False)
    per_task = summarize_per_task(results, pairs, env)
    assert per_task["tasks"]["left"] == {"episodes": 3, "successes": 0, "success_rate": 0.0}
    assert per_task["tasks"]["right"] == {"episodes": 2, "successes": 2, "success_rate": 1.0}
    assert per_task["mean_success_rate"] == 0.5  # while 2 of 5 pairs succeeded
    assert summarize_per_task(results, pairs, PointEnv()) is None
    assert "per task left 0%, right 100%; mean 50.0%" in format_table({"right": {**summarize(results), "per_task": per_task}})


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_videos_show_successes_and_failures_and_read_back(tmp_path: Path) -> None:
    env, model = PointEnv(), LinearLatentModel()
    pairs = [{"start": [0.0, 0.0], "goal": [0.2, 0.0]}, {"start": [0.0, 0.0], "goal": [0.9, 0.9]}] * 2
    agent = MPCAgent(model, latent_energy(), small_cem(), 1)
    results = evaluate_agent(env, agent, pairs, 0, 8, "jepa", True, videos=1, frame_size=96)
    assert [r.success for r in results] == [True, False, True, False]
    assert [r.frames is not None for r in results] == [True, True, False, False]  # quotas filled
    chosen = select_for_video(results, 2)
    assert sorted(r.success for r in chosen) == [False, True]
    r = chosen[0]
    frames = episode_frames(r.frames, env.render_frame(96), r.distances, r.energies, "test")
    path = write_video(tmp_path / "a.mp4", frames, fps=5)
    back = imageio.mimread(path)
    assert len(back) == len(r.frames) and back[0].shape == frames[0].shape
    assert summarize(results)["success_rate"] == 0.5


def test_gcbc_fits_hindsight_actions_and_round_trips(tmp_path: Path) -> None:
    """Constant actions of fixed length: the direction to any later goal fixes the action exactly."""
    rng = np.random.default_rng(0)
    episodes = []
    for angle in rng.uniform(0, 2 * np.pi, 40):
        a = 0.9 * np.array([np.cos(angle), np.sin(angle)], np.float32)
        x = rng.uniform(-1, 1, 2) + SPEED * a * np.arange(11)[:, None]
        episodes.append({"observations": x.astype(np.float32), "actions": np.tile(a, (10, 1)), "states": x, "goal": x[-1]})
    data = EpisodeSet.from_episodes(episodes, {"task": "point", "obs": "state"})
    kwargs = {
        "encoder_cfg": OmegaConf.create({"_target_": "worldmodel.encoders.MLPEncoder", "hidden_dim": 32, "depth": 1}),
        "obs_shape": [2], "action_dim": 2, "latent_dim": 8, "hidden_dim": 32, "depth": 1,
    }
    policy = GCBCPolicy(**kwargs)
    losses = train_gcbc(policy, data, steps=300, batch_size=64, lr=3e-3, max_goal_offset=10, seed=0)
    assert np.mean(losses[-50:]) < 0.1 * np.mean(losses[:10])
    loaded, _ = load_gcbc(save_gcbc(tmp_path / "gcbc.safetensors", policy, kwargs), torch.device("cpu"))
    obs = {"observation": np.zeros(2, np.float32), "goal": np.array([0.5, 0.0], np.float32)}
    assert np.allclose(GCBCAgent(policy.eval()).act(obs, {}), GCBCAgent(loaded).act(obs, {}))
    assert GCBCAgent(loaded).act(obs, {})[0] > 0.5  # the goal lies along +x


def save_tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, task: str = "reacher", state_dim: int = 8) -> Path:
    """An untrained state world model of ``task`` saved in the real checkpoint format."""
    from worldmodel.checkpoint import save_checkpoint
    from worldmodel.world_model import build_world_model

    root = Path(__file__).parents[1]
    model_cfg = OmegaConf.load(root / "configs" / "model" / "jepa.yaml")
    cfg = OmegaConf.create({"obs": "state", "data": str(tmp_path_factory.mktemp("nodata") / "missing")})
    cfg.model = model_cfg
    cfg.model.latent_dim = 16
    cfg.model.regularizer = None
    cfg.model.predictor = OmegaConf.load(root / "configs" / "model" / "predictor" / "residual.yaml")  # a defaults entry
    model = build_world_model(cfg.model, [state_dim], 2)
    meta = {"task": task, "obs": "state", "image_size": None, "action_dim": 2, "obs_shape": [state_dim],
            "state_dim": state_dim, "step": 0, "experiment": "default"}
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, model, torch.optim.Adam(model.parameters()), cfg, meta)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained state-reacher world model saved in the real checkpoint format, recording that it
    was trained with experiment=default (its energy needs the dataset: tests without one say energy=latent)."""
    return save_tiny_checkpoint(tmp_path_factory)


def run_evaluate(repo_root: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "evaluate.py"), *overrides],
        capture_output=True, text=True, cwd=repo_root, timeout=300,
    )


def collect_small_dataset(repo_root: Path, out: Path) -> None:
    """Three state-reacher episodes, for the agents that need the dataset (geodesic energy, GCBC)."""
    collect = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "collect.py"), "task=reacher", "obs=state", "episodes=3",
         "workers=1", f"out={out}"],
        capture_output=True, text=True, cwd=repo_root, timeout=300,
    )
    assert collect.returncode == 0, collect.stderr


def test_evaluate_writes_results_and_videos(repo_root: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_evaluate(
        repo_root, f"checkpoint={tiny_checkpoint}", "agents=[jepa,random]", "episodes=2", "max_steps=5",
        "video.episodes=1", "video.size=64", f"out={out}", "planner.optimizer.samples=32", "energy=latent",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results["agents"]) == {"jepa", "random"}
    for summary in results["agents"].values():
        assert summary["episodes"] == 2
        low, high = summary["success_rate_95ci"]
        assert 0 <= low <= summary["success_rate"] <= high <= 1
        assert summary["plan_ms_median"] > 0 and summary["distance"] > 0
    assert results["spec"]["seed"] == 1000 and results["spec"]["max_steps"] == 5
    assert results["spec"]["planner"]["horizon"] == 10
    # the recipe the checkpoint records, said on the first line; energy= changed one part of it
    assert results["spec"]["experiment"] == "default" and results["spec"]["energy_name"] == "latent"
    assert results["spec"]["planner_name"] == "cem"
    assert results["spec"]["variant"] is None and results["spec"]["predictor"] == "deterministic"
    assert proc.stdout.startswith("recipe: experiment=default (recorded in the checkpoint")
    videos = sorted((out / "videos").glob("*.mp4"))
    assert len(videos) == 2 and imageio.mimread(videos[0])[0].shape[1] == 128
    assert "jepa" in proc.stdout and "random" in proc.stdout


@pytest.mark.parametrize("override", ["task=pointmaze-umaze", "obs=pixels", "agents=[jepa,ppo]"])
def test_evaluate_refuses_a_mismatch_in_one_line(repo_root: Path, tiny_checkpoint: Path, tmp_path: Path, override: str) -> None:
    proc = run_evaluate(repo_root, f"checkpoint={tiny_checkpoint}", override, f"out={tmp_path / 'x'}")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x" / "results.json").exists()


def test_geodesic_energy_builds_its_graph_from_the_dataset(repo_root: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    base = [f"checkpoint={tiny_checkpoint}", "agents=[jepa]", "episodes=1", "max_steps=3", "video.episodes=0",
            "energy=geodesic", "planner.optimizer.samples=16"]
    missing = run_evaluate(repo_root, *base, f"out={tmp_path / 'nodata'}")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")  # the checkpoint's data is gone
    collect_small_dataset(repo_root, tmp_path / "data")
    proc = run_evaluate(repo_root, *base, f"data={tmp_path / 'data'}", f"out={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "eval" / "results.json").read_text())["spec"]
    assert spec["energy"]["terms"]["goal"]["_target_"] == "agents.energy.GeodesicGoalDistance"
    assert spec["experiment"] == "default"  # energy= changed one part of the recorded recipe
    assert spec["data"] == str(tmp_path / "data")


@pytest.mark.parametrize("batch_size", [None, "gcbc.batch_size=8"])  # per obs mode (the default), or one number
def test_evaluate_trains_gcbc_on_the_dataset_and_saves_it(
    repo_root: Path, tiny_checkpoint: Path, tmp_path: Path, batch_size: str | None
) -> None:
    collect_small_dataset(repo_root, tmp_path / "data")
    overrides = [f"checkpoint={tiny_checkpoint}", "agents=[gcbc]", "episodes=1", "max_steps=3", "video.episodes=0",
                 f"data={tmp_path / 'data'}", "gcbc.steps=3", f"out={tmp_path / 'eval'}"]
    proc = run_evaluate(repo_root, *overrides, *([batch_size] if batch_size else []))
    assert proc.returncode == 0, proc.stderr
    _, kwargs = load_gcbc(tmp_path / "eval" / "gcbc.safetensors", torch.device("cpu"))
    assert kwargs["obs_shape"] == [8] and kwargs["action_dim"] == 2
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["agents"]["gcbc"]["episodes"] == 1


def test_evaluate_takes_the_recorded_recipe_unless_told_otherwise(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    from scripts import evaluate
    from worldmodel.reliability import rewrite_header

    tuned = rewrite_header(shutil.copy(tiny_checkpoint, tmp_path / "tuned.safetensors"), "meta",
                           lambda meta: meta.replace('"default"', '"latent-variable"'))
    argv = ["evaluate.py", f"checkpoint={tuned}"]
    assert evaluate.with_recorded_recipe(argv)[2:] == ["task=reacher", "obs=state", "experiment=latent-variable"]
    assert evaluate.RECIPE_NOTE == "recorded in the checkpoint"
    told = evaluate.with_recorded_recipe([*argv, "experiment=default", "obs=state"])
    assert told[4:] == ["task=reacher"]  # what the command line gives stays as given
    foreign = rewrite_header(shutil.copy(tiny_checkpoint, tmp_path / "foreign.safetensors"), "meta",
                             lambda meta: meta.replace('"default"', '"someone-elses-recipe"'))
    assert evaluate.with_recorded_recipe(["evaluate.py", f"checkpoint={foreign}"])[-1] == "experiment=default"
    assert "'someone-elses-recipe' is not in configs/experiment/" in evaluate.RECIPE_NOTE


def test_many_envs_give_each_pair_the_result_it_gets_alone() -> None:
    """Seven pairs in one env and in three side by side: every episode identical, step for step. With
    replanning every 3 steps and episodes that stop at success, the three slots plan out of phase and
    take new pairs mid-run, the cases where a batched harness could mix them up."""
    pairs, _ = held_out_pairs(PointEnv(), 7, seed=4, collection_seed=0)

    def run(n: int) -> list:
        agent = MPCAgent(LinearLatentModel(), latent_energy(), small_cem(), replan_every=3)
        return evaluate_agent([PointEnv() for _ in range(n)], agent, pairs, 4, 40, "jepa", True)

    alone, together = run(1), run(3)
    assert [r.pair for r in together] == list(range(7))
    assert len({r.steps for r in alone}) > 1  # episodes end at different steps
    for a, b in zip(alone, together, strict=True):
        assert (a.success, a.steps, a.distances, a.energies) == (b.success, b.steps, b.distances, b.energies)


def test_oracle_and_random_agent_in_many_envs_match_one_env() -> None:
    pairs, _ = held_out_pairs(envs.make("reacher", obs="state"), 4, seed=11, collection_seed=0)
    for build in (lambda e: OracleMPC(e, envs.make("reacher", obs="state"), small_cem(), 2), lambda e: RandomAgent(2)):
        runs = []
        for n in (1, 3):
            acting = [envs.make("reacher", obs="state") for _ in range(n)]
            runs.append(evaluate_agent(acting, build(acting), pairs, 11, 15, "agent", False))
        assert [r.distances for r in runs[0]] == [r.distances for r in runs[1]]


def test_an_agent_of_one_env_is_refused_many_in_one_line() -> None:
    class OneEnvAgent:
        last_energy = float("nan")

        def reset(self, seed: int | None = None) -> None: ...

        def act(self, obs: dict, info: dict) -> np.ndarray:
            return np.zeros(2, np.float32)

    pairs, _ = held_out_pairs(PointEnv(), 2, seed=4, collection_seed=0)
    with pytest.raises(UserInputError, match="one env at a time"):
        evaluate_agent([PointEnv(), PointEnv()], OneEnvAgent(), pairs, 4, 5, "one", False)


def test_trajectory_pairs_are_refused_in_one_line_for_a_task_without_the_hook() -> None:
    def no_rollouts() -> None:
        raise AssertionError("refused before any trajectory is rolled")

    with pytest.raises(UserInputError, match="protocol=trajectory needs a task whose episode spec can hold a state .*"
                                              "PointEnv has none: use protocol=sampled"):
        trajectory_pairs(PointEnv(), 2, seed=1, collection_seed=0, offset=25, policy=None, make_rollout_env=no_rollouts)


def test_evaluate_draws_protocol_a_pairs_from_trajectories_and_says_so(repo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                      tiny_checkpoint: Path, tmp_path: Path) -> None:
    """protocol=trajectory on pusht: 50-step episodes on goals 25 steps ahead, the first success counting,
    recorded in results.json's spec;
    its video plots the block's errors. On reacher (no spec_from_states) it is refused in one line."""
    checkpoint = save_tiny_checkpoint(tmp_path_factory, task="pusht", state_dim=11)
    out = tmp_path / "a"
    proc = run_evaluate(repo_root, f"checkpoint={checkpoint}", "protocol=trajectory", "agents=[random]", "episodes=2",
                        "video.episodes=1", "video.size=64", f"out={out}")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    spec = results["spec"]
    assert spec["pairs_kind"] == "trajectory" and spec["pairs"].startswith("protocol (a), trajectory")
    assert spec["max_steps"] == 50 and spec["pairs_offset"] == 25
    assert spec["success"].startswith("info['success'] at the first success")  # the anchors' rule, set by the protocol
    assert spec["pairs_policy"]["_target_"] == "envs.policies.EdgePushes"  # pusht's collect.policy
    assert spec["pairs_trajectories"] == 2 + spec["pairs_unmoved"] + spec["solved_at_start"] + spec["pairs_refused"]
    assert all(r["steps"] == 50 for r in results["episodes"]["random"])
    assert len(list((out / "videos").glob("random_pair*.mp4"))) == 1
    refused = run_evaluate(repo_root, f"checkpoint={tiny_checkpoint}", "protocol=trajectory", f"out={tmp_path / 'b'}")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "protocol=trajectory needs a task whose episode spec can hold a state" in refused.stderr


def test_the_pairs_config_is_checked_in_one_line() -> None:
    from worldmodel.validation import check_script_config

    with pytest.raises(UserInputError, match="pairs.kind must be one of: sampled, trajectory"):
        check_script_config(OmegaConf.create({"checkpoint": "c", "pairs": {"kind": "anchors"}}), "evaluate")
    with pytest.raises(UserInputError, match="pairs.offset must be a whole number of at least 1"):
        check_script_config(OmegaConf.create({"checkpoint": "c", "pairs": {"kind": "trajectory", "offset": 0}}), "evaluate")


def test_the_uncertainty_configs_are_checked_in_one_line() -> None:
    """The JEPA agent's and the oracle's futures per candidate, and their statistic (agents/cost.py Uncertainty)."""
    from worldmodel.validation import check_script_config

    with pytest.raises(UserInputError, match="oracle.uncertainty.samples must be a whole number of at least 1"):
        check_script_config(OmegaConf.create({"checkpoint": "c", "oracle": {"uncertainty": {"samples": 0}}}), "evaluate")
    with pytest.raises(UserInputError, match="uncertainty.statistic must be one of: mean, cvar; got 'max'"):
        check_script_config(OmegaConf.create({"checkpoint": "c", "uncertainty": {"statistic": "max"}}), "evaluate")
    check_script_config(OmegaConf.create({"checkpoint": "c", "uncertainty": {"samples": 8, "statistic": "cvar"}}), "evaluate")

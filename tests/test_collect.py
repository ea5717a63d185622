"""Collection: worker-independent datasets, Ctrl-C / kill safety, resume, policies and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import minari
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import envs
from envs.collection import CollectionSpec, CoverageGrid, collect, measure_collection_speed, rollout
from envs.dataset import load_episodes
from envs.errors import UserInputError
from envs.navigation import NavigationGrid
from envs.policies import Mixture, OrnsteinUhlenbeck, UniformRandom, WaypointFollower

ROOT = Path(__file__).resolve().parents[1]
WAYPOINTS = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "policy" / "waypoints.yaml"))
WALL_DEFAULT_POLICY = OmegaConf.to_container(
    OmegaConf.load(ROOT / "configs" / "policy" / f"{OmegaConf.load(ROOT / 'configs' / 'task' / 'wall.yaml').collect.policy}.yaml")
)
GRID = CoverageGrid(low=(-1.0, -1.0), high=(1.0, 1.0), cells=20)


def reference(task: str, policy: dict, seed: int, episodes: int) -> list:
    """The same episodes run in this process, on a state env (policies never look at pixels)."""
    env = envs.make(task, obs="state")
    return [rollout(env, instantiate(policy), seed, i) for i in range(episodes)]


def assert_matches(loaded, expected: list) -> None:
    assert loaded.num_episodes == len(expected)
    for i, ep in enumerate(expected):
        np.testing.assert_array_equal(loaded.episode(i)["actions"], ep.actions)
        np.testing.assert_array_equal(loaded.episode(i)["states"], ep.infos["state"])


def test_dataset_does_not_depend_on_workers(tmp_path: Path) -> None:
    spec = CollectionSpec(task="wall", obs="state", image_size=16, seed=3, policy=WAYPOINTS)
    summary = collect(spec, tmp_path / "wall", 3, coverage=GRID, workers=2, progress=False)
    assert_matches(
        load_episodes(tmp_path / "wall", task="wall", obs="state"), reference("wall", WAYPOINTS, 3, 3)
    )
    assert (summary["episodes"], summary["frames"], summary["workers"]) == (3, 303, 2)
    assert 0 < summary["coverage"] < 1 and summary["frames_per_s"] > 0 and summary["bytes_on_disk"] > 0

    with pytest.raises(UserInputError, match="already exists"):
        collect(spec, tmp_path / "wall", 3, coverage=GRID, progress=False)
    with pytest.raises(UserInputError, match="seed=3 \\(now 4\\)"):
        other_seed = CollectionSpec(task="wall", obs="state", image_size=16, seed=4, policy=WAYPOINTS)
        collect(other_seed, tmp_path / "wall", 3, coverage=GRID, resume=True, progress=False)
    with pytest.raises(UserInputError, match="episodes must be a positive number"):
        collect(spec, tmp_path / "zero", 0, progress=False)
    with pytest.raises(UserInputError, match="cannot write a dataset at /proc"):
        collect(spec, Path("/proc/jepa-planner-test"), 1, progress=False)


@pytest.mark.parametrize("script", ["collect", "train"])
def test_unwritable_out_is_one_line_from_the_command_line(script: str) -> None:
    args = ["task=reacher", "obs=state", "out=/proc/jepa-planner-test/run"] + (["data=/nowhere"] if script == "train" else [])
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot write to out=/proc/jepa-planner-test/run (No such file or directory)"]


def test_a_choice_naming_nothing_is_one_line(capsys: pytest.CaptureFixture) -> None:
    """e.g. ``model.pixel_encoder=resnet``: the config cannot resolve, and scripts say so in one line."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from worldmodel.runtime import cli_main

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["task=reacher", "obs=pixels", "data=unused", "model.pixel_encoder=resnet"])
    with pytest.raises(SystemExit) as exit_info:
        cli_main(lambda: OmegaConf.to_container(cfg, resolve=True))()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: config model.encoder: Interpolation key 'pixel_encoders.resnet' not found"]


def test_a_policy_that_cannot_be_built_is_one_line_before_any_worker(tmp_path: Path) -> None:
    no_arguments = {"_target_": WAYPOINTS["_target_"]}
    broken = CollectionSpec(task="wall", obs="state", image_size=16, seed=0, policy=no_arguments)
    with pytest.raises(UserInputError, match="missing required argument.s. gain, damping, noise, reach, patience"):
        collect(broken, tmp_path / "wall", 2, workers=1, progress=False)
    assert not (tmp_path / "wall").exists()  # refused before the dataset was created


def run_collect(out: Path, *overrides: str) -> subprocess.Popen:
    args = ["task=wall", "obs=pixels", "image_size=16", "seed=5", f"out={out}", "progress=false", *overrides]
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "collect.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so the test can kill workers too
        # a shell passes "ignore SIGINT" on to background jobs: give the Ctrl-C test the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_staged(out: Path, count: int) -> None:
    staging = out / "wall-pixels-v0" / "staging"
    deadline = time.monotonic() + 120
    while not (staging.is_dir() and len(list(staging.glob("episode_*.hdf5"))) >= count):
        assert time.monotonic() < deadline, "collection never staged an episode"
        time.sleep(0.05)


def test_kill_keeps_finished_episodes_and_resume_completes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_collect(out, "episodes=8")
    wait_for_staged(out, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = load_episodes(out, task="wall", obs="pixels")
    expected = reference("wall", WALL_DEFAULT_POLICY, 5, 8)
    assert 2 <= survived.num_episodes < 8
    assert survived.observations.shape[1:] == (16, 16, 3) and survived.observations.dtype == np.uint8

    again = run_collect(out, "episodes=8")
    assert again.wait(timeout=120) == 2 and "resume=true" in again.stdout.read()
    resumed = run_collect(out, "episodes=8", "resume=true")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["episodes"], summary["frames"]) == (8, 808)
    assert summary["episodes_this_run"] == 8 - survived.num_episodes
    assert_matches(load_episodes(out), expected)  # nothing lost, nothing twice, same as one run
    assert (out / "config.yaml").exists()


def test_ctrl_c_leaves_a_valid_minari_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    proc = run_collect(out, "episodes=200", "workers=1")
    wait_for_staged(out, 1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert "everything finished so far was kept" in proc.stdout.read()
    assert not list((out / "wall-pixels-v0" / "staging").iterdir())  # all folded into the Minari file
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    dataset = minari.load_dataset("wall-pixels-v0")
    assert 1 <= dataset.total_episodes < 200
    assert dataset.total_episodes == load_episodes(out).num_episodes


def test_navigation_grid_paths() -> None:
    grid = NavigationGrid(
        free=np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=bool), cell_size=1.0, x_min=0.0, y_max=3.0
    )
    assert grid.path((0, 0), (2, 0)) == [(0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0)]
    assert grid.path((0, 0), (1, 0)) == []  # a wall cell is unreachable
    np.testing.assert_array_equal(grid.center((2, 1)), [1.5, 0.5])
    assert grid.cell_of(np.array([2.9, 2.9])) == (0, 2)


def test_wall_grid_opens_only_the_door() -> None:
    env = envs.make("wall", obs="state")
    env.reset(seed=0, options={"start": [-0.5, 0.0], "goal": [0.5, 0.0], "door": [0.3]})
    policy = WaypointFollower(**{k: v for k, v in WAYPOINTS.items() if k != "_target_"})
    policy.reset(env, np.random.default_rng(0))
    middle = policy.grid.free[:, policy.grid.free.shape[1] // 2]
    door_rows = np.flatnonzero(middle)
    assert len(door_rows) >= 2
    for row in door_rows:
        assert abs(policy.grid.center((row, 0))[1] - 0.3) <= 0.1  # within the door, ball radius allowed for


def crossings(policy: object, episodes: int) -> int:
    env = envs.make("wall", obs="state")
    crossed = 0
    for i in range(episodes):
        x = rollout(env, policy, 0, i).infos["achieved_goal"][:, 0]
        crossed += bool(np.any(np.sign(x) != np.sign(x[0])))
    return crossed


def test_waypoints_pass_the_door_where_random_walks_do_not() -> None:
    waypoints = WaypointFollower(**{k: v for k, v in WAYPOINTS.items() if k != "_target_"})
    assert crossings(waypoints, 6) >= 5
    assert crossings(UniformRandom(), 6) <= 1


def test_ou_actions_are_correlated_and_uniform_ones_are_not() -> None:
    env = envs.make("wall", obs="state")

    def lag_one_correlation(policy: object) -> float:
        policy.reset(env, np.random.default_rng(0))
        actions = np.array([policy.act({}) for _ in range(4000)])[:, 0]
        return float(np.corrcoef(actions[:-1], actions[1:])[0, 1])

    assert lag_one_correlation(OrnsteinUhlenbeck(theta=0.15, sigma=0.3)) > 0.8  # 1 - theta before clipping
    assert abs(lag_one_correlation(UniformRandom())) < 0.05


def test_mixture_follows_one_policy_per_episode_in_proportion() -> None:
    env = envs.make("wall", obs="state")
    uniform, ou = UniformRandom(), OrnsteinUhlenbeck(theta=0.15, sigma=0.3)
    mixture = Mixture([uniform, ou], weights=[3.0, 1.0])
    picks = []
    for i in range(400):
        mixture.reset(env, np.random.default_rng(i))
        picks.append(mixture.current is ou)
        assert mixture.act({}).shape == (2,)
    assert 0.19 <= np.mean(picks) <= 0.31  # 1/4, within ~2.7 standard errors
    with pytest.raises(UserInputError):
        Mixture([uniform], weights=[1.0, 2.0])


def test_maze_default_policy_mixes_slow_waypoint_runs_and_noise() -> None:
    policy = instantiate(OmegaConf.load(ROOT / "configs" / "policy" / "waypoints_ou.yaml"))
    assert isinstance(policy, Mixture) and isinstance(policy.policies[0], WaypointFollower)
    env = envs.make("wall", obs="state")

    def top_speed(push_range: tuple[float, float]) -> float:
        follower = WaypointFollower(**{**{k: v for k, v in WAYPOINTS.items() if k != "_target_"},
                                       "noise": 0.0, "push_range": push_range})
        episode = rollout(env, follower, 0, 0)
        return float(np.abs(np.diff(episode.infos["achieved_goal"], axis=0)).max())

    assert top_speed((0.3, 0.3)) < 0.6 * top_speed((1.0, 1.0))


def test_coverage_counts_grid_cells() -> None:
    grid = CoverageGrid(low=(0.0, 0.0), high=(2.0, 2.0), cells=2)
    assert grid.fraction(np.array([[0.1, 0.1], [0.2, 0.3], [1.5, 0.5]])) == 0.5
    assert grid.fraction(np.array([[-5.0, -5.0], [0.5, 1.5], [1.5, 1.5], [9.0, 0.1]])) == 1.0
    # a box over (x, y, yaw) with cells per axis (pusht's block pose): 2 x 2 x 4 = 16 cells, 3 visited
    pose_grid = CoverageGrid(low=(0.0, 0.0, -np.pi), high=(2.0, 2.0, np.pi), cells=(2, 2, 4))
    poses = np.array([[0.1, 0.1, -3.0], [0.2, 0.3, -2.0], [0.1, 0.1, 0.1], [1.5, 0.5, 3.0]])
    assert pose_grid.fraction(poses) == 3 / 16


@pytest.mark.slow
def test_measure_collection_speed_reports_both_rates() -> None:
    result = measure_collection_speed("wall", "state", episodes=2, workers=2)
    assert result["frames_per_s_1_worker"] > 0 and result["frames_per_s_2_workers"] > 0
    assert result["speedup"] == pytest.approx(
        result["frames_per_s_2_workers"] / result["frames_per_s_1_worker"], 0.01
    )


def test_cost_to_go_is_the_path_round_the_wall() -> None:
    """A U of free cells: from the bottom-left cell to the top-left one the path goes round the right
    column, 6 cell steps between centres (no diagonal cuts a wall's corner), where the straight line is 2."""
    grid = NavigationGrid(
        free=np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=bool), cell_size=1.0, x_min=0.0, y_max=3.0
    )
    cost = grid.cost_to_go(np.array([0.5, 2.5]))  # the top-left cell's centre
    assert cost(np.array([0.5, 2.5])) == pytest.approx(0.0)
    assert cost(np.array([0.9, 2.5])) == pytest.approx(0.4)  # inside the goal's cell: the straight distance
    assert cost(np.array([0.5, 0.5])) == pytest.approx(6.0)
    assert cost(np.array([2.5, 1.5])) == pytest.approx(3.0)  # the right column's middle: up, left, left
    np.testing.assert_allclose(cost(np.array([[0.5, 0.5], [2.5, 1.5]])), [6.0, 3.0])  # batches of positions
    finer = grid.refined(2).cost_to_go(np.array([0.5, 2.5]))(np.array([0.5, 0.5]))
    assert 4.5 < finer <= 6.0  # half-size cells hug the inner corners: shorter, never the straight 2

"""Push-T: pushing moves the block and a scripted push succeeds, no drift, success/distance known answers,
the documented goal-area coverage, the pushing policy against uniform actions, the collection summary,
evaluation protocol (a)'s pairs from trajectories, and the videos' pose errors and goal outline.

The shared task contract (check_env, determinism, sim state, simulate_batch, goal observations, bad
specs) runs on pusht through tests/test_envs.py's parametrizations.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml
from matplotlib.path import Path as MplPath
from test_agents import (
    ConstantAgent,  # moves right at top speed: into the block from the left (tests/ is on sys.path)
)

import envs
import envs.pusht
from agents.baselines import OracleMPC
from agents.evaluation import episode_record, run_episode
from agents.pairs import trajectory_pairs
from agents.planners import CEM
from agents.video import OUTLINE_COLOR, curves, episode_frames, write_video
from envs.builder import build
from envs.collection import CollectionSpec, CoverageGrid, collect, rollout
from envs.errors import UserInputError
from envs.policies import EdgePushes, UniformRandom
from envs.pusht import area_coverage

ROOT = Path(__file__).resolve().parents[1]
PUSHES = yaml.safe_load((ROOT / "configs" / "policy" / "pushes.yaml").read_text())
TASK_CONFIG = yaml.safe_load((ROOT / "configs" / "task" / "pusht.yaml").read_text())
BLOCK_RGB = np.array([131, 150, 168])  # the T as the 128-pixel goal frame shows it (pusht.xml's .467 .533 .6, lit)
FAR = [0.2, 0.2]  # a pusher place clear of every block pose used below


def spec(start: list[float], goal: list[float], pusher: list[float] = FAR) -> dict:
    return {"start": start, "pusher": pusher, "goal": goal, "goal_pusher": [-0.2, -0.2]}


@pytest.fixture
def env():
    env = envs.make("pusht", obs="state")
    yield env
    env.close()


def test_the_t_is_gym_pushts(env) -> None:
    """Bar 120 x 30 mm over a 30 x 90 mm stem, frame at the area centroid, pusher radius 15 mm."""
    shape, task = env.unwrapped.shape, env.unwrapped
    np.testing.assert_allclose(np.ptp(shape.polygon(), axis=0), [0.12, 0.12])
    assert shape.area == pytest.approx(0.12 * 0.03 + 0.03 * 0.09)
    below_top = (0.12 * 0.03 * 0.015 + 0.03 * 0.09 * 0.075) / shape.area  # the centroid, from the bar's top
    assert shape.bar_center + shape.bar_half[1] == pytest.approx(below_top, abs=1e-9)
    assert task.radius == 0.015 and task.half_arena == pytest.approx(0.256)
    assert np.sqrt(shape.gyration_sq) == pytest.approx(0.04395, abs=1e-5)  # the docstring's rho


def test_a_straight_push_moves_the_block_and_reaches_the_goal(env) -> None:
    """The pusher drives up into the stem's foot, through the centroid: the block slides straight up
    without turning, and the episode succeeds once the block is within 20 mm of a goal 80 mm up."""
    _, info = env.reset(options=spec([0.0, -0.05, 0.0], [0.0, 0.03, 0.0], pusher=[0.0, -0.16]))
    assert not info["success"] and not info["contact"]
    touched = succeeded = None
    for step in range(40):
        _, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))
        touched = touched if touched is not None or not info["contact"] else step
        if info["success"]:
            succeeded = step
            break
    assert touched is not None and succeeded is not None and touched < succeeded
    x, y, theta = info["achieved_goal"]
    assert abs(x) < 1e-6 and abs(theta) < 1e-6  # a push through the centroid neither shifts nor turns it
    assert 0.03 - 0.02 < y < 0.03  # success at the first step within the tolerance, from below


def test_an_off_centre_push_turns_the_block(env) -> None:
    """Pushing the bar's right end from below turns the T anticlockwise (towards +theta)."""
    env.reset(options=spec([0.0, 0.0, 0.0], [0.1, 0.1, 1.0], pusher=[0.045, -0.05]))
    for _ in range(8):
        _, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))
    assert info["achieved_goal"][2] > 0.2


def test_the_block_stays_put_without_contact_and_stops_after_a_push(env) -> None:
    _, info = env.reset(options=spec([0.0, 0.0, 0.5], [0.1, 0.1, 2.0]))
    start = info["state"].copy()
    for action in np.random.default_rng(0).uniform(-0.3, 0.3, (100, 2)):  # the pusher wanders, far off
        _, _, _, _, info = env.step(action.astype(np.float32))
        assert not info["contact"]
    assert np.array_equal(info["state"][2:6], start[2:6]) and np.all(info["state"][8:] == 0)

    env.reset(options=spec([0.0, 0.0, 0.0], [0.1, 0.1, 1.0], pusher=[0.0, -0.12]))
    for _ in range(6):
        env.step(np.array([0.0, 1.0], np.float32))
    _, _, _, _, info = env.step(np.array([0.0, -1.0], np.float32))  # pull back: the block coasts and stops
    released = info["achieved_goal"].copy()
    for _ in range(10):
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
    stopped = info["achieved_goal"].copy()
    assert np.linalg.norm(stopped[:2] - released[:2]) < 0.008 and np.abs(info["state"][8:]).max() < 1e-6
    for _ in range(50):
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
    np.testing.assert_allclose(info["achieved_goal"], stopped, atol=1e-9)


TOL, ANGLE = 0.02, np.pi / 9


@pytest.mark.parametrize(
    ("start", "goal", "success", "distance"),
    [
        ([0.0, 0.0, 0.3], [0.0, 0.0, 0.3], True, 0.0),
        ([0.0, 0.0, 0.3], [TOL - 1e-4, 0.0, 0.3], True, TOL - 1e-4),
        ([0.0, 0.0, 0.3], [TOL + 1e-4, 0.0, 0.3], False, TOL + 1e-4),
        ([0.0, 0.0, 0.3], [0.012, 0.016 - 1e-4, 0.3], True, None),  # within 20 mm diagonally
        ([0.0, 0.0, 0.3], [0.0, 0.0, 0.3 + ANGLE - 1e-3], True, 2 * 0.04395035 * np.sin((ANGLE - 1e-3) / 2)),
        ([0.0, 0.0, 0.3], [0.0, 0.0, 0.3 - ANGLE - 1e-3], False, 2 * 0.04395035 * np.sin((ANGLE + 1e-3) / 2)),
        ([0.0, 0.0, 3.1], [0.0, 0.0, -3.1], True, 2 * 0.04395035 * np.sin((2 * np.pi - 6.2) / 2)),  # across +-pi
        ([0.0, 0.0, 0.3], [0.0, 0.0, 0.3 + 2 * np.pi], True, 0.0),  # theta and theta + 2 pi: one pose
        ([0.0, 0.0, 0.3 - 4 * np.pi], [0.0, 0.0, 0.3], True, 0.0),
        ([0.0, 0.0, 0.0], [0.0, 0.0, np.pi], False, 2 * 0.04395035),  # half a turn: the largest rotation
    ],
)
def test_success_and_distance_known_answers(env, start, goal, success, distance) -> None:
    _, info = env.reset(options=spec(start, goal))
    assert info["success"] == success
    if distance is not None:
        assert info["distance"] == pytest.approx(distance, abs=1e-7)
    assert -np.pi <= info["achieved_goal"][2] < np.pi and -np.pi <= info["desired_goal"][2] < np.pi


def test_turned_by_whole_turns_is_the_same_episode(env) -> None:
    observation, info = env.reset(options=spec([0.0, 0.0, 0.3], [0.1, 0.0, 1.0]))
    turned, info_turned = env.reset(options=spec([0.0, 0.0, 0.3 + 2 * np.pi], [0.1, 0.0, 1.0 - 2 * np.pi]))
    np.testing.assert_allclose(turned["observation"], observation["observation"], atol=1e-6)
    np.testing.assert_allclose(turned["goal"], observation["goal"], atol=1e-6)
    assert info_turned["distance"] == pytest.approx(info["distance"], abs=1e-9)


def test_cost_to_go_is_the_task_distance(env) -> None:
    _, info = env.reset(seed=3)
    cost = env.unwrapped.cost_to_go(info["desired_goal"])
    poses = np.stack([info["achieved_goal"], info["desired_goal"], info["desired_goal"] + [0.0, 0.0, 2 * np.pi]])
    np.testing.assert_allclose(cost(poses[None]), [[info["distance"], 0.0, 0.0]], atol=1e-9)


def oracle_rows(pose: list[float], pusher: list[float]) -> np.ndarray:
    """A row of ``simulate_batch(..., scored=True)``: the block's pose, then the pusher's position."""
    return np.array([*pose, *pusher])


def test_oracle_cost_pulls_the_pusher_to_the_block(env) -> None:
    """Same block pose, the pusher touching it or 0.1 m clear of it: the oracle's cost is lower by the
    approach term (weight x gap); touching, and at the goal pose, it is the pose distance alone."""
    task = env.unwrapped
    goal, pose = np.array([0.05, 0.0, 1.0]), [0.0, 0.0, 0.0]
    foot = task.shape.stem_center - task.shape.stem_half[1]  # the stem's foot, below the centroid at theta 0
    touching, clear = [0.0, foot - task.radius], [0.0, foot - task.radius - 0.1]
    cost = task.cost_to_go(goal)
    distance = float(envs.pusht.pose_distance(np.array(pose), goal, task.shape.gyration_sq))
    assert cost(oracle_rows(pose, touching)) == pytest.approx(distance, abs=1e-12)
    assert cost(oracle_rows(pose, clear)) == pytest.approx(distance + task.approach_weight * 0.1, abs=1e-9)
    at_goal = oracle_rows(goal.tolist(), task.rest_position(goal).tolist())  # 10 mm clear of the stem's foot
    assert cost(at_goal) == pytest.approx(task.approach_weight * task.clearance, abs=1e-9)
    assert cost(at_goal[:3]) == 0.0  # the achieved goal alone: the task distance (the test above)


def test_scored_simulation_adds_the_pusher_and_changes_nothing_else(env) -> None:
    """``simulate_batch(..., scored=True)``: the achieved goal, bit for bit, then the pusher's position as
    stepping gives it; on every other task the scored rows are the achieved goals themselves."""
    task = env.unwrapped
    env.reset(seed=4)
    start = task.get_sim_state()
    actions = np.random.default_rng(0).uniform(-1, 1, (3, 12, 2))
    scored = task.simulate_batch(start, actions, scored=True)
    assert scored.shape == (3, 12, 5) and np.array_equal(scored[..., :3], task.simulate_batch(start, actions))
    task.set_sim_state(start)
    for action, row in zip(actions[1], scored[1], strict=True):
        state = env.step(action)[4]["state"]
        np.testing.assert_allclose(row[3:], state[:2], rtol=0, atol=1e-6)
    for other in ("reacher", "wall"):
        other_env = envs.make(other, obs="state").unwrapped
        other_env.reset(seed=0)
        saved = other_env.get_sim_state()
        assert np.array_equal(other_env.simulate_batch(saved, actions, scored=True), other_env.simulate_batch(saved, actions))


def test_oracle_pushes_the_block_to_a_near_goal(env) -> None:
    """Goal 40 mm to the right, the pusher 120 mm left of the bar's end: the simulator oracle (a small
    CEM) walks up and pushes it there within 20 steps (with the pose distance alone, approach_weight 0,
    the same planner took 41 steps: the gap term is what brings the pusher)."""
    task = env.unwrapped
    pusher = [-task.shape.bar_half[0] - task.radius - 0.12, task.shape.bar_center]
    episode = {"start": [0.0, 0.0, 0.0], "pusher": pusher, "goal": [0.04, 0.0, 0.0], "goal_pusher": [-0.2, -0.2]}
    planner = CEM(10, 2, samples=64, iterations=3, elites=8, init_std=0.6, min_std=0.05, seed=0)
    oracle = OracleMPC(env, envs.make("pusht", obs="state"), planner, 1)
    result = run_episode(env, oracle, episode, 0, 0, 20, stop_on_success=True)
    assert result.success


def test_sampled_tasks_are_far_apart_and_clear(env) -> None:
    """Protocol (b): goals turned at least 60 degrees from the start, pushers clear of the block, the
    goal image's pusher just beyond the goal stem's foot."""
    task, rng = env.unwrapped, np.random.default_rng(1)
    for _ in range(50):
        drawn = task.sample_task(rng)
        turn = envs.pusht.wrap_angle(drawn["goal"][2] - drawn["start"][2])
        assert abs(turn) >= np.pi / 3 - 1e-12
        pusher = envs.pusht.to_block_frame(np.array(drawn["pusher"]), np.array(drawn["start"]))
        assert task.shape.signed_distance(pusher) >= task.radius + task.clearance
        np.testing.assert_allclose(drawn["goal_pusher"], task.rest_position(np.array(drawn["goal"])))


def test_worst_goal_area_coverage_at_the_tolerances_is_the_documented_one(env) -> None:
    """Both errors at the tolerances, every shift direction and both turns: the least gym-pusht-style
    coverage of the goal's area, the number the module docstring states (43%)."""
    shape = env.unwrapped.shape
    assert area_coverage(shape, np.array([0.05, 0.0, 1.0]), np.array([0.05, 0.0, 1.0])) == 1.0
    worst = min(
        area_coverage(shape, np.array([TOL * np.cos(phi), TOL * np.sin(phi), turn]), np.zeros(3), spacing=0.001)
        for phi in np.radians(np.arange(0, 360, 15)) for turn in (-ANGLE, ANGLE)
    )
    assert worst == pytest.approx(0.43, abs=0.01)
    assert "covers 43% of the goal's area" in " ".join(envs.pusht.__doc__.split())


def test_goal_is_not_in_the_observation() -> None:
    """Same start, two goals: identical observation images, different goal images."""
    env = envs.make("pusht", obs="pixels", image_size=32)
    near, _ = env.reset(options=spec([0.0, 0.0, 0.0], [0.1, 0.0, 1.5]))
    far, _ = env.reset(options=spec([0.0, 0.0, 0.0], [-0.1, 0.1, -1.5]))
    assert np.array_equal(near["observation"], far["observation"])
    assert not np.array_equal(near["goal"], far["goal"])
    env.close()


def contact_fraction(policy: object, episodes: int) -> float:
    env = envs.make("pusht", obs="state")
    return float(np.mean([rollout(env, policy, 0, i).infos["contact"][1:].mean() for i in range(episodes)]))


def test_edge_pushes_touch_the_block_far_more_than_uniform_actions() -> None:
    assert TASK_CONFIG["collect"]["policy"] == "pushes"
    pushes, uniform = contact_fraction(build(PUSHES, "policy"), 3), contact_fraction(UniformRandom(), 3)
    assert pushes > 0.2 and pushes > 4 * uniform


def test_edge_pushes_need_a_pushing_task() -> None:
    policy = build(PUSHES, "policy")
    with pytest.raises(UserInputError, match="policy=pushes needs a pushing task"):
        policy.reset(envs.make("wall", obs="state"), np.random.default_rng(0))
    with pytest.raises(UserInputError, match="explore must be a probability"):
        EdgePushes(**{**{k: v for k, v in PUSHES.items() if k != "_target_"}, "explore": 2.0})


def test_collection_summary_reports_contact_and_block_pose_coverage(tmp_path: Path) -> None:
    coverage = CoverageGrid(**TASK_CONFIG["collect"]["coverage"])
    spec_ = CollectionSpec(task="pusht", obs="state", image_size=16, seed=0, policy=PUSHES)
    summary = collect(spec_, tmp_path / "pusht", 2, coverage=coverage, workers=1, progress=False)
    assert summary["frames"] == 2 * 301 and 0.2 < summary["contact_fraction"] < 1.0
    assert 0.0 < summary["coverage_per_episode"] <= summary["coverage"] < 0.5
    json.dumps(summary)


# ----- evaluation protocol (a): pairs from held-out trajectories ----------------------------------
def rollout_env(steps: int | None = None):
    return lambda: envs.make("pusht", obs="state", collection=True, **({"max_episode_steps": steps} if steps else {}))


def draw_trajectory_pairs(env, episodes: int, seed: int, offset: int = 25, steps: int | None = None):
    return trajectory_pairs(env, episodes, seed, 0, offset, build(PUSHES, "policy"), rollout_env(steps))


def test_trajectory_pairs_take_the_goal_offset_steps_ahead_and_reset_to_exactly_that(env) -> None:
    """Known answers, rebuilt independently: trajectory i, step t from default_rng([seed, i, 1]); the reset
    shows state t's positions at rest and the goal is the block pose and pusher at t + 25."""
    pairs, counts = draw_trajectory_pairs(env, 3, seed=7)
    assert counts["trajectories"] == 3 + counts["unmoved"] + counts["solved_at_start"] + counts["refused"]
    roll, policy, expected = rollout_env()(), build(PUSHES, "policy"), []
    for i in range(counts["trajectories"]):
        trajectory = rollout(roll, policy, 7, i)
        t = int(np.random.default_rng([7, i, 1]).integers(trajectory.num_steps - 25 + 1))
        start, goal = trajectory.infos["state"][t], trajectory.infos["state"][t + 25]
        moved = np.linalg.norm(trajectory.infos["achieved_goal"][t + 25] - trajectory.infos["achieved_goal"][t]) > 1e-6
        spec_ = env.unwrapped.spec_from_states(start, goal)
        obs, info = env.reset(options=spec_)
        if not moved or info["success"]:
            continue
        expected.append(spec_)
        # the episode starts where the spec says, at rest; that is where the trajectory was at t (to float32
        # precision, or moved back to a wall it was pressed into, by under a millimetre)
        placed = np.array([*spec_["pusher"], *spec_["start"][:2]], np.float32)
        assert np.array_equal(obs["observation"][:4], placed) and np.all(obs["observation"][6:] == 0)
        assert np.allclose(placed, start[:4], atol=1e-3) and np.allclose(obs["observation"][4:6], start[4:6], atol=1e-6)
        # its goal is the block pose at t + 25, and the goal observation holds the pusher there too
        assert np.array_equal(info["desired_goal"], envs.pusht.wrap_angle(np.array(spec_["goal"])) * [0, 0, 1]
                              + np.array(spec_["goal"]) * [1, 1, 0])
        assert np.allclose(info["desired_goal"], trajectory.infos["achieved_goal"][t + 25], atol=1e-3)
        assert np.allclose(obs["goal"][:4], goal[:4], atol=1e-3) and np.all(obs["goal"][6:] == 0)
        # starting at rest keeps the goal 25 steps away: the trajectory's own actions, replayed, reach it
        for action in trajectory.actions[t : t + 25]:
            _, _, _, _, info = env.step(action)
        assert info["success"]
    assert pairs == expected
    assert draw_trajectory_pairs(env, 3, seed=7) == (pairs, counts)  # reproducible from the seed
    assert draw_trajectory_pairs(env, 3, seed=8)[0] != pairs


def test_trajectory_pairs_skip_unmoved_and_solved_starts_and_refuse_what_they_cannot_do(env) -> None:
    # one step apart, the block moves less than the tolerances wherever it moves: every pair starts
    # solved or unmoved, and the search gives up in one line
    with pytest.raises(UserInputError, match=r"found 0 of 1 pairs in 100 trajectories \(\d+ did not move in 1 steps, "):
        draw_trajectory_pairs(env, 1, seed=3, offset=1, steps=20)
    # five steps apart on 60-step trajectories: some blocks stay put, some move within the tolerances
    pairs, counts = draw_trajectory_pairs(env, 4, seed=3, offset=5, steps=60)
    assert len(pairs) == 4 and counts["unmoved"] > 0 and counts["solved_at_start"] > 0 and counts["refused"] == 0
    roll, policy, unmoved, solved = rollout_env(60)(), build(PUSHES, "policy"), 0, 0
    for i in range(counts["trajectories"]):
        trajectory = rollout(roll, policy, 3, i)
        t = int(np.random.default_rng([3, i, 1]).integers(trajectory.num_steps - 5 + 1))
        block = trajectory.infos["achieved_goal"]
        if np.linalg.norm(block[t + 5] - block[t]) <= 1e-6:  # a block without contact stays within a micrometre
            unmoved += 1
        elif env.reset(options=env.unwrapped.spec_from_states(*trajectory.infos["state"][[t, t + 5]]))[1]["success"]:
            solved += 1
    assert (unmoved, solved) == (counts["unmoved"], counts["solved_at_start"])
    assert not any(env.reset(options=pair)[1]["success"] for pair in pairs)
    with pytest.raises(UserInputError, match="pairs.offset=50 is longer than the task's trajectories"):
        draw_trajectory_pairs(env, 1, seed=3, offset=50, steps=40)
    with pytest.raises(UserInputError, match="collection seed"):
        trajectory_pairs(env, 1, 0, 0, 25, build(PUSHES, "policy"), rollout_env())


def test_a_state_pressed_into_a_wall_gives_a_valid_spec(env) -> None:
    """Soft contacts let a pusher or a block sink under a millimetre into a wall: the spec puts it at the wall."""
    task = env.unwrapped
    reach, half, top = task.reach, task.half_arena, task.shape.bar_center + task.shape.bar_half[1]
    state = np.zeros(11, np.float32)
    state[0:2] = [-(reach + 0.0007), 0.1]  # the pusher 0.7 mm into the west wall
    state[2:6] = [0.0, half - top + 0.0005, 1.0, 0.0]  # the bar's top 0.5 mm into the north wall
    spec_ = env.unwrapped.spec_from_states(state, state)
    assert spec_["pusher"][0] == pytest.approx(-reach)
    corners = envs.pusht.to_world(env.unwrapped.shape.polygon(), np.array(spec_["start"]))
    assert np.abs(corners).max() == pytest.approx(half)
    env.reset(options={**spec_, "goal": [0.0, 0.0, 0.0], "goal_pusher": [0.2, 0.2]})


# ----- videos: the block's errors under the frames, the goal's outline on them -----------------------
def test_goal_errors_are_the_block_position_in_mm_and_the_wrapped_angle_in_degrees(env) -> None:
    desired = np.array([0.1, -0.05, np.pi - 0.1])
    achieved = np.array([[0.103, -0.046, np.pi - 0.1], [0.1, -0.05, -np.pi + 0.1], [0.08, -0.05, np.pi - 0.1 - np.pi / 2]])
    errors = env.unwrapped.goal_errors(achieved, desired)
    position, position_tolerance = errors["position error (mm)"]
    angle, angle_tolerance = errors["angle error (deg)"]
    assert position == pytest.approx([5.0, 0.0, 20.0]) and position_tolerance == pytest.approx(20.0)
    assert angle == pytest.approx([0.0, np.degrees(0.2), 90.0]) and angle_tolerance == pytest.approx(20.0)  # the short way round
    drawn = curves([0.0, 0.1, 0.2], [np.nan, 1.0, 2.0], errors)
    assert [(label, side) for label, _, side, _ in drawn] == [
        ("position error (mm)", "left"), ("angle error (deg)", "left"), ("energy", "right")]
    assert np.array_equal(drawn[0][1], position) and np.array_equal(drawn[1][1], angle)
    assert [label for label, *_ in curves([0.0], [np.nan])] == ["distance"]  # no errors, no energy: the distance alone


def test_episode_video_plots_the_recorded_pose_errors_and_outlines_the_goal(tmp_path: Path) -> None:
    env = envs.make("pusht", obs="pixels", image_size=32)
    task = env.unwrapped
    pair = spec([0.0, 0.0, 0.0], [0.05, 0.0, 0.5], pusher=[-0.1, 0.0])
    result = run_episode(env, ConstantAgent(), pair, 0, 0, max_steps=5, stop_on_success=False, frame_size=64)
    assert len(result.achieved_goals) == len(result.frames) == len(result.distances) == 6
    assert "achieved_goals" not in episode_record(result)  # the JSON record stays small
    _, info = env.reset(options=pair)
    errors = task.goal_errors(np.stack(result.achieved_goals), info["desired_goal"])
    position = errors["position error (mm)"][0]
    assert position[0] == pytest.approx(50.0) and position[-1] < position[0] - 10  # pushed towards the goal's x
    assert errors["angle error (deg)"][0][0] == pytest.approx(np.degrees(0.5))
    outline = task.goal_outline(64)
    frames = episode_frames(result.frames, task.render_goal_frame(64), result.distances, result.energies, "t",
                            errors, outline)
    back = imageio.mimread(write_video(tmp_path / "pusht.mp4", frames, fps=5))
    assert len(back) == 6 and back[0].shape == frames[0].shape
    is_outline = lambda image: np.all(image == OUTLINE_COLOR, axis=-1)  # noqa: E731
    assert is_outline(frames[0][:64, :64]).sum() > 20  # drawn on the video's frames...
    obs, _ = env.reset(options=pair)
    assert not any(is_outline(f).any() for f in [*result.frames, obs["observation"], obs["goal"]])  # ...never in observations
    env.close()


def test_the_goal_outline_is_where_the_goal_frame_shows_the_block() -> None:
    env = envs.make("pusht", obs="pixels", image_size=128)
    env.reset(options=spec([0.1, 0.1, 0.3], [-0.05, 0.02, 0.9], pusher=[-0.2, -0.2]))
    task = env.unwrapped
    goal, outline = task.render_goal_frame(128), task.goal_outline(128)
    centres = np.stack(np.meshgrid(np.arange(128) + 0.5, np.arange(128) + 0.5), -1).reshape(-1, 2)
    inside = MplPath(outline).contains_points(centres).reshape(128, 128)
    block = np.abs(goal.astype(int) - BLOCK_RGB).sum(-1) < 40
    assert (inside & block).sum() / (inside | block).sum() > 0.8  # edge pixels blend into the floor
    env.close()

"""The task suite: Gymnasium compliance, determinism, episode specs, sim state, success geometry, errors."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env
from task_cases import PIXEL_TASKS, TASK_NAMES, TASKS_AND_OBS  # every task: built in, or behind the adapter

import envs
from envs.errors import UserInputError
from envs.registry import TASKS
from envs.speed import measure_env_speed

BUILT_IN = [task for task in TASK_NAMES if not TASKS[task].adapted]  # specs of start/goal positions, own physics
# the tasks whose future the present and the action determine (tests/test_stochastic.py has the variants)
DETERMINISTIC = [task for task in BUILT_IN if TASKS[task].kwargs.get("variant") is None]


def rollout(env: gym.Env, actions: np.ndarray) -> list[np.ndarray]:
    return [env.step(a)[0]["observation"] for a in actions]


def random_actions(env: gym.Env, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def test_task_names_and_configs_agree(repo_root):
    """Every task config is a task (none failed to parse), with the registry's episode length."""
    files = sorted(p.stem for p in (repo_root / "configs" / "task").glob("*.yaml"))
    assert files == TASK_NAMES and not envs.registry.BROKEN
    assert {"reacher", "pointmaze-umaze", "pointmaze-medium", "wall", "pusht"} <= set(BUILT_IN)
    for name in TASK_NAMES:
        cfg = yaml.safe_load((repo_root / "configs" / "task" / f"{name}.yaml").read_text())
        assert cfg["name"] == name
        assert cfg["max_episode_steps"] == TASKS[name].max_episode_steps


@pytest.mark.filterwarnings("ignore::UserWarning")  # check_env notes the wrappers and the infinite bounds
@pytest.mark.parametrize(("task", "obs"), TASKS_AND_OBS)
def test_check_env_and_spaces(task, obs):
    env = envs.make(task, obs=obs)
    check_env(env.unwrapped, skip_render_check=True)
    check_env(env, skip_render_check=True)
    observation, info = env.reset(seed=0)
    expected = (64, 64, 3) if obs == "pixels" else info["state"].shape
    dtype = np.uint8 if obs == "pixels" else np.float32
    for key in ("observation", "goal"):
        assert observation[key].shape == expected and observation[key].dtype == dtype
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    assert info["state"].shape == info["goal_state"].shape and info["state"].ndim == 1
    assert info["achieved_goal"].shape == info["desired_goal"].shape
    assert set(info) >= {"success", "distance", "state", "goal_state", "achieved_goal", "desired_goal"}
    if obs == "state":  # one time limit for both modes; a pixel step costs a frame (OGBench's: ~0.2 s on a CPU)
        steps = 0
        truncated = False
        while not truncated:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert not terminated
            steps += 1
        assert steps == TASKS[task].max_episode_steps
    env.close()


@pytest.mark.parametrize("task", TASK_NAMES)  # one pixel check of every task, slow renderers too
def test_gymnasium_make_by_id_and_image_size(task):
    env = gym.make(TASKS[task].gym_id, obs="pixels", image_size=32)
    observation, _ = env.reset(seed=1)
    assert observation["observation"].shape == (32, 32, 3)
    assert not np.array_equal(observation["observation"], observation["goal"])
    env.close()


@pytest.mark.parametrize("task", PIXEL_TASKS)
def test_same_seed_same_episode(task):
    runs = []
    for _ in range(2):
        env = envs.make(task, obs="pixels", image_size=32)
        observation, info = env.reset(seed=7)
        frames = rollout(env, random_actions(env, 10, seed=3))
        runs.append((observation["goal"], info["state"], frames))
        env.close()
    (goal_a, state_a, frames_a), (goal_b, state_b, frames_b) = runs
    assert np.array_equal(goal_a, goal_b) and np.array_equal(state_a, state_b)
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b, strict=True))


@pytest.mark.parametrize("task", TASK_NAMES)
def test_reset_to_spec_round_trip(task):
    env = envs.make(task, obs="state")
    # reset(seed=s) draws its spec with the env's seeded generator, so sample_task reproduces it.
    _, info_seeded = env.reset(seed=11)
    spec = env.unwrapped.sample_task(seeding.np_random(11)[0])
    spec = json.loads(json.dumps(spec))  # specs survive JSON, as held-out evaluation lists do
    observation, info = env.reset(options=spec)
    assert np.array_equal(info["state"], info_seeded["state"])
    assert np.array_equal(info["desired_goal"], info_seeded["desired_goal"])
    assert np.array_equal(observation["goal"], info["goal_state"])
    env.close()


@pytest.mark.parametrize("task", TASK_NAMES)
def test_sampled_starts_never_succeed(task):
    env = envs.make(task, obs="state")
    rng = np.random.default_rng(0)
    for _ in range(100):
        _, info = env.reset(options=env.unwrapped.sample_task(rng))
        assert not info["success"]
    env.close()


@pytest.mark.parametrize(("task", "obs"), TASKS_AND_OBS)
def test_sim_state_restore_gives_identical_observations(task, obs):
    env = envs.make(task, obs=obs, image_size=32)
    env.reset(seed=5)
    rollout(env, random_actions(env, 5, seed=0))
    saved = env.unwrapped.get_sim_state()
    actions = random_actions(env, 8, seed=1)
    first = rollout(env, actions)
    other = envs.make(task, obs=obs, image_size=32)  # a fresh env with another episode
    other.reset(seed=99)
    other.unwrapped.set_sim_state(saved)
    second = rollout(other, actions)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    env.close()
    other.close()


@pytest.mark.parametrize("task", PIXEL_TASKS)
def test_sim_state_works_across_obs_modes(task):
    pixels, state = envs.make(task, obs="pixels", image_size=32), envs.make(task, obs="state")
    pixels.reset(seed=2)
    state.reset(seed=3)
    state.unwrapped.set_sim_state(pixels.unwrapped.get_sim_state())
    for action in random_actions(pixels, 3, seed=0):
        _, _, _, _, info = pixels.step(action)
        observation, _, _, _, _ = state.step(action)
        assert np.array_equal(observation["observation"], info["state"])
        assert np.array_equal(observation["goal"], info["goal_state"])


@pytest.mark.parametrize("task", DETERMINISTIC)
def test_simulate_batch_equals_stepping_the_env(task):
    """The oracle's batched simulator against the env itself, into walls, joint limits and speed clips."""
    env = envs.make(task, obs="state").unwrapped
    rng = np.random.default_rng(0)
    horizon = 20
    corners = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    full_force = np.repeat(corners[:, None], horizon, axis=1)  # into walls and joint limits, at top speed
    constrained = too_fast = False
    for seed in range(3):
        env.reset(seed=seed)
        for action in rng.uniform(-1, 1, (3, 2)):  # a moving start, with a warm start for the solver
            env.step(action)
        start = env.get_sim_state()
        actions = np.concatenate([full_force, rng.uniform(-1.5, 1.5, (4, horizon, 2))])  # beyond 1: clipped
        achieved = env.simulate_batch(start, actions)
        assert achieved.dtype == np.float32 and achieved.shape == (8, horizon, env.achieved_goal().size)
        assert np.array_equal(env.get_sim_state(), start)  # the env itself did not move
        for sequence, simulated in zip(actions, achieved, strict=True):
            env.set_sim_state(start)
            for action, goal in zip(sequence, simulated, strict=True):
                info = env.step(action)[4]
                np.testing.assert_allclose(goal, info["achieved_goal"], rtol=0, atol=1e-5)
                constrained |= bool(np.any(env.data.qfrc_constraint))
                too_fast |= bool(np.abs(env.data.qvel).max() > getattr(env, "max_speed", np.inf))
    assert constrained  # the comparison covered contacts or joint limits
    assert too_fast == task.startswith("pointmaze")  # and the maze's speed clipping
    env.close()


@pytest.mark.parametrize("task", BUILT_IN)
def test_goal_observation_is_the_agent_at_the_goal(task):
    """Starting exactly in the goal configuration: success, zero distance, observation == goal image."""
    env = envs.make(task, obs="pixels")
    _, info = env.reset(seed=4)
    goal_state = info["goal_state"]
    spec = env.unwrapped.sample_task(seeding.np_random(4)[0])
    if task == "reacher":  # the goal configuration's joint angles, from its cos/sin
        spec["start"] = np.arctan2(goal_state[2:4], goal_state[0:2]).tolist()
    elif task == "pusht":  # the block at its goal pose and the pusher where the goal image shows it
        spec["start"], spec["pusher"] = spec["goal"], spec["goal_pusher"]
    else:
        spec["start"] = spec["goal"]
    observation, info = env.reset(options=spec)
    assert info["success"] and info["distance"] < 1e-6
    assert np.array_equal(observation["observation"], observation["goal"])
    assert np.allclose(info["state"], goal_state, atol=1e-6)
    env.close()


@pytest.mark.parametrize(
    ("task", "spec", "distance"),
    [
        # reacher: the stretched arm's fingertip is at (0.21, 0); success below 0.05
        ("reacher", {"start": [0.0, 0.0], "goal": [0.17, 0.0]}, 0.04),
        ("reacher", {"start": [0.0, 0.0], "goal": [0.15, 0.0]}, 0.06),
        ("reacher", {"start": [0.0, 0.0], "goal": [-0.2, 0.0]}, 0.41),
        # pointmaze: gymnasium-robotics' own test, distance <= 0.45
        ("pointmaze-umaze", {"start": [-1.0, 1.0], "goal": [-0.56, 1.0]}, 0.44),
        ("pointmaze-umaze", {"start": [-1.0, 1.0], "goal": [-0.54, 1.0]}, 0.46),
        ("pointmaze-medium", {"start": [-2.5, 2.5], "goal": [2.5, -2.5]}, 50**0.5),
        # wall: within 0.15 of the goal
        ("wall", {"start": [0.5, 0.5], "goal": [0.5, 0.64], "door": [0.0]}, 0.14),
        ("wall", {"start": [0.5, 0.5], "goal": [0.5, 0.66], "door": [0.0]}, 0.16),
    ],
)
def test_success_geometry_known_answers(task, spec, distance):
    env = envs.make(task, obs="state")
    _, info = env.reset(options=spec)
    assert info["distance"] == pytest.approx(distance, abs=1e-6)
    assert info["success"] == (distance < env.unwrapped.success_threshold)
    env.close()


def test_reacher_goal_configuration_reaches_the_target():
    env = envs.make("reacher", obs="state")
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert np.allclose(info["goal_state"][6:8], info["desired_goal"], atol=1e-9)
        assert np.all(info["goal_state"][4:6] == 0)


@pytest.mark.parametrize(
    ("start", "target", "elbow_sign"),
    [
        ([1.57, -2.52], [-0.1615, -0.0539], -1),  # wrapped, the elbow's +1.25 looked 2.51 away; it turns 3.77
        ([1.57, 2.52], [-0.1615, 0.0539], 1),  # the mirror image
        ([0.0, 0.5], [0.1, 0.1], 1),  # no limit in the way: the side the arm is on
    ],
)
def test_reacher_goal_elbow_is_the_side_the_arm_reaches_by_turning_least(start, target, elbow_sign):
    """The elbow is limited to (-3, 3) rad: it cannot wrap past +-pi to the other side."""
    env = envs.make("reacher", obs="state")
    _, info = env.reset(options={"start": start, "goal": target})
    cos_q, sin_q = info["goal_state"][0:2], info["goal_state"][2:4]
    elbow = float(np.arctan2(sin_q[1], cos_q[1]))
    assert np.sign(elbow) == elbow_sign
    assert np.allclose(info["goal_state"][6:8], target, atol=1e-9)
    env.close()


def test_reacher_pixels_show_the_arm_but_not_the_target():
    """Only the goal image says where the target is (as in the state observation)."""
    env = envs.make("reacher", obs="pixels", image_size=32)
    near, _ = env.reset(options={"start": [0.3, 0.5], "goal": [0.1, 0.1]})
    far, _ = env.reset(options={"start": [0.3, 0.5], "goal": [-0.1, -0.05]})
    assert np.array_equal(near["observation"], far["observation"])
    assert not np.array_equal(near["goal"], far["goal"])
    shown = envs.make("reacher", obs="pixels", image_size=32, show_target=True)
    assert not np.array_equal(shown.reset(options={"start": [0.3, 0.5], "goal": [0.1, 0.1]})[0]["observation"],
                              near["observation"])


def test_reacher_drawing_options_leave_the_physics_alone():
    actions = random_actions(envs.make("reacher", obs="state"), 30, seed=0)
    spec = {"start": [0.3, 0.5], "goal": [0.1, 0.1]}
    drawn = [envs.make("reacher", obs="state", **options) for options in
             ({}, {"show_target": True, "link_radius": 0.01, "forearm_rgba": (0.0, 0.4, 0.6, 1.0)})]
    for env in drawn:
        env.reset(options=spec)
    assert all(np.array_equal(a, b) for a, b in zip(*(rollout(env, actions) for env in drawn), strict=True))


def test_wall_door_blocks_and_lets_through():
    """A ball pushed right at the door's height crosses; one pushed right elsewhere stops at the wall."""
    env = envs.make("wall", obs="state")
    wall = env.unwrapped
    stop = -(wall.half_divider + wall.radius)
    for start_y, crosses in ((0.3, True), (-0.5, False)):
        _, info = env.reset(options={"start": [-0.5, start_y], "goal": [0.5, 0.5], "door": [0.3]})
        assert info["state"][4] == pytest.approx(0.3)
        for _ in range(30):
            _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
        if crosses:
            assert info["state"][0] > 0.5
        else:
            assert info["state"][0] == pytest.approx(stop, abs=0.01)


def test_wall_goal_observation_follows_the_door():
    """Same goal position, another door: the goal state and goal image must change with it."""
    env = envs.make("wall", obs="pixels", image_size=32)
    first, info_first = env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.5], "door": [0.0]})
    second, info_second = env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.5], "door": [0.5]})
    assert info_first["goal_state"][4] == 0.0 and info_second["goal_state"][4] == pytest.approx(0.5)
    assert not np.array_equal(first["goal"], second["goal"])


def greedy(env: gym.Env) -> np.ndarray:
    task = env.unwrapped
    return np.clip(5 * (task.desired_goal() - task.achieved_goal()) - 0.5 * task.data.qvel[:2], -1, 1)


def run_waypoints(env: gym.Env, waypoints: list[np.ndarray], reach: float, gain: float) -> bool:
    """Steer through ``waypoints`` then to the goal; True if the episode succeeds before it ends."""
    task, truncated = env.unwrapped, False
    while not truncated:
        while waypoints and np.linalg.norm(task.achieved_goal() - waypoints[0]) < reach:
            waypoints.pop(0)
        target = waypoints[0] if waypoints else task.desired_goal()
        action = np.clip(gain * (target - task.achieved_goal()) - 0.3 * task.data.qvel[:2], -1, 1)
        _, _, _, truncated, info = env.step(action.astype(np.float32))
        if info["success"]:
            return True
    return False


def test_wall_needs_planning():
    """Greedy control never succeeds on sampled episodes; going through the door first always does."""
    env = envs.make("wall", obs="state")
    wall = env.unwrapped
    for seed in range(10):
        env.reset(seed=seed)
        truncated = success = False
        while not truncated:
            _, _, _, truncated, info = env.step(greedy(env).astype(np.float32))
            success |= info["success"]
        assert not success
        env.reset(seed=seed)
        side = np.sign(wall.achieved_goal()[0])
        door = [np.array([side * 0.3, wall.door()]), np.array([-side * 0.3, wall.door()])]
        assert run_waypoints(env, door, reach=0.1, gain=5.0)


@pytest.mark.parametrize("task", ["pointmaze-umaze", "pointmaze-medium"])
def test_maze_episodes_are_solvable_in_time(task):
    """A breadth-first path through the cells, followed by a P controller, succeeds on sampled episodes."""
    env = envs.make(task, obs="state")
    maze = env.unwrapped.maze
    for seed in range(5):
        _, info = env.reset(seed=seed)
        start = tuple(maze.cell_xy_to_rowcol(info["achieved_goal"]))
        goal = tuple(maze.cell_xy_to_rowcol(info["desired_goal"]))
        parent, queue = {start: None}, collections.deque([start])
        while queue:
            cell = queue.popleft()
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                nxt = (cell[0] + dr, cell[1] + dc)
                if maze.maze_map[nxt[0]][nxt[1]] != 1 and nxt not in parent:
                    parent[nxt] = cell
                    queue.append(nxt)
        path, cell = [], goal
        while cell is not None:
            path.append(maze.cell_rowcol_to_xy(np.array(cell)))
            cell = parent[cell]
        assert run_waypoints(env, path[::-1][1:-1], reach=0.3, gain=3.0)


PUSHT = {"start": [0.0, 0.0, 0.0], "pusher": [0.2, 0.2], "goal": [0.05, 0.0, 1.0], "goal_pusher": [-0.2, -0.2]}


@pytest.mark.parametrize(
    ("task", "spec", "message"),
    [
        ("reacher", {"start": [0.0, 0.0], "goal": [0.3, 0.0]}, "outside the arena"),
        ("reacher", {"start": [0.0, 3.1], "goal": [0.1, 0.0]}, "joint range"),
        ("pointmaze-umaze", {"start": [-1.0, 1.0], "goal": [-1.0, 0.0]}, "outside the arena"),
        ("pointmaze-umaze", {"start": [-1.0, 1.0], "goal": [9.0, 9.0]}, "outside the arena"),
        ("pointmaze-medium", {"start": [-2.5, 2.5], "goal": [-0.5, 2.5]}, "goal .* outside the arena"),
        ("pointmaze-medium", {"start": [0.0, 0.0], "goal": [-2.5, 2.5]}, "start .* outside the arena"),
        ("wall", {"start": [-0.5, 0.0], "goal": [0.0, 0.5], "door": [0.0]}, "outside the arena"),
        ("wall", {"start": [-0.5, 0.0], "goal": [1.5, 0.5], "door": [0.0]}, "outside the arena"),
        ("wall", {"start": [-0.5, 0.0], "goal": [0.5, 0.5], "door": [0.95]}, "outside the arena"),
        ("wall", {"start": [-0.5, 0.0], "goal": [0.5, 0.5]}, "missing ['door']"),
        ("reacher", {"start": [0.0, 0.0], "goal": [0.1, 0.0], "speed": 1}, "unknown ['speed']"),
        ("reacher", {"start": [0.0], "goal": [0.1, 0.0]}, "'start' must be 2"),
        ("pusht", {**PUSHT, "start": [0.2, 0.0, 0.0]}, "start pose .* outside the arena"),
        ("pusht", {**PUSHT, "goal": [0.0, -0.2, 0.0]}, "goal pose .* outside the arena"),
        ("pusht", {**PUSHT, "pusher": [0.0, -0.05]}, "pusher .* overlaps the block"),
        ("pusht", {**PUSHT, "goal_pusher": [0.25, 0.0]}, "goal_pusher .* outside the arena"),
        ("pusht", {**PUSHT, "goal": [0.0, 0.0]}, "'goal' must be 3"),
        ("pusht", {k: v for k, v in PUSHT.items() if k != "goal_pusher"}, "missing ['goal_pusher']"),
    ],
)
def test_bad_episode_spec_is_a_clear_error(task, spec, message):
    env = envs.make(task, obs="state")
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        env.reset(options=spec)
    env.close()


def test_unknown_task_and_obs_mode_are_clear_errors():
    with pytest.raises(UserInputError, match=re.escape(f"unknown task 'cartpole'; choose one of: {', '.join(TASK_NAMES)}")):
        envs.make("cartpole")
    with pytest.raises(UserInputError, match="unknown obs mode 'rgb'; choose one of: pixels, state"):
        envs.make("wall", obs="rgb")
    with pytest.raises(UserInputError, match="image_size"):
        envs.make("wall", image_size=0)
    env = envs.make("wall", obs="state")
    env.reset(seed=0)
    with pytest.raises(UserInputError, match="sim state must have shape"):
        env.unwrapped.set_sim_state(np.zeros(3))
    with pytest.raises(UserInputError, match="actions must have shape"):
        env.unwrapped.simulate_batch(env.unwrapped.get_sim_state(), np.zeros((4, 2)))


FORK_SCRIPT = """
import multiprocessing as mp
import envs

env = envs.make("wall", obs="pixels", image_size=16)

def child(queue):
    queue.put(env.reset(seed=0)[0]["observation"].shape)

ctx = mp.get_context("fork")
queue = ctx.Queue()
worker = ctx.Process(target=child, args=(queue,), daemon=True)
worker.start()
worker.join(timeout=60)
print(worker.exitcode, queue.get(timeout=1))
"""


def test_env_made_before_fork_renders_in_the_child():
    """Renderers are created lazily, so a pixel env built in a parent works in a forked worker.

    Run in a fresh interpreter: this test process has GL contexts from other tests already.
    """
    result = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 (16, 16, 3)"


def test_measure_env_speed_reports_a_rate():
    result = measure_env_speed("wall", "state", steps=50, seed=0)
    assert result["steps"] == 50 and result["steps_per_s"] == pytest.approx(50 / result["seconds"])

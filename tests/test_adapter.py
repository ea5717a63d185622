"""The adapter (envs/adapter.py): a hand-written GoalEnv, gymnasium-robotics' PointMaze_Large and OGBench's cube.

Known answers throughout: the toy's motor ranges fix what a rescaled action must be, its goal fixes
the goal observation and image, and the large maze's map fixes the shortest path between two cells.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import DictConfig
from toy_envs import SUCCESS, ToyGoalEnv

import envs
from agents.pairs import held_out_pairs
from envs.adapter import GoalEnvTask
from envs.builder import build
from envs.collection import rollout
from envs.errors import UserInputError
from envs.policies import WaypointFollower
from envs.protocols import EvaluationTasks, Simulator
from envs.task_config import AdapterConfig

TOY = {"factory": "toy_envs:ToyGoalEnv", "convention": "goal_env", "success": {"info": "is_success"},
       "observe": "_get_obs"}


def toy(obs: str = "state", **changes: object) -> GoalEnvTask:
    return GoalEnvTask("toy", {**TOY, **changes}, obs=obs, image_size=16)


def drive_to_goal(env: GoalEnvTask, steps: int) -> list[dict]:
    """A PD controller in the toy's force units, turned into our actions by the adapter's inverse map."""
    infos = []
    for _ in range(steps):
        position, velocity = env.inner.data.qpos, env.inner.data.qvel
        force = 20.0 * (env.desired_goal() - position) - 6.0 * velocity
        infos.append(env.step(env.to_unit_action(force))[4])
    return infos


def test_actions_are_rescaled_to_the_env_bounds() -> None:
    """The toy's motors take [-2, 2] x [-1, 3]: -1 is the low end, 1 the high end, 0 the middle."""
    env = toy()
    env.reset(seed=0)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    for ours, theirs in (([1.0, -1.0], [2.0, -1.0]), ([0.0, 0.5], [0.0, 2.0]), ([3.0, -7.0], [2.0, -1.0])):
        env.step(np.array(ours))
        np.testing.assert_allclose(env.inner.last_action, theirs)  # out-of-box actions are clipped first
    np.testing.assert_allclose(env.to_unit_action(np.array([0.0, 3.0])), [0.0, 1.0])


def test_goal_observation_is_the_agent_at_the_goal_in_both_modes() -> None:
    env = toy()
    observation, info = env.reset(seed=3)
    goal = env.inner.goal.copy()
    np.testing.assert_array_equal(observation["goal"], np.float32([*goal, 0.0, 0.0]))  # at the goal, at rest
    assert not np.allclose(env.inner.data.qpos, goal)  # placing it there was undone
    pixels = toy(obs="pixels")
    frames, _ = pixels.reset(seed=3)
    drawn = ToyGoalEnv()
    drawn.data.qpos[:] = goal
    np.testing.assert_array_equal(frames["goal"], drawn.render())  # the env's own render of the goal
    assert not np.array_equal(frames["observation"], frames["goal"])


def test_success_is_read_from_the_env_or_from_the_distance() -> None:
    env = toy()
    _, info = env.reset(seed=0)
    assert not info["success"] and info["distance"] > SUCCESS
    infos = drive_to_goal(env, 300)
    assert [i["success"] for i in infos] == [i["env_info"]["is_success"] for i in infos]
    assert infos[-1]["success"] and infos[-1]["distance"] < SUCCESS
    quiet = toy(kwargs={"success_on_reset": False})  # like Fetch: no flag until the first step
    assert quiet.reset(seed=0)[1]["success"] is False
    near = toy(success={"distance_below": 5.0})  # every pair of points of the 2 x 2 arena is closer
    assert near.reset(options={"seed": 0})[1]["success"] and near.success_threshold == 5.0
    with pytest.raises(UserInputError, match="all 100 episodes drawn start at success"):
        near.reset(seed=0)


def test_a_restored_state_steps_bit_for_bit_like_the_saved_one() -> None:
    env = toy()
    env.reset(seed=5)
    actions = np.random.default_rng(0).uniform(-1, 1, (12, 2))
    for action in actions[:4]:
        env.step(action)
    saved = env.get_sim_state()
    first = [env.step(action)[0]["observation"] for action in actions[4:]]
    other = toy()
    other.reset(seed=99)  # another episode: restoring resets it to the saved one's spec first
    other.set_sim_state(saved)
    np.testing.assert_array_equal(other.desired_goal(), env.desired_goal())
    second = [other.step(action)[0]["observation"] for action in actions[4:]]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    before = other.get_sim_state()
    simulated = other.simulate_batch(saved, np.stack([actions[4:], actions[4:]]))
    np.testing.assert_array_equal(simulated[1], np.float32([o[:2] for o in first]))
    np.testing.assert_array_equal(other.get_sim_state(), before)  # the env itself did not move
    assert isinstance(other, Simulator) and other.simulator_unavailable is None


def test_a_batch_section_simulates_in_c_exactly_as_the_env_steps_and_a_wrong_one_is_refused() -> None:
    env = toy(batch={"substeps": 1})  # the toy's step: controls = action, one mj_step
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    for action in rng.uniform(-1, 1, (3, 2)):
        env.step(action)
    saved, actions = env.get_sim_state(), rng.uniform(-1, 1, (5, 6, 2))
    in_c = env.simulate_batch(saved, actions)
    np.testing.assert_array_equal(in_c, toy().simulate_batch(saved, actions))  # the same as the env's own steps
    np.testing.assert_array_equal(env.get_sim_state(), saved)
    with pytest.raises(UserInputError, match="env.batch does not reproduce the env's own steps"):
        toy(batch={"substeps": 2})
    with pytest.raises(UserInputError, match="substeps names nowhere.frame_skip, which is not a positive integer"):
        toy(batch={"substeps": "nowhere.frame_skip"})
    with pytest.raises(UserInputError, match="env.batch needs the env's MuJoCo model/data"):
        toy(factory="toy_envs:NoMujocoGoalEnv", batch={"substeps": 1})
    with pytest.raises(UserInputError, match="batch must be a mapping with substeps"):
        toy(batch={"clip_qvel": 5.0})


def test_without_mujoco_there_is_no_oracle_and_the_goal_is_the_goal_vector() -> None:
    env = toy(factory="toy_envs:NoMujocoGoalEnv")
    observation, _ = env.reset(seed=3)
    np.testing.assert_array_equal(observation["goal"], np.float32([*env.inner.goal, 0.0, 0.0]))
    assert "no oracle" in env.simulator_unavailable
    with pytest.raises(UserInputError, match="exposes no MuJoCo"):
        env.get_sim_state()
    with pytest.raises(UserInputError, match="cannot draw the goal"):
        toy(obs="pixels", factory="toy_envs:NoMujocoGoalEnv")
    from scripts.evaluate import check_oracle

    with pytest.raises(UserInputError, match="agent oracle is unavailable: env toy_envs:NoMujocoGoalEnv exposes"):
        check_oracle(DictConfig({"agents": ["jepa", "oracle"]}), env)
    check_oracle(DictConfig({"agents": ["jepa", "random"]}), env)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"factory": "toy_envs:NoGoalEnv"}, "does not follow the goal_env convention (no goal): its observation space is Box"),
        ({"factory": "toy_envs:DiscreteEnv"}, "has a Discrete action space; the adapter needs a continuous Box"),
        ({"factory": "toy_envs:UnboundedEnv"}, "action bounds cannot be rescaled to [-1, 1]: low=[-inf, -inf]"),
        ({"convention": "ogbench"}, "does not follow the ogbench convention: its observation is a dict"),
        ({"sucess": {"info": "is_success"}}, "unknown key(s) sucess"),
        ({"achieved_goal": {"position": "ball"}}, "'position' is not a reader"),
        ({"achieved_goal": {"body": "cube"}}, "has no body 'cube'"),
        ({"observe": "get_state"}, "observe: get_state is not a method of the env"),
    ],
)
def test_what_the_adapter_cannot_use_is_one_line(changes: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)) as err:
        toy(**changes)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"start": [0.0, 0.0], "goal": [0.5, 0.5]}, "needs exactly the keys ['seed']"),
        ({"seed": -1}, "seed must be an integer in [0, 2147483648)"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_a_bad_episode_spec_is_one_line(spec: dict, message: str) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)):
        toy().reset(options=spec)


def test_fetch_under_mujoco_4_is_one_line_naming_the_cause() -> None:
    config = {"id": "FetchReach-v4", "module": "gymnasium_robotics", "convention": "goal_env",
              "success": {"info": "is_success"}}
    try:
        GoalEnvTask("fetch", config, obs="state")
    except UserInputError as err:
        assert "mujoco_utils.set_joint_qpos never recognises a joint type" in str(err) and "\n" not in str(err)
    else:
        pytest.skip("FetchReach-v4 builds with this gymnasium-robotics and mujoco")


def test_pointmaze_large_resets_to_a_pair_and_its_grid_is_the_maze() -> None:
    env = envs.make("pointmaze-large", obs="state")
    task = env.unwrapped
    spec = task.sample_task(np.random.default_rng(0))
    first = env.reset(options=spec)[1]
    env.step(np.ones(2, np.float32))
    again = env.reset(options=spec)[1]
    assert np.array_equal(first["state"], again["state"]) and np.array_equal(first["goal_state"], again["goal_state"])
    grid = task.navigation_grid()
    maze = task.inner.maze
    assert grid.free.shape == (9, 12) and grid.free.sum() == sum(c != 1 for row in maze.maze_map for c in row)
    np.testing.assert_allclose(grid.center((1, 1)), maze.cell_rowcol_to_xy(np.array([1, 1])))
    # row 1 is cut by a wall at column 5: cells (1, 1) -> (1, 6) go down to row 3 and back, 9 cells, not 5
    assert len(grid.path((1, 1), (1, 6))) == 9
    # the oracle's cost-to-go (25 cm cells) lies between the taut string round the wall corners (4, -2),
    # (5, -3), (6, -3): 6.54 m, and the 9 m of the cell-centre path; the straight line is 5 m
    cost = float(task.cost_to_go(grid.center((1, 1)))(grid.center((1, 6))))
    assert 6.54 < cost < 9.0
    policy = WaypointFollower(gain=2.0, damping=2.0, noise=0.3, reach=0.3, patience=30)
    episode = rollout(env, policy, seed=0, index=0)
    assert np.ptp(episode.infos["achieved_goal"], axis=0).max() > 1.0  # the waypoints move the ball along the maze
    # the oracle's simulator in C (env.batch: PointEnv's frame_skip and velocity clip) is the env's own steps
    saved, actions = task.get_sim_state(), np.random.default_rng(3).uniform(-1, 1, (4, 8, 2)) * 3  # fast: clipped
    np.testing.assert_array_equal(task.simulate_batch(saved, actions), task._simulate_in_python(saved, actions))


def test_cube_single_resets_to_each_evaluation_task_and_reports_success() -> None:
    pytest.importorskip("ogbench")
    env = envs.make("cube-single", obs="state")
    task = env.unwrapped
    assert isinstance(task, EvaluationTasks)
    names = task.evaluation_tasks()
    assert names == ["task1_horizontal", "task2_vertical1", "task3_vertical2", "task4_diagonal1", "task5_diagonal2"]
    targets = {1: [0.425, -0.1], 2: [0.5, 0.0], 3: [0.35, 0.0], 4: [0.5, 0.2], 5: [0.5, -0.2]}  # OGBench's goal_xyzs
    for task_id, target in targets.items():
        observation, info = env.reset(options={"seed": 0, "task_id": task_id})
        np.testing.assert_allclose(info["desired_goal"], [*target, 0.02])
        assert not info["success"] and task.evaluation_task_of({"seed": 0, "task_id": task_id}) == names[task_id - 1]
        # the goal observation has the cube at the target (OGBench's state: cube xyz at 19:22, centred, x10)
        np.testing.assert_allclose(observation["goal"][19:22], (np.array([*target, 0.02]) - [0.425, 0, 0]) * 10, atol=1e-5)
    with pytest.raises(UserInputError, match=re.escape("task_id 6 is not one of 1..5 (task1_horizontal,")):
        env.reset(options={"seed": 0, "task_id": 6})
    task.inner.data.qpos[14:17] = info["desired_goal"]  # the cube put on its target: OGBench's own flag says so
    assert env.step(np.zeros(5, np.float32))[4]["success"]
    pairs, _ = held_out_pairs(env, 7, seed=1, collection_seed=0)
    assert [p["task_id"] for p in pairs] == [1, 2, 3, 4, 5, 1, 2]


def test_cube_collection_runs_ogbench_s_oracle_and_moves_the_cube(repo_root) -> None:
    pytest.importorskip("ogbench")
    policy = build({"_target_": "envs.ogbench_oracle.OGBenchMarkovOracle", "min_norm": 0.4, "max_noise": 0.1,
                    "noise_scale": [1.0, 1.0, 1.0, 3.0, 10.0], "p_stack": 0.0})
    env = envs.make("cube-single", obs="state", collection=True, max_episode_steps=120)
    first, again = (rollout(env, policy, seed=0, index=3) for _ in range(2))
    assert np.array_equal(first.actions, again.actions)  # only (seed, index) decide an episode
    cube = first.infos["achieved_goal"]
    assert np.linalg.norm(cube[-1] - cube[0]) > 0.05 and cube[:, 2].max() > 0.05  # picked up and carried
    with pytest.raises(UserInputError, match="needs an OGBench env in mode=data_collection"):
        rollout(envs.make("cube-single", obs="state", max_episode_steps=5), policy, seed=0, index=0)


def test_the_d4rl_import_reads_the_step_length_from_the_registry() -> None:
    from envs.registry import TASKS, task_for_source_env

    assert task_for_source_env("PointMaze_Large-v3") == "pointmaze-large" and TASKS["pointmaze-large"].action_repeat == 5
    assert task_for_source_env("PointMaze_UMaze-v3") == "pointmaze-umaze" and TASKS["pointmaze-umaze"].action_repeat == 5
    assert AdapterConfig.parse("toy", TOY).action_repeat == 1

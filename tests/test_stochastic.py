"""The stochastic wall variants (envs/wall_chance.py): known answers for the draws, the kicks and their
contract (same seed same episode, restores, the oracle's simulator with draws of its own).

The shared per-task contract tests (tests/test_envs.py) run on wall-branching and wall-noisy as on every
registered task, except batch-equals-stepping, which is checked here with the randomness switched off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.errors import UserInputError
from envs.wall_chance import OPEN, REVEAL_DISTANCE, SHUT, UNDRAWN

RIGHT = np.array([1.0, 0.0], np.float32)
# The safe door at 0.3, the risky door at -0.6 (0.9 m apart); the start faces the risky door, 0.45 m from it.
BRANCHING = {"start": [-0.45, -0.6], "goal": [0.5, -0.5], "door": [0.3], "risky_door": [-0.6], "noise_seed": 7}


def branching(p: float, obs: str = "state", **kwargs):
    return envs.make("wall-branching", obs=obs, shut_probability=p, **kwargs)


def push_right(env, steps: int) -> dict:
    info = {}
    for _ in range(steps):
        info = env.step(RIGHT)[4]
    return info


def test_deterministic_wall_is_unchanged():
    """A trajectory recorded on the wall before the variants existed (mujoco 4.0.0), and variant=None."""
    env, same = envs.make("wall", obs="state"), envs.make("wall", obs="state", variant=None)
    assert env.unwrapped.variant is None and env.unwrapped.get_sim_state().size == 51
    env.reset(seed=3)
    same.reset(seed=3)
    for action in np.random.default_rng(0).uniform(-1, 1, (40, 2)).astype(np.float32):
        assert np.array_equal(env.step(action)[0]["observation"], same.step(action)[0]["observation"])
    assert env.unwrapped.data.qpos.tolist() == [-0.5895224015213811, 0.09054491758347945]
    assert env.unwrapped.data.qvel.tolist() == [0.7261313320214965, 0.60562430726745]


@pytest.mark.parametrize(("task", "variant"), [("wall-branching", "branching"), ("wall-noisy", "noisy"),
                                               ("wall-trap", "trap")])
def test_variants_are_named_and_seeded(task, variant):
    """env.unwrapped.variant names it; one reset seed gives one episode (layout, noise seed, draws)."""
    runs = []
    for _ in range(2):
        env = envs.make(task, obs="state")
        assert env.unwrapped.variant == variant
        env.reset(seed=12)
        runs.append([env.step(a)[4]["state"] for a in np.random.default_rng(1).uniform(-1, 1, (30, 2))])
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))


def test_door_is_shut_in_about_p_of_episodes():
    """Over 400 reset seeds, the ball placed by the risky door and stepped once: shut in about p of them."""
    p, n = 0.3, 400
    env = branching(p)
    shut = 0
    for seed in range(n):
        env.reset(seed=seed)
        spec = env.unwrapped.sample_task(np.random.default_rng(seed))
        risky = spec["risky_door"][0]
        side = np.sign(spec["start"][0])
        _, info = env.reset(options={**spec, "start": [side * 0.3, risky]})
        assert info["state"][6] == UNDRAWN
        info = env.step(np.zeros(2, np.float32))[4]
        assert info["state"][6] in (OPEN, SHUT)
        shut += info["state"][6] == SHUT
    assert abs(shut / n - p) < 4 * np.sqrt(p * (1 - p) / n)  # 4 binomial standard errors: 0.092


@pytest.mark.parametrize(("p", "crosses"), [(0.0, True), (1.0, False)])
def test_open_door_lets_the_ball_through_and_a_shut_one_blocks_it(p, crosses):
    env = branching(p)
    _, info = env.reset(options=BRANCHING)
    assert info["state"][4:].tolist() == pytest.approx([0.3, -0.6, UNDRAWN])
    info = push_right(env, 30)
    assert info["state"][6] == (OPEN if crosses else SHUT)
    if crosses:
        assert info["state"][0] > 0.5
    else:  # stopped by the shutter: the divider's face less the ball's radius
        assert info["state"][0] == pytest.approx(-0.15, abs=0.01)


def test_the_draw_waits_for_the_ball_and_a_shut_door_is_drawn_as_wall():
    env, other = branching(1.0, obs="pixels", image_size=32), branching(1.0, obs="pixels", image_size=32)
    env.reset(options={**BRANCHING, "start": [-0.9, 0.8]})
    for _ in range(5):  # at rest, 1.6 m from the risky door
        info = env.step(np.zeros(2, np.float32))[4]
    assert info["state"][6] == UNDRAWN and np.linalg.norm(info["achieved_goal"] - [0, -0.6]) > REVEAL_DISTANCE
    undrawn, info = env.reset(options=BRANCHING)
    after, _, _, _, info = env.step(np.zeros(2, np.float32))  # 0.45 m away, at rest: drawn at once
    assert info["state"][6] == SHUT
    changed = np.any(undrawn["observation"] != after["observation"], axis=-1)
    assert changed[:, 15:17].any() and not changed[:, :14].any()  # the door's columns, not the ball's room
    other.reset(seed=3)
    other.unwrapped.set_sim_state(env.unwrapped.get_sim_state())
    # the goal shows the ball at its goal in the world as drawn: the shut door, restored or not
    goal_changed = np.any(undrawn["goal"] != after["goal"], axis=-1)
    assert goal_changed[:, 15:17].any() and not goal_changed[:, :14].any()
    assert np.array_equal(other.step(np.zeros(2, np.float32))[0]["goal"], after["goal"])


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_restore_before_and_after_the_draw_gives_identical_futures(p):
    env, other = branching(p), branching(p)
    env.reset(options={**BRANCHING, "start": [-0.9, -0.6]})
    push_right(env, 3)
    before = env.unwrapped.get_sim_state()
    first = [env.step(RIGHT)[0]["observation"] for _ in range(12)]
    after = env.unwrapped.get_sim_state()
    assert before[-1] == UNDRAWN and after[-1] != UNDRAWN  # the draw fell between the two states
    then = [env.step(RIGHT)[0]["observation"] for _ in range(8)]
    for saved, expected in ((before, first + then), (after, then)):
        other.reset(seed=99)
        other.unwrapped.set_sim_state(saved)
        assert all(np.array_equal(other.step(RIGHT)[0]["observation"], e) for e in expected)


def _simulate_and_step(env, start: np.ndarray, actions: np.ndarray, seed: int = 0):
    simulated = env.simulate_batch(start, actions, seed=seed)
    stepped = []
    for sequence in actions:
        env.set_sim_state(start)
        stepped.append([env.step(a)[4]["achieved_goal"] for a in sequence])
    return simulated, np.asarray(stepped, np.float32)


@pytest.mark.parametrize(("task", "options"), [
    ("wall-branching", {"shut_probability": 0.0}), ("wall-branching", {"shut_probability": 1.0}),
    ("wall-noisy", {"kick_std": 0.0}), ("wall-noisy", {"kick_probability": 0.0}),
    ("wall-trap", {"shut_probability": 0.0}), ("wall-trap", {"shut_probability": 1.0}),
])
def test_simulate_batch_without_chance_equals_stepping(task, options):
    env = envs.make(task, obs="state", **options).unwrapped
    spec = BRANCHING if task in ("wall-branching", "wall-trap") else {k: v for k, v in BRANCHING.items() if k != "risky_door"}
    env.reset(options={**spec, "start": [-0.9, -0.6]})
    rng = np.random.default_rng(0)
    actions = np.concatenate([np.tile(RIGHT, (4, 25, 1)), rng.uniform(-1, 1, (4, 25, 2))])
    simulated, stepped = _simulate_and_step(env, env.get_sim_state(), actions)
    assert np.array_equal(simulated, stepped)


def test_simulated_doors_are_drawn_per_sequence_in_about_p():
    """200 sequences pushing into the risky door: some cross and some are stopped, about p of them. The
    simulator is another env, never reset, as the oracle's is: each sequence's door is its start state's."""
    p, n = 0.5, 200
    acting, env = branching(p).unwrapped, branching(p).unwrapped
    acting.reset(options={**BRANCHING, "start": [-0.9, -0.6]})
    start, own = acting.get_sim_state(), env.get_sim_state()
    achieved = env.simulate_batch(start, np.tile(RIGHT, (n, 30, 1)))
    stopped = achieved[:, -1, 0] < 0
    assert np.all(achieved[stopped, -1, 0] == pytest.approx(-0.15, abs=0.01))
    assert abs(stopped.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)  # 4 standard errors: 0.14
    assert np.array_equal(env.get_sim_state(), own)  # the simulator's own state is untouched
    assert np.array_equal(env.simulate_batch(start, np.tile(RIGHT, (n, 30, 1))), achieved)  # one call, one outcome
    assert not np.array_equal(env.simulate_batch(start, np.tile(RIGHT, (n, 30, 1)), seed=1), achieved)


def test_kicks_have_the_documented_scale_and_the_simulator_draws_its_own():
    """Against the same env with kicks off, from the same state: the velocity differs by the kick alone (it
    follows the physics, contacts included)."""
    q, sigma, n = 0.2, 1.0, 1500
    env = envs.make("wall-noisy", obs="state").unwrapped  # no time limit: one long episode
    calm = envs.make("wall-noisy", obs="state", kick_std=0.0).unwrapped
    assert (env.kick_probability, env.kick_std) == (q, sigma)
    env.reset(seed=0)
    calm.reset(seed=0)
    kicks = []
    for action in np.random.default_rng(2).uniform(-1, 1, (n, 2)).astype(np.float32):
        calm.set_sim_state(env.get_sim_state())
        kicks.append(env.step(action)[4]["state"][2:4] - calm.step(action)[4]["state"][2:4])
    kicks = np.asarray(kicks)
    hit = np.any(kicks != 0, axis=1)
    assert abs(hit.mean() - q) < 4 * np.sqrt(q * (1 - q) / n)
    assert kicks[hit].std() == pytest.approx(sigma, rel=0.1)
    env.reset(seed=0)
    achieved = env.simulate_batch(env.get_sim_state(), np.zeros((50, 20, 2)))
    assert len(np.unique(achieved[:, -1, 0])) > 40  # one start, one plan, many outcomes


def test_zero_noise_is_the_deterministic_wall():
    spec = {"start": [-0.5, 0.0], "goal": [0.5, 0.5], "door": [-0.4]}
    wall, calm = envs.make("wall", obs="pixels", image_size=32), envs.make("wall-noisy", obs="pixels",
                                                                        image_size=32, kick_std=0.0)
    first, second = wall.reset(options=spec)[0], calm.reset(options={**spec, "noise_seed": 3})[0]
    assert np.array_equal(first["goal"], second["goal"])
    for action in np.random.default_rng(0).uniform(-1, 1, (30, 2)).astype(np.float32):
        assert np.array_equal(wall.step(action)[0]["observation"], calm.step(action)[0]["observation"])
    assert np.array_equal(wall.unwrapped.get_sim_state(), calm.unwrapped.get_sim_state()[:-2])


def steer(wall, route: list[np.ndarray]) -> np.ndarray:
    """A scripted controller: towards the next waypoint of ``route`` (dropped once within 0.1 m), then the goal."""
    while route and np.linalg.norm(wall.achieved_goal() - route[0]) < 0.1:
        route.pop(0)
    target = route[0] if route else wall.desired_goal()
    return np.clip(5 * (target - wall.achieved_goal()) - 0.3 * wall.data.qvel, -1, 1).astype(np.float32)


def test_branching_episodes_are_solvable_in_time():
    """Through the risky door, or once it is seen shut through the safe one: every sampled episode succeeds."""
    env = branching(1.0)
    wall = env.unwrapped
    for seed in range(8):
        env.reset(seed=seed)
        side = np.sign(wall.achieved_goal()[0])
        route, rerouted, truncated, success = None, False, False, False
        while not (truncated or success):
            if route is None or (wall.door_status() == SHUT and not rerouted):
                rerouted = route is not None
                door = wall.door() if rerouted else wall.risky_door()
                route = [np.array([side * 0.3, door]), np.array([-side * 0.3, door])]
            _, _, _, truncated, info = env.step(steer(wall, route))
            success = info["success"]
        assert success and wall.door_status() == SHUT


def trap(p: float, obs: str = "state", **kwargs):
    return envs.make("wall-trap", obs=obs, shut_probability=p, **kwargs)


@pytest.mark.parametrize(("p", "crosses"), [(0.0, True), (1.0, False)])
def test_the_trapdoor_lets_the_ball_through_or_holds_it_for_the_rest_of_the_episode(p, crosses):
    env = trap(p)
    _, info = env.reset(options=BRANCHING)
    for _ in range(3):  # 0.45 m from the door and rolling at it: not drawn yet (branching draws at 0.5 m)
        info = env.step(RIGHT)[4]
    assert info["state"][6] == UNDRAWN
    states = [env.step(RIGHT)[4]["state"] for _ in range(40)]
    drawn = next(t for t, s in enumerate(states) if s[6] != UNDRAWN)
    # drawn as the ball's centre enters the doorway's band: the divider's half-thickness plus its radius
    assert abs(states[drawn][0]) <= 0.15 < abs(states[drawn - 1][0]) if drawn else abs(states[0][0]) <= 0.15
    if crosses:
        assert states[-1][6] == OPEN and states[-1][0] > 0.5
    else:  # held where the trap closed on it, at rest, whatever the actions
        assert all(s[6] == SHUT and np.array_equal(s[:4], states[drawn][:2].tolist() + [0.0, 0.0])
                   for s in states[drawn:])
        assert not push_right(env, 1)["success"]


def test_a_caught_ball_is_shown_in_its_doorway_and_restores_exactly():
    env, other = trap(1.0, obs="pixels", image_size=32), trap(1.0, obs="pixels", image_size=32)
    env.reset(options=BRANCHING)
    frames = [env.step(RIGHT)[0]["observation"] for _ in range(8)]
    assert env.unwrapped.door_status() == SHUT
    env.step(-RIGHT)
    held = env.unwrapped.get_sim_state()
    red = (frames[-1][..., 0] > 100) & (frames[-1][..., 1] < 40) & (frames[-1][..., 2] < 40)  # the caught strip
    assert red[:, 14:18].any() and not red[:, :12].any()
    other.reset(seed=5)
    other.unwrapped.set_sim_state(held)
    for action in np.random.default_rng(3).uniform(-1, 1, (5, 2)).astype(np.float32):
        assert np.array_equal(other.step(action)[0]["observation"], env.step(action)[0]["observation"])


def test_the_oracle_scores_a_simulated_catch_as_lost():
    """200 sequences into the trap: about p of them caught, held still, and priced above every route."""
    p, n = 0.5, 200
    env, simulator = trap(p).unwrapped, trap(p).unwrapped  # the simulator never reset, as the oracle's
    env.reset(options={**BRANCHING, "start": [-0.9, -0.6]})
    rows = simulator.simulate_batch(env.get_sim_state(), np.tile(RIGHT, (n, 30, 1)), scored=True)  # (n, 30, 3)
    caught = rows[:, -1, 2] == SHUT
    assert abs(caught.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert np.all(rows[caught, -1, :2] == rows[caught, -10, :2])  # still
    assert np.all(rows[~caught, -1, 0] > 0.5)  # through
    goal = np.array(BRANCHING["goal"])
    cost = env.cost_to_go(goal)
    final = cost(rows[:, -1])
    safe = env.grid_through([env.door()]).refined(env.path_resolution).cost_to_go(goal)
    assert np.all(final[caught] == 2 * safe.distance[np.isfinite(safe.distance)].max())
    assert np.all(final[~caught] < 0.6)  # passed: the straight way from the east wall
    # before the draw only the safe door counts: from in front of the trap, the way round it
    in_front = np.array([[-0.3, -0.6, UNDRAWN]])
    assert cost(in_front)[0] == pytest.approx(safe(in_front)[0]) and safe(in_front)[0] > 1.5
    assert cost(in_front[:, :2])[0] == cost(in_front)[0]  # no status column: this env's, undrawn


def test_simulated_futures_are_the_same_draws_for_every_candidate():
    """simulate_futures: future k of every candidate meets the same door (common random numbers), the K
    futures of one candidate differ, and a candidate's rows are what simulate_batch gives its own."""
    env, simulator = trap(0.5).unwrapped, trap(0.5).unwrapped
    env.reset(options={**BRANCHING, "start": [-0.9, -0.6]})
    start = env.get_sim_state()
    into = np.tile(RIGHT, (30, 1))
    slower = 0.7 * into
    rows = simulator.simulate_futures(start, np.stack([into, slower, into]), 16, scored=True)  # (3, 16, 30, 3)
    assert rows.shape == (3, 16, 30, 3)
    caught = rows[:, :, -1, 2] == SHUT
    assert np.array_equal(caught[0], caught[1]) and np.array_equal(rows[0], rows[2])
    assert 0 < caught[0].sum() < 16
    with pytest.raises(UserInputError, match="futures must be a positive integer, got 0"):
        simulator.simulate_futures(start, into[None], 0)
    assert simulator.simulate_batch(start, np.stack([into] * 64))[:, -1, 0].std() > 0  # one draw per sequence


def test_the_oracle_scores_each_candidate_on_its_futures_statistic():
    """OracleMPC on a chance simulator: a candidate's cost is the CVaR (worst 2 of 8) of its 8 futures'
    costs, computed here from simulate_futures and the cost-to-go; on a deterministic task, one future."""
    from agents.baselines import OracleMPC
    from agents.cost import Uncertainty
    from agents.energy import final_and_running
    from agents.planners.cem import CEM

    env = trap(0.5)
    env.reset(options={**BRANCHING, "start": [-0.9, -0.6]})
    seen = {}

    class Recorder(CEM):
        def minimize_batch(self, cost, warms, slots):
            seen["cost"] = cost
            return super().minimize_batch(cost, warms, slots)

    uncertainty = Uncertainty(8, "cvar", 0.8)
    oracle = OracleMPC(env, trap(0.5), Recorder(10, 2, samples=8, iterations=1, elites=2, init_std=0.5, min_std=0.05), 1,
                       uncertainty=uncertainty)
    assert oracle.futures == 8
    assert OracleMPC(envs.make("wall", obs="state"), envs.make("wall", obs="state"), CEM(10, 2, 8, 1, 2, 0.5, 0.05), 1,
                     uncertainty=uncertainty).futures == 1
    obs, info = env.unwrapped._observe(), env.unwrapped._info()
    oracle.act(obs, info)
    candidates = torch.stack([torch.tensor(np.tile(RIGHT, (10, 1))), torch.zeros(10, 2)])[None]  # (1, 2, 10, 2)
    got = seen["cost"](candidates)[0]
    rows = oracle.sim.simulate_futures(env.unwrapped.get_sim_state(), candidates[0].numpy(), 8, scored=True)
    per_step = torch.as_tensor(env.unwrapped.cost_to_go(np.array(BRANCHING["goal"]))(rows.reshape(16, 10, 3)),
                               dtype=torch.float32)
    expected = final_and_running(per_step, 1.0, 0.5).reshape(2, 8).topk(2, dim=1).values.mean(dim=1)
    assert torch.allclose(got, expected)


def test_trap_episodes_are_won_by_the_safe_door_and_lost_in_the_trap():
    """With the trap sure to close: a route through the safe door wins every sampled episode in time, one
    through the risky door loses every one."""
    env = trap(1.0)
    wall = env.unwrapped
    for seed in range(6):
        for risky in (False, True):
            env.reset(seed=seed)
            side = np.sign(wall.achieved_goal()[0])
            door = wall.risky_door() if risky else wall.door()
            route = [np.array([side * 0.3, door]), np.array([-side * 0.3, door])]
            truncated = success = False
            while not (truncated or success):
                _, _, _, truncated, info = env.step(steer(wall, route))
                success = info["success"]
            assert success != risky and wall.door_status() == (SHUT if risky else UNDRAWN)


@pytest.mark.parametrize(("options", "message"), [
    ({"variant": "coin"}, "unknown wall variant 'coin'; choose one of: None, branching, noisy, trap"),
    ({"variant": "branching", "shut_probability": 1.5}, r"shut_probability must be a probability in \[0, 1\], got 1.5"),
    ({"variant": "noisy", "kick_probability": -0.1}, r"kick_probability must be a probability in \[0, 1\]"),
    ({"variant": "noisy", "kick_std": -1.0}, "kick_std must be a non-negative number"),
])
def test_bad_variant_options_are_one_line_errors(options, message):
    with pytest.raises(UserInputError, match=message):
        envs.make("wall", obs="state", **options)


@pytest.mark.parametrize(("spec", "message"), [
    ({**BRANCHING, "risky_door": [0.5]}, "wall risky_door 0.500 must lie in"),
    ({**BRANCHING, "risky_door": [0.95]}, "wall risky_door 0.950 must lie in"),
    ({**BRANCHING, "noise_seed": -1}, "'noise_seed' must be a non-negative integer"),
    ({**BRANCHING, "noise_seed": 1.5}, "'noise_seed' must be a non-negative integer"),
    ({k: v for k, v in BRANCHING.items() if k != "risky_door"}, r"missing \['risky_door'\]"),
])
def test_bad_branching_spec_is_a_clear_error(spec, message):
    with pytest.raises(UserInputError, match=message):
        branching(0.5).reset(options=spec)

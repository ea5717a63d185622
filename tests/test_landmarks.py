"""The landmark graph's geodesic distance, on a 2-D world whose "encoder" is the identity.

The world: a point in the unit square with a wall at x = 0.5 from the floor up to y = 0.8 (the gap is
above). Going from (0.1, 0.1) to (0.9, 0.1) takes a detour over the wall: about 0.7 up, 0.8 across,
0.7 down = 2.2, where the straight distance is 0.8.
"""

import copy

import numpy as np
import pytest
import torch

from agents.energy import Energy, GeodesicGoalDistance, GoalDistance
from agents.landmarks import LandmarkGraph, episode_constant_scale, step_whitening
from agents.mpc import MPCAgent
from agents.planners import CEM
from agents.sparse_graph import exact_nearest
from envs.episodes import EpisodeSet

WALL_X, WALL_TOP, STEP = 0.5, 0.8, 0.05
START, GOAL = np.array([0.1, 0.1]), np.array([0.9, 0.1])
SEARCH = {"exact_below": 100_000, "links": 32, "build_breadth": 40, "search_breadth": 64, "rows_per_chunk": 2048}
LANDMARKS = {"stride": 1, "max_landmarks": 4000, "neighbours": 10, "hop_steps": 1, "radius_quantile": 0.9,
             "far_penalty": 10.0, "seed": 0, "block": 2**24, "search": SEARCH}


class IdentityModel(torch.nn.Module):
    """Latent = position; ``rollout`` moves by ``STEP * action`` and stops at the wall."""

    frame_stack = 1
    device = torch.device("cpu")

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z, out = z0, []
        for t in range(actions.shape[1]):
            z = step(z, actions[:, t])
            out.append(z)
        return torch.stack(out, dim=1)


class LeakyModel(IdentityModel):
    """A world model that has not learned the wall: its rollouts pass through it."""

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return (z0[:, None] + STEP * actions.clamp(-1, 1).cumsum(dim=1)).clamp(0, 1)


def step(z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    new = (z + STEP * action.clamp(-1, 1)).clamp(0, 1)
    crosses = ((z[:, :1] - WALL_X) * (new[:, :1] - WALL_X) <= 0) & (new[:, 1:] < WALL_TOP)
    return torch.where(crosses, torch.cat([z[:, :1], new[:, 1:]], dim=1), new)


def u_shaped_episodes(count: int = 12, seed: int = 0) -> EpisodeSet:
    """Noisy walks along the detour (up the left side, over the wall, down the right side), both ways."""
    rng = np.random.default_rng(seed)
    corners = np.array([[0.1, 0.1], [0.1, 0.9], [0.9, 0.9], [0.9, 0.1]])
    episodes = []
    for i in range(count):
        path = corners if i % 2 == 0 else corners[::-1]
        points = np.concatenate([np.linspace(a, b, 16, endpoint=False) for a, b in zip(path[:-1], path[1:], strict=True)])
        points = np.concatenate([points, path[-1:]]) + rng.normal(0, 0.01, (len(points) + 1, 2))
        points = points.astype(np.float32)
        episodes.append({"observations": points, "states": points, "actions": np.zeros((len(points) - 1, 2), np.float32),
                         "goal": points[-1]})
    return EpisodeSet.from_episodes(episodes, metadata={})


def room_walks(count: int = 40, length: int = 40, seed: int = 1) -> EpisodeSet:
    """:func:`u_shaped_episodes` plus random walks that fill both rooms up to 0.1 from the wall (a ball's
    radius: the wall is thick, as the wall task's divider, so no hop joins its two faces)."""
    rng = np.random.default_rng(seed)
    detours = u_shaped_episodes()
    episodes = [detours.episode(i) for i in range(detours.num_episodes)]
    for i in range(count):
        z = torch.tensor([[0.3 if i % 2 else 0.7, rng.uniform(0.1, 0.7)]], dtype=torch.float32)
        points = [z]
        for _ in range(length):
            moved = step(z, torch.as_tensor(rng.uniform(-1, 1, (1, 2)), dtype=torch.float32))
            z = z if abs(float(moved[0, 0]) - WALL_X) < 0.1 else moved
            points.append(z)
        observations = torch.cat(points).numpy()
        episodes.append({"observations": observations, "states": observations,
                         "actions": np.zeros((length, 2), np.float32), "goal": observations[-1]})
    return EpisodeSet.from_episodes(episodes, metadata={})


@pytest.fixture(scope="module")
def graph() -> LandmarkGraph:
    return LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(), **LANDMARKS)


def test_geodesic_distance_goes_round_the_wall(graph: LandmarkGraph) -> None:
    goal = torch.tensor(GOAL, dtype=torch.float32)
    to_goal = graph.distances_to(goal)
    at_start = float(graph.cost_to_go(torch.tensor(START[None], dtype=torch.float32), goal, to_goal)[0])
    assert at_start == pytest.approx(2.2, abs=0.25)  # not the straight 0.8
    # next to the goal the direct local hop wins: the distance is the straight one
    near = torch.tensor([[0.9, 0.15]], dtype=torch.float32)
    assert float(graph.cost_to_go(near, goal, to_goal)[0]) == pytest.approx(0.05, abs=1e-4)
    # along the detour the distance falls monotonically towards the goal
    route = torch.tensor([[0.1, 0.1], [0.1, 0.5], [0.1, 0.9], [0.5, 0.9], [0.9, 0.9], [0.9, 0.5]])
    along = graph.cost_to_go(route, goal, to_goal)
    assert torch.all(along[1:] < along[:-1])


def test_graph_edges_are_symmetric_and_local(graph: LandmarkGraph) -> None:
    forward = set(zip(graph.sources.tolist(), graph.targets.tolist(), strict=True))
    assert forward == {(j, i) for i, j in forward}
    # no edge crosses the wall below its top
    a, b = graph.nodes[graph.sources], graph.nodes[graph.targets]
    crossing = ((a[:, 0] - WALL_X) * (b[:, 0] - WALL_X) < 0) & (torch.minimum(a[:, 1], b[:, 1]) < WALL_TOP - 0.1)
    assert not crossing.any()
    # an edge costs at least its straight length (recorded paths may wind), and is local
    assert torch.all(graph.weights >= (a - b).norm(dim=-1) - 1e-4)
    assert graph.weights.max() < 0.3


def run_mpc(energy: Energy, steps: int = 80, model: IdentityModel | None = None, start: np.ndarray = START,
            data: EpisodeSet | None = None) -> float:
    """Final distance to the goal after MPC from ``start``; the true world always has the wall."""
    model = model or IdentityModel()
    if energy.needs_data:
        energy.fit(model, data or u_shaped_episodes())
    planner = CEM(8, 2, samples=128, iterations=3, elites=16, init_std=0.6, min_std=0.05, seed=0)
    agent = MPCAgent(model, energy, planner, replan_every=1)
    agent.reset(seed=0)
    z = torch.tensor(start[None], dtype=torch.float32)
    for _ in range(steps):
        obs = {"observation": z[0].numpy(), "goal": GOAL.astype(np.float32)}
        z = step(z, torch.as_tensor(agent.act(obs, {}))[None])
    return float((z[0] - torch.as_tensor(GOAL)).norm())


def test_mpc_with_geodesic_energy_goes_round_where_straight_energy_stalls() -> None:
    straight = Energy({"goal": GoalDistance(1.0, 0.5, "l2")})
    geodesic = Energy({"goal": GeodesicGoalDistance(1.0, 0.5, LANDMARKS)})
    assert run_mpc(straight) > 0.3  # stuck against the wall, the greedy failure
    assert run_mpc(geodesic) < 0.05


def test_waypoint_lies_on_the_detour_at_the_lookahead(graph: LandmarkGraph) -> None:
    goal = torch.tensor(GOAL, dtype=torch.float32)
    to_goal = graph.distances_to(goal)
    hops = graph.next_hops(goal, to_goal)
    start = torch.tensor(START, dtype=torch.float32)
    # 0.5 along the detour is up the left side, not towards the goal across the wall
    up = graph.waypoint(start, goal, to_goal, hops, lookahead=0.5)
    assert float(up[0]) == pytest.approx(0.1, abs=0.05) and float(up[1]) == pytest.approx(0.6, abs=0.1)
    # 1.2 along it is on top, past the left corner (0.7 up, then 0.5 across)
    over = graph.waypoint(start, goal, to_goal, hops, lookahead=1.2)
    assert float(over[1]) == pytest.approx(0.9, abs=0.05) and float(over[0]) == pytest.approx(0.6, abs=0.1)
    # when the path reaches the goal within the lookahead, the goal itself is the waypoint
    down = torch.tensor([0.9, 0.5])
    assert torch.equal(graph.waypoint(down, goal, to_goal, hops, lookahead=0.5), goal)


def test_subgoal_mode_goes_round_a_wall_the_model_does_not_know() -> None:
    """Scored by cost-to-go, a model that walks through the wall makes the far side look close, and
    MPC pushes into the wall; aimed at the graph's waypoint, it only has to move along the detour."""
    leaky = LeakyModel()
    geodesic = Energy({"goal": GeodesicGoalDistance(1.0, 0.5, LANDMARKS)})
    subgoal = Energy({"goal": GeodesicGoalDistance(1.0, 0.5, LANDMARKS, subgoal_steps=6)})
    pressed = np.array([0.4, 0.3])  # against the wall, where the leaky model sees the other room
    assert run_mpc(geodesic, model=leaky, start=pressed, data=room_walks()) > 0.3
    assert run_mpc(subgoal, model=leaky, start=pressed, data=room_walks()) < 0.05


def test_subgoal_mode_needs_a_waypoint_before_scoring() -> None:
    term = GeodesicGoalDistance(1.0, 0.0, LANDMARKS, subgoal_steps=6)
    term.fit(IdentityModel(), u_shaped_episodes())
    with pytest.raises(RuntimeError, match="prepare"):
        term(torch.zeros(1, 2, 2), torch.zeros(2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="subgoal_steps"):
        GeodesicGoalDistance(1.0, 0.0, LANDMARKS, subgoal_steps=0)


def test_nearest_neighbours_block_by_block_match_the_whole_matrix() -> None:
    nodes = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    distances = torch.cdist(nodes, nodes).fill_diagonal_(float("inf"))
    expected = distances.topk(4, largest=False).indices
    for rows in (7, 50, 64):  # blocks that do not divide the rows, one block, a block larger than all
        assert torch.equal(exact_nearest(nodes, 4, rows_per_chunk=rows), expected)


def test_step_whitening_makes_a_fixed_direction_dear() -> None:
    """Latents (x, c): x moves within an episode, c is a per-episode constant (like a door's height)."""
    rng = np.random.default_rng(0)
    latents = [torch.tensor(np.c_[np.cumsum(rng.normal(0, 0.1, 50)), np.full(50, rng.uniform(-1, 1))],
                            dtype=torch.float32) for _ in range(20)]
    metric = step_whitening(latents, floor=0.01)
    moved, fixed = (metric @ torch.tensor([1.0, 0.0])).norm(), (metric @ torch.tensor([0.0, 1.0])).norm()
    # eigenvalues (v, 0): the fixed one is floored at 0.01 * v / 2, so it weighs sqrt(2 / 0.01) times more
    assert float(fixed / moved) == pytest.approx(np.sqrt(2 / 0.01), rel=0.01)


def test_a_direction_constant_in_each_episode_but_not_across_them_is_made_dearer_and_only_it() -> None:
    """Episodes: a ball moving along x (each covers most of its range), a door height y fixed per episode."""
    rng = np.random.default_rng(0)
    episodes = []
    for door in rng.uniform(-1.0, 1.0, 40):
        x = np.cumsum(rng.normal(0.0, 0.1, 60))
        episodes.append(torch.tensor(np.stack([x - x.mean(), np.full(60, door) + rng.normal(0.0, 1e-3, 60)], 1),
                                     dtype=torch.float32))
    scale = episode_constant_scale(episodes, factor=10.0)
    door_step, ball_step = torch.tensor([0.0, 0.1]), torch.tensor([0.1, 0.0])
    assert float((door_step @ scale.T).norm()) == pytest.approx(1.0, rel=1e-3)  # 10 x 0.1
    assert float((ball_step @ scale.T).norm()) == pytest.approx(0.1, rel=1e-3)  # the ball as before
    moving = [torch.stack([e[:, 0], e[:, 0] * 0.5 + torch.randn(60) * 0.05], 1) for e in episodes]  # no constant
    assert episode_constant_scale(moving, factor=10.0) is None  # nothing to make dearer: the graph as without


def test_geodesic_term_must_be_fitted() -> None:
    term = GeodesicGoalDistance(1.0, 0.0, LANDMARKS)
    with pytest.raises(RuntimeError, match="fit"):
        term(torch.zeros(1, 2, 2), torch.zeros(2), torch.zeros(1, 2, 2))


def test_episodes_side_by_side_plan_with_their_own_waypoints_on_one_graph() -> None:
    """The JEPA agent plans each env's episode with a copy of its energy: the copies share the fitted
    graph (built once) but each keeps its own goal and waypoint, so two episodes planned together aim
    where each alone would."""
    energy = Energy({"goal": GeodesicGoalDistance(1.0, 0.5, LANDMARKS, subgoal_steps=6)})
    energy.fit(IdentityModel(), u_shaped_episodes())
    first, second = copy.copy(energy), copy.copy(energy)
    assert first.terms["goal"] is not second.terms["goal"]
    assert first.terms["goal"].graph is energy.terms["goal"].graph
    goal, other_goal = torch.as_tensor(GOAL, dtype=torch.float32), torch.tensor([0.4, 0.1])  # this side of the wall
    start = torch.as_tensor(START, dtype=torch.float32)
    first.prepare(start, goal)
    second.prepare(start, other_goal)
    alone = copy.copy(energy)
    alone.prepare(start, goal)
    assert torch.equal(first.terms["goal"]._waypoint, alone.terms["goal"]._waypoint)
    assert not torch.equal(first.terms["goal"]._waypoint, second.terms["goal"]._waypoint)


class MovingFramesModel(IdentityModel):
    """Two stacked frames of a 2-D position -> ``[newest, speed_scale * (newest - older)]``: a latent
    that, like a pixel encoder's, tells a landmark passing at speed from one at rest."""

    frame_stack = 2
    speed_scale = 10.0

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        older, newest = obs[..., :2], obs[..., 2:]
        return torch.cat([newest, self.speed_scale * (newest - older)], dim=-1)


def test_a_goal_at_rest_joins_the_graph_at_the_landmark_of_its_place_not_at_one_of_its_speed() -> None:
    episodes = u_shaped_episodes()
    graph = LandmarkGraph.from_episodes(MovingFramesModel(), episodes, **LANDMARKS, goal_at_rest=True)
    positions = torch.as_tensor(episodes.observations)
    assert torch.allclose(graph.still_nodes, torch.cat([positions, torch.zeros_like(positions)], dim=1))
    # the goal: a point halfway along the detour (no episode rests there), held still, as
    # FrameHistory.still encodes a goal image
    goal_place = positions[episodes.obs_starts[0] + 24]
    goal = MovingFramesModel().encode(torch.cat([goal_place, goal_place])[None])[0]
    hops = torch.as_tensor(graph._goal_hops(goal))
    assert float(hops.min()) == pytest.approx(0.0, abs=1e-6)  # the landmark of that very place, held still
    assert float((positions[int(hops.argmin())] - goal_place).norm()) < 1e-6
    moving = graph._distances_from(goal @ graph.metric.T)  # the landmarks as they pass: each at its speed
    assert float(moving.min()) > 0.2  # 10 x a step of about 0.05 (less the walk's noise): none at the place


def test_with_one_frame_per_latent_or_goal_at_rest_off_the_goal_is_compared_with_the_landmarks_themselves(
        graph: LandmarkGraph) -> None:
    assert graph.still_nodes is graph.nodes
    one_frame = LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(), **LANDMARKS, goal_at_rest=True)
    assert one_frame.still_nodes is one_frame.nodes  # one frame per latent: a frame held still is itself
    off = LandmarkGraph.from_episodes(MovingFramesModel(), u_shaped_episodes(), **LANDMARKS)
    assert off.still_nodes is off.nodes

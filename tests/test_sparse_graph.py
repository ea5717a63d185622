"""The landmark graph's sparse storage, goal distances and neighbour search, on graphs small enough to
work out by hand, and against the batched Bellman-Ford and exact search they replaced."""

import numpy as np
import pytest
import torch

from agents.landmarks import LandmarkGraph
from agents.sparse_graph import (
    GoalPaths,
    NeighbourSearch,
    _drop_self,
    approximate_nearest,
    directed_edges,
    exact_nearest,
    nearest,
    symmetric_edges,
)
from tests.test_landmarks import GOAL, LANDMARKS, SEARCH, IdentityModel, room_walks, u_shaped_episodes

FAR = 100.0  # a goal hop dearer than any path in these graphs


def bellman_ford(sources: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, hops: torch.Tensor) -> torch.Tensor:
    """The relaxation the Dijkstra run replaced: every edge at once, until nothing changes."""
    dist = hops.clone()
    for _ in range(len(hops)):
        relaxed = dist.scatter_reduce(0, sources, dist[targets] + weights, reduce="amin")
        if torch.equal(relaxed, dist):
            break
        dist = relaxed
    return dist


def ring(weights: list[float]) -> GoalPaths:
    """Landmarks 0..n-1 in a ring: edge i -- i+1 of weight ``weights[i]``."""
    count = len(weights)
    sources = np.arange(count)
    return GoalPaths(symmetric_edges(sources, (sources + 1) % count, np.array(weights, np.float32), count))


def test_ring_distances_go_the_shorter_way_round() -> None:
    # ring of 6: 0 -1- 1 -2- 2 -3- 3 -1- 4 -1- 5 -1- 0; the goal is 0.5 from landmark 0 and far from the rest
    paths = ring([1.0, 2.0, 3.0, 1.0, 1.0, 1.0])
    hops = np.array([0.5] + [FAR] * 5, np.float32)
    to_goal = paths.distances(hops)
    # 0.5 to leave from 0, then: 2 is 1 + 2 one way (1 + 1 + 1 + 3 the other), 3 is 1 + 1 + 1 the other way
    assert to_goal.tolist() == [0.5, 1.5, 3.5, 3.5, 2.5, 1.5]
    successor, step = paths.next_hops(hops, to_goal)
    # 0 hops straight to the goal (its cheapest edge, to 1 on a tie with 5, is still its step)
    assert successor.tolist() == [-1, 0, 1, 4, 5, 0] and step.tolist() == [1.0, 1.0, 2.0, 1.0, 1.0, 1.0]


def test_an_exact_tie_goes_to_the_lower_landmark() -> None:
    paths = ring([1.0, 1.0, 1.0, 1.0])  # landmark 2 is 2 from landmark 0 either way, via 1 or via 3
    hops = np.array([0.0, FAR, FAR, FAR], np.float32)
    successor, _ = paths.next_hops(hops, paths.distances(hops))
    assert successor.tolist() == [-1, 0, 1, 0]


def test_the_goal_joins_every_landmark_and_zero_edges_count() -> None:
    # 0 -0- 1 -1- 2, and 3 with no edge: its only way is its own (dear) hop
    paths = GoalPaths(symmetric_edges(np.array([0, 1]), np.array([1, 2]), np.array([0.0, 1.0], np.float32), 4))
    hops = np.array([FAR, 0.25, 7.0, 40.0], np.float32)
    to_goal = paths.distances(hops)
    assert to_goal.tolist() == [0.25, 0.25, 1.25, 40.0]
    successor, step = paths.next_hops(hops, to_goal)
    assert successor.tolist() == [1, -1, 1, -1] and step.tolist() == [0.0, 0.0, 1.0, 0.0]


def test_symmetric_edges_keep_the_cheapest_duplicate_both_ways() -> None:
    edges = symmetric_edges(np.array([2, 0, 1, 0]), np.array([0, 2, 2, 1]), np.array([3.0, 1.0, 0.0, 5.0], np.float32), 3)
    assert edges.toarray().tolist() == [[0.0, 5.0, 1.0], [5.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert edges.nnz == 6  # the zero edge 1 -- 2 is stored, not dropped
    assert edges.has_sorted_indices


def test_one_way_edges_lead_to_the_goal_only_forwards() -> None:
    # 0 -> 1 -> 2 (weights 1, 2), and 1 -> 3 (weight 0.5): 3 is a trap, entered from 1 and left by no edge.
    # The goal is 0.25 from 2 and far from the rest. Undirected, 3 would reach it back through 1 (0.5 + 2 + 0.25).
    edges = directed_edges(np.array([0, 1, 1]), np.array([1, 2, 3]), np.array([1.0, 2.0, 0.5], np.float32), 4)
    assert edges.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 2, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]]
    hops = np.array([FAR, FAR, 0.25, FAR], np.float32)
    paths = GoalPaths(edges, directed=True)
    to_goal = paths.distances(hops)
    assert to_goal.tolist() == [3.25, 2.25, 0.25, FAR]
    successor, _ = paths.next_hops(hops, to_goal)
    assert successor.tolist() == [1, 2, -1, -1]
    both_ways = GoalPaths(symmetric_edges(np.array([0, 1, 1]), np.array([1, 2, 3]), np.array([1.0, 2.0, 0.5], np.float32), 4))
    assert both_ways.distances(hops).tolist() == [3.25, 2.25, 0.25, 2.75]


def test_a_task_that_is_not_reversible_gets_one_way_recorded_transitions() -> None:
    """One recorded jump far beyond the hop radius (a trap closing): with ``reversible=False`` the graph
    holds it one way, so the landmarks beyond it reach a goal before it only by their own dear hop;
    nearness still joins landmarks both ways. The energy reads the fact from the data's task."""
    from agents.energy import GeodesicGoalDistance
    from envs.episodes import EpisodeSet

    walk = np.stack([np.linspace(0.1, 0.9, 17), np.full(17, 0.1)], axis=1)
    caught = np.concatenate([walk[:8], np.tile([[0.45, 5.0]], (4, 1))]).astype(np.float32)  # a jump to y = 5, held
    episodes = [{"observations": z.astype(np.float32), "states": z.astype(np.float32),
                 "actions": np.zeros((len(z) - 1, 2), np.float32), "goal": z[-1]} for z in (walk, walk[::-1], caught)]
    data = EpisodeSet.from_episodes(episodes, metadata={"task": "wall-trap"})
    goal = torch.tensor([0.1, 0.1])
    costs = {}
    for reversible in (True, False):
        graph = LandmarkGraph.from_episodes(IdentityModel(), data, **LANDMARKS, reversible=reversible)
        assert graph.directed == (not reversible)
        to_goal = graph.distances_to(goal)
        costs[reversible] = float(graph.cost_to_go(torch.tensor([[0.45, 5.0]]), goal, to_goal)[0])
        assert float(graph.cost_to_go(torch.tensor([[0.9, 0.1]]), goal, to_goal)[0]) == pytest.approx(0.8, abs=1e-4)
    assert costs[True] == pytest.approx(4.9 + 0.35, abs=0.01)  # back down the jump, then along the walk
    direct = float(np.hypot(0.35, 4.9))
    assert costs[False] == pytest.approx(direct + LANDMARKS["far_penalty"] * (direct - graph.radius), rel=1e-4)
    energy = GeodesicGoalDistance(final_weight=1.0, running_weight=0.0, landmarks=LANDMARKS)
    energy.fit(IdentityModel(), data)
    assert energy.graph.directed
    energy.fit(IdentityModel(), EpisodeSet.from_episodes(episodes, metadata={"task": "wall"}))
    assert not energy.graph.directed


@pytest.mark.parametrize("episodes", [u_shaped_episodes, room_walks])
def test_dijkstra_equals_bellman_ford_on_the_wall_world(episodes) -> None:
    graph = LandmarkGraph.from_episodes(IdentityModel(), episodes(), **LANDMARKS)
    for goal in (torch.tensor(GOAL, dtype=torch.float32), torch.tensor([0.3, 0.4]), torch.tensor([2.0, -1.0])):
        hops = graph.local((graph.nodes - goal).norm(dim=-1))
        expected = bellman_ford(graph.sources, graph.targets, graph.weights, hops)
        torch.testing.assert_close(graph.distances_to(goal), expected, rtol=1e-6, atol=0)


def test_cost_to_go_block_by_block_matches_one_block() -> None:
    whole = LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(), **LANDMARKS)
    goal = torch.tensor(GOAL, dtype=torch.float32)
    to_goal = whole.distances_to(goal)
    z = torch.rand(16, 3, 2, generator=torch.Generator().manual_seed(0)).requires_grad_()
    expected = whole.cost_to_go(z, goal, to_goal)
    (expected_grad,) = torch.autograd.grad(expected.sum(), z)
    blocked = LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(), **{**LANDMARKS, "block": 48 * 50})
    got = blocked.cost_to_go(z, goal, to_goal)  # 48 latents x 50 landmarks a block: 12 blocks
    (grad,) = torch.autograd.grad(got.sum(), z)
    # the gradient path measures the chosen hop directly, where one block expands |z - n|^2 (rounding ~1e-5)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-3)
    with torch.no_grad():
        assert torch.equal(blocked.cost_to_go(z, goal, to_goal), whole.cost_to_go(z, goal, to_goal))


def test_the_index_finds_the_exact_neighbours_of_a_small_set() -> None:
    # 2000 points on a 3-d patch of 64-d space, like latents of a few moving parts
    rng = np.random.default_rng(0)
    points = torch.tensor(rng.uniform(0, 1, (2000, 3)) @ rng.normal(0, 1, (3, 64)), dtype=torch.float32)
    search = NeighbourSearch(**SEARCH)
    exact = exact_nearest(points, 10, search.rows_per_chunk)
    found = approximate_nearest(points, 10, search)
    assert [set(row) for row in found.tolist()] == [set(row) for row in exact.tolist()]  # recall 1.0
    assert torch.equal(nearest(points, 10, search), exact)  # below the threshold: the exact search itself
    assert torch.equal(nearest(points, 10, NeighbourSearch(**{**SEARCH, "exact_below": 1})), found)


def test_a_graph_through_the_index_equals_the_exact_one_when_it_finds_every_neighbour() -> None:
    exact = LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(), **LANDMARKS)
    indexed = LandmarkGraph.from_episodes(IdentityModel(), u_shaped_episodes(),
                                          **{**LANDMARKS, "search": {**SEARCH, "exact_below": 1}})
    assert (indexed.edges != exact.edges).nnz == 0
    goal = torch.tensor(GOAL, dtype=torch.float32)
    assert torch.equal(indexed.distances_to(goal), exact.distances_to(goal))


def test_dropping_self_from_search_results() -> None:
    found = np.array([[0, 4, 5], [2, 1, 3], [7, 8, 9]])  # self first; self second (an equal latent); self missing
    assert _drop_self(found, 2).tolist() == [[4, 5], [2, 3], [7, 8]]


def test_search_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="links"):
        NeighbourSearch(**{**SEARCH, "links": 0})
    with pytest.raises(ValueError, match="search_breadth"):
        approximate_nearest(torch.zeros(20, 2), 10, NeighbourSearch(**{**SEARCH, "search_breadth": 4}))

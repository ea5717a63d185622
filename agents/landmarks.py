"""A graph over encoded dataset observations ("landmarks") that measures latent distance around walls.

A straight latent distance to the goal is a poor energy in a maze: every short plan that goes around
a wall first moves away from the goal, so greedy MPC stalls behind it. The dataset already shows
which latents follow one another. Joining landmarks along recorded transitions, and where two
landmarks are closer than one short hop, gives a graph whose shortest paths run along the routes
the data took (search on the replay buffer, Eysenbach et al. 2019, done here in the JEPA latent
space). The distance of any latent to the goal is then: a short local hop to a landmark, plus the
landmark's shortest-path distance to the goal. Transitions are taken as reversible (every edge
goes both ways), which holds for the point masses and arms of our tasks; for a task that says its
transitions are not (``envs.registry.TaskEntry.reversible``: the trapdoor of ``wall-trap``), a recorded
transition is one-way, and only nearness joins two landmarks both ways.

Every dataset observation may be a landmark (a million for an OGBench-sized dataset), so nothing
here holds an ``(M, M)`` array: the nearest landmarks come from an index on large graphs, the edges
are a sparse matrix, a goal's distances one Dijkstra run (all three in :mod:`agents.sparse_graph`),
and distances to all landmarks are taken a block at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse import csr_array

from agents.sparse_graph import GoalPaths, NeighbourSearch, directed_edges, nearest, symmetric_edges
from envs.episodes import EpisodeSet
from worldmodel.diagnostics import encode_episodes, encode_still


@dataclass
class LandmarkGraph:
    """Landmarks ``(M, D)`` with undirected weighted edges (a symmetric sparse matrix: each edge is
    stored in both directions, and no ``(M, M)`` array is ever built).

    ``radius`` is the local reach: a latent counts as next to a landmark within this latent distance;
    further hops cost ``far_penalty`` times their excess, so that shortcuts through walls are dear.
    Landmark distances are taken ``block`` floats at a time (a block of latents x landmarks, or of
    landmarks x D), so that memory stays flat however many landmarks there are.
    """

    metric: torch.Tensor  # (D, D): latents are mapped by it before any distance is taken
    nodes: torch.Tensor  # (M, D), already mapped
    edges: csr_array  # (M, M) float32 weights, row i: where landmark i can go (agents/sparse_graph.py)
    radius: float
    far_penalty: float
    block: int
    # (M, D), mapped: each landmark's newest frame held still, as a goal is encoded; what the goal's hop
    # onto the graph compares it with (None: the nodes themselves, as where one frame is one latent)
    still_nodes: torch.Tensor | None = None
    directed: bool = False  # edges one-way (not symmetric): recorded transitions of a task that is not reversible
    node_sq_norms: torch.Tensor = field(init=False)  # (M,) for the distance expansion in cost_to_go
    paths: GoalPaths = field(init=False)
    _last_hops: tuple[torch.Tensor, np.ndarray] | None = field(init=False, default=None)  # (goal, its hops)

    def __post_init__(self) -> None:
        if self.still_nodes is None:
            self.still_nodes = self.nodes
        self.node_sq_norms = self.nodes.pow(2).sum(1)
        self.paths = GoalPaths(self.edges, self.directed)

    @property
    def sources(self) -> torch.Tensor:
        """``(E,)`` int64: each stored edge's first landmark, in (source, target) order."""
        return torch.from_numpy(self.paths.rows).to(self.nodes.device)

    @property
    def targets(self) -> torch.Tensor:
        """``(E,)`` int64: each stored edge's second landmark."""
        return torch.from_numpy(self.edges.indices.astype(np.int64)).to(self.nodes.device)

    @property
    def weights(self) -> torch.Tensor:
        """``(E,)`` float32: each stored edge's length."""
        return torch.from_numpy(self.edges.data).to(self.nodes.device)

    @classmethod
    @torch.no_grad()
    def from_episodes(
        cls,
        model: torch.nn.Module,
        episodes: EpisodeSet,
        stride: int,
        max_landmarks: int,
        neighbours: int,
        hop_steps: int,
        radius_quantile: float,
        far_penalty: float,
        seed: int,
        search: Mapping[str, int],
        block: int,
        whitening_floor: float | None = None,
        constant_factor: float | None = None,
        goal_at_rest: bool = False,
        reversible: bool = True,
        batch_size: int = 1024,
    ) -> LandmarkGraph:
        """Encode every ``stride``-th observation of (up to ``max_landmarks``) dataset frames.

        Edges: consecutive landmarks of one episode, and each landmark's ``neighbours`` nearest
        landmarks that lie within the radius. The radius is the ``radius_quantile`` of the latent
        distance the data covers in ``hop_steps`` steps: what one short plan surely bridges.
        ``search`` (:class:`~agents.sparse_graph.NeighbourSearch`) says how the nearest are found: exactly
        on small graphs, through an HNSW index on large ones.

        With ``whitening_floor``, distances are measured in units of the data's one-step latent
        motion (:func:`step_whitening`): a direction the agent never moves along within an episode
        (a door's height, a target's place) becomes dear to cross, so no path changes the world.
        ``constant_factor`` makes such directions, found in the data (:func:`episode_constant_scale`),
        that many times dearer again for the graph's edges only (the floor alone leaves a door's height
        about as cheap to change as the ball's place, and paths then cross the wall through other
        episodes' doors); entering the graph and aiming at a waypoint measure as before.

        With ``goal_at_rest`` and stacked frames, the goal's hop onto the graph compares it with each
        landmark's newest frame held still (``still_nodes``), as the goal itself is encoded.

        ``reversible=False`` (a fact of the task): consecutive landmarks are joined one way, as
        recorded, and near neighbours both ways; a transition no nearness undoes (a trap closing on
        the ball) then has no way back, and the landmarks beyond it reach the goal only if the data does.
        """
        if stride < 1 or hop_steps < 1 or max_landmarks < 2 or block < 1:
            raise ValueError("stride, hop_steps, block must be >= 1 and max_landmarks >= 2")
        search = NeighbourSearch(**search)
        z_all, _ = encode_episodes(model, episodes, np.arange(episodes.num_episodes), batch_size)
        latents = list(z_all.split((episodes.episode_lengths + 1).tolist()))  # one tensor per episode
        dim = latents[0].shape[-1]
        metric = torch.eye(dim) if whitening_floor is None else step_whitening(latents, whitening_floor)
        latents = [z @ metric.T for z in latents]
        edge_map = None if constant_factor is None else episode_constant_scale(latents, constant_factor)
        radius = _hop_radius(latents, hop_steps, radius_quantile)

        # landmarks: every stride-th latent (an even subsample if there are too many), each with its
        # episode and its arc length: the latent distance travelled since the episode began
        index = [torch.arange(0, len(z), stride) for z in latents]
        nodes = torch.cat([z[i] for z, i in zip(latents, index, strict=True)])
        episode = torch.cat([torch.full((len(i),), e) for e, i in enumerate(index)])
        arc = torch.cat([_arc_length(z)[i] for z, i in zip(latents, index, strict=True)])
        keep = torch.arange(len(nodes))
        if len(nodes) > max_landmarks:
            rng = torch.Generator().manual_seed(seed)
            keep = torch.randperm(len(nodes), generator=rng)[:max_landmarks].sort().values
        nodes, episode, arc = nodes[keep].to(model.device), episode[keep], arc[keep].to(model.device)

        # consecutive landmarks of one episode, as far apart as the recorded path between them (the
        # straight latent distance of a long hop saturates: it would be a shortcut)
        same = torch.nonzero(episode[1:] == episode[:-1]).flatten().to(nodes.device)
        temporal = torch.stack([same, same + 1])
        temporal_weights = arc[same + 1] - arc[same]
        # near neighbours within the radius, as far apart as their latent distance (with constant_factor,
        # a difference along the episode constants counts that many times: edges keep the world as it is)
        edge_nodes = nodes if edge_map is None else nodes @ edge_map.T.to(nodes.device)
        near_j = nearest(edge_nodes, min(neighbours, len(nodes) - 1), search).flatten()
        near_i = torch.arange(len(nodes), device=nodes.device).repeat_interleave(len(near_j) // len(nodes))
        found = near_j >= 0  # the index may leave a row short
        near_i, near_j = near_i[found], near_j[found]
        near_d = _pair_distances(edge_nodes, near_i, near_j, max(1, block // dim))
        del edge_nodes
        close = near_d <= radius

        if reversible:
            sources = torch.cat([temporal[0], near_i[close]]).cpu().numpy()
            targets = torch.cat([temporal[1], near_j[close]]).cpu().numpy()
            weights = torch.cat([temporal_weights, near_d[close]]).cpu().numpy()
            edges = symmetric_edges(sources, targets, weights, len(nodes))
        else:  # recorded transitions one way, nearness both ways
            sources = torch.cat([temporal[0], near_i[close], near_j[close]]).cpu().numpy()
            targets = torch.cat([temporal[1], near_j[close], near_i[close]]).cpu().numpy()
            weights = torch.cat([temporal_weights, near_d[close], near_d[close]]).cpu().numpy()
            edges = directed_edges(sources, targets, weights, len(nodes))
        still = None
        if goal_at_rest and model.frame_stack > 1:  # landmarks of stacked frames move; a goal is held still
            flat = np.concatenate([episodes.obs_starts[e] + i.numpy() for e, i in enumerate(index)])
            still = (encode_still(model, episodes, flat[keep.numpy()], batch_size) @ metric.T).to(nodes.device)
        return cls(metric.to(nodes.device), nodes, edges, radius, far_penalty, block, still, not reversible)

    def local(self, distance: torch.Tensor) -> torch.Tensor:
        """The cost of a straight hop of this latent length: itself within the radius, dearer beyond."""
        return distance + self.far_penalty * (distance - self.radius).clamp(min=0)

    def _distances_from(self, mapped: torch.Tensor, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """The latent distance ``(M,)`` of every landmark (of ``nodes``, default :attr:`nodes`) to one
        mapped latent ``(D,)``, a block of landmarks at a time (each row alone: the same values whatever
        the block)."""
        nodes = self.nodes if nodes is None else nodes
        rows = max(1, self.block // nodes.shape[1])
        return torch.cat([(nodes[start : start + rows] - mapped).norm(dim=-1) for start in range(0, len(nodes), rows)])

    def _goal_hops(self, goal: torch.Tensor) -> np.ndarray:
        """The cost ``(M,)`` of each landmark's direct local hop to latent ``goal (D,)``; kept for the
        last goal, which :meth:`distances_to` and :meth:`next_hops` both need.

        The goal is compared with :attr:`still_nodes`: the landmarks themselves, or with ``goal_at_rest``
        each one's newest frame held still, since a goal is a configuration at rest. With stacked frames
        a landmark that passes the goal's place at speed can sit as far from the goal as a still one a
        wall away, and the path would end across the wall (docs/EXPERIMENTS.md, pixel medium)."""
        if self._last_hops is None or not torch.equal(self._last_hops[0], goal):
            distance = self._distances_from(goal @ self.metric.T, self.still_nodes)
            self._last_hops = goal.clone(), self.local(distance).cpu().numpy()
        return self._last_hops[1]

    @torch.no_grad()
    def distances_to(self, goal: torch.Tensor) -> torch.Tensor:
        """Shortest-path distance ``(M,)`` from every landmark to ``goal (D,)``.

        The goal joins the graph through a local hop to every landmark (a dear one where it is far),
        and one Dijkstra run from it (:class:`~agents.sparse_graph.GoalPaths`) finds every landmark's
        cheapest way there: a path along the edges, then the hop off the graph.
        """
        return torch.from_numpy(self.paths.distances(self._goal_hops(goal))).to(self.nodes.device)

    @torch.no_grad()
    def next_hops(self, goal: torch.Tensor, to_goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each landmark's next landmark on its shortest path to ``goal`` and that edge's weight; -1
        where the next stop is the goal itself. Depends only on the goal: compute it once per goal."""
        successor, step = self.paths.next_hops(self._goal_hops(goal), to_goal.cpu().numpy())
        return torch.from_numpy(successor).to(self.nodes.device), torch.from_numpy(step).to(self.nodes.device)

    @torch.no_grad()
    def waypoint(
        self,
        z: torch.Tensor,
        goal: torch.Tensor,
        to_goal: torch.Tensor,
        next_hops: tuple[torch.Tensor, torch.Tensor],
        lookahead: float,
    ) -> torch.Tensor:
        """The landmark ``(D,)``, mapped back to latent space, that the shortest path from latent ``z``
        to ``goal`` reaches after at least ``lookahead`` of latent path length; the goal itself when
        the path joins it sooner (search on the replay buffer's waypoint). ``to_goal`` and
        ``next_hops`` come from :meth:`distances_to` and :meth:`next_hops`.

        Aiming a short plan at this point, rather than scoring its end by the whole remaining path,
        asks the world model only about motion the data showed: a model that wrongly lets the ball
        through a wall cannot make the far side look close.
        """
        mapped, goal_mapped = z @ self.metric.T, goal @ self.metric.T
        # enter the graph by one local hop (the nearest landmark if none is that close): a dear long
        # hop could otherwise land across a wall, and the path would start on its far side
        entry_distance = self._distances_from(mapped)
        entry_hop = self.local(entry_distance)
        reachable = entry_distance <= max(self.radius, float(entry_distance.min()))
        node = int(torch.where(reachable, entry_hop + to_goal, torch.inf).argmin())
        if float(self.local((mapped - goal_mapped).norm())) <= float(entry_hop[node] + to_goal[node]):
            return goal
        successor, step = next_hops
        travelled = float(entry_hop[node])
        for _ in range(len(self.nodes)):
            if travelled >= lookahead:
                break
            if successor[node] < 0:
                return goal
            travelled += float(step[node])
            node = int(successor[node])
        return torch.linalg.solve(self.metric, self.nodes[node])

    def cost_to_go(self, z: torch.Tensor, goal: torch.Tensor, to_goal: torch.Tensor) -> torch.Tensor:
        """Distance ``(...)`` of latents ``z (..., D)`` to the goal: the cheaper of a direct local hop
        and a local hop to a landmark followed by its shortest path (``to_goal`` from :meth:`distances_to`).

        This runs inside every planner iteration. When the ``(N, M)`` hop costs fit in one block they
        are one buffer, worked on in place without gradients (a third faster); otherwise the cheapest
        landmark is found a block of landmarks at a time, and a gradient planner's gradient is that of
        the hop to it (as the minimum's gradient is).
        """
        flat, goal = z.reshape(-1, z.shape[-1]) @ self.metric.T, goal @ self.metric.T
        direct = self.local((flat - goal).norm(dim=-1))
        grad = torch.is_grad_enabled() and flat.requires_grad  # gradient planners: no in-place ops
        width = max(1, self.block // max(len(flat), 1))  # landmarks per block
        if width >= len(self.nodes):
            hop = self._hop_costs(flat, to_goal, slice(None), grad).amin(dim=1)
        else:
            with torch.no_grad():
                hop, best = self._cheapest_landmark(flat, to_goal, width)
            if grad:  # the hop to the cheapest landmark again, now with its gradient
                hop = self.local((flat - self.nodes[best]).norm(dim=-1)) + to_goal[best]
        return torch.minimum(direct, hop).reshape(z.shape[:-1])

    def _hop_costs(self, flat: torch.Tensor, to_goal: torch.Tensor, landmarks: slice, grad: bool) -> torch.Tensor:
        """``(N, m)``: a local hop from each mapped latent to each of these landmarks, then its path."""
        squared = torch.addmm(self.node_sq_norms[landmarks], flat, self.nodes[landmarks].T, alpha=-2)
        if grad:
            return self.local((squared + flat.pow(2).sum(1, keepdim=True)).clamp(min=0).sqrt()) + to_goal[landmarks]
        hop = squared.add_(flat.pow(2).sum(1, keepdim=True)).clamp_(min=0).sqrt_()
        return hop.add_((hop - self.radius).clamp_(min=0).mul_(self.far_penalty)).add_(to_goal[landmarks])

    def _cheapest_landmark(self, flat: torch.Tensor, to_goal: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cheapest hop-and-path cost ``(N,)`` over all landmarks, and its landmark ``(N,)``,
        ``width`` landmarks at a time (the first of equal ones)."""
        best_cost = flat.new_full((len(flat),), float("inf"))
        best = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
        for start in range(0, len(self.nodes), width):
            cost, index = self._hop_costs(flat, to_goal, slice(start, start + width), grad=False).min(dim=1)
            better = cost < best_cost
            best_cost, best = torch.where(better, cost, best_cost), torch.where(better, index + start, best)
        return best_cost, best


def step_whitening(latents: list[torch.Tensor], floor: float) -> torch.Tensor:
    """``Sigma^(-1/2)`` of the one-step latent changes, eigenvalues floored at ``floor`` times their
    mean (so that a direction that never moves is dear, not infinitely so)."""
    steps = torch.cat([z[1:] - z[:-1] for z in latents]).double()
    values, vectors = torch.linalg.eigh(torch.cov(steps.T))
    values = values.clamp(min=floor * float(values.mean()))
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T).float()


def episode_constant_scale(latents: list[torch.Tensor], factor: float, ratio: float = 10.0) -> torch.Tensor | None:
    """``(D, D)``: the map that multiplies the latents' directions constant within episodes by ``factor``.

    Those directions, along which episodes differ far more than any episode varies (between-episode
    over within-episode variance above ``ratio``: a door's height, set once per episode), are the
    generalised eigenvectors of ``B v = r W v``. Directions the agent moves along (the ball's place:
    every episode spans a good part of its range) are left as they are; without any constant
    direction there is no map (None), and the graph is exactly the one built without this option.
    """
    episodes = [z for z in latents if len(z) > 1]
    dim = episodes[0].shape[1]
    within = torch.zeros(dim, dim, dtype=torch.float64)  # summed episode by episode: no copy of all latents
    for z in episodes:
        centred = z.double() - z.double().mean(0)
        within += centred.T @ centred
    within /= sum(len(z) for z in episodes) - 1
    between = torch.cov(torch.stack([z.double().mean(0) for z in episodes]).T)
    inverse = torch.linalg.inv(torch.linalg.cholesky(within + 1e-9 * within.diagonal().mean() * torch.eye(dim, dtype=within.dtype)))
    values, vectors = torch.linalg.eigh(inverse @ between @ inverse.T)
    directions = inverse.T @ vectors[:, values > ratio]
    if directions.shape[1] == 0:
        return None
    basis, _ = torch.linalg.qr(directions)  # an orthonormal basis of the constant subspace
    return (torch.eye(dim, dtype=basis.dtype) + (factor - 1.0) * basis @ basis.T).float()


def _arc_length(z: torch.Tensor) -> torch.Tensor:
    """``(T,)`` latent distance travelled from the first latent to each one along the sequence."""
    steps = (z[1:] - z[:-1]).norm(dim=-1)
    return torch.cat([steps.new_zeros(1), steps.cumsum(0)])


def _pair_distances(nodes: torch.Tensor, first: torch.Tensor, second: torch.Tensor, rows: int) -> torch.Tensor:
    """``|nodes[first] - nodes[second]|`` ``(P,)``, ``rows`` pairs at a time (a million landmarks' ten
    million pairs would take 5 GB at once). Exact, unlike cdist's fast path, which rounds small ones."""
    return torch.cat([(nodes[first[start : start + rows]] - nodes[second[start : start + rows]]).norm(dim=-1)
                      for start in range(0, len(first), rows)] or [nodes.new_zeros(0)])


def _hop_radius(latents: list[torch.Tensor], hop_steps: int, quantile: float) -> float:
    """The ``quantile`` of latent distances between observations ``hop_steps`` apart in one episode."""
    hops = [(z[hop_steps:] - z[:-hop_steps]).norm(dim=-1) for z in latents if len(z) > hop_steps]
    if not hops:
        raise ValueError(f"no episode is longer than hop_steps={hop_steps}")
    return float(torch.quantile(torch.cat(hops).float(), quantile))

"""A graph over encoded dataset observations ("landmarks") that measures latent distance around walls.

A straight latent distance to the goal is a poor energy in a maze: every short plan that goes around
a wall first moves away from the goal, so greedy MPC stalls behind it. The dataset already shows
which latents follow one another. Joining landmarks along recorded transitions, and where two
landmarks are closer than one short hop, gives a graph whose shortest paths run along the routes
the data took (search on the replay buffer, Eysenbach et al. 2019, done here in the JEPA latent
space). The distance of any latent to the goal is then: a short local hop to a landmark, plus the
landmark's shortest-path distance to the goal. Transitions are taken as reversible (every edge
goes both ways), which holds for the point masses and arms of our tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from envs.episodes import EpisodeSet
from worldmodel.diagnostics import encode_episodes


@dataclass
class LandmarkGraph:
    """Landmarks ``(M, D)`` with undirected weighted edges (each stored in both directions).

    ``radius`` is the local reach: a latent counts as next to a landmark within this latent distance;
    further hops cost ``far_penalty`` times their excess, so that shortcuts through walls are dear.
    """

    metric: torch.Tensor  # (D, D): latents are mapped by it before any distance is taken
    nodes: torch.Tensor  # (M, D), already mapped
    sources: torch.Tensor  # (E,) int64
    targets: torch.Tensor  # (E,) int64
    weights: torch.Tensor  # (E,) float
    radius: float
    far_penalty: float
    node_sq_norms: torch.Tensor = field(init=False)  # (M,) for the distance expansion in cost_to_go

    def __post_init__(self) -> None:
        self.node_sq_norms = self.nodes.pow(2).sum(1)

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
        whitening_floor: float | None = None,
        batch_size: int = 1024,
    ) -> LandmarkGraph:
        """Encode every ``stride``-th observation of (up to ``max_landmarks``) dataset frames.

        Edges: consecutive landmarks of one episode, and each landmark's ``neighbours`` nearest
        landmarks that lie within the radius. The radius is the ``radius_quantile`` of the latent
        distance the data covers in ``hop_steps`` steps: what one short plan surely bridges.

        With ``whitening_floor``, distances are measured in units of the data's one-step latent
        motion (:func:`step_whitening`): a direction the agent never moves along within an episode
        (a door's height, a target's place) becomes dear to cross, so no path changes the world.
        """
        if stride < 1 or hop_steps < 1 or max_landmarks < 2:
            raise ValueError("stride, hop_steps must be >= 1 and max_landmarks >= 2")
        z_all, _ = encode_episodes(model, episodes, np.arange(episodes.num_episodes), batch_size)
        latents = list(z_all.split((episodes.episode_lengths + 1).tolist()))  # one tensor per episode
        dim = latents[0].shape[-1]
        metric = torch.eye(dim) if whitening_floor is None else step_whitening(latents, whitening_floor)
        latents = [z @ metric.T for z in latents]
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
        # near neighbours within the radius, as far apart as their latent distance
        near_j = _nearest(nodes, min(neighbours, len(nodes) - 1)).flatten()
        near_i = torch.arange(len(nodes), device=nodes.device).repeat_interleave(len(near_j) // len(nodes))
        near_d = (nodes[near_i] - nodes[near_j]).norm(dim=-1)  # exact: cdist's fast path rounds small ones
        close = near_d <= radius
        proximity = torch.stack([near_i[close], near_j[close]])

        pairs = torch.cat([temporal, proximity, temporal.flip(0), proximity.flip(0)], dim=1)
        weights = torch.cat([temporal_weights, near_d[close]]).repeat(2)
        pairs, weights = _cheapest_per_pair(pairs, weights)
        return cls(metric.to(nodes.device), nodes, pairs[0], pairs[1], weights, radius, far_penalty)

    def local(self, distance: torch.Tensor) -> torch.Tensor:
        """The cost of a straight hop of this latent length: itself within the radius, dearer beyond."""
        return distance + self.far_penalty * (distance - self.radius).clamp(min=0)

    def _goal_hops(self, goal: torch.Tensor) -> torch.Tensor:
        """The cost ``(M,)`` of each landmark's direct local hop to latent ``goal (D,)``."""
        return self.local((self.nodes - goal @ self.metric.T).norm(dim=-1))

    @torch.no_grad()
    def distances_to(self, goal: torch.Tensor) -> torch.Tensor:
        """Shortest-path distance ``(M,)`` from every landmark to ``goal (D,)`` (Bellman-Ford, batched).

        The goal joins the graph through local hops to every landmark, so one relaxation pass
        starts from all of them at once; each further pass extends paths by one edge.
        """
        dist = self._goal_hops(goal)
        for _ in range(len(self.nodes)):
            through = dist[self.targets] + self.weights
            relaxed = dist.scatter_reduce(0, self.sources, through, reduce="amin")
            if torch.equal(relaxed, dist):
                break
            dist = relaxed
        return dist

    @torch.no_grad()
    def next_hops(self, goal: torch.Tensor, to_goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each landmark's next landmark on its shortest path to ``goal`` and that edge's weight; -1
        where the next stop is the goal itself. Depends only on the goal: compute it once per goal."""
        through = self.weights + to_goal[self.targets]
        by_cost = torch.argsort(through, stable=True)
        order = by_cost[torch.argsort(self.sources[by_cost], stable=True)]  # by source, cheapest first
        sources = self.sources[order]
        first = torch.ones_like(sources, dtype=torch.bool)
        first[1:] = sources[1:] != sources[:-1]
        successor = torch.full((len(self.nodes),), -1, dtype=torch.long, device=self.nodes.device)
        step = torch.zeros(len(self.nodes), device=self.nodes.device)
        successor[sources[first]] = self.targets[order[first]]
        step[sources[first]] = self.weights[order[first]]
        successor[self._goal_hops(goal) <= to_goal] = -1  # the direct hop to the goal is (one of) the cheapest ways on
        return successor, step

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
        entry_distance = (self.nodes - mapped).norm(dim=-1)
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

        This runs inside every planner iteration, so without gradients it works in place on one
        ``(N, M)`` buffer (a third faster).
        """
        flat, goal = z.reshape(-1, z.shape[-1]) @ self.metric.T, goal @ self.metric.T
        squared = torch.addmm(self.node_sq_norms, flat, self.nodes.T, alpha=-2)
        if torch.is_grad_enabled() and flat.requires_grad:  # gradient planners: no in-place ops
            hop = self.local((squared + flat.pow(2).sum(1, keepdim=True)).clamp(min=0).sqrt()) + to_goal
        else:
            hop = squared.add_(flat.pow(2).sum(1, keepdim=True)).clamp_(min=0).sqrt_()
            hop.add_((hop - self.radius).clamp_(min=0).mul_(self.far_penalty)).add_(to_goal)
        direct = self.local((flat - goal).norm(dim=-1))
        return torch.minimum(direct, hop.amin(dim=1)).reshape(z.shape[:-1])


def step_whitening(latents: list[torch.Tensor], floor: float) -> torch.Tensor:
    """``Sigma^(-1/2)`` of the one-step latent changes, eigenvalues floored at ``floor`` times their
    mean (so that a direction that never moves is dear, not infinitely so)."""
    steps = torch.cat([z[1:] - z[:-1] for z in latents]).double()
    values, vectors = torch.linalg.eigh(torch.cov(steps.T))
    values = values.clamp(min=floor * float(values.mean()))
    return (vectors @ torch.diag(values.rsqrt()) @ vectors.T).float()


def _arc_length(z: torch.Tensor) -> torch.Tensor:
    """``(T,)`` latent distance travelled from the first latent to each one along the sequence."""
    steps = (z[1:] - z[:-1]).norm(dim=-1)
    return torch.cat([steps.new_zeros(1), steps.cumsum(0)])


def _nearest(nodes: torch.Tensor, k: int, rows_per_chunk: int = 2048) -> torch.Tensor:
    """Indices ``(M, k)`` of each node's ``k`` nearest other nodes, a block of rows at a time: the whole
    ``(M, M)`` distance matrix of the benchmark's 151500 pixel-wall landmarks would take 92 GB."""
    blocks = []
    for start in range(0, len(nodes), rows_per_chunk):
        distances = torch.cdist(nodes[start : start + rows_per_chunk], nodes)
        rows = torch.arange(len(distances), device=nodes.device)
        distances[rows, rows + start] = float("inf")  # not its own neighbour
        blocks.append(distances.topk(k, largest=False).indices)
    return torch.cat(blocks)


def _cheapest_per_pair(pairs: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One edge per (source, target): the cheapest of the duplicates."""
    unique, inverse = torch.unique(pairs, dim=1, return_inverse=True)
    cheapest = weights.new_full((unique.shape[1],), float("inf")).scatter_reduce(0, inverse, weights, reduce="amin")
    return unique, cheapest


def _hop_radius(latents: list[torch.Tensor], hop_steps: int, quantile: float) -> float:
    """The ``quantile`` of latent distances between observations ``hop_steps`` apart in one episode."""
    hops = [(z[hop_steps:] - z[:-hop_steps]).norm(dim=-1) for z in latents if len(z) > hop_steps]
    if not hops:
        raise ValueError(f"no episode is longer than hop_steps={hop_steps}")
    return float(torch.quantile(torch.cat(hops).float(), quantile))

"""The landmark graph at scale: each landmark's nearest, and every landmark's shortest path to a goal.

Every dataset observation may be a landmark, a million for an OGBench-sized dataset, so nothing here
holds an ``(M, M)`` array.

**Nearest landmarks.** The graph joins every landmark to its ``k`` nearest. Exact search compares
every pair, which grows with the square of the landmarks: over two minutes for the pixel wall's
151500 on one core, near two hours for a million (extrapolated; docs/EXPERIMENTS.md). Above ``exact_below`` landmarks an HNSW index (faiss;
Malkov and Yashunin 2018) finds them in ``O(M log M)``; it may miss a few, so small graphs, all
benchmark rows but the pixel wall among them, keep the exact search and exactly the neighbours they
always had. An HNSW index is built by inserting landmarks one at a time, and several threads insert
in a different order each run, so the build runs on one thread: the same landmarks give the same
graph (search is per query, and runs on as many threads as faiss is allowed).

**Shortest paths.** A goal joins the graph through a local hop to every landmark, so the landmarks'
distances to it are shortest paths from one virtual node, the goal, joined to all of them: one
Dijkstra run (``scipy.sparse.csgraph``) over the edges, ``O(E log M)``, where the batched Bellman-Ford
it replaced swept all edges once per edge of the longest path. The edges live in one CSR matrix (a
million landmarks with ten neighbours each: a few hundred MB). Dijkstra adds in float64; distances
are returned in float32, the graph's precision, and may differ from float32 sums in the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from envs.errors import UserInputError


@dataclass(frozen=True)
class NeighbourSearch:
    """How :func:`nearest` searches (``landmarks.search`` in ``configs/energy/``)."""

    exact_below: int  # fewer landmarks than this: exact search; this many or more: the HNSW index
    links: int  # HNSW: links kept per landmark (faiss's M): more finds more, costs memory and build time
    build_breadth: int  # HNSW: candidates weighed while inserting a landmark (efConstruction)
    search_breadth: int  # HNSW: candidates weighed per query (efSearch); at least k
    rows_per_chunk: int  # exact search: query rows compared with all landmarks at once

    def __post_init__(self) -> None:
        counts = {"exact_below": self.exact_below, "links": self.links, "build_breadth": self.build_breadth,
                  "search_breadth": self.search_breadth, "rows_per_chunk": self.rows_per_chunk}
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise UserInputError(f"landmarks.search.{name} must be a positive integer, got {value!r}")


def nearest(nodes: torch.Tensor, k: int, search: NeighbourSearch) -> torch.Tensor:
    """Indices ``(M, k)`` of each node's ``k`` nearest other nodes (Euclidean); -1 pads a row the
    index could not fill (only on the approximate path)."""
    if len(nodes) < search.exact_below:
        return exact_nearest(nodes, k, search.rows_per_chunk)
    return approximate_nearest(nodes, k, search)


def exact_nearest(nodes: torch.Tensor, k: int, rows_per_chunk: int) -> torch.Tensor:
    """Indices ``(M, k)`` of each node's ``k`` nearest other nodes, a block of rows at a time: the whole
    ``(M, M)`` distance matrix of the benchmark's 151500 pixel-wall landmarks would take 92 GB."""
    blocks = []
    for start in range(0, len(nodes), rows_per_chunk):
        distances = torch.cdist(nodes[start : start + rows_per_chunk], nodes)
        rows = torch.arange(len(distances), device=nodes.device)
        distances[rows, rows + start] = float("inf")  # not its own neighbour
        blocks.append(distances.topk(k, largest=False).indices)
    return torch.cat(blocks)


def approximate_nearest(nodes: torch.Tensor, k: int, search: NeighbourSearch) -> torch.Tensor:
    """:func:`exact_nearest` through an HNSW index: the ``k`` nearest it finds other than the node."""
    if search.search_breadth < k + 1:
        raise UserInputError(f"landmarks.search.search_breadth={search.search_breadth} must be at least "
                             f"neighbours + 1 = {k + 1}")
    faiss = _faiss()
    points = np.ascontiguousarray(nodes.detach().cpu().numpy(), dtype=np.float32)
    index = faiss.IndexHNSWFlat(points.shape[1], search.links)
    index.hnsw.efConstruction = search.build_breadth
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one insertion order: the same graph every run (module docstring)
    try:
        index.add(points)
    finally:
        faiss.omp_set_num_threads(threads)
    index.hnsw.efSearch = search.search_breadth
    _, found = index.search(points, k + 1)  # the node itself is (nearly always) among them
    return torch.from_numpy(_drop_self(found, k)).to(nodes.device)


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """``(M, k)`` from ``(M, k + 1)`` search results: each row without its own index (wherever equal
    latents put it), or without its last result where the search did not return the node itself."""
    own = found == np.arange(len(found))[:, None]
    own[~own.any(axis=1), -1] = True  # drop the farthest instead
    own[np.cumsum(own, axis=1) > 1] = False  # one drop per row
    return found[~own].reshape(len(found), k)


def _faiss() -> ModuleType:
    """faiss, imported only when a graph is large enough to need it."""
    try:
        import faiss
    except ImportError as error:  # a dependency in pyproject.toml; a stripped environment may lack it
        raise UserInputError("a landmark graph this large needs faiss: pip install faiss-cpu") from error
    return faiss


def symmetric_edges(sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, size: int) -> csr_array:
    """The ``(size, size)`` CSR matrix of undirected edges ``sources[i] -- targets[i]``: each pair
    once per direction at the cheapest of its weights (:func:`directed_edges` of both directions)."""
    return directed_edges(np.concatenate([sources, targets]), np.concatenate([targets, sources]),
                          np.concatenate([weights, weights]), size)


def directed_edges(sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, size: int) -> csr_array:
    """The ``(size, size)`` CSR matrix of edges ``sources[i] -> targets[i]`` (row: where an edge
    leaves), each pair at the cheapest of its weights (float32), column indices sorted in each row.

    Zero weights are edges like any other (two landmarks with the same latent); the matrix is built
    from its arrays, never by sparse arithmetic, which would drop them.
    """
    rows, cols = np.asarray(sources).astype(np.int64), np.asarray(targets).astype(np.int64)
    keys = rows * size + cols
    order = np.argsort(keys, kind="stable")
    keys, cheapest = keys[order], np.asarray(weights).astype(np.float32)[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    data = np.minimum.reduceat(cheapest, starts) if len(keys) else cheapest
    keys = keys[starts]
    indptr = np.r_[0, np.cumsum(np.bincount(keys // size, minlength=size))]
    index_type = np.int32 if max(size, len(keys)) < np.iinfo(np.int32).max else np.int64
    return csr_array((data, (keys % size).astype(index_type), indptr.astype(index_type)), shape=(size, size))


class GoalPaths:
    """Shortest paths from a goal to every landmark over ``edges``, and each landmark's first step.

    The goal is node ``M`` of an ``(M + 1)``-node graph whose last row joins it to every landmark;
    only that row's weights change from goal to goal, so the matrix is built once and Dijkstra never
    copies it. Dijkstra runs from the goal, so it walks each edge backwards: with ``directed`` edges
    (a landmark's row holds where it can go) it runs on their transpose, so that a landmark's
    distance is that of its way *to* the goal; symmetric edges are their own transpose.
    """

    def __init__(self, edges: csr_array, directed: bool = False) -> None:
        self.edges = edges
        size, count = edges.shape[0], edges.nnz
        self.rows = np.repeat(np.arange(size), np.diff(edges.indptr))  # each edge's source
        into = csr_array(edges.T) if directed else edges  # row j: the landmarks that reach j
        into.sort_indices()
        index_type = np.int32 if count + size < np.iinfo(np.int32).max else np.int64
        indices = np.concatenate([into.indices, np.arange(size)]).astype(index_type)
        indptr = np.concatenate([into.indptr, [count + size]]).astype(index_type)
        data = np.concatenate([into.data.astype(np.float64), np.zeros(size)])
        self._joined = csr_array((data, indices, indptr), shape=(size + 1, size + 1))
        self._goal_row = slice(count, count + size)

    def distances(self, goal_hops: np.ndarray) -> np.ndarray:
        """``(M,)`` float32: each landmark's cheapest way to the goal, a path of edges ending in a hop
        of cost ``goal_hops`` (``(M,)``, from the landmark where the path leaves the graph)."""
        self._joined.data[self._goal_row] = goal_hops
        size = len(goal_hops)
        return dijkstra(self._joined, directed=True, indices=size)[:size].astype(np.float32)

    def next_hops(self, goal_hops: np.ndarray, to_goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each landmark's next landmark on its shortest path to the goal and that edge's weight; -1
        where the next stop is the goal itself (or the landmark has no edge: weight 0).

        The cheapest ``weight + to_goal[next]`` in float32, ties to the lowest index: the choice the
        Bellman-Ford version made, so the same distances give the same paths.
        """
        size = len(to_goal)
        through = to_goal[self.edges.indices]
        through += self.edges.data
        successor, step = np.full(size, -1, dtype=np.int64), np.zeros(size, dtype=np.float32)
        counts = np.diff(self.edges.indptr)
        if self.edges.nnz:
            cheapest = np.full(size, np.inf, dtype=np.float32)
            cheapest[counts > 0] = np.minimum.reduceat(through, self.edges.indptr[:-1][counts > 0])
            ties = np.flatnonzero(through == np.repeat(cheapest, counts))
            rows = self.rows[ties]
            first = ties[np.r_[True, rows[1:] != rows[:-1]]]  # per row, the lowest index among the cheapest
            successor[self.rows[first]] = self.edges.indices[first]
            step[self.rows[first]] = self.edges.data[first]
        successor[goal_hops <= to_goal] = -1  # the direct hop to the goal is (one of) the cheapest ways on
        return successor, step

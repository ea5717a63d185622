"""Free space of maze-like tasks on a square grid: shortest paths and the true cost-to-go to a goal.

A maze-like task (``navigation_grid()`` on the task) lays its free space out as a grid of cells in
which the agent's centre may sit. Two users: the waypoint exploration policy walks shortest cell
paths (:meth:`NavigationGrid.path`), and the oracle scores simulated positions by the length of the
shortest path round the walls to the goal (:meth:`NavigationGrid.cost_to_go`), so that it does not
stall behind a wall the way the straight distance makes it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Cell = tuple[int, int]
CostFn = Callable[[np.ndarray], np.ndarray]  # positions (..., >=2) -> cost-to-go (...)
_STEPS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class NavigationGrid:
    """The free cells of an arena laid out on a square grid (row 0 at the top, as maze maps are)."""

    free: np.ndarray  # (rows, cols) bool
    cell_size: float
    x_min: float  # left edge of column 0
    y_max: float  # top edge of row 0

    def cells_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cell holding each position ``xy (..., >=2)``, clipped to the grid."""
        xy = np.asarray(xy, dtype=np.float64)
        row = np.clip(np.floor_divide(self.y_max - xy[..., 1], self.cell_size), 0, self.free.shape[0] - 1)
        col = np.clip(np.floor_divide(xy[..., 0] - self.x_min, self.cell_size), 0, self.free.shape[1] - 1)
        return row.astype(np.int64), col.astype(np.int64)

    def centres(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """The (x, y) centres of cells ``(row, col)``, any matching shapes -> ``(..., 2)``."""
        return np.stack([self.x_min + (col + 0.5) * self.cell_size, self.y_max - (row + 0.5) * self.cell_size], -1)

    def center(self, cell: Cell) -> np.ndarray:
        return self.centres(np.asarray(cell[0]), np.asarray(cell[1]))

    def cell_of(self, xy: np.ndarray) -> Cell:
        row, col = self.cells_of(xy)
        return int(row), int(col)

    def free_cells(self) -> list[Cell]:
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.free), strict=True)]

    def _inside(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.free.shape[0] and 0 <= cell[1] < self.free.shape[1]

    def path(self, start: Cell, goal: Cell) -> list[Cell]:
        """Shortest 4-connected path of free cells from ``start`` (excluded) to ``goal`` (breadth first)."""
        previous: dict[Cell, Cell | None] = {start: None}
        frontier = deque([start])
        while frontier:
            cell = frontier.popleft()
            if cell == goal:
                break
            for dr, dc in _STEPS[:4]:
                nxt = (cell[0] + dr, cell[1] + dc)
                if self._inside(nxt) and self.free[nxt] and nxt not in previous:
                    previous[nxt] = cell
                    frontier.append(nxt)
        if goal not in previous:
            return []
        path = [goal]
        while previous[path[-1]] not in (None, start):
            path.append(previous[path[-1]])
        return path[::-1] if goal != start else []

    def refined(self, factor: int) -> NavigationGrid:
        """The same free space with every cell split into ``factor x factor`` cells (finer paths)."""
        if factor == 1:
            return self
        free = np.kron(self.free, np.ones((factor, factor), dtype=bool))
        return NavigationGrid(free, self.cell_size / factor, self.x_min, self.y_max)

    def cost_to_go(self, goal: np.ndarray) -> CostToGo:
        """Shortest-path distances to ``goal (2,)`` from every free cell (Dijkstra, 8-connected,
        diagonal moves only where both side cells are free, so no path cuts a wall's corner)."""
        goal = np.asarray(goal, dtype=np.float64)[:2]
        distance = np.full(self.free.shape, np.inf)
        source = self.cell_of(goal)
        distance[source] = float(np.linalg.norm(self.center(source) - goal))
        queue = [(distance[source], source)]
        while queue:
            d, cell = heapq.heappop(queue)
            if d > distance[cell]:
                continue
            for dr, dc in _STEPS:
                nxt = (cell[0] + dr, cell[1] + dc)
                if not (self._inside(nxt) and self.free[nxt]):
                    continue
                if dr and dc and not (self.free[cell[0] + dr, cell[1]] and self.free[cell[0], cell[1] + dc]):
                    continue
                step = self.cell_size * (np.sqrt(2.0) if dr and dc else 1.0)
                if d + step < distance[nxt]:
                    distance[nxt] = d + step
                    heapq.heappush(queue, (d + step, nxt))
        return CostToGo(self, goal, source, distance)


@dataclass(frozen=True)
class CostToGo:
    """Length of the shortest free path from positions to a goal, for batches of positions.

    A position's cost is the best over its own cell and the free cells next to it (diagonal ones
    only past two free side cells, as in the search) of (straight distance to that cell's centre +
    that cell's path length), or the straight distance to the goal inside the goal's own cell; a
    position no free cell is near (deep in a wall) costs more than any free one.
    """

    grid: NavigationGrid
    goal: np.ndarray  # (2,)
    goal_cell: Cell
    distance: np.ndarray  # (rows, cols): path length from each cell centre, inf where unreachable

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """``positions (..., >=2)`` (x, y first) -> path lengths ``(...)``."""
        xy = np.asarray(positions, dtype=np.float64)[..., :2]
        g = self.grid
        rows, cols = g.free.shape
        row, col = g.cells_of(xy)
        def free(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            return inside & g.free[np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1)]

        best = np.full(xy.shape[:-1], np.inf)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                # as in the search: a diagonal neighbour only where both side cells are free
                usable = free(r, c) & (free(row + dr, col) & free(row, col + dc) if dr and dc else True)
                r, c = np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1)
                through = np.linalg.norm(xy - g.centres(r, c), axis=-1) + self.distance[r, c]
                best = np.where(usable, np.minimum(best, through), best)
        in_goal_cell = (row == self.goal_cell[0]) & (col == self.goal_cell[1])
        best = np.where(in_goal_cell, np.linalg.norm(xy - self.goal, axis=-1), best)
        finite = self.distance[np.isfinite(self.distance)]
        worst = (finite.max() if finite.size else 0.0) + g.cell_size * max(rows, cols)
        return np.where(np.isfinite(best), best, worst)


@runtime_checkable
class MazeLayout(Protocol):
    """A gymnasium-robotics ``Maze`` (``env.unwrapped.maze`` of PointMaze and AntMaze): a map of wall
    cells (``1``) laid out in squares of ``maze_size_scaling`` metres around the origin."""

    maze_map: list[list[int | str]]
    maze_size_scaling: float
    x_map_center: float
    y_map_center: float


def maze_grid(maze: MazeLayout) -> NavigationGrid:
    """One grid cell per maze cell, free where the map has no wall (``1``)."""
    return NavigationGrid(
        free=np.array([[cell != 1 for cell in row] for row in maze.maze_map]),
        cell_size=maze.maze_size_scaling,
        x_min=-maze.x_map_center,
        y_max=maze.y_map_center,
    )


@runtime_checkable
class Navigable(Protocol):
    """A task that says where its free space is: ``None`` where nothing stands between agent and goal."""

    def navigation_grid(self) -> NavigationGrid | None: ...


def task_cost_to_go(grid: NavigationGrid | None, resolution: int, goal: np.ndarray) -> CostFn:
    """The true cost-to-go of a task: the path through ``grid`` refined ``resolution`` times, or the
    straight distance where the task has no grid."""
    if grid is None:
        return straight_cost_to_go(goal)
    return grid.refined(resolution).cost_to_go(goal)


def straight_cost_to_go(goal: np.ndarray) -> CostFn:
    """The straight distance to ``goal``: the true cost-to-go where nothing stands in the way."""
    goal = np.asarray(goal, dtype=np.float64)

    def cost(positions: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(positions, dtype=np.float64)[..., : goal.size] - goal, axis=-1)

    return cost

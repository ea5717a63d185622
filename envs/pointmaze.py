"""``pointmaze-umaze`` / ``pointmaze-medium``: gymnasium-robotics PointMaze-v3 seen from straight above.

The maze, the ball physics (force control, speed clipped at 5 m/s) and the success test (the env's own
``distance <= 0.45``) are gymnasium-robotics'; this wrapper repeats each action over a few simulator
steps (as DINO-WM does) so that a planner's horizon covers a useful distance, hides the red target
marker (the goal is given as the observation of the ball at the goal), draws the floor plain and
frames the whole maze.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco.batch
import numpy as np
from gymnasium_robotics.envs.maze import maps
from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

from envs.base import GoalTask, spec_vector
from envs.errors import UserInputError
from envs.navigation import NavigationGrid, maze_grid
from envs.rendering import TopDownView

MAZES = {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE}
FLOOR_RGBA = (0.15, 0.25, 0.35, 1.0)  # the darker of the original checker's two colours


class PointMazeTask(GoalTask):
    """Episode spec: ``{"start": [x, y], "goal": [x, y]}`` in metres; the ball starts at rest."""

    spec_keys = ("start", "goal")
    state_dim = 4  # x, y, vx, vy
    goal_dim = 2  # the goal position (kept by gymnasium-robotics outside MuJoCo's state)
    path_resolution = 4  # the oracle's cost-to-go: 25 cm cells, whose centres a 10 cm ball can reach
    max_speed = 5.0  # m/s per axis: gymnasium-robotics' PointEnv clips qvel to this before every simulator step

    def __init__(
        self,
        maze: str = "umaze",
        obs: str = "pixels",
        image_size: int = 64,
        render_mode: str | None = None,
        action_repeat: int = 5,
    ) -> None:
        if maze not in MAZES:
            raise UserInputError(f"unknown maze '{maze}'; choose one of: {', '.join(MAZES)}")
        self._maze_env = PointMazeEnv(maze_map=MAZES[maze], continuing_task=True, reset_target=False)
        self.maze = self._maze_env.maze
        self.action_repeat = action_repeat
        self.success_threshold = 0.45  # gymnasium-robotics' own, used through compute_reward below
        point = self._maze_env.point_env
        point.model.site_rgba[self._maze_env.target_site_id, 3] = 0.0
        # A plain floor: at 64x64 the checker texture reads like extra maze cells.
        point.model.mat_texid[point.model.material("groundplane").id] = -1
        point.model.mat_rgba[point.model.material("groundplane").id] = FLOOR_RGBA
        self._ball_radius = float(point.model.geom("particle_geom").size[0])
        self._maze_env.goal = np.zeros(2)
        # Show the free cells and half of the outer walls.
        extent = (max(self.maze.map_length, self.maze.map_width) - 1) * self.maze.maze_size_scaling
        view = TopDownView((0.0, 0.0), extent)
        super().__init__(
            point.model, point.data, view, point.dt * action_repeat, obs, image_size, render_mode
        )

    def _draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """gymnasium-robotics' rule: random goal and start cells (> half a cell apart) plus uniform noise."""
        goal_cells = self.maze.unique_goal_locations
        reset_cells = self.maze.unique_reset_locations
        goal = goal_cells[rng.integers(len(goal_cells))]
        start = goal
        while np.linalg.norm(start - goal) <= 0.5 * self.maze.maze_size_scaling:
            start = reset_cells[rng.integers(len(reset_cells))]
        noise = self._maze_env.position_noise_range * self.maze.maze_size_scaling
        goal = goal + rng.uniform(-noise, noise, 2)
        start = start + rng.uniform(-noise, noise, 2)
        return {"start": [float(v) for v in start], "goal": [float(v) for v in goal]}

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        start, goal = spec_vector(spec, "start", 2), spec_vector(spec, "goal", 2)
        for key, point, margin in (("start", start, self._ball_radius), ("goal", goal, 0.0)):
            if not self._is_free(point, margin):
                raise UserInputError(
                    f"pointmaze {key} {point.tolist()} is outside the arena (in or too near a wall); "
                    f"free cell centres are {[c.round(2).tolist() for c in self.maze.unique_goal_locations]}"
                )
        self.data.qpos[:2] = start
        self.data.qvel[:] = 0.0
        self._set_goal_params(goal)

    def _is_free(self, point: np.ndarray, margin: float) -> bool:
        """Whether a disk of radius ``margin`` around ``point`` lies in free maze cells."""
        for dx in (-margin, margin):
            for dy in (-margin, margin):
                row, col = self.maze.cell_xy_to_rowcol(point + (dx, dy))
                inside = 0 <= row < self.maze.map_length and 0 <= col < self.maze.map_width
                if not inside or self.maze.maze_map[row][col] == 1:
                    return False
        return True

    def _advance(self, action: np.ndarray) -> None:
        for _ in range(self.action_repeat):
            self._maze_env.step(action)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        """As :meth:`_advance` through ``PointEnv.step``: clip the speed, then one simulator step, repeated."""
        batch.ctrl = action
        qvel = batch.qvel  # a live view of the state rows
        for _ in range(self.action_repeat):
            np.clip(qvel, -self.max_speed, self.max_speed, out=qvel)
            batch.step()

    def _achieved_goal_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        return batch.qpos[:, :2]

    def navigation_grid(self) -> NavigationGrid:
        return maze_grid(self.maze)

    def is_success(self) -> bool:
        """gymnasium-robotics' own sparse reward: 1 exactly when the ball is within 0.45 of the goal."""
        return bool(self._maze_env.compute_reward(self.achieved_goal(), self.desired_goal(), {}) == 1.0)

    def agent_state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2]]).astype(np.float32)

    def _place_at_goal(self) -> None:
        self.data.qpos[:2] = self._maze_env.goal
        self.data.qvel[:2] = 0.0

    def achieved_goal(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    def desired_goal(self) -> np.ndarray:
        return self._maze_env.goal.copy()

    def _get_goal_params(self) -> np.ndarray:
        return self._maze_env.goal.copy()

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._maze_env.goal = params.copy()
        self._maze_env.update_target_site_pos()

    def close(self) -> None:
        super().close()
        self._maze_env.close()

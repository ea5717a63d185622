"""``wall``: a ball in two rooms joined by one door whose height changes per episode (DINO-WM / PLDM style).

The start is in one room and the goal in the other, and the door is never between their heights:
pushing towards the goal (and sliding along the wall) never finds it, so every sampled episode needs
a plan that first moves away from the goal's height to the door. Success: ball centre within 0.15 m of the goal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mujoco
import mujoco.batch
import numpy as np

from envs.base import GoalTask, spec_vector
from envs.errors import UserInputError
from envs.navigation import NavigationGrid
from envs.rendering import TopDownView

ASSET = Path(__file__).parent / "assets" / "wall.xml"


class WallTask(GoalTask):
    """Episode spec: ``{"start": [x, y], "goal": [x, y], "door": [y]}`` in metres; the ball starts at rest."""

    spec_keys = ("start", "goal", "door")
    state_dim = 5  # x, y, vx, vy, door height (the door changes the dynamics, so it is state)
    goal_dim = 2  # the goal position

    def __init__(
        self,
        obs: str = "pixels",
        image_size: int = 64,
        render_mode: str | None = None,
        success_threshold: float = 0.15,
        door_width: float = 0.4,
        door_range: float = 0.6,
        clearance: float = 0.05,
        action_repeat: int = 5,
    ) -> None:
        """``door_range``: door centres are drawn in [-door_range, door_range]; ``clearance``: the
        smallest gap between a sampled start/goal ball and a wall."""
        model = self._load_model()
        self.success_threshold = success_threshold
        self.door_width = door_width
        self.door_range = door_range
        self.clearance = clearance
        self.action_repeat = action_repeat
        self.radius = float(model.geom("agent").size[0])
        outer = model.geom("wall_east")
        self.half_arena = float(outer.pos[0] - outer.size[0])
        self.half_divider = float(model.geom("divider_upper").size[0])
        self._segment_half_length = float(model.geom("divider_upper").size[1])
        self._upper = model.body("divider_upper").mocapid[0]
        self._lower = model.body("divider_lower").mocapid[0]
        self._goal = np.zeros(2)
        view = TopDownView((0.0, 0.0), 2 * float(outer.pos[0] + outer.size[0]))  # arena and outer walls
        dt = model.opt.timestep * action_repeat
        super().__init__(model, mujoco.MjData(model), view, dt, obs, image_size, render_mode)

    def _load_model(self) -> mujoco.MjModel:
        """The arena and its one-door divider; a variant adds its bodies here."""
        return mujoco.MjModel.from_xml_path(str(ASSET))

    # ----- episodes ----------------------------------------------------------------------------
    def _draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        while True:
            door = rng.uniform(-self.door_range, self.door_range)
            side = rng.choice([-1.0, 1.0])
            start, goal = self._point_in_room(rng, side), self._point_in_room(rng, -side)
            if not self._door_on_the_way(start, goal, door):
                return {"start": start.tolist(), "goal": goal.tolist(), "door": [float(door)]}

    def _point_in_room(self, rng: np.random.Generator, side: float) -> np.ndarray:
        margin = self.radius + self.clearance
        x = side * rng.uniform(self.half_divider + margin, self.half_arena - margin)
        y = rng.uniform(-self.half_arena + margin, self.half_arena - margin)
        return np.array([x, y])

    def _door_on_the_way(self, start: np.ndarray, goal: np.ndarray, door: float) -> bool:
        """Whether the door lies between the start's and the goal's heights (with a ball radius of slack).

        A greedy controller keeps the ball's height between those two, and along the wall it slides
        towards the goal's height, so it gets through exactly when this holds.
        """
        slack = self.door_width / 2 + self.radius
        low, high = sorted((start[1], goal[1]))
        return low - slack <= door <= high + slack

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        start, goal = spec_vector(spec, "start", 2), spec_vector(spec, "goal", 2)
        door = float(spec_vector(spec, "door", 1)[0])
        door_limit = self.half_arena - self.door_width / 2
        if abs(door) > door_limit:
            raise UserInputError(
                f"wall door {door:.3f} is outside the arena: it must lie in [-{door_limit}, {door_limit}]"
            )
        for key, point in (("start", start), ("goal", goal)):
            if not self._is_free(point):
                raise UserInputError(
                    f"wall {key} {point.tolist()} is outside the arena: x must satisfy "
                    f"{self.half_divider + self.radius} <= |x| <= {self.half_arena - self.radius} and "
                    f"|y| <= {self.half_arena - self.radius}"
                )
        offset = self.door_width / 2 + self._segment_half_length
        self.data.mocap_pos[self._upper, 1] = door + offset
        self.data.mocap_pos[self._lower, 1] = door - offset
        self.data.qpos[:] = start
        self.data.qvel[:] = 0.0
        self._goal = goal

    def _is_free(self, point: np.ndarray) -> bool:
        x, y = np.abs(point)
        inner = self.half_arena - self.radius
        return self.half_divider + self.radius <= x <= inner and y <= inner

    # ----- dynamics and observations ------------------------------------------------------------
    def _advance(self, action: np.ndarray) -> None:
        self.data.ctrl[:] = action
        mujoco.mj_step(self.model, self.data, nstep=self.action_repeat)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        batch.ctrl = action  # the door's mocap poses are in each simulation's state row
        batch.step(nstep=self.action_repeat)

    def _achieved_goal_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        return batch.qpos[:, :2]

    def navigation_grid(self) -> NavigationGrid:
        """A grid fine enough that the door holds at least two free cells.

        A cell is free when the ball's centre may sit at its centre: inside the arena, clear of the
        divider, or within an open door. The odd cell count puts the middle column on the divider.
        """
        return self.grid_through(self.open_doors())

    def grid_through(self, doors: list[float]) -> NavigationGrid:
        """:meth:`navigation_grid` with the divider open at the door heights ``doors`` only."""
        door_band = self.door_width / 2 - self.radius  # how far the centre may stray from the door's middle
        cells = 2 * int(np.ceil(self.half_arena / door_band)) + 1
        size = 2 * self.half_arena / cells
        centers = -self.half_arena + (np.arange(cells) + 0.5) * size
        x, y = np.meshgrid(centers, centers[::-1])
        inside = (np.abs(x) <= self.half_arena - self.radius) & (np.abs(y) <= self.half_arena - self.radius)
        clear = np.abs(x) >= self.half_divider + self.radius
        for door in doors:
            clear |= np.abs(y - door) <= door_band
        return NavigationGrid(free=inside & clear, cell_size=size, x_min=-self.half_arena, y_max=self.half_arena)

    def open_doors(self) -> list[float]:
        """The heights of the doors the ball can pass now (one here; a variant may have two, or shut one)."""
        return [self.door()]

    def door(self) -> float:
        return float(self.data.mocap_pos[self._upper, 1] - self.door_width / 2 - self._segment_half_length)

    def agent_state(self) -> np.ndarray:
        return np.array([*self.data.qpos, *self.data.qvel, self.door()], dtype=np.float32)

    def _place_at_goal(self) -> None:
        self.data.qpos[:] = self._goal
        self.data.qvel[:] = 0.0

    def achieved_goal(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    def desired_goal(self) -> np.ndarray:
        return self._goal.copy()

    def _get_goal_params(self) -> np.ndarray:
        return self._goal.copy()

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._goal = params.copy()

"""``reacher``: Gymnasium's Reacher-v5 arm, made goal-conditioned.

The state observation is the arm's own state (no target in it), and so is the image: it draws the
arm only, with thicker links and a forearm in its own colour (rendering only). The goal is the
observation of an arm configuration whose fingertip is on the target, found by two-link inverse
kinematics (the elbow side the joints reach from the start by turning least). Success:
fingertip-target distance < 0.05 m.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mujoco
import mujoco.batch
import numpy as np
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv

from envs.base import GoalTask, spec_vector
from envs.errors import UserInputError
from envs.rendering import TopDownView


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class ReacherTask(GoalTask):
    """Episode spec: ``{"start": [shoulder, elbow] (rad, at rest), "goal": [x, y] (target, m)}``."""

    spec_keys = ("start", "goal")
    state_dim = 8  # cos(q0), cos(q1), sin(q0), sin(q1), dq0, dq1, fingertip x, fingertip y
    goal_dim = 2  # the joint angles of the goal configuration
    batch_outputs = ("xpos",)  # the fingertip position

    def __init__(
        self,
        obs: str = "pixels",
        image_size: int = 64,
        render_mode: str | None = None,
        success_threshold: float = 0.05,
        target_radius: float = 0.2,
        view_extent: float = 0.5,
        show_target: bool = False,
        link_radius: float = 0.02,
        forearm_rgba: tuple[float, float, float, float] = (0.9, 0.6, 0.1, 1.0),
    ) -> None:
        """``target_radius``: targets lie in this disk around the base (as Reacher-v5 samples them).

        ``show_target``: draw the target ball in pixel observations. Hidden by default, like the
        state observation leaves it out: the goal image already says where to go, and a world model
        fed a per-episode dot learns to encode the dot instead of the arm.
        ``link_radius`` (Reacher-v5 draws 0.01 m: 1-2 px at 64 px) and ``forearm_rgba`` (Reacher-v5
        paints both links alike, so the elbow's side hinges on single pixels) only change the
        picture: inertias were compiled from the XML before, and the links touch nothing.
        """
        self._arm = ReacherEnv()
        self.success_threshold = success_threshold
        self.target_radius = target_radius
        model = self._arm.model
        self._tip_body = model.body("fingertip").id
        self._upper_arm = float(model.body("body1").pos[0])
        self._forearm = float(model.body("fingertip").pos[0])
        self._elbow_range = model.joint("joint1").range.copy()
        self._goal_angles = np.zeros(2)
        if not show_target:
            model.geom_rgba[model.geom("target").id, 3] = 0.0  # rendering only: the target has no contacts
        for link in ("link0", "link1"):
            model.geom_size[model.geom(link).id, 0] = link_radius
        model.geom_rgba[model.geom("link1").id] = forearm_rgba
        view = TopDownView((0.0, 0.0), view_extent)
        super().__init__(model, self._arm.data, view, self._arm.dt, obs, image_size, render_mode)

    def _draw_task(self, rng: np.random.Generator) -> dict[str, Any]:
        start = [rng.uniform(-np.pi, np.pi), rng.uniform(*self._elbow_range)]
        radius = self.target_radius * np.sqrt(rng.uniform())  # uniform over the disk
        angle = rng.uniform(-np.pi, np.pi)
        goal = [radius * np.cos(angle), radius * np.sin(angle)]
        return {"start": [float(v) for v in start], "goal": [float(v) for v in goal]}

    def _apply_task(self, spec: Mapping[str, Any]) -> None:
        start = spec_vector(spec, "start", 2)
        target = spec_vector(spec, "goal", 2)
        low, high = self._elbow_range
        if not low <= start[1] <= high:
            raise UserInputError(
                f"reacher start elbow angle {start[1]:.3f} is outside the joint range [{low}, {high}]"
            )
        if np.linalg.norm(target) > self.target_radius:
            raise UserInputError(
                f"reacher goal {target.tolist()} is outside the arena: targets lie within "
                f"{self.target_radius} m of the base"
            )
        self.data.qpos[:2] = start
        self.data.qpos[2:4] = target
        self.data.qvel[:] = 0.0
        self._goal_angles = self._inverse_kinematics(target, start)

    def _inverse_kinematics(self, target: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Joint angles that put the fingertip on ``target``; of the two elbow sides, the one the joints
        reach from ``start`` by turning least (:meth:`_joint_travel`)."""
        l1, l2 = self._upper_arm, self._forearm
        cos_elbow = (target @ target - l1**2 - l2**2) / (2 * l1 * l2)
        elbow = np.clip(np.arccos(np.clip(cos_elbow, -1.0, 1.0)), *self._elbow_range)
        candidates = []
        for q1 in (elbow, -elbow):
            q0 = np.arctan2(target[1], target[0]) - np.arctan2(l2 * np.sin(q1), l1 + l2 * np.cos(q1))
            candidates.append(np.array([wrap_angle(q0), q1]))
        return min(candidates, key=lambda goal: self._joint_travel(start, goal))

    @staticmethod
    def _joint_travel(start: np.ndarray, goal: np.ndarray) -> float:
        """How far the joints turn from ``start`` to ``goal``: the shoulder turns freely (either way
        round), the elbow is limited to less than a full turn and cannot wrap past +-pi."""
        return float(abs(wrap_angle(goal[0] - start[0])) + abs(goal[1] - start[1]))

    def _advance(self, action: np.ndarray) -> None:
        self._arm.do_simulation(action, self._arm.frame_skip)

    def _advance_batch(self, batch: mujoco.batch.Batch, action: np.ndarray) -> None:
        """As ``do_simulation``; the positions stage then makes the fingertip's ``xpos`` current."""
        batch.ctrl = action
        batch.step(nstep=self._arm.frame_skip, stage=mujoco.mjtStage.mjSTAGE_POS)

    def _achieved_goal_batch(self, batch: mujoco.batch.Batch) -> np.ndarray:
        return batch.xpos[:, self._tip_body, :2]

    def agent_state(self) -> np.ndarray:
        q, dq = self.data.qpos[:2], self.data.qvel[:2]
        return np.concatenate([np.cos(q), np.sin(q), dq, self.achieved_goal()]).astype(np.float32)

    def _place_at_goal(self) -> None:
        self.data.qpos[:2] = self._goal_angles
        self.data.qvel[:2] = 0.0

    def achieved_goal(self) -> np.ndarray:
        return self.data.xpos[self._tip_body, :2].copy()

    def desired_goal(self) -> np.ndarray:
        return self.data.qpos[2:4].copy()

    def _get_goal_params(self) -> np.ndarray:
        return self._goal_angles.copy()

    def _set_goal_params(self, params: np.ndarray) -> None:
        self._goal_angles = params.copy()

    def close(self) -> None:
        super().close()
        self._arm.close()

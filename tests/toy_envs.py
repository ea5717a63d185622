"""Tiny hand-written envs for the adapter's tests: one GoalEnv-convention MuJoCo point, and broken ones.

``ToyGoalEnv`` is a ball on two slide joints whose motors take forces in [-2, 2] x [-1, 3] (so that our
[-1, 1] actions must be rescaled); it follows gymnasium-robotics' convention (dict observation,
``compute_reward``, ``info["is_success"]``) without depending on it, and draws a 16 x 16 picture
with one white pixel where the ball is (no GL: fast and exact).
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

POINT_XML = """
<mujoco>
  <option timestep="0.02"/>
  <worldbody>
    <body name="ball">
      <joint name="x" type="slide" axis="1 0 0" damping="1"/>
      <joint name="y" type="slide" axis="0 1 0" damping="1"/>
      <geom type="sphere" size="0.05" mass="1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="x" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="y" ctrllimited="true" ctrlrange="-1 3"/>
  </actuator>
</mujoco>
"""
ARENA = 1.0  # starts and goals lie in [-ARENA, ARENA]^2
SUCCESS = 0.1  # the toy's own success radius (is_success)


class ToyGoalEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, render_mode: str | None = None, width: int = 16, height: int = 16,
                 success_on_reset: bool = True) -> None:
        self._model = mujoco.MjModel.from_xml_string(POINT_XML)
        self._data = mujoco.MjData(self._model)
        self.size = (height, width)
        self.success_on_reset = success_on_reset  # Fetch-like envs say nothing about success on reset
        self.goal = np.zeros(2)
        self.last_action: np.ndarray | None = None
        low, high = self._model.actuator_ctrlrange[:, 0], self._model.actuator_ctrlrange[:, 1]
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32))
        box = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.observation_space = spaces.Dict({"observation": spaces.Box(-np.inf, np.inf, (4,), np.float64),
                                              "achieved_goal": box, "desired_goal": box})

    @property
    def model(self) -> mujoco.MjModel:
        return self._model

    @property
    def data(self) -> mujoco.MjData:
        return self._data

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {"observation": np.concatenate([self._data.qpos, self._data.qvel]),
                "achieved_goal": self._data.qpos.copy(), "desired_goal": self.goal.copy()}

    def compute_reward(self, achieved: np.ndarray, desired: np.ndarray, info: dict) -> float:
        return -float(np.linalg.norm(achieved - desired) >= SUCCESS)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self._model, self._data)
        self._data.qpos[:] = self.np_random.uniform(-ARENA, ARENA, 2)
        self.goal = self.np_random.uniform(-ARENA, ARENA, 2)
        mujoco.mj_forward(self._model, self._data)
        obs = self._get_obs()
        info = {"is_success": self._success(obs)} if self.success_on_reset else {}
        return obs, info

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.last_action = np.asarray(action).copy()
        self._data.ctrl[:] = action
        mujoco.mj_step(self._model, self._data)
        obs = self._get_obs()
        return obs, self.compute_reward(obs["achieved_goal"], self.goal, {}), False, False, {
            "is_success": self._success(obs)}

    def _success(self, obs: dict[str, np.ndarray]) -> bool:
        return bool(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) < SUCCESS)

    def render(self) -> np.ndarray:
        """One white pixel at the ball (ball positions beyond the arena are drawn at its edge)."""
        frame = np.zeros((*self.size, 3), np.uint8)
        row, col = ((np.clip(self._data.qpos[::-1], -ARENA, ARENA) + ARENA) / (2 * ARENA) * (np.array(self.size) - 1))
        frame[int(round(row)), int(round(col))] = 255
        return frame


class NoMujocoGoalEnv(ToyGoalEnv):
    """The same env with its simulator hidden: no saved state, so no oracle, and no goal image."""

    @property
    def model(self) -> mujoco.MjModel:
        raise AttributeError("model")

    @property
    def data(self) -> mujoco.MjData:
        raise AttributeError("data")


class NoGoalEnv(ToyGoalEnv):
    """A plain Box observation: no goal anywhere."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float64)


class DiscreteEnv(ToyGoalEnv):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.action_space = spaces.Discrete(4)


class UnboundedEnv(ToyGoalEnv):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)

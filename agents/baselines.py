"""Baselines in the same harness as the JEPA agent: a random floor and the simulator oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.energy import Energy
from agents.mpc import RecedingHorizon
from agents.planners.base import Planner


class RandomAgent:
    """Uniform actions in ``[-1, 1]``: the floor every success rate should be read against."""

    def __init__(self, action_dim: int, seed: int = 0) -> None:
        self.action_dim = action_dim
        self.rng = np.random.default_rng(seed)
        self.last_energy = float("nan")

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


class OracleMPC(RecedingHorizon):
    """The same planner and budget with the true simulator as the model: the upper bound for planning.

    All candidate sequences are rolled out at once by ``sim_env.simulate_batch`` (a private
    ``obs="state"`` env of the same task; its batched simulator equals stepping the env) from a copy of
    the acting env's full simulator state; the energy compares the achieved goal positions ``(N, H, g)``
    with the desired one, in the task's own units.
    """

    def __init__(self, env: Any, sim_env: Any, planner: Planner, energy: Energy, replan_every: int) -> None:
        super().__init__(planner, replan_every)
        self.env = env
        self.sim = sim_env.unwrapped
        self.energy = energy

    def replan(self, obs: dict[str, np.ndarray], info: dict[str, Any], warm: torch.Tensor | None) -> torch.Tensor:
        start = self.env.unwrapped.get_sim_state()
        goal = torch.as_tensor(info["desired_goal"], dtype=torch.float32, device=self.planner.device)

        def true_cost(actions: torch.Tensor) -> torch.Tensor:
            achieved = self.sim.simulate_batch(start, actions.detach().cpu().numpy())
            return self.energy(torch.as_tensor(achieved, device=actions.device), goal, actions)

        return self.planner.minimize(true_cost, warm)

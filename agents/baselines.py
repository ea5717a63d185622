"""Baselines in the same harness as the JEPA agent: a random floor and the simulator oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from agents.energy import final_and_running
from agents.mpc import RecedingHorizon
from agents.planners.base import Planner
from envs.errors import UserInputError
from envs.navigation import CostFn, straight_cost_to_go


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
    the acting env's full simulator state. Each simulated position is scored by the task's true
    cost-to-go to the goal (``cost="path"``: the shortest path round the walls, ``GoalTask.cost_to_go``),
    as ``final_weight * cost_H + running_weight * mean_t cost_t``. ``cost="straight"`` scores the
    straight distance instead: a greedy simulator that stalls behind walls, not an upper bound.
    """

    COSTS = ("path", "straight")

    def __init__(
        self, env: Any, sim_env: Any, planner: Planner, replan_every: int, cost: str = "path",
        final_weight: float = 1.0, running_weight: float = 0.5,
    ) -> None:
        if cost not in self.COSTS:
            raise UserInputError(f"oracle.cost={cost!r}; choose one of: {', '.join(self.COSTS)}")
        super().__init__(planner, replan_every)
        self.env = env
        self.sim = sim_env.unwrapped
        self.cost, self.final_weight, self.running_weight = cost, final_weight, running_weight
        self._cost_to_go: CostFn | None = None  # this episode's, built at its first plan

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._cost_to_go = None

    def replan(self, obs: dict[str, np.ndarray], info: dict[str, Any], warm: torch.Tensor | None) -> torch.Tensor:
        task = self.env.unwrapped
        if self._cost_to_go is None:
            goal = np.asarray(info["desired_goal"])
            self._cost_to_go = task.cost_to_go(goal) if self.cost == "path" else straight_cost_to_go(goal)
        start, cost_to_go = task.get_sim_state(), self._cost_to_go

        def true_cost(actions: torch.Tensor) -> torch.Tensor:
            achieved = self.sim.simulate_batch(start, actions.detach().cpu().numpy())  # (N, H, g)
            per_step = torch.as_tensor(cost_to_go(achieved), dtype=torch.float32, device=actions.device)
            return final_and_running(per_step, self.final_weight, self.running_weight)

        return self.planner.minimize(true_cost, warm)

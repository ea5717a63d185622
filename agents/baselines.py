"""Baselines in the same harness as the JEPA agent: a random floor and the simulator oracle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.cost import Uncertainty
from agents.energy import final_and_running
from agents.mpc import RecedingHorizon
from agents.planners.base import Planner
from envs.errors import UserInputError
from envs.navigation import CostFn, straight_cost_to_go
from envs.protocols import ChanceSimulator


class RandomAgent:
    """Uniform actions in ``[-1, 1]``: the floor every success rate should be read against.

    Each slot (env) draws from its own generator, reseeded with its episode's seed.
    """

    last_energy = float("nan")

    def __init__(self, action_dim: int, seed: int = 0) -> None:
        self.action_dim = action_dim
        self.seed = seed
        self.rngs: dict[int, np.random.Generator] = {}

    def energy_of(self, slot: int) -> float:
        """No plan, no energy."""
        return float("nan")

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        if seed is not None or slot not in self.rngs:
            self.rngs[slot] = np.random.default_rng(self.seed if seed is None else seed)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return self.act_batch([0], [obs], [info])[0]

    def act_batch(self, slots: Sequence[int], observations: Sequence[dict[str, np.ndarray]],
                  infos: Sequence[dict[str, Any]]) -> np.ndarray:
        for slot in slots:
            if slot not in self.rngs:
                self.reset(slot=slot)
        return np.stack([self.rngs[s].uniform(-1.0, 1.0, self.action_dim) for s in slots]).astype(np.float32)


class OracleMPC(RecedingHorizon):
    """The same planner and budget with the true simulator as the model: the upper bound for planning.

    All candidate sequences are rolled out at once by ``sim_env.simulate_batch`` (a private
    ``obs="state"`` env of the same task; its batched simulator equals stepping the env) from a copy of
    the acting env's full simulator state. Each simulated position is scored by the task's true
    cost-to-go to the goal (``cost="path"``: the shortest path round the walls, ``GoalTask.cost_to_go``),
    as ``final_weight * cost_H + running_weight * mean_t cost_t``. ``cost="straight"`` scores the
    straight distance instead: a greedy simulator that stalls behind walls, not an upper bound.

    The rows scored are ``simulate_batch(..., scored=True)``'s: the achieved goal, then whatever else the
    task's cost-to-go reads (pusht: the pusher's position, whose gap to the block its cost adds).

    ``envs`` are the acting envs, slot ``i`` acting in ``envs[i]`` (one env: slot 0); the plans due
    at one step are made by one planner call, each slot's candidates simulated from its own env.

    On a simulator with chance of its own (:class:`~envs.protocols.ChanceSimulator`: the stochastic
    wall variants), each candidate is simulated under ``uncertainty.samples`` draws, the same for every
    candidate, and its costs reduced by ``uncertainty`` as the JEPA agent's are over its model's
    futures: one draw per candidate would let CEM keep the candidates that were lucky.
    """

    COSTS = ("path", "straight")

    def __init__(
        self, envs: Any | Sequence[Any], sim_env: Any, planner: Planner, replan_every: int, cost: str = "path",
        final_weight: float = 1.0, running_weight: float = 0.5, uncertainty: Uncertainty | None = None,
    ) -> None:
        if cost not in self.COSTS:
            raise UserInputError(f"oracle.cost={cost!r}; choose one of: {', '.join(self.COSTS)}")
        super().__init__(planner, replan_every)
        self.envs = list(envs) if isinstance(envs, (list, tuple)) else [envs]
        self.sim = sim_env.unwrapped
        self.cost, self.final_weight, self.running_weight = cost, final_weight, running_weight
        self.uncertainty = uncertainty or Uncertainty()
        self.futures = self.uncertainty.samples if isinstance(self.sim, ChanceSimulator) else 1
        self._cost_to_go: dict[int, CostFn] = {}  # per slot: this episode's, built at its first plan

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        super().reset(seed, slot)
        self._cost_to_go.pop(slot, None)

    def _episode_cost(self, slot: int, info: dict[str, Any]) -> CostFn:
        if slot not in self._cost_to_go:
            goal = np.asarray(info["desired_goal"])
            task = self.envs[slot].unwrapped
            self._cost_to_go[slot] = task.cost_to_go(goal) if self.cost == "path" else straight_cost_to_go(goal)
        return self._cost_to_go[slot]

    def replan_batch(self, slots: Sequence[int], observations: Sequence[dict[str, np.ndarray]],
                     infos: Sequence[dict[str, Any]], warms: Sequence[torch.Tensor | None]) -> torch.Tensor:
        starts = [self.envs[slot].unwrapped.get_sim_state() for slot in slots]
        costs_to_go = [self._episode_cost(slot, info) for slot, info in zip(slots, infos, strict=True)]

        def true_cost(actions: torch.Tensor) -> torch.Tensor:  # (E, N, H, A) -> (E, N)
            per_problem = []
            for start, cost_to_go, candidates in zip(starts, costs_to_go, actions, strict=True):
                sequences = candidates.detach().cpu().numpy()
                if self.futures == 1:
                    achieved = self.sim.simulate_batch(start, sequences, scored=True)  # (N, H, g + extra)
                else:
                    achieved = self.sim.simulate_futures(start, sequences, self.futures, scored=True)  # (N, K, H, .)
                    achieved = achieved.reshape(-1, *achieved.shape[2:])  # (N * K, H, .): candidate-major
                per_step = torch.as_tensor(cost_to_go(achieved), dtype=torch.float32, device=actions.device)
                cost = final_and_running(per_step, self.final_weight, self.running_weight)
                per_problem.append(cost if self.futures == 1 else self.uncertainty.reduce(cost.reshape(-1, self.futures)))
            return torch.stack(per_problem)

        return self.planner.minimize_batch(true_cost, warms, slots)

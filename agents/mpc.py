"""Receding-horizon control with a learned world model: encode, plan in latent space, act, replan."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from agents.cost import LatentCost
from agents.planners.base import Planner
from agents.protocols import Energy, LatentModel
from worldmodel.frames import FrameHistory


def shift_plan(plan: torch.Tensor, steps: int) -> torch.Tensor:
    """Drop the ``steps`` executed actions and repeat the last one, the warm start for the next plan."""
    tail = plan[steps:]
    return torch.cat([tail, plan[-1:].expand(steps, -1)])


class RecedingHorizon(ABC):
    """Execute the first ``replan_every`` actions of each plan, then replan from a shifted warm start.

    Subclasses say how to plan from the current observation; this class owns the bookkeeping shared
    by the JEPA agent and the simulator oracle.
    """

    def __init__(self, planner: Planner, replan_every: int) -> None:
        if not 1 <= replan_every <= planner.horizon:
            raise ValueError(f"replan_every must be in [1, horizon={planner.horizon}], got {replan_every}")
        self.planner = planner
        self.replan_every = replan_every
        self.plan: torch.Tensor | None = None
        self.cursor = 0
        self.last_energy = float("nan")  # energy of the plan being executed, for logs and videos

    def reset(self, seed: int | None = None) -> None:
        self.plan, self.cursor = None, 0
        self.last_energy = float("nan")
        if seed is not None:
            self.planner.reseed(seed)

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        if self.plan is None or self.cursor == self.replan_every:
            warm = None if self.plan is None else shift_plan(self.plan, self.cursor)
            self.plan = self.replan(obs, info, warm)
            self.cursor = 0
            self.last_energy = self.planner.last_cost
        action = self.plan[self.cursor]
        self.cursor += 1
        return action.detach().cpu().numpy().astype(np.float32)

    @abstractmethod
    def replan(self, obs: dict[str, np.ndarray], info: dict[str, Any], warm: torch.Tensor | None) -> torch.Tensor:
        """A new plan ``(H, A)`` from the current observation (``warm``: the shifted previous plan)."""


class MPCAgent(RecedingHorizon):
    """The JEPA agent: the goal is encoded once per episode, the observation at every replan.

    Every observation goes into a frame history (the model's ``frame_stack`` latest ones), also
    between replans; the goal is encoded as a configuration at rest. Each plan minimises a fresh
    :class:`~agents.cost.LatentCost` (``model``'s rollout scored by ``energy``): the planner itself
    only optimises, as it does for the oracle.
    """

    def __init__(self, model: LatentModel, energy: Energy, planner: Planner, replan_every: int) -> None:
        super().__init__(planner, replan_every)
        self.model = model
        self.energy = energy
        self.history = FrameHistory(model.frame_stack)
        self.z_goal: torch.Tensor | None = None
        self._stacked: torch.Tensor | None = None  # the current observation with its history

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.history.reset()
        self.z_goal = None

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        self._stacked = self.history.push(np.asarray(obs["observation"]))
        return super().act(obs, info)

    @torch.no_grad()
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x[None])[0]

    def replan(self, obs: dict[str, np.ndarray], info: dict[str, Any], warm: torch.Tensor | None) -> torch.Tensor:
        if self.z_goal is None:
            self.z_goal = self._encode(self.history.still(np.asarray(obs["goal"])))
        device = self.planner.device  # where the planner makes its candidates
        cost = LatentCost(self.model, self.energy, self._encode(self._stacked).to(device), self.z_goal.to(device))
        return self.planner.minimize(cost, warm)

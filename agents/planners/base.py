"""One interface for every planner: minimise a batched cost over bounded action sequences.

A planner is a pure optimiser of a :class:`~agents.protocols.Cost`, ``cost(actions (N, H, A)) -> (N,)``.
It holds no model and no energy: the JEPA agent passes an :class:`~agents.cost.LatentCost` (world
model rollout + energy), the simulator oracle its own cost, the tests analytic ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from agents.protocols import Cost

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # every task's action space (docs/ARCHITECTURE.md)


class Planner(ABC):
    """Finds an action sequence ``(horizon, action_dim)`` in ``[-1, 1]`` with a low cost.

    Randomness comes from a private ``torch.Generator`` so that a planner reseeded with the same
    seed returns the same plan. Candidates are made on ``device``: the cost must accept them there.
    """

    def __init__(self, horizon: int, action_dim: int, seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.horizon = horizon
        self.action_dim = action_dim
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.reseed(seed)
        self.last_cost = float("nan")  # cost of the plan returned last, for logs and videos
        self.last_evaluations = 0  # candidate sequences scored for that plan (compute per plan)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    @abstractmethod
    def minimize(self, cost: Cost, warm_start: torch.Tensor | None = None) -> torch.Tensor:
        """Return the best sequence ``(H, A)`` found for ``cost``; set ``last_cost``/``last_evaluations``."""

    def initial_mean(self, warm_start: torch.Tensor | None) -> torch.Tensor:
        """The warm start (clamped to the bounds) or zeros, the centre of the action box."""
        if warm_start is None:
            return torch.zeros(self.horizon, self.action_dim, device=self.device)
        return warm_start.to(self.device, torch.float32).clamp(ACTION_LOW, ACTION_HIGH)

    def gaussian(self, samples: int) -> torch.Tensor:
        """Standard normal noise ``(samples, H, A)`` from the planner's own generator."""
        shape = (samples, self.horizon, self.action_dim)
        return torch.randn(shape, generator=self.generator, device=self.device)

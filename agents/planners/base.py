"""One interface for every planner: minimise a batched cost over bounded action sequences.

A planner only needs ``cost(actions (N, H, A)) -> (N,)``; :meth:`Planner.plan` builds that cost from
a world model rollout and an :class:`~agents.energy.Energy`, so the same optimiser also drives the
simulator-based oracle (which passes its own cost to :meth:`Planner.minimize`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch

Cost = Callable[[torch.Tensor], torch.Tensor]

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # every task's action space (docs/ARCHITECTURE.md)


class Planner(ABC):
    """Finds an action sequence ``(horizon, action_dim)`` in ``[-1, 1]`` with a low cost.

    ``model`` (``rollout(z0 (B, D), actions (B, H, A)) -> (B, H, D)``) and ``energy`` are only
    needed by :meth:`plan`. Randomness comes from a private ``torch.Generator`` so that a planner
    reseeded with the same seed returns the same plan.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        model: Any = None,
        energy: Any = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.horizon = horizon
        self.action_dim = action_dim
        self.model = model
        self.energy = energy
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

    def plan(
        self, z0: torch.Tensor, z_goal: torch.Tensor, warm_start: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Plan from latent ``z0 (D,)`` towards ``z_goal (D,)`` through the world model."""
        if self.model is None or self.energy is None:
            raise ValueError("plan() needs a planner built with a model and an energy; use minimize()")
        z0 = z0.reshape(1, -1).to(self.device)
        z_goal = z_goal.reshape(-1).to(self.device)
        if hasattr(self.energy, "prepare"):
            self.energy.prepare(z0[0], z_goal)

        def latent_cost(actions: torch.Tensor) -> torch.Tensor:
            z_pred = self.model.rollout(z0.expand(actions.shape[0], -1), actions)
            return self.energy(z_pred, z_goal, actions)

        return self.minimize(latent_cost, warm_start)

    def initial_mean(self, warm_start: torch.Tensor | None) -> torch.Tensor:
        """The warm start (clamped to the bounds) or zeros, the centre of the action box."""
        if warm_start is None:
            return torch.zeros(self.horizon, self.action_dim, device=self.device)
        return warm_start.to(self.device, torch.float32).clamp(ACTION_LOW, ACTION_HIGH)

    def gaussian(self, samples: int) -> torch.Tensor:
        """Standard normal noise ``(samples, H, A)`` from the planner's own generator."""
        shape = (samples, self.horizon, self.action_dim)
        return torch.randn(shape, generator=self.generator, device=self.device)

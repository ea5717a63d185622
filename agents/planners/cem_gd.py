"""CEM for a global search, then gradient descent to polish its best sequence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from agents.planners.base import BatchCost, Planner
from agents.planners.cem import CEM
from agents.planners.gradient import GradientPlanner


class CEMGradient(Planner):
    """Sampling escapes local minima that trap gradients; gradients then refine what sampling found.

    ``cem`` and ``gradient`` hold the keyword arguments of the two stages (their budgets).
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        cem: Mapping[str, Any],
        gradient: Mapping[str, Any],
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cem = CEM(horizon, action_dim, **dict(cem), device=device)
        self.gradient = GradientPlanner(horizon, action_dim, **dict(gradient), device=device)
        super().__init__(horizon, action_dim, seed, device)  # reseeds both stages

    def reseed(self, seed: int, slot: int = 0) -> None:
        super().reseed(seed, slot)
        self.cem.reseed(seed, slot)
        self.gradient.reseed(seed + 1, slot)

    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        coarse = self.cem.minimize_batch(cost, warm_starts, slots)
        refined = self.gradient.minimize_batch(cost, list(coarse), slots)
        # the gradient stage scores the CEM result as its first iterate, so it never returns worse
        self.last_costs = self.gradient.last_costs
        self.last_evaluations = self.cem.last_evaluations + self.gradient.last_evaluations
        return refined

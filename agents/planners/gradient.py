"""Gradient descent on the action sequence through the differentiable cost (world model rollout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, BatchCost, Planner, keep_better, rows


class GradientPlanner(Planner):
    """Adam on ``samples`` parallel sequences, projected onto ``[-1, 1]`` after every step.

    Projection (clamping) rather than a tanh reparameterisation keeps the bounds reachable and the
    gradients undamped near them. The first sequence starts at the warm start (or zeros), the others
    at ``init_std`` Gaussian perturbations of it; the cheapest iterate seen is returned.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int,
        iterations: int,
        lr: float,
        init_std: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon, action_dim, **kwargs)
        self.samples = samples
        self.iterations = iterations
        self.lr = lr
        self.init_std = init_std

    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        mean = self.initial_means(warm_starts)  # (E, H, A)
        noise = self.init_std * self.gaussian(self.samples - 1, slots)
        actions = torch.cat([mean[:, None], mean[:, None] + noise], dim=1).clamp(ACTION_LOW, ACTION_HIGH)
        actions.requires_grad_(True)
        optimizer = torch.optim.Adam([actions], lr=self.lr)
        best, best_cost = mean, torch.full(mean.shape[:1], float("inf"), device=self.device)
        with torch.enable_grad():
            for step in range(self.iterations + 1):
                costs = cost(actions)  # (E, N)
                index = torch.argmin(costs.detach(), dim=1)
                # Adam can overshoot: keep the best iterate, not the last
                best, best_cost = keep_better(best, best_cost, rows(actions.detach(), index).clone(),
                                              rows(costs.detach(), index))
                if step == self.iterations:
                    break
                # summing keeps each sequence's gradient independent of the others (and of other problems)
                (actions.grad,) = torch.autograd.grad(costs.sum(), actions)
                optimizer.step()
                with torch.no_grad():
                    actions.clamp_(ACTION_LOW, ACTION_HIGH)
        self.last_costs = best_cost.tolist()
        self.last_evaluations = self.samples * (self.iterations + 1)
        return best

"""Gradient descent on the action sequence through the differentiable cost (world model rollout)."""

from __future__ import annotations

from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, Cost, Planner


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

    def minimize(self, cost: Cost, warm_start: torch.Tensor | None = None) -> torch.Tensor:
        mean = self.initial_mean(warm_start)
        noise = self.init_std * self.gaussian(self.samples - 1)
        actions = torch.cat([mean[None], mean + noise]).clamp(ACTION_LOW, ACTION_HIGH).requires_grad_(True)
        optimizer = torch.optim.Adam([actions], lr=self.lr)
        best, best_cost = mean, float("inf")
        with torch.enable_grad():
            for step in range(self.iterations + 1):
                costs = cost(actions)
                index = int(torch.argmin(costs.detach()))
                if costs[index].item() < best_cost:  # Adam can overshoot: keep the best iterate, not the last
                    best, best_cost = actions.detach()[index].clone(), costs[index].item()
                if step == self.iterations:
                    break
                # summing keeps each sequence's gradient independent of the others
                (actions.grad,) = torch.autograd.grad(costs.sum(), actions)
                optimizer.step()
                with torch.no_grad():
                    actions.clamp_(ACTION_LOW, ACTION_HIGH)
        self.last_cost = best_cost
        self.last_evaluations = self.samples * (self.iterations + 1)
        return best

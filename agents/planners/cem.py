"""Cross-entropy method: refit a diagonal Gaussian to the best samples, a few times per plan."""

from __future__ import annotations

from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, Cost, Planner


class CEM(Planner):
    """Sample ``samples`` sequences around the mean, keep the ``elites`` cheapest, refit, repeat.

    The current mean is always scored too, so a good warm start is never lost. The plan is the
    cheaper of the final mean and the best sample seen: the mean averages the elites' noise away
    (an agent at its goal then holds still), the best sample guards against a mean between two modes.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int,
        iterations: int,
        elites: int,
        init_std: float,
        min_std: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon, action_dim, **kwargs)
        if not 0 < elites <= samples:
            raise ValueError(f"CEM needs 0 < elites <= samples, got elites={elites}, samples={samples}")
        self.samples = samples
        self.iterations = iterations
        self.elites = elites
        self.init_std = init_std
        self.min_std = min_std

    @torch.no_grad()
    def minimize(self, cost: Cost, warm_start: torch.Tensor | None = None) -> torch.Tensor:
        mean = self.initial_mean(warm_start)
        std = torch.full_like(mean, self.init_std)
        best, best_cost = mean, float("inf")
        for _ in range(self.iterations):
            noise = self.gaussian(self.samples - 1)
            candidates = torch.cat([mean[None], mean + std * noise]).clamp(ACTION_LOW, ACTION_HIGH)
            costs = cost(candidates)
            order = torch.argsort(costs)
            if costs[order[0]] < best_cost:
                best, best_cost = candidates[order[0]], float(costs[order[0]])
            elite = candidates[order[: self.elites]]
            mean = elite.mean(dim=0)
            std = elite.std(dim=0, unbiased=False).clamp_min(self.min_std)
        mean_cost = float(cost(mean[None])[0])
        self.last_evaluations = self.samples * self.iterations + 1
        if mean_cost <= best_cost:
            best, best_cost = mean, mean_cost
        self.last_cost = best_cost
        return best

"""Cross-entropy method: refit a diagonal Gaussian to the best samples, a few times per plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, BatchCost, Planner, keep_better, rows


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
    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        mean = self.initial_means(warm_starts)  # (E, H, A)
        std = torch.full_like(mean, self.init_std)
        best, best_cost = mean, torch.full(mean.shape[:1], float("inf"), device=self.device)
        for _ in range(self.iterations):
            noise = self.gaussian(self.samples - 1, slots)
            candidates = torch.cat([mean[:, None], mean[:, None] + std[:, None] * noise], dim=1)
            candidates = candidates.clamp(ACTION_LOW, ACTION_HIGH)  # (E, N, H, A)
            costs = cost(candidates)
            order = torch.argsort(costs, dim=1)
            best, best_cost = keep_better(best, best_cost, rows(candidates, order[:, 0]), rows(costs, order[:, 0]))
            elite = rows(candidates, order[:, : self.elites])
            mean = elite.mean(dim=1)
            std = elite.std(dim=1, unbiased=False).clamp_min(self.min_std)
        mean_cost = cost(mean[:, None])[:, 0]
        self.last_evaluations = self.samples * self.iterations + 1
        best, best_cost = keep_better(best, best_cost, mean, mean_cost, ties_to_other=True)
        self.last_costs = best_cost.tolist()
        return best

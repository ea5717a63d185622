"""Model predictive path integral: move the mean towards an exponentially weighted sample average."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, BatchCost, Planner


class MPPI(Planner):
    """Each iteration: perturb the mean with fixed ``noise_std``, weight by ``softmax(-cost / T)``.

    Costs are rescaled to [0, 1] within each batch before weighting, so one ``temperature`` works
    for energies of any scale (latent distances differ between models and tasks). The weighted mean
    after the last iteration is the plan, scored once more to report its cost.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int,
        iterations: int,
        noise_std: float,
        temperature: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon, action_dim, **kwargs)
        self.samples = samples
        self.iterations = iterations
        self.noise_std = noise_std
        self.temperature = temperature

    @torch.no_grad()
    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        mean = self.initial_means(warm_starts)  # (E, H, A)
        for _ in range(self.iterations):
            noise = self.gaussian(self.samples - 1, slots)
            candidates = torch.cat([mean[:, None], mean[:, None] + self.noise_std * noise], dim=1)
            candidates = candidates.clamp(ACTION_LOW, ACTION_HIGH)  # (E, N, H, A)
            costs = cost(candidates)
            low, high = costs.min(dim=1, keepdim=True).values, costs.max(dim=1, keepdim=True).values
            scaled = (costs - low) / (high - low).clamp_min(1e-12)
            weights = torch.softmax(-scaled / self.temperature, dim=1)
            # a weighted sum along the samples alone (einsum's batched matmul rounds by batch size)
            mean = (weights[:, :, None, None] * candidates).sum(dim=1)
        self.last_costs = cost(mean[:, None])[:, 0].tolist()
        self.last_evaluations = self.samples * self.iterations + 1
        return mean

"""Model predictive path integral: move the mean towards an exponentially weighted sample average."""

from __future__ import annotations

from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, Cost, Planner


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
    def minimize(self, cost: Cost, warm_start: torch.Tensor | None = None) -> torch.Tensor:
        mean = self.initial_mean(warm_start)
        for _ in range(self.iterations):
            noise = self.gaussian(self.samples - 1)
            candidates = torch.cat([mean[None], mean + self.noise_std * noise]).clamp(ACTION_LOW, ACTION_HIGH)
            costs = cost(candidates)
            scaled = (costs - costs.min()) / (costs.max() - costs.min()).clamp_min(1e-12)
            weights = torch.softmax(-scaled / self.temperature, dim=0)
            mean = torch.einsum("n,nha->ha", weights, candidates)
        self.last_cost = float(cost(mean[None])[0])
        self.last_evaluations = self.samples * self.iterations + 1
        return mean

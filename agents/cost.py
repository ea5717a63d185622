"""The cost a JEPA agent's planner minimises: roll candidates out through the world model, score the latents."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from agents.protocols import Dynamics, Energy


class LatentCost:
    """``actions (N, H, A) -> energy(model.rollout(z0, actions), z_goal, actions) (N,)``, for one plan.

    Built once per plan, from where the plan starts (``z0 (D,)``) and the goal (``z_goal (D,)``);
    the constructor calls ``energy.prepare(z0, z_goal)`` so that an energy which depends on the
    start (a waypoint on the landmark graph) is set up exactly once, before the planner scores any
    candidate. Planners see only a :class:`~agents.protocols.Cost`: the same optimiser drives the
    simulator oracle, which passes its own cost.

    How a candidate's latent future is predicted belongs here, not in the planners. A stochastic
    world model (one that samples a latent variable per step) would roll each candidate out under
    ``K`` sampled latent variables, ``(N * K, H, D)``, score all of them, and reduce the ``K`` energies
    of a candidate to one number: their mean (the expected energy) or a risk statistic (a high
    quantile, CVaR). The planners keep minimising ``(N, H, A) -> (N,)`` unchanged.
    """

    def __init__(self, model: Dynamics, energy: Energy, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        self.model = model
        self.energy = energy
        self.z0 = z0.reshape(1, -1)
        self.z_goal = z_goal.reshape(-1)
        energy.prepare(self.z0[0], self.z_goal)

    def score(self, z_pred: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The energy of predicted latents ``z_pred (N, H, D)`` reached under ``actions (N, H, A)``."""
        return self.energy(z_pred, self.z_goal, actions)

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        # differentiable in actions: the gradient planner descends through the rollout
        return self.score(self.model.rollout(self.z0.expand(actions.shape[0], -1), actions), actions)


class BatchLatentCost:
    """Several plans' :class:`LatentCost` on one model, as one :class:`~agents.protocols.BatchCost`:
    ``actions (E, N, H, A) -> (E, N)``.

    All ``E * N`` candidates go through the model in one rollout (one large batch instead of ``E``
    small ones); each plan's energy then scores its own ``N``. A row of a rollout does not depend on
    the other rows, so each plan's costs are those its :class:`LatentCost` alone gives.
    """

    def __init__(self, costs: Sequence[LatentCost]) -> None:
        if not costs or any(cost.model is not costs[0].model for cost in costs):
            raise ValueError("BatchLatentCost needs at least one LatentCost, all on one model")
        self.costs = list(costs)
        self.model = costs[0].model
        self.z0 = torch.cat([cost.z0 for cost in costs])  # (E, D)

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        problems, candidates = actions.shape[:2]
        flat = actions.reshape(problems * candidates, *actions.shape[2:])
        z_pred = self.model.rollout(self.z0.repeat_interleave(candidates, dim=0), flat)
        z_pred = z_pred.reshape(problems, candidates, *z_pred.shape[1:])
        return torch.stack([cost.score(z_pred[e], actions[e]) for e, cost in enumerate(self.costs)])

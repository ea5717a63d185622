"""The cost a JEPA agent's planner minimises: roll candidates out through the world model, score the latents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agents.protocols import Dynamics, Energy, StochasticDynamics


@dataclass(frozen=True)
class Uncertainty:
    """How a plan is scored under a latent-variable model: ``samples`` futures per candidate (the same
    ``samples`` draws of ``u`` for every candidate of a plan: common random numbers, so that candidates
    are compared on the same futures), reduced by ``statistic``: ``mean`` (the expected energy) or
    ``cvar`` (the mean of the worst ``1 - quantile`` of the futures: a plan that is bad in one branch
    in five is dear). A deterministic model always predicts one future."""

    samples: int = 1
    statistic: str = "mean"
    quantile: float = 0.8

    STATISTICS = ("mean", "cvar")

    def __post_init__(self) -> None:
        if self.samples < 1 or self.statistic not in self.STATISTICS or not 0.0 <= self.quantile < 1.0:
            raise ValueError(f"uncertainty needs samples >= 1, statistic in {self.STATISTICS} and quantile in [0, 1), "
                             f"got {self.samples}, {self.statistic!r}, {self.quantile}")

    def reduce(self, energies: torch.Tensor) -> torch.Tensor:
        """``(N, K)`` energies of each candidate's futures -> ``(N,)``."""
        if self.statistic == "mean":
            return energies.mean(dim=1)
        worst = max(1, round((1.0 - self.quantile) * energies.shape[1]))
        return energies.topk(worst, dim=1).values.mean(dim=1)


class LatentCost:
    """``actions (N, H, A) -> energy(model.rollout(z0, actions), z_goal, actions) (N,)``, for one plan.

    Built once per plan, from where the plan starts (``z0 (D,)``) and the goal (``z_goal (D,)``);
    the constructor calls ``energy.prepare(z0, z_goal)`` so that an energy which depends on the
    start (a waypoint on the landmark graph) is set up exactly once, before the planner scores any
    candidate. Planners see only a :class:`~agents.protocols.Cost`: the same optimiser drives the
    simulator oracle, which passes its own cost.

    How a candidate's latent future is predicted belongs here, not in the planners. A latent-variable
    model (:class:`~agents.protocols.StochasticDynamics` with ``code_dim > 0``) rolls each candidate out
    under ``uncertainty.samples`` futures ``u`` drawn from its prior with ``generator``, ``(N * K, H, D)``,
    scores all of them and reduces each candidate's ``K`` energies to one number
    (:class:`Uncertainty`). The planners keep minimising ``(N, H, A) -> (N,)`` unchanged.
    """

    def __init__(self, model: Dynamics, energy: Energy, z0: torch.Tensor, z_goal: torch.Tensor,
                 uncertainty: Uncertainty | None = None, generator: torch.Generator | None = None) -> None:
        self.model = model
        self.energy = energy
        self.z0 = z0.reshape(1, -1)
        self.z_goal = z_goal.reshape(-1)
        self.uncertainty = uncertainty or Uncertainty()
        self.codes: torch.Tensor | None = None  # (K, H, U): this plan's futures, drawn at the first call
        self.generator = generator
        stochastic = isinstance(model, StochasticDynamics) and model.code_dim > 0
        self.futures = self.uncertainty.samples if stochastic else 1
        if self.futures > 1 and generator is None:
            raise ValueError("a latent-variable model's futures need a generator (reproducible plans)")
        energy.prepare(self.z0[0], self.z_goal)

    def rows(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rollout's inputs for candidates ``(N, H, A)``: each candidate once per future, ``(N * K, H, A)``,
        with the futures' codes ``(N * K, H, U)`` (None for one future, the deterministic rollout)."""
        if self.futures == 1:
            return actions, None
        if self.codes is None:
            self.codes = self.model.sample_codes(self.futures, actions.shape[1], self.generator)
        return actions.repeat_interleave(self.futures, dim=0), self.codes.repeat(actions.shape[0], 1, 1)

    def score(self, z_pred: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The energy ``(N,)`` of the candidates whose rollout rows (:meth:`rows`: ``(N * K, H, A)``, each
        candidate once per future) predicted ``z_pred (N * K, H, D)``."""
        energies = self.energy(z_pred, self.z_goal, rows)
        if self.futures == 1:
            return energies
        return self.uncertainty.reduce(energies.reshape(-1, self.futures))

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        # differentiable in actions: the gradient planner descends through the rollout
        flat, codes = self.rows(actions)
        z0 = self.z0.expand(flat.shape[0], -1)
        z_pred = self.model.rollout(z0, flat) if codes is None else self.model.rollout(z0, flat, codes)
        return self.score(z_pred, flat)


class BatchLatentCost:
    """Several plans' :class:`LatentCost` on one model, as one :class:`~agents.protocols.BatchCost`:
    ``actions (E, N, H, A) -> (E, N)``.

    All candidates (each once per future) go through the model in one rollout (one large batch
    instead of ``E`` small ones); each plan's energy then scores its own rows. A row of a rollout
    does not depend on the other rows, so each plan's costs are those its :class:`LatentCost` alone gives.
    """

    def __init__(self, costs: Sequence[LatentCost]) -> None:
        if not costs or any(cost.model is not costs[0].model for cost in costs):
            raise ValueError("BatchLatentCost needs at least one LatentCost, all on one model")
        self.costs = list(costs)
        self.model = costs[0].model

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        inputs = [cost.rows(candidates) for cost, candidates in zip(self.costs, actions, strict=True)]
        counts = [flat.shape[0] for flat, _ in inputs]
        z0 = torch.cat([cost.z0.expand(n, -1) for cost, n in zip(self.costs, counts, strict=True)])
        flat = torch.cat([f for f, _ in inputs])
        if all(codes is None for _, codes in inputs):
            z_pred = self.model.rollout(z0, flat)
        else:
            z_pred = self.model.rollout(z0, flat, torch.cat([codes for _, codes in inputs]))
        return torch.stack([cost.score(z, rows) for cost, z, rows in
                            zip(self.costs, z_pred.split(counts), flat.split(counts), strict=True)])

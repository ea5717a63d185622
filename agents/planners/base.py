"""One interface for every planner: minimise batched costs over bounded action sequences.

A planner is a pure optimiser. It holds no model and no energy: the JEPA agent passes an
:class:`~agents.cost.LatentCost` (world model rollout + energy), the simulator oracle its own cost,
the tests analytic ones. Every planner solves ``E`` independent problems at once
(:meth:`Planner.minimize_batch`, a :class:`~agents.protocols.BatchCost` scoring ``(E, N, H, A)``):
an evaluation with many envs plans for all of them in one call, so the cost (a world model rollout)
runs on one large batch. :meth:`Planner.minimize` is the one-problem case of the same code.

Problem ``e`` lives in a *slot*, with its own random generator (and, for iCEM, its own memory of
the last plan): a slot's plan depends on its seed and its cost only, never on the other problems
solved beside it, so a result is the same whatever the batch size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from agents.protocols import BatchCost, Cost

ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # every task's action space (docs/ARCHITECTURE.md)


class Planner(ABC):
    """Finds action sequences ``(horizon, action_dim)`` in ``[-1, 1]`` with a low cost.

    Randomness comes from a private ``torch.Generator`` per slot, so that a slot reseeded with the
    same seed returns the same plan. Candidates are made on ``device``: the cost must accept them there.
    """

    def __init__(self, horizon: int, action_dim: int, seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.horizon = horizon
        self.action_dim = action_dim
        self.device = torch.device(device)
        self.generators: list[torch.Generator] = []
        self.reseed(seed)
        self.last_cost = float("nan")  # cost of the plan returned last by minimize, for logs and videos
        self.last_costs: list[float] = []  # the costs of the plans minimize_batch returned last, per problem
        self.last_evaluations = 0  # candidate sequences scored per problem for that plan (compute per plan)

    @property
    def generator(self) -> torch.Generator:
        """Slot 0's generator, the one :meth:`minimize` draws from."""
        return self.generators[0]

    def reseed(self, seed: int, slot: int = 0) -> None:
        """Seed one slot's generator (made on first use)."""
        while len(self.generators) <= slot:
            self.generators.append(torch.Generator(device=self.device))
        self.generators[slot].manual_seed(seed)

    def minimize(self, cost: Cost, warm_start: torch.Tensor | None = None, slot: int = 0) -> torch.Tensor:
        """The best sequence ``(H, A)`` found for one ``cost``; sets ``last_cost``/``last_evaluations``."""
        plans = self.minimize_batch(lambda actions: cost(actions[0])[None], [warm_start], [slot])
        self.last_cost = self.last_costs[0]
        return plans[0]

    @abstractmethod
    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        """The best sequences ``(E, H, A)`` for ``E = len(slots)`` problems scored together by ``cost``
        (``warm_starts[e]``: problem ``e``'s, or None); sets ``last_costs``/``last_evaluations``."""

    def initial_means(self, warm_starts: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """``(E, H, A)``: each warm start (clamped to the bounds), or zeros, the centre of the action box."""
        means = [
            torch.zeros(self.horizon, self.action_dim, device=self.device) if warm is None
            else warm.to(self.device, torch.float32).clamp(ACTION_LOW, ACTION_HIGH)
            for warm in warm_starts
        ]
        return torch.stack(means)

    def gaussian(self, samples: int, slots: Sequence[int]) -> torch.Tensor:
        """Standard normal noise ``(E, samples, H, A)``, each slot's from its own generator."""
        shape = (samples, self.horizon, self.action_dim)
        return torch.stack([torch.randn(shape, generator=self.generators[s], device=self.device) for s in slots])


def rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values (E, N, ...)`` at ``index (E,)`` or ``(E, K)`` per problem: ``(E, ...)`` or ``(E, K, ...)``."""
    problems = torch.arange(values.shape[0], device=values.device)
    return values[problems, index] if index.ndim == 1 else values[problems[:, None], index]


def keep_better(best: torch.Tensor, best_cost: torch.Tensor, other: torch.Tensor, other_cost: torch.Tensor,
                ties_to_other: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per problem, the cheaper of ``best (E, H, A)`` and ``other``, with their costs ``(E,)``."""
    better = other_cost <= best_cost if ties_to_other else other_cost < best_cost
    return torch.where(better[:, None, None], other, best), torch.where(better, other_cost, best_cost)

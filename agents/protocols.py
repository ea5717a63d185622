"""The seams between the agent's parts, as typed runtime-checkable Protocols.

A planner optimises a :class:`Cost` and knows nothing else; :class:`agents.cost.LatentCost` makes
that cost from a :class:`Dynamics` and an :class:`Energy`; :class:`agents.mpc.MPCAgent` also needs
the model to encode observations (:class:`LatentModel`). Each part is written against these shapes,
not against a class, so a toy linear model, the learned :class:`~worldmodel.world_model.WorldModel`
or (later) a stochastic one plug in alike, and ``isinstance`` checks the fit at runtime (method
names only: shapes are the docstrings' promise, checked by the tests).

Shapes: ``N`` candidate sequences (``B`` a batch), ``H`` steps, ``A`` action dims, ``D`` latent dims.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from envs.episodes import EpisodeSet


@runtime_checkable
class Dynamics(Protocol):
    """What a cost needs from a world model: open-loop latent prediction."""

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``z0 (B, D)``, ``actions (B, H, A)`` -> predicted latents ``(B, H, D)`` after each action;
        differentiable in ``actions`` (gradient planners rely on it)."""
        ...


@runtime_checkable
class StochasticDynamics(Dynamics, Protocol):
    """Dynamics with a latent variable ``u`` per step (a latent-variable predictor): ``code_dim`` its
    size (0: none, the model is deterministic), drawn from the model's prior by ``sample_codes``."""

    code_dim: int

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`Dynamics.rollout`, under the prior's draws ``codes (B, H, U)`` from :meth:`sample_codes`
        (None: the prior's mean)."""
        ...

    def sample_codes(self, batch: int, horizon: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch, horizon, U)`` draws of the prior (the codes, or the noise a learned prior turns into
        codes at each predicted latent)."""
        ...


@runtime_checkable
class LatentModel(Dynamics, Protocol):
    """What the MPC agent needs besides: how many frames an observation stacks, and the encoder."""

    frame_stack: int

    def encode(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``obs (B, *obs_shape)``, ``frame_stack`` frames on the last axis -> ``z (B, D)``."""
        ...


@runtime_checkable
class Energy(Protocol):
    """Scores predicted latents against a goal; low is good. Every energy term is one, and so is
    their sum (:class:`agents.energy.Energy`, the class ``configs/energy/*.yaml`` build)."""

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Once per plan from ``z0 (D,)`` towards ``z_goal (D,)``, before any candidate is scored.
        Part of the protocol (a no-op for most energies) so that callers never ask whether it exists."""
        ...

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``z_pred (N, H, D)``, ``z_goal (D,)``, ``actions (N, H, A)`` -> ``(N,)``."""
        ...


@runtime_checkable
class NeedsData(Protocol):
    """An energy term that must see the world model's dataset before it can score (a landmark graph)."""

    def fit(self, model: torch.nn.Module, episodes: EpisodeSet) -> None: ...


@runtime_checkable
class Cost(Protocol):
    """All a planner minimises: ``actions (N, H, A)`` in ``[-1, 1]`` -> ``(N,)``, low is good.

    A plain function fits too (the analytic test costs, the oracle's simulator cost).
    """

    def __call__(self, actions: torch.Tensor, /) -> torch.Tensor: ...


@runtime_checkable
class BatchCost(Protocol):
    """``E`` independent costs scored in one call: ``actions (E, N, H, A)`` -> ``(E, N)``, problem ``e``'s
    candidates by problem ``e``'s cost (what :meth:`agents.planners.Planner.minimize_batch` minimises)."""

    def __call__(self, actions: torch.Tensor, /) -> torch.Tensor: ...

"""Action-conditioned latent dynamics ``z_{t+1} = f(z_t, a_t)``."""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.encoders import mlp


class ResidualMLPPredictor(nn.Module):
    """Predicts the change of the latent: ``z + MLP([z, a])``.

    The residual form starts near the identity (the copy-last-latent baseline), so training only has
    to learn how actions move the latent.
    """

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int, depth: int) -> None:
        super().__init__()
        self.net = mlp(latent_dim + action_dim, hidden_dim, depth, latent_dim)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z + self.net(torch.cat([z, action], dim=-1))

"""Action-conditioned latent dynamics ``z_{t+1} = f(z_t, a_t)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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


class LatentVariablePredictor(nn.Module):
    """``z_{t+1} = z_t + MLP([z_t, a_t, u_t])``: a latent variable ``u`` carries what ``(z_t, a_t)`` leaves open.

    Where the world branches (a door that is open or shut), a deterministic predictor learns the
    average of the branches, a state that never happens; with ``u`` each branch can be predicted.
    In training ``u`` comes from an inference network on ``(z_t, a_t, z_{t+1})``
    (:meth:`posterior`), and its information is limited by ``rate_weight`` times its rate, the KL
    divergence to the prior in nats per step: without that limit ``u`` could carry the whole of
    ``z_{t+1}``, and a ``u`` drawn from the prior would then predict nothing. When planning ``u`` is
    drawn from the prior (:meth:`sample_prior`). Two codes:

    * ``gaussian``: ``u`` in ``R^code_dim``, prior ``N(0, I)``, a diagonal Gaussian posterior.
    * ``discrete``: ``u`` one of ``code_dim`` one-hot codes, uniform prior, a categorical posterior
      sampled straight-through (Gumbel-softmax); its rate can never exceed ``log(code_dim)`` nats.

    Without ``u`` (``predict(z, a)``, e.g. the probe's diagnostics) the prior's mean is used: zeros
    for the Gaussian code, the uniform average of the one-hot codes for the discrete one.
    """

    CODES = ("gaussian", "discrete")

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int, depth: int, code_dim: int, code: str,
                 rate_weight: float, temperature: float = 1.0) -> None:
        super().__init__()
        if code not in self.CODES:
            raise ValueError(f"unknown code {code!r}; choose one of: {', '.join(self.CODES)}")
        if code_dim < 1 or rate_weight < 0:
            raise ValueError(f"code_dim must be >= 1 and rate_weight >= 0, got {code_dim} and {rate_weight}")
        self.code, self.code_dim, self.rate_weight, self.temperature = code, code_dim, rate_weight, temperature
        self.net = mlp(latent_dim + action_dim + code_dim, hidden_dim, depth, latent_dim)
        outputs = 2 * code_dim if code == "gaussian" else code_dim  # mean and log-variance, or logits
        self.inference = mlp(2 * latent_dim + action_dim, hidden_dim, depth, outputs)

    def prior_mean(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        fill = 0.0 if self.code == "gaussian" else 1.0 / self.code_dim
        return like.new_full((*shape, self.code_dim), fill)

    def forward(self, z: torch.Tensor, action: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        if u is None:
            u = self.prior_mean(z.shape[:-1], z)
        return z + self.net(torch.cat([z, action, u], dim=-1))

    def posterior(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sample of ``u`` given the transition, and its rate (KL to the prior, nats) ``(...)``."""
        out = self.inference(torch.cat([z, action, z_next], dim=-1))
        if self.code == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)
            log_var = log_var.clamp(-10.0, 10.0)  # keeps exp() finite early in training
            u = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
            rate = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
            return u, rate
        log_q = torch.log_softmax(out, dim=-1)
        soft = F.gumbel_softmax(out, tau=self.temperature, hard=True)  # one-hot forward, soft gradient
        rate = (log_q.exp() * (log_q + math.log(self.code_dim))).sum(-1)  # KL(q || uniform)
        return soft, rate

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """``u (*shape, code_dim)`` drawn from the prior with ``generator`` (reproducible plans)."""
        if self.code == "gaussian":
            return torch.randn((*shape, self.code_dim), generator=generator, device=device)
        index = torch.randint(self.code_dim, shape, generator=generator, device=device)
        return F.one_hot(index, self.code_dim).float()

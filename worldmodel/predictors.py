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
    drawn from the prior (:meth:`sample_prior` draws its randomness, :meth:`draw` turns it into ``u``).
    Two codes:

    * ``gaussian``: ``u`` in ``R^code_dim``, a diagonal Gaussian posterior.
    * ``discrete``: ``u`` one of ``code_dim`` one-hot codes, a categorical posterior sampled
      straight-through (Gumbel-softmax); its rate can never exceed ``log(code_dim)`` nats.

    Two priors:

    * ``fixed``: ``N(0, I)`` or uniform over the codes, the same at every step.
    * ``learned``: ``p(u | z_t, a_t)``, a network fit to the posterior (``KL(sg q || p)``, always on, so
      the prior learns which codes the posterior uses where) while the rate ``KL(q || sg p)`` limits
      the posterior. Where ``(z_t, a_t)`` already settles the future (most steps) the prior learns
      the one code the posterior uses there, and only where the world branches does a draw branch;
      a fixed prior draws every step's code at random, also where training never used it.

    Two ways to infer ``u`` in training (``inference``):

    * ``network``: the inference network above, trained through the code's sample.
    * ``nearest`` (discrete code only): the code whose prediction lands nearest the true ``z_{t+1}``
      (winner-takes-all, as in multiple-choice learning), so no network has to learn the inference
      through a sample; each code's predictor then learns the transitions it wins. The code's size
      bounds what ``u`` carries (``log(code_dim)`` nats); its rate against a learned prior is the
      prior's surprise at the winner.

    The code's effect (:meth:`effect`, charged by ``effect_weight``) is how far the codes move the
    prediction apart at ``(z_t, a_t)``. A rate bounds how much ``u`` carries, not where: with codes to
    spare, training spends them as a gate over regions of the state space (a mixture of experts) on
    the many transitions that ``(z_t, a_t)`` already settles, and a code drawn there when planning
    perturbs a future that is certain. Charged for its effect, a code pays wherever one prediction
    would do, and is worth its price only where the futures really part (a door drawn).

    Without ``u`` (``predict(z, a)``, e.g. the probe's diagnostics) the prior's mean is used: zeros or
    the learned mean for the Gaussian code, the prior's code probabilities for the discrete one.
    """

    CODES = ("gaussian", "discrete")
    PRIORS = ("fixed", "learned")
    INFERENCES = ("network", "nearest")

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int, depth: int, code_dim: int, code: str,
                 rate_weight: float, temperature: float = 1.0, prior: str = "fixed", inference: str = "network",
                 effect_weight: float = 0.0) -> None:
        super().__init__()
        if code not in self.CODES:
            raise ValueError(f"unknown code {code!r}; choose one of: {', '.join(self.CODES)}")
        if prior not in self.PRIORS:
            raise ValueError(f"unknown prior {prior!r}; choose one of: {', '.join(self.PRIORS)}")
        if inference not in self.INFERENCES or (inference == "nearest" and code != "discrete"):
            raise ValueError(f"inference must be one of: {', '.join(self.INFERENCES)} (nearest: discrete code only), "
                             f"got {inference!r} with code {code!r}")
        if code_dim < 1 or rate_weight < 0 or effect_weight < 0:
            raise ValueError(f"code_dim must be >= 1 and rate_weight, effect_weight >= 0, got {code_dim}, {rate_weight}, "
                             f"{effect_weight}")
        self.code, self.code_dim, self.rate_weight, self.temperature = code, code_dim, rate_weight, temperature
        self.effect_weight = effect_weight
        self.prior = prior
        self.net = mlp(latent_dim + action_dim + code_dim, hidden_dim, depth, latent_dim)
        outputs = 2 * code_dim if code == "gaussian" else code_dim  # mean and log-variance, or logits
        self.inference = mlp(2 * latent_dim + action_dim, hidden_dim, depth, outputs) if inference == "network" else None
        self.prior_net = mlp(latent_dim + action_dim, hidden_dim, depth, outputs) if prior == "learned" else None

    def _prior_out(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The learned prior's parameters at ``(z, a)``: mean and log-variance, or logits."""
        out = self.prior_net(torch.cat([z, action], dim=-1))
        if self.code == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)
            return torch.cat([mean, log_var.clamp(-10.0, 10.0)], dim=-1)
        return out

    def prior_mean(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The prior's mean ``u`` at ``(z, a)``: Gaussian mean, or the code probabilities."""
        if self.prior_net is None:
            return z.new_full((*z.shape[:-1], self.code_dim), 0.0 if self.code == "gaussian" else 1.0 / self.code_dim)
        out = self._prior_out(z, action)
        return out.chunk(2, dim=-1)[0] if self.code == "gaussian" else torch.softmax(out, dim=-1)

    def forward(self, z: torch.Tensor, action: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        if u is None:
            u = self.prior_mean(z, action)
        return z + self.net(torch.cat([z, action, u], dim=-1))

    def effect(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """How far the code moves the prediction at ``(z, a)``, ``(...)``: the mean squared distance (per
        latent dimension) of each code's prediction from the codes' mean prediction, over every one-hot
        code, or over two standard-normal draws for the Gaussian code (a one-sample estimate)."""
        if self.code == "discrete":
            codes = torch.eye(self.code_dim, dtype=z.dtype, device=z.device)
        else:
            codes = torch.randn(2, self.code_dim, dtype=z.dtype, device=z.device)
        predictions = self._under_each(z, action, codes)
        return (predictions - predictions.mean(0)).pow(2).mean(-1).mean(0)

    def _under_each(self, z: torch.Tensor, action: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The prediction at ``(z, a)`` under each of ``codes (K, U)``, in one batch: ``(K, ..., D)``."""
        k, lead = codes.shape[0], z.shape[:-1]
        u = codes.reshape(k, *(1,) * len(lead), self.code_dim).expand(k, *lead, self.code_dim)
        return self(z.expand(k, *z.shape), action.expand(k, *action.shape), u)

    def posterior(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sample of ``u`` given the transition, its rate ``KL(q || p)`` with the prior under stop-gradient
        (nats, ``(...)``), and the prior's fit ``KL(sg q || p)`` (zeros for the fixed prior, which has
        nothing to fit)."""
        if self.inference is None:  # inference="nearest"
            return self._nearest(z, action, z_next)
        out = self.inference(torch.cat([z, action, z_next], dim=-1))
        if self.code == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)
            log_var = log_var.clamp(-10.0, 10.0)  # keeps exp() finite early in training
            u = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        else:
            log_q = torch.log_softmax(out, dim=-1)
            u = F.gumbel_softmax(out, tau=self.temperature, hard=True)  # one-hot forward, soft gradient
        if self.prior_net is None:  # KL to N(0, I), or to the uniform code: log K - H(q)
            if self.code == "gaussian":
                rate = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)
            else:
                rate = (log_q.exp() * (log_q + math.log(self.code_dim))).sum(-1)
            return u, rate, torch.zeros_like(rate)
        prior = self._prior_out(z, action)
        if self.code == "gaussian":
            rate = _gaussian_kl(mean, log_var, *prior.detach().chunk(2, dim=-1))
            fit = _gaussian_kl(mean.detach(), log_var.detach(), *prior.chunk(2, dim=-1))
        else:
            log_p = torch.log_softmax(prior, dim=-1)
            rate = (log_q.exp() * (log_q - log_p.detach())).sum(-1)
            fit = (log_q.exp().detach() * (log_q.detach() - log_p)).sum(-1)
        return u, rate, fit

    def _nearest(self, z: torch.Tensor, action: torch.Tensor, z_next: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`posterior` by winner-takes-all: the one-hot of the code that predicts ``z_next`` best."""
        with torch.no_grad():
            codes = torch.eye(self.code_dim, dtype=z.dtype, device=z.device)
            errors = (self._under_each(z, action, codes) - z_next).pow(2).sum(-1)  # (K, ...)
            u = F.one_hot(errors.argmin(0), self.code_dim).to(z.dtype)
        if self.prior_net is None:
            rate = z.new_full(z.shape[:-1], math.log(self.code_dim))  # KL(one-hot || uniform)
            return u, rate, torch.zeros_like(rate)
        surprise = -(u * torch.log_softmax(self._prior_out(z, action), dim=-1)).sum(-1)  # KL(one-hot || p)
        return u, surprise.detach(), surprise

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """The prior's randomness ``(*shape, code_dim)`` drawn with ``generator`` (reproducible plans):
        the codes themselves for the fixed prior, standard Gumbel or normal noise that :meth:`draw`
        turns into codes at each step's ``(z, a)`` for the learned one."""
        if self.code == "gaussian":
            return torch.randn((*shape, self.code_dim), generator=generator, device=device)
        if self.prior_net is not None:
            uniform = torch.rand((*shape, self.code_dim), generator=generator, device=device)
            return -torch.log(-torch.log(uniform.clamp(1e-12, 1.0 - 1e-7)))  # Gumbel(0, 1)
        index = torch.randint(self.code_dim, shape, generator=generator, device=device)
        return F.one_hot(index, self.code_dim).float()

    def draw(self, z: torch.Tensor, action: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``u`` from the prior at ``(z, a)`` for one step's :meth:`sample_prior` draw ``noise``."""
        if self.prior_net is None:
            return noise
        out = self._prior_out(z, action)
        if self.code == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)
            return mean + noise * (0.5 * log_var).exp()
        return F.one_hot((out + noise).argmax(-1), self.code_dim).to(z.dtype)  # Gumbel-max: a draw from p


def _gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor, prior_mean: torch.Tensor, prior_log_var: torch.Tensor
                 ) -> torch.Tensor:
    """``KL(N(mean, var) || N(prior_mean, prior_var))`` of diagonal Gaussians, summed over the last axis."""
    return 0.5 * (prior_log_var - log_var + (log_var.exp() + (mean - prior_mean).pow(2)) / prior_log_var.exp()
                  - 1.0).sum(-1)

"""Training objective: multi-step latent prediction plus an anti-collapse regularizer.

A regularizer is any module ``reg(z (N, D), step) -> (weighted_loss, {name: unweighted term})``;
which one is used is chosen in ``configs/model/regularizer/`` (VICReg, SIGReg, or none for an
EMA-target-only run). There are no contrastive negatives and no reconstruction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.encoders import mlp
from worldmodel.predictors import LatentVariablePredictor

Terms = dict[str, torch.Tensor]


class VICReg(nn.Module):
    """Variance + covariance terms of VICReg (Bardes et al., 2022) on a batch of latents.

    The variance hinge keeps every dimension's std at ``std_target`` or above; the covariance term
    decorrelates dimensions so that the latent does not spend all of its variance on one direction.
    """

    def __init__(self, std_weight: float, cov_weight: float, std_target: float, eps: float) -> None:
        super().__init__()
        self.std_weight, self.cov_weight, self.std_target, self.eps = std_weight, cov_weight, std_target, eps

    def forward(self, z: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms]:
        n, dim = z.shape
        z = z - z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0) + self.eps)
        std_loss = F.relu(self.std_target - std).mean()
        cov = (z.T @ z) / (n - 1)
        cov_loss = (cov - torch.diag(torch.diag(cov))).pow(2).sum() / dim
        total = self.std_weight * std_loss + self.cov_weight * cov_loss
        return total, {"vicreg_std": std_loss, "vicreg_cov": cov_loss}


class SIGReg(nn.Module):
    """Sketched Isotropic Gaussian Regularization from LeJEPA (Balestriero & LeCun, 2025).

    Projects the latents on ``num_slices`` random unit directions and, for each 1-D projection,
    computes the Epps-Pulley statistic: the weighted squared distance between the empirical
    characteristic function and that of N(0, 1), integrated (trapezoid rule) over ``num_points`` on
    ``[-t_max, t_max]`` with weight ``exp(-t^2 / 2)``, times the sample count (as in the paper).
    Directions are drawn from a generator seeded by the step, so every process and every resumed
    run uses the same ones and the global torch RNG is left alone.
    """

    def __init__(self, weight: float, num_slices: int, num_points: int, t_max: float) -> None:
        super().__init__()
        self.weight, self.num_slices = weight, num_slices
        t = torch.linspace(-t_max, t_max, num_points)
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("gauss_cf", torch.exp(-0.5 * t**2), persistent=False)

    def forward(self, z: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms]:
        generator = torch.Generator(device="cpu").manual_seed(step)
        directions = torch.randn(z.shape[1], self.num_slices, generator=generator).to(z)
        directions = directions / directions.norm(dim=0, keepdim=True)
        x_t = (z @ directions).unsqueeze(-1) * self.t  # (N, slices, points)
        ecf_real, ecf_imag = torch.cos(x_t).mean(0), torch.sin(x_t).mean(0)
        err = ((ecf_real - self.gauss_cf).pow(2) + ecf_imag.pow(2)) * self.gauss_cf
        statistic = torch.trapezoid(err, self.t, dim=-1).mean() * z.shape[0]
        return self.weight * statistic, {"sigreg": statistic}


class NoRegularizer(nn.Module):
    """No anti-collapse term: for EMA-target-only training, or to show collapse without one."""

    def forward(self, z: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms]:
        return z.new_zeros(()), {}


class InverseDynamicsHead(nn.Module):
    """Predicts ``a_t`` from ``(z_t, z_{t+1})``: pushes the latent to keep what actions change."""

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int, depth: int, weight: float) -> None:
        super().__init__()
        self.weight = weight
        self.net = mlp(2 * latent_dim, hidden_dim, depth, action_dim)

    def forward(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, z_next], dim=-1))


class JEPAObjective(nn.Module):
    """The full loss for one batch of windows; wrapped by DistributedDataParallel when distributed.

    Teacher-forced: predict ``z_{t+1}`` from the encoded ``z_t`` at every step of the window.
    Open-loop: roll the predictor out from ``z_0`` over the whole window (what planning does).
    Targets come from ``WorldModel.encode_target`` (stop-gradient or EMA encoder).
    Temporal smoothness (PLDM's time-similarity term): the mean squared latent step ``z_{t+1} - z_t``
    (per dimension, like the prediction terms).
    Against the regularizer's spread it makes latent distance grow with the steps between two
    observations, so a straight latent distance to the goal has fewer false minima to plan into.
    """

    def __init__(self, model: nn.Module, regularizer: nn.Module, teacher_forcing_weight: float,
                 open_loop_weight: float, temporal_smoothness_weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.regularizer = model, regularizer
        self.teacher_forcing_weight, self.open_loop_weight = teacher_forcing_weight, open_loop_weight
        self.temporal_smoothness_weight = temporal_smoothness_weight

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, step: int) -> tuple[torch.Tensor, Terms]:
        batch, steps = obs.shape[:2]
        flat_obs = obs.flatten(0, 1)
        z = self.model.encode(flat_obs)
        target = self.model.encode_target(flat_obs, z).unflatten(0, (batch, steps))[:, 1:]
        z = z.unflatten(0, (batch, steps))
        codes, rate, prior_fit, effect = self._codes(z[:, :-1], actions, target)
        teacher = F.mse_loss(self.model.predict(z[:, :-1], actions, codes), target)
        open_loop = F.mse_loss(self.model.rollout(z[:, 0], actions, u=codes), target)
        reg_loss, terms = self.regularizer(z.flatten(0, 1), step)
        loss = self.teacher_forcing_weight * teacher + self.open_loop_weight * open_loop + reg_loss
        terms = {"pred_teacher_forced": teacher, "pred_open_loop": open_loop, **terms}
        if rate is not None:  # the latent variable's information, limited by its weight; a learned prior fit to it
            loss = loss + self.model.predictor.rate_weight * rate + prior_fit
            terms["code_rate"] = rate
            if self.model.predictor.prior == "learned":
                terms["code_prior_fit"] = prior_fit
            if effect is not None:  # the code charged for how far it moves the prediction
                loss = loss + self.model.predictor.effect_weight * effect
                terms["code_effect"] = effect
        if self.temporal_smoothness_weight:
            smoothness = F.mse_loss(z[:, 1:], z[:, :-1])
            loss = loss + self.temporal_smoothness_weight * smoothness
            terms["temporal_smoothness"] = smoothness
        head = self.model.inverse_dynamics
        if head is not None:
            inverse = F.mse_loss(head(z[:, :-1], z[:, 1:]), actions)
            loss = loss + head.weight * inverse
            terms["inverse_dynamics"] = inverse
        return loss, {"loss": loss, **terms}

    def _codes(self, z: torch.Tensor, actions: torch.Tensor, target: torch.Tensor
               ) -> tuple[torch.Tensor | None, ...]:
        """A latent-variable predictor's ``u_t`` inferred from each transition ``(z_t, a_t, z_{t+1})`` of
        the window, used by the teacher-forced and the open-loop terms alike, its mean rate (nats per
        step), its prior's mean fit (0 for a fixed prior) and the code's mean effect where it is charged
        (on the latents under stop-gradient: the charge shapes the predictor, not the encoder; else
        None); all None for a deterministic predictor."""
        predictor = self.model.predictor
        if not isinstance(predictor, LatentVariablePredictor):
            return None, None, None, None
        codes, rate, prior_fit = predictor.posterior(z, actions, target)
        effect = predictor.effect(z.detach(), actions).mean() if predictor.effect_weight else None
        return codes, rate.mean(), prior_fit.mean(), effect

"""The JEPA world model: encoder, action-conditioned predictor and the target encoder for training."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from envs.builder import build
from envs.errors import UserInputError
from worldmodel.frames import stacked_shape
from worldmodel.predictors import LatentVariablePredictor

ArrayLike = np.ndarray | torch.Tensor


class WorldModel(nn.Module):
    """``encode`` observations to latents ``z (B, D)``; ``predict``/``rollout`` them under actions.

    Observations go in as the env returns them (uint8 ``(H, W, C)`` pixels or float32 state vectors,
    batched), ``frame_stack`` of them side by side on the last axis (:mod:`worldmodel.frames`);
    they are normalised inside with per-channel statistics of the training data
    (``obs_loc``/``obs_scale``, saved with the weights). The target encoder gives training targets:
    the online encoder under stop-gradient (``ema_decay=None``) or a slowly updated EMA copy.
    """

    def __init__(
        self,
        encoder: nn.Module,
        predictor: nn.Module,
        frame_shape: Sequence[int],
        action_dim: int,
        latent_dim: int,
        ema_decay: float | None = None,
        inverse_dynamics: nn.Module | None = None,
        frame_stack: int = 1,
    ) -> None:
        super().__init__()
        self.frame_shape, self.frame_stack = tuple(frame_shape), frame_stack
        self.obs_shape = stacked_shape(frame_shape, frame_stack)
        self.action_dim, self.latent_dim = action_dim, latent_dim
        self.encoder, self.predictor, self.inverse_dynamics = encoder, predictor, inverse_dynamics
        self.ema_decay = ema_decay
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False) if ema_decay is not None else None
        self.register_buffer("obs_loc", torch.zeros(self.obs_shape[-1]))
        self.register_buffer("obs_scale", torch.ones(self.obs_shape[-1]))

    @property
    def device(self) -> torch.device:
        return self.obs_loc.device

    def set_normalization(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        """Per-channel statistics of single frames, repeated for every stacked frame."""
        self.obs_loc.copy_(loc.repeat(self.frame_stack))
        self.obs_scale.copy_(scale.repeat(self.frame_stack))

    def _normalize(self, obs: ArrayLike) -> torch.Tensor:
        obs = torch.as_tensor(obs, device=self.device)
        return (obs.float() - self.obs_loc) / self.obs_scale

    def encode(self, obs: ArrayLike) -> torch.Tensor:
        """``obs (B, *obs_shape)`` (numpy or torch, any device) -> ``z (B, D)`` on the model's device."""
        return self.encoder(self._normalize(obs))

    def encode_target(self, obs: ArrayLike, z_online: torch.Tensor) -> torch.Tensor:
        """Training targets for ``obs``; ``z_online`` is ``encode(obs)``, reused under stop-gradient."""
        if self.target_encoder is None:
            return z_online.detach()
        with torch.no_grad():
            return self.target_encoder(self._normalize(obs))

    @property
    def code_dim(self) -> int:
        """Size of the predictor's latent variable ``u`` (0: a deterministic predictor)."""
        return self.predictor.code_dim if isinstance(self.predictor, LatentVariablePredictor) else 0

    def predict(self, z: torch.Tensor, action: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """One step: ``z (..., D)``, ``action (..., A)`` (and a latent variable ``u (..., U)`` for a
        latent-variable predictor; None: its prior's mean) -> ``z_next (..., D)``."""
        if u is None:
            return self.predictor(z, action)
        return self.predictor(z, action, u)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, codes: torch.Tensor | None = None,
                u: torch.Tensor | None = None) -> torch.Tensor:
        """Open-loop prediction for a batch of action sequences: ``(B, D), (B, H, A) -> (B, H, D)``.

        A latent-variable predictor takes ``codes (B, H, U)``, the prior's draws from
        :meth:`sample_codes` (each step's ``u`` drawn from the prior at the predicted latent), or
        ``u (B, H, U)`` given outright (e.g. inferred from the true transitions in training); neither:
        the prior's mean. Differentiable with respect to ``actions`` (gradient-based planners rely on it).
        """
        z, predicted = z0, []
        for t in range(actions.shape[1]):
            u_t = None if u is None else u[:, t]
            if codes is not None:
                u_t = self.predictor.draw(z, actions[:, t], codes[:, t])
            z = self.predict(z, actions[:, t], u_t)
            predicted.append(z)
        return torch.stack(predicted, dim=1)

    def sample_codes(self, batch: int, horizon: int, generator: torch.Generator) -> torch.Tensor:
        """``(batch, horizon, U)`` draws of the predictor's prior (``U = code_dim`` > 0), for :meth:`rollout`."""
        if not isinstance(self.predictor, LatentVariablePredictor):
            raise ValueError("a deterministic predictor has no latent variable to sample")
        return self.predictor.sample_prior((batch, horizon), generator, self.device)

    @torch.no_grad()
    def update_target(self) -> None:
        """Move the EMA target encoder towards the online one (no-op for stop-gradient targets)."""
        if self.target_encoder is None:
            return
        for target, online in zip(self.target_encoder.parameters(), self.encoder.parameters(), strict=True):
            target.lerp_(online, 1.0 - self.ema_decay)


def build_encoder(encoder_cfg: DictConfig | dict, obs_shape: Sequence[int], latent_dim: int,
                  where: str = "model.encoder") -> nn.Module:
    """The encoder a config names (only the project's own, :mod:`envs.builder`), for ``obs_shape``
    (with stacked frames); one line, not a deep torch error, when the image is too small for it."""
    try:
        encoder = build(encoder_cfg, where, obs_shape=list(obs_shape), latent_dim=latent_dim)
        with torch.no_grad():
            encoder.eval()(torch.zeros(1, *obs_shape))
        encoder.train()
    except RuntimeError as err:  # e.g. "Output size is too small" from a strided conv
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserInputError(f"{where} cannot take observations of shape {list(obs_shape)} "
                             f"(image_size too small for it? {first})") from err
    return encoder


def build_world_model(model_cfg: DictConfig, obs_shape: Sequence[int], action_dim: int) -> WorldModel:
    """Build the world model a ``configs/model/*.yaml`` describes, for given data shapes
    (``obs_shape``: one observation, as the env returns it). Only the project's own classes can be
    named (:func:`envs.builder.build`), so a checkpoint's stored config cannot run other code."""
    latent_dim, frame_stack = int(model_cfg.latent_dim), int(model_cfg.frame_stack)
    encoder = build_encoder(model_cfg.encoder, stacked_shape(obs_shape, frame_stack), latent_dim)
    if model_cfg.get("latent_norm", False):
        # every latent scaled to norm sqrt(D): the encoder cannot blow the latents up, which is how
        # training on near-identical maze images diverged (docs/EXPERIMENTS.md)
        encoder = nn.Sequential(encoder, nn.LayerNorm(latent_dim, elementwise_affine=False))
    predictor = build(model_cfg.predictor, "model.predictor", latent_dim=latent_dim, action_dim=action_dim)
    inverse = None
    if model_cfg.inverse_dynamics is not None and model_cfg.inverse_dynamics.weight > 0:  # null: old checkpoints
        inverse = build(model_cfg.inverse_dynamics, "model.inverse_dynamics", latent_dim=latent_dim,
                        action_dim=action_dim)
    return WorldModel(encoder, predictor, obs_shape, action_dim, latent_dim, model_cfg.ema_decay, inverse,
                      frame_stack)


def normalization_stats(observations: np.ndarray, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (last axis) mean and std of a flat observation array, in chunks to bound memory.

    Two passes (mean, then squared deviations) so a constant channel gets exactly zero spread; such
    channels get scale 1 so that normalising them cannot divide by zero.
    """
    channels = observations.shape[-1]
    blocks = [(start, start + chunk) for start in range(0, len(observations), chunk)]
    count = int(np.prod(observations.shape[:-1]))
    mean = sum(observations[a:b].reshape(-1, channels).astype(np.float64).sum(0) for a, b in blocks) / count
    var = sum(((observations[a:b].reshape(-1, channels) - mean) ** 2).sum(0) for a, b in blocks) / count
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)

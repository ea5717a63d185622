"""Improved cross-entropy method (iCEM, Pinneri et al. 2020): CEM that needs fewer samples per plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.planners.base import ACTION_HIGH, ACTION_LOW, BatchCost, Planner, keep_better, rows


def shift_rows(sequences: torch.Tensor, steps: int) -> torch.Tensor:
    """``sequences (N, H, A)`` with the first ``steps`` actions dropped and the last one repeated."""
    return torch.cat([sequences[:, steps:], sequences[:, -1:].expand(-1, steps, -1)], dim=1)


class ICEM(Planner):
    """CEM with coloured noise, elites kept between iterations and plans, and a shrinking population.

    * Noise with a power spectrum ``1/f^beta`` along time (``beta=0`` white, ``2`` brown): smooth
      candidates explore further per sample than white noise, whose steps cancel out over the horizon.
    * A fraction ``keep_elites`` of the last iteration's elites joins the next iteration's candidates,
      and, shifted by the steps executed since, the first iteration of the next plan: good sequences
      found once are not lost to resampling.
    * Iteration ``i`` scores ``max(2 * elites, int(samples * decay**-i))`` candidates (the current
      mean and the kept elites among them): later iterations refine a narrower distribution.
    * ``alpha`` blends the previous mean and std into the refit (momentum; 0 refits as CEM does).

    As in :class:`~agents.planners.cem.CEM` the current mean is always scored and the plan is the
    cheaper of the final mean and the best candidate seen. The shift of the kept plan-to-plan elites
    is inferred: they are used only when the warm start is this planner's last plan shifted by some
    ``k`` steps (what :func:`agents.mpc.shift_plan` makes), and then shifted by the same ``k``, so
    any ``replan_every`` works; another warm start, or none, starts without them. A plan whose tail
    is constant matches every ``k`` past the constant run; the smallest ``k >= 1`` is taken.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int,
        iterations: int,
        elites: int,
        init_std: float,
        min_std: float,
        beta: float = 2.0,
        keep_elites: float = 0.3,
        decay: float = 1.25,
        alpha: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self._kept: dict[int, torch.Tensor] = {}  # per slot: the last plan's elites (N, H, A), best first
        self._last_plan: dict[int, torch.Tensor] = {}  # per slot: what the kept elites are recognised by
        super().__init__(horizon, action_dim, **kwargs)
        if not 0 < elites <= samples:
            raise ValueError(f"iCEM needs 0 < elites <= samples, got elites={elites}, samples={samples}")
        if iterations < 1:
            raise ValueError(f"iCEM needs iterations >= 1, got {iterations}")
        if not 0.0 <= keep_elites <= 1.0:
            raise ValueError(f"iCEM needs keep_elites in [0, 1], got {keep_elites}")
        if decay < 1.0:
            raise ValueError(f"iCEM needs decay >= 1 (the population only shrinks), got {decay}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"iCEM needs alpha (momentum) in [0, 1), got {alpha}")
        if beta < 0.0:
            raise ValueError(f"iCEM needs beta >= 0 (0 white noise, 2 brown), got {beta}")
        self.samples = samples
        self.iterations = iterations
        self.elites = elites
        self.init_std = init_std
        self.min_std = min_std
        self.beta = beta
        self.keep = int(keep_elites * elites)  # elites carried over (between iterations and plans)
        self.decay = decay
        self.alpha = alpha
        self._spectrum = self._spectrum_scale()

    def reseed(self, seed: int, slot: int = 0) -> None:
        """Also forget the slot's last plan's elites: an episode reseeded alike plans alike."""
        super().reseed(seed, slot)
        self._kept.pop(slot, None)
        self._last_plan.pop(slot, None)

    def population(self, iteration: int) -> int:
        """Candidates scored at ``iteration`` (from 0), the current mean and the kept elites included."""
        return max(2 * self.elites, int(self.samples * self.decay**-iteration))

    def _spectrum_scale(self) -> torch.Tensor:
        """Amplitude per rfft frequency of a ``2H``-step signal: ``f^(-beta/2)``, unit variance per step.

        An irfft signal is periodic: drawn over ``H`` steps, the last action would be tied to the first
        (correlation +0.6 for H=10, beta=2). Drawn over ``2H`` and cropped to the first ``H``, it is not.
        The zero frequency would be infinite; it gets the lowest nonzero one's amplitude.
        """
        n = 2 * self.horizon
        freqs = torch.fft.rfftfreq(n, device=self.device).clamp_min(1.0 / n)
        amplitude = freqs.pow(-self.beta / 2)
        # Var(x_t) = (sum_k c_k amplitude_k^2) / n^2: c = 1 for the real-only zero and Nyquist terms,
        # 4 for the others (a complex term and its conjugate, real and imaginary parts each N(0, 1))
        weight = torch.full_like(amplitude, 4.0)
        weight[0] = weight[-1] = 1.0  # n is even, so the last rfft term is the Nyquist one
        variance = (weight * amplitude.pow(2)).sum() / n**2
        return amplitude / variance.sqrt()

    def coloured_noise(self, samples: int, slot: int = 0) -> torch.Tensor:
        """Noise ``(samples, H, A)`` from the slot's generator, unit variance per step, spectrum
        ``1/f^beta`` along time."""
        shape = (samples, self.action_dim, self._spectrum.shape[0])
        generator = self.generators[slot]
        real = torch.randn(shape, generator=generator, device=self.device)
        imag = torch.randn(shape, generator=generator, device=self.device)
        imag[..., 0] = imag[..., -1] = 0.0  # the zero and Nyquist terms of a real signal are real
        signal = torch.fft.irfft(torch.complex(real, imag) * self._spectrum, n=2 * self.horizon, dim=-1)
        return signal[..., : self.horizon].transpose(1, 2)

    def _shifted_memory(self, warm_start: torch.Tensor | None, mean: torch.Tensor, slot: int) -> torch.Tensor:
        """The slot's last plan's kept elites, shifted as the warm start was; empty if it is not that plan's."""
        empty = mean.new_zeros(0, self.horizon, self.action_dim)
        if warm_start is None or slot not in self._kept or self.keep == 0:
            return empty
        last = self._last_plan[slot][None]
        for steps in [*range(1, self.horizon + 1), 0]:
            if torch.equal(shift_rows(last, steps)[0], mean):
                return shift_rows(self._kept[slot][: self.keep], steps)
        return empty

    @torch.no_grad()
    def minimize_batch(
        self, cost: BatchCost, warm_starts: Sequence[torch.Tensor | None], slots: Sequence[int]
    ) -> torch.Tensor:
        mean = self.initial_means(warm_starts)  # (E, H, A)
        std = torch.full_like(mean, self.init_std)
        kept = [self._shifted_memory(w, m, s) for w, m, s in zip(warm_starts, mean, slots, strict=True)]
        best, best_cost = mean, torch.full(mean.shape[:1], float("inf"), device=self.device)
        evaluations = 0
        for i in range(self.iterations):
            # each problem scores population(i) candidates: its mean, its kept elites, fresh noise
            candidates = torch.stack([
                torch.cat([m[None], k, m + s * self.coloured_noise(self.population(i) - 1 - k.shape[0], slot)])
                for m, s, k, slot in zip(mean, std, kept, slots, strict=True)
            ]).clamp(ACTION_LOW, ACTION_HIGH)  # (E, N, H, A)
            costs = cost(candidates)
            evaluations += candidates.shape[1]
            order = torch.argsort(costs, dim=1)
            best, best_cost = keep_better(best, best_cost, rows(candidates, order[:, 0]), rows(costs, order[:, 0]))
            elite = rows(candidates, order[:, : self.elites])  # (E, elites, H, A)
            kept = list(elite[:, : self.keep])
            mean = self.alpha * mean + (1 - self.alpha) * elite.mean(dim=1)
            spread = elite.std(dim=1, unbiased=False)
            std = (self.alpha * std + (1 - self.alpha) * spread).clamp_min(self.min_std)
        mean_cost = cost(mean[:, None])[:, 0]
        self.last_evaluations = evaluations + 1
        best, best_cost = keep_better(best, best_cost, mean, mean_cost, ties_to_other=True)
        self.last_costs = best_cost.tolist()
        for e, slot in enumerate(slots):
            self._kept[slot], self._last_plan[slot] = elite[e].clone(), best[e].clone()
        return best

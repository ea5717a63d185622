"""How close the predictor's rollout comes to this machine's matmul peak (``benchmark.py suite=scale``).

A plan's time is almost all the predictor's rollout (``WorldModel.rollout`` of every candidate), so its
achieved FLOP rate says how much a faster implementation could still gain. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode``: the matrix products only (what the peak is measured
on); the elementwise work beside them (LayerNorm, GELU, concatenation) costs time but no counted
FLOPs, which is exactly the gap this ratio shows.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from worldmodel.world_model import WorldModel


def _seconds_per_call(fn: Any, repeats: int) -> float:
    fn()  # warm up: allocations, oneDNN primitive caches
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


@torch.no_grad()
def matmul_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of a ``size``-square float32 matrix product on the current torch threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / _seconds_per_call(lambda: a @ b, repeats) / 1e9


@torch.no_grad()
def rollout_gflops(model: WorldModel, candidates: int, horizon: int, repeats: int = 20, seed: int = 0) -> dict[str, float]:
    """Achieved GFLOP/s of ``model.rollout`` of ``candidates`` random sequences of ``horizon`` actions."""
    generator = torch.Generator().manual_seed(seed)
    z0 = torch.randn(candidates, model.latent_dim, generator=generator).to(model.device)
    actions = (torch.rand(candidates, horizon, model.action_dim, generator=generator) * 2 - 1).to(model.device)
    counter = FlopCounterMode(display=False)
    with counter:
        model.rollout(z0, actions)
    seconds = _seconds_per_call(lambda: model.rollout(z0, actions), repeats)
    flops = counter.get_total_flops()
    return {"candidates": candidates, "horizon": horizon, "gflop": flops / 1e9, "ms": 1000 * seconds,
            "gflops": flops / seconds / 1e9}

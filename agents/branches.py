"""Where a world model's prediction lands when the world branches (issue 24's prediction measurement).

On ``wall-branching`` the same start and the same actions have two futures: the risky door open (the
ball passes) or shut (it stops at the shutter); on ``wall-trap``, the ball passes or is caught in the doorway. :func:`branch_errors` makes both of them for real,
with the door forced (``shut_probability`` 0 and 1, the same episode otherwise): the ball starts at
rest ``approach`` metres in front of the risky door, at its height, and is pushed straight at it for
``horizon`` steps, so that the door is drawn on the way. Both futures are encoded, and the model's
open-loop prediction from the start is compared with each:

* a deterministic model predicts one future; a model of the average of the branches sits between the
  two, far from both (``to_open`` and ``to_shut`` near half the ``separation`` each);
* a latent-variable model draws ``samples`` futures from its prior; its best-of-K distance to each
  branch says whether some draw predicts that branch (near 0 for both when it learned the split).

Distances are Euclidean in the model's own latent space, so the figures that compare two models are
the ratios to ``separation``, the distance between the two real futures' latents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import envs
from agents.pairs import held_out_pairs
from worldmodel.frames import FrameHistory
from worldmodel.world_model import WorldModel

BRANCHING_VARIANTS = ("branching", "trap")  # the wall variants whose risky door is drawn on the way to it


def branch_futures(branches: dict[str, Any], spec: dict[str, Any], approach: float, horizon: int
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The start observation, the actions, and each branch's ``horizon`` observations for one episode;
    ``branches`` maps a branch's name to its env (:func:`forced_doors`)."""
    side = 1.0 if spec["start"][0] > 0 else -1.0
    start = {**spec, "start": [side * approach, spec["risky_door"][0]]}
    actions = np.tile(np.array([-side, 0.0], dtype=np.float32), (horizon, 1))  # straight at the door
    futures, first = {}, None
    for branch, env in branches.items():
        first = env.reset(options=start)[0]["observation"]
        futures[branch] = np.stack([env.step(a)[0]["observation"] for a in actions])
    return first, actions, futures


def forced_doors(task: str, obs: str) -> dict[str, Any]:
    """The task's env twice, its risky door forced open (``shut_probability`` 0) and shut (1)."""
    return {branch: envs.make(task, obs=obs, shut_probability=shut) for branch, shut in (("open", 0.0), ("shut", 1.0))}


@torch.no_grad()
def branch_errors(model: WorldModel, task: str, obs: str, episodes: int, seed: int, approach: float = 0.7,
                  horizon: int = 10, samples: int = 8) -> dict[str, Any]:
    """Distances of the model's predictions to the two branches, ``episodes`` held-out layouts (pair seed
    ``seed``), at the last step and averaged over the ``horizon`` steps; means over episodes."""
    branches = forced_doors(task, obs)
    try:
        specs, _ = held_out_pairs(branches["open"].unwrapped, episodes, seed, None)
        generator = torch.Generator().manual_seed(seed)
        rows = []
        for spec in specs:
            first, actions, futures = branch_futures(branches, spec, approach, horizon)
            z0 = model.encode(FrameHistory(model.frame_stack).push(first)[None].to(model.device))  # (1, D)
            truth = {}
            for branch, observations in futures.items():
                history = FrameHistory(model.frame_stack)
                history.push(first)
                truth[branch] = model.encode(torch.stack([history.push(o) for o in observations]).to(model.device))
            a = torch.as_tensor(actions, device=model.device)[None]
            if model.code_dim:
                codes = model.sample_codes(samples, horizon, generator)
                predicted = model.rollout(z0.expand(samples, -1), a.expand(samples, -1, -1), codes.to(model.device))
            else:
                predicted = model.rollout(z0, a)  # (1, H, D): one future
            separation = (truth["open"] - truth["shut"]).norm(dim=-1)  # (H,)
            row = {"separation_last": float(separation[-1]), "separation_mean": float(separation.mean())}
            for branch, z in truth.items():
                best = (predicted - z[None]).norm(dim=-1).amin(dim=0)  # (H,): the nearest draw, each step
                row[f"to_{branch}_last"], row[f"to_{branch}_mean"] = float(best[-1]), float(best.mean())
            rows.append(row)
    finally:
        for env in branches.values():
            env.close()
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    ratios = {f"to_{b}_over_separation_last": mean[f"to_{b}_last"] / mean["separation_last"] for b in ("open", "shut")}
    return {"episodes": len(rows), "horizon": horizon, "approach": approach, "seed": seed,
            "samples": samples if model.code_dim else 1, "predictor": "latent_variable" if model.code_dim else "deterministic",
            **mean, **ratios}

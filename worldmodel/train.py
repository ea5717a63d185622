"""Training loop for the JEPA world model (single process, or DDP under ``torchrun``).

Reads top to bottom like a CleanRL script: set up, then one loop of sample -> loss -> step -> log
-> checkpoint. A batch depends only on ``(seed, rank, step)`` and the SIGReg directions only on the
step, so a resumed run repeats the loss trajectory of an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from envs.builder import build
from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from worldmodel.checkpoint import (
    CHECKPOINT_DIR,
    LATEST,
    load_world_model,
    restore_training_state,
    save_checkpoint,
)
from worldmodel.data import WindowSampler
from worldmodel.diagnostics import latent_stats
from worldmodel.losses import JEPAObjective
from worldmodel.runtime import MetricsLogger, resolve_device, seed_everything
from worldmodel.world_model import WorldModel, build_world_model, normalization_stats


@dataclass(frozen=True)
class Process:
    """Where this process sits in a (possibly one-process) distributed run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_process(device_name: str) -> Process:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, nccl on CUDA)."""
    device = resolve_device(device_name)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Process(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Process(dist.get_rank(), world_size, device)


def dataset_meta(episodes: EpisodeSet) -> dict[str, Any]:
    """What a checkpoint trained on these episodes is valid for."""
    metadata = episodes.metadata
    return {
        "task": metadata["task"],
        "obs": metadata["obs"],
        "image_size": metadata.get("image_size"),
        "action_dim": int(episodes.actions.shape[1]),
        "obs_shape": [int(s) for s in episodes.observations.shape[1:]],
        "state_dim": int(episodes.states.shape[1]),
        # evaluation refuses this seed, so its held-out pairs never replay a training episode
        "collection_seed": metadata.get("seed"),
    }


def any_process(flag: bool, process: Process) -> bool:
    """True if ``flag`` is true on any process, so that all of them stop together."""
    if process.world_size == 1:
        return flag
    value = torch.tensor(float(flag), device=process.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def check_finite(obs: torch.Tensor, actions: torch.Tensor, loss: torch.Tensor, step: int, process: Process) -> None:
    """Stop on NaN/inf data or loss before it reaches the weights; the last checkpoint stays good."""
    bad_batch = not (torch.isfinite(obs.float()).all() and torch.isfinite(actions).all())
    if any_process(bool(bad_batch), process):
        raise UserInputError(f"NaN/inf in the training batch at step {step}: the dataset is corrupt "
                             "(the last good checkpoint was kept)")
    if any_process(not bool(torch.isfinite(loss)), process):
        raise UserInputError(f"loss became NaN/inf at step {step}: training diverged; lower optim.lr or "
                             "optim.grad_clip and resume=true from the last good checkpoint")


def plot_loss_curve(rows: list[dict[str, Any]], fields: list[str], path: Path) -> None:
    """One panel per logged loss term against the step (matplotlib's Agg canvas, no display needed)."""
    keys = [k for k in fields if k == "loss" or k.startswith(("pred_", "vicreg", "sigreg", "inverse", "temporal"))]
    fig = Figure(figsize=(6, 1.8 * len(keys)))
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    steps = [float(r["step"]) for r in rows]
    for ax, key in zip(axes, keys, strict=True):
        ax.plot(steps, [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows])
        ax.set_ylabel(key, fontsize=8)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def logged_seconds(rows: list[dict[str, Any]], windows_per_step: int) -> float:
    """Training seconds over every sitting, from the log: each row's ``samples_per_s`` was measured over
    the steps since the row before it, so those steps took ``windows_per_step * steps / rate`` seconds.

    A resumed run keeps the rows up to its checkpoint and logs on from there, so steps that a killed
    sitting ran past its last checkpoint count once, in the sitting that kept them. Assumes every
    sitting ran with the same number of processes (``windows_per_step``)."""
    seconds, previous = 0.0, 0
    for row in rows:
        step = int(float(row["step"]))
        seconds += windows_per_step * (step - previous) / float(row["samples_per_s"])
        previous = step
    return seconds


def write_summary(run_dir: Path, rows: list[dict[str, Any]], steps_this_run: int, seconds: float,
                  windows_per_step: int) -> None:
    """``summary.json``: what the pipeline and the benchmark read (speed of this run and of all its
    sittings, final losses)."""
    last = rows[-1] if rows else {}
    summary = {
        "steps": int(last.get("step", 0)),
        "steps_this_run": steps_this_run,
        "seconds": logged_seconds(rows, windows_per_step),
        "seconds_this_run": seconds,
        "samples_per_s": windows_per_step * steps_this_run / seconds if steps_this_run else None,
        "final": {k: float(v) for k, v in last.items() if k != "step" and v not in (None, "")},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def adopt_encoder(model: WorldModel, source: str) -> None:
    """Give ``model`` the encoder of the trained checkpoint ``source`` (its weights, its target encoder
    and its observation normalisation) and freeze it, so that training fits only the predictor and
    the heads, on latents that no longer move: e.g. a latent-variable predictor fit after a
    deterministic model's encoder has settled (docs/EXPERIMENTS.md: on the branching wall the code
    learns part of the door's branch on frozen latents, none of it end to end). The new checkpoint
    holds the adopted weights; evaluating it does not need ``source``."""
    donor, _ = load_world_model(source, device="cpu")
    if donor.obs_shape != model.obs_shape or donor.latent_dim != model.latent_dim:
        raise UserInputError(f"encoder_from={source} encodes observations {list(donor.obs_shape)} to {donor.latent_dim} "
                             f"dimensions; this run needs {list(model.obs_shape)} to {model.latent_dim}")
    try:
        model.encoder.load_state_dict(donor.encoder.state_dict())
    except RuntimeError as error:
        raise UserInputError(f"encoder_from={source} has an encoder of another architecture than model.encoder's "
                             f"({str(error).splitlines()[0]})") from None
    with torch.no_grad():
        model.obs_loc.copy_(donor.obs_loc)
        model.obs_scale.copy_(donor.obs_scale)
    model.encoder.requires_grad_(False)
    if model.target_encoder is not None:
        model.target_encoder.load_state_dict(model.encoder.state_dict())


def train(cfg: DictConfig, episodes: EpisodeSet, run_dir: Path, experiment: str | None = None,
          on_start: Callable[[], None] | None = None) -> WorldModel:
    """Train (or with ``cfg.resume`` continue) a world model on ``episodes``; returns it.

    ``experiment`` (the ``configs/experiment/`` file the config was composed with) is recorded in the
    checkpoint, so that evaluation plans with the same recipe. ``on_start`` runs once the run has been
    accepted (no checkpoint in the way, or a compatible one restored) and before the first step:
    scripts record the run there, so a refused run rewrites nothing.
    """
    episodes.check_finite("training data")
    process = init_process(cfg.device)
    seed_everything(cfg.seed)
    meta = {**dataset_meta(episodes), "experiment": experiment}
    sampler = WindowSampler(episodes, cfg.window, cfg.batch_size, seed=cfg.seed, rank=process.rank,
                            frame_stack=cfg.model.frame_stack)
    model = build_world_model(cfg.model, meta["obs_shape"], meta["action_dim"])
    model.set_normalization(*normalization_stats(episodes.observations))
    if cfg.encoder_from:
        adopt_encoder(model, cfg.encoder_from)
    model.to(process.device)
    objective = JEPAObjective(model, build(cfg.model.regularizer, "model.regularizer"), **cfg.model.loss).to(process.device)
    trainable = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)

    latest = run_dir / CHECKPOINT_DIR / LATEST
    start_step = 0
    if latest.exists():
        if not cfg.resume:
            raise UserInputError(f"{run_dir} already holds a checkpoint; pass resume=true to continue it "
                                 "or choose another out=")
        start_step = restore_training_state(latest, model, optimizer, cfg, meta)
        if start_step > cfg.steps:
            raise UserInputError(f"{latest} is at step {start_step}, past steps={cfg.steps}; resume with "
                                 f"steps={start_step} or more")
    if on_start is not None and process.is_main:
        on_start()
    wrapped = DistributedDataParallel(objective) if process.world_size > 1 else objective
    logger = MetricsLogger(run_dir) if process.is_main else None
    if logger is not None:
        logger.truncate(start_step)

    windows_per_step = cfg.batch_size * process.world_size
    progress = tqdm(range(start_step, cfg.steps), initial=start_step, total=cfg.steps,
                    disable=not process.is_main, desc="train")
    started = last_time = time.perf_counter()
    last_step = start_step
    for step in progress:
        batch = sampler.sample(step)
        obs = batch.obs.to(process.device, non_blocking=True)
        actions = batch.actions.to(process.device, non_blocking=True)
        loss, terms = wrapped(obs, actions, step)
        check_finite(obs, actions, loss, step, process)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
        optimizer.step()
        model.update_target()

        done = step + 1
        if logger is not None and (done % cfg.log_every == 0 or done == cfg.steps):
            now = time.perf_counter()
            rate = windows_per_step * (done - last_step) / (now - last_time)
            last_time, last_step = now, done
            with torch.no_grad():
                spread = latent_stats(model.encode(obs[:, 0]))
            metrics = {**{k: float(v.detach()) for k, v in terms.items()}, **spread,
                       "grad_norm": float(grad_norm), "samples_per_s": rate}
            logger.log(done, metrics)
            progress.set_postfix(loss=f"{metrics['loss']:.4f}", samples_s=f"{rate:.0f}")
        if process.is_main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(latest, model, optimizer, cfg, {**meta, "step": done})

    if logger is not None:
        logger.close()
        if logger.rows:
            plot_loss_curve(logger.rows, logger.fields, run_dir / "loss_curve.png")
        write_summary(run_dir, logger.rows, steps_this_run=cfg.steps - start_step,
                      seconds=time.perf_counter() - started, windows_per_step=windows_per_step)
    if process.world_size > 1:
        dist.barrier()
    return model

"""Check that a trained world model learned something; writes ``out/probe.json``.

    python scripts/probe.py checkpoint=RUN_OR_FILE data=PATH out=PATH

Figures: latent_std_mean/min, effective_rank, probe_r2 (linear probe latent -> true state, fit on
training episodes, scored on held-out ones; probe_r2_per_dim: per column of the task's state, null
where it does not vary), pred_error vs copy_baseline_error (open-loop over
``horizon`` steps) and plannability (how often the true actions beat random ones in latent energy).
A model that planning cannot use (plannability below ``min_plannability``, or a predictor no better
than copying the last latent) gets a ``warning:`` line and a ``warnings`` entry in probe.json.
``surprise`` (:mod:`worldmodel.surprise`): how well the one-step prediction error flags held-out clips
in which the world teleports (detection and false-alarm rates, AUC, the mean curve around the
splice); the report draws its curves.
"""

from __future__ import annotations

import json
import sys
import time

import hydra
from omegaconf import DictConfig, OmegaConf

from envs.dataset import load_episodes
from worldmodel.checkpoint import check_compatible, load_world_model
from worldmodel.diagnostics import health_warnings, run_diagnostics, split_episodes
from worldmodel.runtime import cli_main, prepare_run_dir, seed_everything
from worldmodel.surprise import surprise_test
from worldmodel.train import dataset_meta


def without_lists(figures: dict) -> dict:
    """The figures for the terminal: per-step lists and curves stay in probe.json."""
    return {k: without_lists(v) if isinstance(v, dict) else v for k, v in figures.items() if not isinstance(v, list)}


@hydra.main(config_path="../configs", config_name="probe", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    started = time.perf_counter()
    seed_everything(cfg.seed)
    model, train_cfg = load_world_model(cfg.checkpoint, cfg.device)
    episodes = load_episodes(cfg.data, task=train_cfg.meta.task, obs=train_cfg.meta.obs)
    check_compatible(OmegaConf.to_container(train_cfg.meta), dataset_meta(episodes), "data")
    run_dir = prepare_run_dir(cfg.out, cfg)
    state_dims = None if cfg.state_dims is None else list(cfg.state_dims)
    results = run_diagnostics(
        model, episodes, cfg.holdout_fraction, cfg.horizon, cfg.num_windows, cfg.num_random,
        cfg.ridge, state_dims, cfg.batch_size, cfg.seed,
    )
    warnings = health_warnings(results, cfg.min_plannability)
    _, held_out = split_episodes(len(episodes.episode_lengths), cfg.holdout_fraction, cfg.seed)  # as above
    surprise = surprise_test(model, episodes, held_out, cfg.surprise.window, cfg.surprise.clips,
                             cfg.surprise.quantile, cfg.batch_size, cfg.seed)
    results = {"checkpoint": str(cfg.checkpoint), "step": train_cfg.meta.step, **results, "surprise": surprise,
               "warnings": warnings, "seconds": time.perf_counter() - started}
    (run_dir / "probe.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(without_lists(results), indent=2))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    main()

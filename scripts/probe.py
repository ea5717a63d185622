"""Check that a trained world model learned something; writes ``out/probe.json``.

    python scripts/probe.py checkpoint=RUN_OR_FILE data=PATH out=PATH

Figures: latent_std_mean/min, effective_rank, probe_r2 (linear probe latent -> true state, fit on
training episodes, scored on held-out ones), pred_error vs copy_baseline_error (open-loop over
``horizon`` steps) and plannability (how often the true actions beat random ones in latent energy).
A model that planning cannot use (plannability below ``min_plannability``, or a predictor no better
than copying the last latent) gets a ``warning:`` line and a ``warnings`` entry in probe.json.
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from envs.dataset import load_episodes
from worldmodel.checkpoint import check_compatible, load_world_model
from worldmodel.diagnostics import health_warnings, run_diagnostics
from worldmodel.runtime import cli_main, prepare_run_dir, seed_everything
from worldmodel.train import dataset_meta


@hydra.main(config_path="../configs", config_name="probe", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
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
    results = {"checkpoint": str(cfg.checkpoint), "step": train_cfg.meta.step, **results, "warnings": warnings}
    (run_dir / "probe.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, list)}, indent=2))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    main()

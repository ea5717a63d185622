"""End-to-end training tests on state-Reacher: learning, collapse, exact resume, bad input, DDP."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file, save_file

from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from worldmodel.checkpoint import load_world_model
from worldmodel.diagnostics import run_diagnostics
from worldmodel.runtime import MetricsLogger
from worldmodel.train import logged_seconds, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL = ["batch_size=64", "model.latent_dim=32", "model.encoder_by_obs.state.hidden_dim=128",
         "model.predictor.hidden_dim=128"]


def reacher_state(num_episodes: int, length: int, seed: int) -> EpisodeSet:
    """Reacher-v5 under smooth random actions; state = cos q, sin q, dq, fingertip xy (as envs/reacher)."""
    env = gym.make("Reacher-v5")
    rng = np.random.default_rng(seed)

    def state() -> np.ndarray:
        data, q = env.unwrapped.data, env.unwrapped.data.qpos[:2]
        tip = env.unwrapped.get_body_com("fingertip")[:2]
        return np.concatenate([np.cos(q), np.sin(q), data.qvel[:2], tip]).astype(np.float32)

    episodes = []
    for i in range(num_episodes):
        env.reset(seed=seed * 100_000 + i)
        states, actions, action = [state()], [], rng.uniform(-1, 1, 2)
        for _ in range(length):
            action = np.clip(0.7 * action + 0.6 * rng.normal(size=2), -1, 1).astype(np.float32)
            env.step(action)
            states.append(state())
            actions.append(action)
        states = np.array(states)
        episodes.append({"observations": states, "actions": np.array(actions), "states": states, "goal": states[-1]})
    return EpisodeSet.from_episodes(episodes, {"task": "reacher", "obs": "state", "image_size": None})


@pytest.fixture(scope="module")
def episodes() -> EpisodeSet:
    return reacher_state(num_episodes=100, length=50, seed=0)


def train_cfg(out: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=["obs=state", "data=unused", f"out={out}", "device=cpu", *overrides])


def diagnose(model, episodes: EpisodeSet) -> dict:
    return run_diagnostics(model.eval(), episodes, holdout_fraction=0.2, horizon=8, num_windows=256,
                           num_random=32, ridge=1e-3, state_dims=None, batch_size=1024, seed=0)


@pytest.fixture(scope="module")
def trained(episodes, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("vicreg")
    model = train(train_cfg(out, "steps=400", *SMALL), episodes, out)
    return out, diagnose(model, episodes)


def test_short_run_learns_a_probeable_predictive_latent(trained):
    out, probe = trained
    assert probe["probe_r2"] > 0.9
    assert probe["pred_error"] < 0.5 * probe["copy_baseline_error"]
    assert all(p < c for p, c in zip(probe["pred_error_per_step"], probe["copy_baseline_error_per_step"], strict=True))
    assert probe["plannability"] > 0.8
    assert (out / "loss_curve.png").stat().st_size > 0 and any((out / "tensorboard").iterdir())
    rows = MetricsLogger(out, tensorboard=False).rows
    assert {"loss", "pred_teacher_forced", "pred_open_loop", "vicreg_std", "vicreg_cov", "samples_per_s"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < 0.5 * float(rows[0]["loss"])


def test_without_regularizer_the_latent_collapses(trained, episodes, tmp_path):
    """Stop-gradient targets alone let the latent shrink onto a few directions (dimensional collapse)."""
    _, with_reg = trained
    model = train(train_cfg(tmp_path, "steps=400", "model/regularizer=none", *SMALL), episodes, tmp_path)
    without = diagnose(model, episodes)
    assert with_reg["effective_rank"] > 10 and with_reg["latent_std_min"] > 0.8
    assert without["effective_rank"] < 0.7 * with_reg["effective_rank"]
    assert without["latent_std_mean"] < 0.6 * with_reg["latent_std_mean"]
    assert without["latent_std_min"] < 0.4 * with_reg["latent_std_min"]


def loss_trajectory(run_dir: Path) -> list[tuple[float, ...]]:
    return [(float(r["step"]), float(r["loss"]), float(r["sigreg"])) for r in MetricsLogger(run_dir, False).rows]


def test_resume_repeats_the_uninterrupted_run_exactly(episodes, tmp_path):
    common = ["log_every=1", "checkpoint_every=5", "model/regularizer=sigreg", "model.ema_decay=0.9", *SMALL]
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    train(train_cfg(whole, "steps=10", *common), episodes, whole)
    train(train_cfg(halves, "steps=5", *common), episodes, halves)
    first_sitting = tmp_path / "sitting1"
    first_sitting.mkdir()
    (first_sitting / "summary.json").write_text((halves / "summary.json").read_text())
    train(train_cfg(halves, "steps=10", "resume=true", *common), episodes, halves)
    assert len(loss_trajectory(whole)) == 10
    assert loss_trajectory(halves) == loss_trajectory(whole)
    a, b = load_file(str(whole / "checkpoint/latest.safetensors")), load_file(str(halves / "checkpoint/latest.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("rng"))
    first, second = (json.loads((run / "summary.json").read_text()) for run in (first_sitting, halves))
    slack = 1e-9  # the rate's round trip through a float
    assert 0 < first["seconds"] <= first["seconds_this_run"] + slack  # an unresumed run: its own logged steps
    # resumed: the first sitting's seconds, plus at most the second sitting's wall time
    assert first["seconds"] < second["seconds"] <= first["seconds"] + second["seconds_this_run"] + slack


def test_logged_seconds_adds_each_intervals_steps_over_its_rate() -> None:
    rows = [{"step": "50", "samples_per_s": "100"}, {"step": 100, "samples_per_s": 200.0}, {"step": 110, "samples_per_s": 40}]
    # 32 windows per step: 50 steps at 100/s, 50 at 200/s, 10 at 40/s
    assert logged_seconds(rows, 32) == pytest.approx(32 * 50 / 100 + 32 * 50 / 200 + 32 * 10 / 40)
    assert logged_seconds([], 32) == 0.0


def test_bad_input_stops_cleanly_and_keeps_the_checkpoint(episodes, tmp_path):
    train(train_cfg(tmp_path, "steps=3", *SMALL), episodes, tmp_path)
    with pytest.raises(UserInputError, match="resume=true"):
        train(train_cfg(tmp_path, "steps=6", *SMALL), episodes, tmp_path)
    with pytest.raises(UserInputError, match="another model config"):
        train(train_cfg(tmp_path, "steps=6", "resume=true", "model.latent_dim=16", *SMALL[:1]), episodes, tmp_path)
    wrong_task = EpisodeSet(episodes.observations, episodes.actions, episodes.states, episodes.goals,
                            episodes.episode_lengths, {**episodes.metadata, "task": "wall"})
    with pytest.raises(UserInputError, match="task: checkpoint 'reacher' vs data 'wall'"):
        train(train_cfg(tmp_path, "steps=6", "resume=true", *SMALL), wrong_task, tmp_path)
    observations = episodes.observations.copy()
    observations[episodes.obs_starts[7] + 12, 3] = np.nan  # one value: the statistics would absorb it
    corrupt = EpisodeSet(observations, episodes.actions, episodes.states, episodes.goals,
                         episodes.episode_lengths, episodes.metadata)
    with pytest.raises(UserInputError, match=r"NaN/inf in episode 7's observations \(step 12\)"):
        train(train_cfg(tmp_path, "steps=6", "resume=true", *SMALL), corrupt, tmp_path)
    actions = episodes.actions.copy()
    actions[episodes.action_starts[40] + 3, 1] = np.inf
    with pytest.raises(UserInputError, match=r"NaN/inf in episode 40's actions \(step 3\)"):
        train(train_cfg(tmp_path, "steps=6", "resume=true", *SMALL),
              EpisodeSet(episodes.observations, actions, episodes.states, episodes.goals,
                         episodes.episode_lengths, episodes.metadata), tmp_path)
    model, cfg = load_world_model(tmp_path, device="cpu")
    assert cfg.meta.step == 3 and torch.isfinite(model.encode(episodes.observations[:4])).all()
    with pytest.raises(UserInputError, match="longest has 50 actions"):
        train(train_cfg(tmp_path / "short", "window=60", *SMALL), episodes, tmp_path / "short")


def ddp_worker(rank: int, port: int, episodes: EpisodeSet, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    model = train(train_cfg(Path(out), "steps=5", "log_every=1", *SMALL), episodes, Path(out))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_two_process_ddp_stays_in_sync(episodes, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(ddp_worker, args=(port, episodes, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    saved = load_file(str(tmp_path / "checkpoint/latest.safetensors"))
    assert all(torch.equal(saved[f"model.{k}"], v) for k, v in rank0.items())
    rows = MetricsLogger(tmp_path, tensorboard=False).rows
    assert len(rows) == 5 and not (tmp_path / "rank1").exists()


@pytest.mark.parametrize("pinned,expected", [("1", 1), ("3", 3), ("", None), ("auto", None), ("0", None)])
def test_large_batches_take_the_pinned_thread_count_else_every_core(monkeypatch, pinned: str, expected: int | None) -> None:
    """A benchmark pinned to one thread (OMP_NUM_THREADS=1) must not have GCBC training take both cores."""
    import os

    from worldmodel.runtime import usable_threads

    monkeypatch.setenv("OMP_NUM_THREADS", pinned)
    assert usable_threads() == (expected if expected is not None else os.cpu_count())


def test_a_predictor_fit_on_an_adopted_encoder_leaves_it_as_it_was(trained, episodes, tmp_path):
    """``encoder_from``: a latent-variable predictor trained on the trained run's encoder, frozen. The
    encoder, its normalisation and its latents come out bit-identical to the donor's while the
    predictor learns (its prediction error falls); a donor of another latent size is a one-line error."""
    donor_dir, _ = trained
    donor, _ = load_world_model(donor_dir, device="cpu")
    model = train(train_cfg(tmp_path, "steps=60", "log_every=10", "model/predictor=latent_variable",
                            f"encoder_from={donor_dir}", *SMALL), episodes, tmp_path)
    for name, tensor in donor.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name].cpu(), tensor), name
    assert torch.equal(model.obs_loc.cpu(), donor.obs_loc) and torch.equal(model.obs_scale.cpu(), donor.obs_scale)
    loaded, _ = load_world_model(tmp_path, device="cpu")
    with torch.no_grad():
        assert torch.equal(loaded.encode(episodes.observations[:5]), donor.encode(episodes.observations[:5]))
    rows = MetricsLogger(tmp_path, tensorboard=False).rows
    assert float(rows[-1]["pred_teacher_forced"]) < 0.8 * float(rows[0]["pred_teacher_forced"])
    with pytest.raises(UserInputError, match=r"encoder_from=.* to 32 dimensions; this run needs .* to 16") as error:
        train(train_cfg(tmp_path / "other", "steps=2", f"encoder_from={donor_dir}", "model.latent_dim=16",
                        *SMALL[:1]), episodes, tmp_path / "other")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("prior", "effect_weight"), [("fixed", 0.0), ("learned", 0.1)])
def test_a_latent_variable_model_trains_saves_and_loads(episodes, tmp_path, prior, effect_weight):
    """``model/predictor=latent_variable`` through the real training loop: the code's rate (and a learned
    prior's fit, and the code's effect where it is charged) is logged, the checkpoint loads the same
    predictor (the same prediction under the same draws of the prior), and a code sampled from the
    prior changes the prediction."""
    model = train(train_cfg(tmp_path, "steps=60", "model/predictor=latent_variable", f"model.predictor.prior={prior}",
                            f"model.predictor.effect_weight={effect_weight}", *SMALL), episodes, tmp_path)
    rows = MetricsLogger(tmp_path, tensorboard=False).rows
    assert "code_rate" in rows[0] and float(rows[-1]["code_rate"]) >= 0.0
    assert ("code_prior_fit" in rows[0]) == (prior == "learned")
    assert ("code_effect" in rows[0]) == (effect_weight > 0) and float(rows[-1].get("code_effect", 0.0)) >= 0.0
    loaded, _ = load_world_model(tmp_path, device="cpu")
    assert loaded.code_dim == model.code_dim == 4
    z = loaded.encode(episodes.observations[:5])
    actions = torch.zeros(5, 3, 2)
    codes = loaded.sample_codes(5, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded.rollout(z, actions, codes), model.eval().rollout(z, actions, codes), atol=1e-6)
        assert not torch.allclose(loaded.rollout(z, actions, codes), loaded.rollout(z, actions))

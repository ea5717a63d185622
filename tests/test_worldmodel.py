"""Unit tests of the world model's parts: windows, encoders, predictor, losses, diagnostics, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

import worldmodel.checkpoint as checkpoint
from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from worldmodel.data import WindowSampler, measure_window_rate
from worldmodel.diagnostics import (
    health_warnings,
    latent_stats,
    linear_probe_r2,
    linear_probe_r2_per_output,
    plannability,
    prediction_errors,
)
from worldmodel.encoders import KeypointEncoder, SpatialSoftArgmax
from worldmodel.frames import FrameHistory
from worldmodel.losses import JEPAObjective, SIGReg, VICReg
from worldmodel.surprise import draw_clips, rank_auc, stacked_clip, step_surprise, surprise_test
from worldmodel.world_model import build_world_model, normalization_stats


def counting_episodes(lengths: list[int], obs_shape: tuple[int, ...] = (3,)) -> EpisodeSet:
    """Observation/state value = 1000 * episode + time step, so a window's origin can be read off."""
    episodes = []
    for e, length in enumerate(lengths):
        t = np.arange(length + 1, dtype=np.float32) + 1000 * e
        obs = np.broadcast_to(t.reshape(-1, *[1] * len(obs_shape)), (length + 1, *obs_shape)).copy()
        episodes.append({"observations": obs, "actions": np.stack([t[:-1], -t[:-1]], 1),
                         "states": t[:, None].copy(), "goal": obs[-1]})
    return EpisodeSet.from_episodes(episodes, {"task": "reacher", "obs": "state", "image_size": None})


def model_cfg(obs: str = "state", *overrides: str):
    with initialize_config_dir(config_dir=str(checkpoint.Path(__file__).parents[1] / "configs"), version_base="1.3"):
        return compose("train", overrides=[f"obs={obs}", "data=unused", *overrides])


def test_windows_stay_inside_one_episode_and_are_reproducible():
    episodes = counting_episodes([5, 2, 9, 3])
    sampler = WindowSampler(episodes, window=3, batch_size=512, seed=7)
    # episodes of length 5, 9, 3 have 3, 7 and 1 window starts; the length-2 episode has none
    assert sampler.num_windows == 3 + 7 + 1
    batch = sampler.sample(0)
    assert batch.obs.shape == (512, 4, 3) and batch.actions.shape == (512, 3, 2) and batch.states.shape == (512, 4, 1)
    t = batch.states[:, :, 0]
    assert torch.equal(t[:, 1:] - t[:, :-1], torch.ones(512, 3))  # consecutive steps of one episode
    assert set((t[:, 0] // 1000).int().tolist()) == {0, 2, 3}
    assert torch.equal(batch.actions[:, :, 0], t[:, :-1])  # action t belongs to observation t
    assert torch.equal(sampler.sample(0).obs, batch.obs)
    assert not torch.equal(sampler.sample(1).obs, batch.obs)
    other_rank = WindowSampler(episodes, window=3, batch_size=512, seed=7, rank=1)
    assert not torch.equal(other_rank.sample(0).obs, batch.obs)


def test_window_sampler_subset_and_too_short_dataset():
    episodes = counting_episodes([5, 6, 7])
    subset = WindowSampler(episodes, window=2, batch_size=256, episode_ids=[1])
    assert set((subset.sample(0).states[:, 0, 0] // 1000).int().tolist()) == {1}
    with pytest.raises(UserInputError, match="longest has 7 actions"):
        WindowSampler(episodes, window=8, batch_size=4)
    assert measure_window_rate(episodes, window=2, batch_size=64, seconds=0.2) > 1000


def test_stacked_windows_hold_earlier_frames_and_repeat_the_first_of_an_episode():
    episodes = counting_episodes([4, 6])
    batch = WindowSampler(episodes, window=2, batch_size=256, seed=3, frame_stack=3).sample(0)
    assert batch.obs.shape == (256, 3, 9)  # three frames of 3 values side by side
    t = batch.states[:, :, 0]
    first = 1000 * (t // 1000)
    for k in range(3):  # oldest first: frame k of the stack is 2 - k steps back, never before the episode
        expected = torch.maximum(t - (2 - k), first)
        assert torch.equal(batch.obs[..., 3 * k], expected)


def test_frame_history_fills_with_the_first_frame_and_holds_the_goal_still():
    history = FrameHistory(2)
    frames = [np.full((2, 2, 3), v, np.uint8) for v in (1, 2, 3)]
    assert history.push(frames[0]).shape == (2, 2, 6)
    assert history.push(frames[0])[0, 0].tolist() == [1] * 6
    assert history.push(frames[1])[0, 0].tolist() == [1, 1, 1, 2, 2, 2]
    assert history.push(frames[2])[0, 0].tolist() == [2, 2, 2, 3, 3, 3]
    history.reset()
    assert history.push(frames[2])[0, 0].tolist() == [3] * 6
    assert history.still(frames[1])[0, 0].tolist() == [2] * 6


def test_normalization_stats_per_channel():
    obs = np.zeros((10, 4, 4, 3), dtype=np.uint8)
    obs[..., 1] = np.arange(10)[:, None, None] % 2 * 255  # half 0, half 255
    mean, std = normalization_stats(obs, chunk=3)
    assert torch.allclose(mean, torch.tensor([0.0, 127.5, 0.0]))
    assert torch.allclose(std, torch.tensor([1.0, 127.5, 1.0]))  # constant channels get scale 1


@pytest.mark.parametrize("obs,shape,dtype", [("state", (8,), np.float32), ("pixels", (64, 64, 3), np.uint8)])
def test_encode_and_rollout_shapes_and_gradients(obs, shape, dtype):
    cfg = model_cfg(obs)
    model = build_world_model(cfg.model, shape, action_dim=2)
    assert model.obs_shape[:-1] == shape[:-1] and model.obs_shape[-1] == cfg.model.frame_stack * shape[-1]
    raw = (np.random.default_rng(0).random((5, *model.obs_shape)) * 255).astype(dtype)
    z = model.encode(raw)
    assert z.shape == (5, cfg.model.latent_dim)
    actions = torch.zeros(5, 7, 2, requires_grad=True)
    predicted = model.rollout(z, actions)
    assert predicted.shape == (5, 7, cfg.model.latent_dim)
    step_by_step = model.predict(model.predict(z, actions[:, 0]), actions[:, 1])
    assert torch.allclose(predicted[:, 1], step_by_step)
    predicted.sum().backward()
    assert actions.grad is not None and actions.grad.abs().sum() > 0


def test_soft_argmax_finds_a_peak_and_keypoints_depend_on_the_image():
    soft_argmax = SpatialSoftArgmax(5, 9)
    features = torch.zeros(1, 2, 5, 9)
    features[0, 0, 1, 6] = 50.0  # row 1 of 5 -> y = -0.5; column 6 of 9 -> x = 0.5
    features[0, 1, 4, 0] = 50.0  # bottom-left corner
    assert torch.allclose(soft_argmax(features), torch.tensor([[0.5, -0.5, -1.0, 1.0]]), atol=1e-4)
    # a uniform map has its mean in the middle
    assert torch.allclose(soft_argmax(torch.zeros(1, 1, 5, 9)), torch.zeros(1, 2), atol=1e-6)

    encoder = KeypointEncoder((16, 16, 1), latent_dim=4, channels=[8], strides=[1], keypoints=3, hidden_dim=16)
    images = torch.zeros(2, 16, 16, 1)
    images[0, 3, 3], images[1, 12, 12] = 1.0, 1.0
    keypoints = encoder.soft_argmax(encoder.conv(images.permute(0, 3, 1, 2)))
    assert keypoints.shape == (2, 6) and encoder(images).shape == (2, 4)
    assert not torch.allclose(keypoints[0], keypoints[1])


@pytest.mark.parametrize("override,head", [("model.inverse_dynamics.weight=1", True),
                                           ("model.inverse_dynamics.weight=0", False),
                                           ("model.inverse_dynamics=null", False)])  # null: old checkpoints
def test_inverse_dynamics_head_is_built_only_at_a_positive_weight(override, head):
    model = build_world_model(model_cfg("state", override).model, (5,), action_dim=2)
    assert (model.inverse_dynamics is not None) == head


def test_ema_target_moves_towards_online_encoder():
    cfg = model_cfg("state", "model.ema_decay=0.5")
    model = build_world_model(cfg.model, (8,), action_dim=2)
    online, target = model.encoder.net[0].weight, model.target_encoder.net[0].weight
    assert torch.equal(online, target)
    before = target.clone()
    with torch.no_grad():
        online.add_(1.0)
    model.update_target()
    assert torch.allclose(target, before + 0.5)


def test_latent_norm_bounds_every_latent_whatever_the_input_scale():
    model = build_world_model(model_cfg("state", "model.latent_norm=true").model, (8,), action_dim=2)
    z = model.encode(1e4 * torch.randn(16, 8))
    dim = z.shape[1]
    assert torch.allclose(z.mean(dim=1), torch.zeros(16), atol=1e-4)
    assert torch.allclose(z.norm(dim=1), torch.full((16,), dim**0.5), rtol=1e-3)


def test_vicreg_known_values():
    vicreg = VICReg(std_weight=1.0, cov_weight=1.0, std_target=1.0, eps=0.0)
    spread = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # std 1.63, no covariance
    total, terms = vicreg(spread, step=0)
    assert terms["vicreg_std"] == 0 and terms["vicreg_cov"] == 0 and total == 0
    collapsed = torch.ones(4, 2)
    _, terms = vicreg(collapsed, step=0)
    assert terms["vicreg_std"] == pytest.approx(1.0)
    correlated = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])  # cov = 4/3 off-diagonal
    _, terms = vicreg(correlated, step=0)
    assert terms["vicreg_cov"] == pytest.approx(2 * (4 / 3) ** 2 / 2)


def test_sigreg_prefers_standard_gaussian_and_is_step_seeded():
    sigreg = SIGReg(weight=1.0, num_slices=64, num_points=17, t_max=5.0)
    gaussian = torch.randn(2048, 16, generator=torch.Generator().manual_seed(0))
    _, good = sigreg(gaussian, step=3)
    _, collapsed = sigreg(gaussian * 0.05, step=3)
    _, stretched = sigreg(gaussian * 5.0, step=3)
    assert good["sigreg"] < 2.0 < collapsed["sigreg"] and good["sigreg"] < 2.0 < stretched["sigreg"]
    assert sigreg(gaussian, step=3)[1]["sigreg"] == good["sigreg"]


def test_latent_stats_and_linear_probe_known_answers():
    generator = torch.Generator().manual_seed(0)
    isotropic = torch.randn(4000, 8, generator=generator)
    stats = latent_stats(isotropic)
    assert stats["effective_rank"] == pytest.approx(8, abs=0.1)
    assert stats["latent_std_mean"] == pytest.approx(1, abs=0.05)
    line = torch.randn(4000, 1, generator=generator) * torch.ones(1, 8)
    assert latent_stats(line)["effective_rank"] == pytest.approx(1, abs=1e-3)
    assert latent_stats(torch.ones(10, 4))["effective_rank"] == 0
    weights = torch.randn(8, 3, generator=generator)
    assert linear_probe_r2(isotropic[:3000], isotropic[:3000] @ weights, isotropic[3000:],
                           isotropic[3000:] @ weights + 1.0, ridge=0.0) < 0.9  # offset shifted: not fit
    assert linear_probe_r2(isotropic[:3000], isotropic[:3000] @ weights + 1.0, isotropic[3000:],
                           isotropic[3000:] @ weights + 1.0, ridge=1e-6) == pytest.approx(1, abs=1e-6)
    noise = torch.randn(4000, 3, generator=generator)
    assert linear_probe_r2(isotropic[:3000], noise[:3000], isotropic[3000:], noise[3000:], 1e-3) < 0.01
    # per column: a linear one, a noise one, a constant one (undefined), and the mean skips the last
    mixed = torch.stack([isotropic @ weights[:, 0], noise[:, 0], torch.full((4000,), 2.0)], 1)
    per_column = linear_probe_r2_per_output(isotropic[:3000], mixed[:3000], isotropic[3000:], mixed[3000:], 1e-6)
    assert per_column[0] == pytest.approx(1, abs=1e-6) and abs(per_column[1]) < 0.01 and per_column[2].isnan()
    assert linear_probe_r2(isotropic[:3000], mixed[:3000], isotropic[3000:], mixed[3000:], 1e-6) == pytest.approx(
        float(per_column[:2].mean()))


class ShiftModel(torch.nn.Module):
    """A hand-made world model whose latent is the observation and whose dynamics add the action."""

    device = torch.device("cpu")

    def encode(self, obs):
        return torch.as_tensor(obs, dtype=torch.float32)

    def rollout(self, z0, actions):
        return z0[:, None] + actions.cumsum(1)


def shift_windows() -> tuple[torch.Tensor, torch.Tensor]:
    """64 windows of 5 random actions and the observations ``ShiftModel`` predicts exactly."""
    generator = torch.Generator().manual_seed(0)
    actions = torch.rand(64, 5, 2, generator=generator) * 2 - 1
    return torch.cat([torch.zeros(64, 1, 2), actions.cumsum(1)], 1), actions


def test_prediction_error_and_plannability_on_a_perfect_model():
    obs, actions = shift_windows()
    errors = prediction_errors(ShiftModel(), obs, actions)
    assert errors["pred_error"] == pytest.approx(0, abs=1e-10)
    assert errors["copy_baseline_error"] == pytest.approx(float((obs[:, 1:] ** 2).mean()), rel=1e-5)
    assert len(errors["pred_error_per_step"]) == 5
    assert plannability(ShiftModel(), obs, actions, num_random=16, seed=0) > 0.99
    flat = ShiftModel()
    flat.rollout = lambda z0, actions: torch.zeros(*actions.shape[:2], z0.shape[1])  # ignores actions
    assert plannability(flat, obs, actions, num_random=16, seed=0) == 0.0


def test_health_warnings_flag_a_model_that_ignores_actions_and_pass_a_perfect_one():
    obs, actions = shift_windows()
    flat = ShiftModel()
    flat.rollout = lambda z0, actions: z0[:, None].expand(-1, actions.shape[1], -1)  # predicts no motion at all

    def figures(model):
        return {**prediction_errors(model, obs, actions), "plannability": plannability(model, obs, actions, 16, seed=0)}

    assert health_warnings(figures(ShiftModel()), min_plannability=0.75) == []
    warnings = health_warnings(figures(flat), min_plannability=0.75)
    assert len(warnings) == 2
    assert warnings[0].startswith("plannability 0.00 < 0.75")
    assert "no better than repeating the last latent" in warnings[1]


def save_small(path, obs_shape=(8,), **meta):
    cfg = model_cfg("state", "model.latent_dim=8", "model.encoder_by_obs.state.hidden_dim=16",
                    "model.predictor.hidden_dim=16")
    model = build_world_model(cfg.model, obs_shape, action_dim=2)
    optimizer = torch.optim.AdamW(model.parameters())
    full = {"task": "reacher", "obs": "state", "image_size": None, "action_dim": 2,
            "obs_shape": list(obs_shape), "state_dim": 8, "step": 5, **meta}
    checkpoint.save_checkpoint(path, model, optimizer, cfg, full)
    return model, cfg


def test_checkpoint_round_trip_without_pickle(tmp_path):
    path = tmp_path / "run" / "checkpoint" / "latest.safetensors"
    model, _ = save_small(path)
    assert all(isinstance(v, torch.Tensor) for v in load_file(str(path)).values())
    loaded, cfg = checkpoint.load_world_model(tmp_path / "run", device="cpu")
    x = torch.randn(4, 8)
    assert torch.equal(loaded.encode(x), model.encode(x))
    assert cfg.meta.task == "reacher" and cfg.meta.action_dim == 2 and cfg.meta.step == 5
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.safetensors"
    model, _ = save_small(path, step=5)

    def crash(tensors, filename, metadata):  # a kill half-way through writing the new file
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_small(path, step=6)
    loaded, cfg = checkpoint.load_world_model(path, device="cpu")
    assert cfg.meta.step == 5


def test_checkpoint_errors_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="no checkpoint"):
        checkpoint.load_world_model(tmp_path)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(UserInputError, match="unreadable"):
        checkpoint.load_world_model(broken)
    path = tmp_path / "ok.safetensors"
    save_small(path)
    _, info = checkpoint.read_checkpoint(path)
    with pytest.raises(UserInputError, match=r"task: checkpoint 'reacher' vs data 'wall'.*obs_shape"):
        checkpoint.check_compatible(info["meta"], {"task": "wall", "obs_shape": [4]}, "data")
    other = build_world_model(model_cfg("state").model, (8,), action_dim=2)  # default sizes, not 8/16
    tensors, _ = checkpoint.read_checkpoint(path)
    with pytest.raises(UserInputError, match="different model shape"):
        checkpoint._load_weights(other, tensors, path)


def test_objective_logs_every_term_and_adds_them_with_their_weights():
    inverse = "{_target_: worldmodel.losses.InverseDynamicsHead, hidden_dim: 32, depth: 1, weight: 1.0}"
    cfg = model_cfg("state", f"model.inverse_dynamics={inverse}", "model.loss.temporal_smoothness_weight=0.5")
    model = build_world_model(cfg.model, (3,), action_dim=2)
    objective = JEPAObjective(model, VICReg(1.0, 0.04, 1.0, 1e-4), **cfg.model.loss)
    batch = WindowSampler(counting_episodes([20, 30]), window=3, batch_size=16).sample(0)
    loss, terms = objective(batch.obs, batch.actions, step=0)
    assert set(terms) == {"loss", "pred_teacher_forced", "pred_open_loop", "vicreg_std", "vicreg_cov",
                          "temporal_smoothness", "inverse_dynamics"}
    expected = terms["pred_teacher_forced"] + terms["pred_open_loop"] + terms["vicreg_std"] \
        + 0.04 * terms["vicreg_cov"] + 0.5 * terms["temporal_smoothness"] + terms["inverse_dynamics"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with torch.no_grad():
        z = model.encode(batch.obs.flatten(0, 1)).unflatten(0, batch.obs.shape[:2])
    assert terms["temporal_smoothness"].item() == pytest.approx((z[:, 1:] - z[:, :-1]).pow(2).mean().item(), rel=1e-5)


def step_to_spread_ratio(weight: float) -> float:
    """Train a small state model on random walks; return its one-step latent change over the latent spread."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(8):
        actions = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
        positions = np.concatenate([np.zeros((1, 2)), np.cumsum(0.1 * actions, 0)]).astype(np.float32)
        obs = np.c_[positions, np.sin(3 * positions)].astype(np.float32)
        episodes.append({"observations": obs, "actions": actions, "states": positions, "goal": obs[-1]})
    data = EpisodeSet.from_episodes(episodes, {"task": "reacher", "obs": "state", "image_size": None})
    cfg = model_cfg("state", f"model.loss.temporal_smoothness_weight={weight}", "model.latent_dim=8")
    model = build_world_model(cfg.model, (4,), action_dim=2)
    objective = JEPAObjective(model, VICReg(1.0, 0.04, 1.0, 1e-4), **cfg.model.loss)
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-3)
    sampler = WindowSampler(data, window=4, batch_size=64, seed=0)
    for step in range(150):
        batch = sampler.sample(step)
        loss, _ = objective(batch.obs, batch.actions, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        z = model.encode(torch.as_tensor(data.observations)).unflatten(0, (8, 41))
    return float((z[:, 1:] - z[:, :-1]).norm(dim=-1).mean() / z.flatten(0, 1).std(0).norm())


def test_temporal_smoothness_shrinks_one_step_latent_changes_against_the_spread():
    assert step_to_spread_ratio(3.0) < 0.8 * step_to_spread_ratio(0.0)  # measured: 0.20 against 0.30


def jumping_point_episodes(num: int = 12, length: int = 40, seed: int = 0) -> EpisodeSet:
    """A point whose action moves it to a fresh uniform spot in [-1, 1]^2 every step: ``x' = x + a``.

    Any teleport looks like an ordinary move to a model that ignores the actions, so only a model
    that uses them can tell the two apart.
    """
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(num):
        x = rng.uniform(-1, 1, (length + 1, 2)).astype(np.float32)
        actions = (x[1:] - x[:-1]).astype(np.float32)
        for t in range(length):
            x[t + 1] = x[t] + actions[t]  # exactly what float32 z + a gives back
        episodes.append({"observations": x, "actions": actions, "states": x.copy(), "goal": x[-1]})
    return EpisodeSet.from_episodes(episodes, {"task": "reacher", "obs": "state", "image_size": None})


class PointModel(torch.nn.Module):
    """The exact model of :func:`jumping_point_episodes` (identity encoder, ``z + a``), or copy-last."""

    device, frame_stack = torch.device("cpu"), 1

    def __init__(self, uses_actions: bool = True) -> None:
        super().__init__()
        self.uses_actions = uses_actions

    def encode(self, obs):
        return torch.as_tensor(obs, dtype=torch.float32)

    def predict(self, z, action):
        return z + action if self.uses_actions else z


def test_rank_auc_known_answers():
    assert rank_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert rank_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert rank_auc(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 0.5
    assert rank_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    assert rank_auc(np.array([2.0, 0.0]), np.array([1.0])) == 0.5


def test_spliced_clips_jump_to_another_episode_after_the_splice_step():
    episodes = counting_episodes([20, 20, 20])
    drawn = draw_clips(episodes, np.arange(3), window=8, clips=10, seed=0)
    t_normal, t_spliced = episodes.states[drawn["normal"], 0], episodes.states[drawn["spliced"], 0]
    for row in range(10):
        k = drawn["splice"][row]
        assert 2 <= k <= 5  # the middle half of 8 transitions
        assert np.array_equal(t_spliced[row, : k + 1], t_normal[row, : k + 1])
        assert np.all(t_spliced[row, k + 1 :] // 1000 != t_normal[row, 0] // 1000)  # another episode
        assert np.all(np.diff(t_spliced[row, k + 1 :]) == 1)  # a contiguous stretch of it
    assert np.array_equal(episodes.actions[drawn["actions"], 0], t_normal[:, :-1])  # action t of observation t
    assert np.array_equal(episodes.actions[drawn["spliced_actions"], 0], t_spliced[:, :-1])  # ... also spliced
    assert not set(map(tuple, drawn["normal"])) & set(map(tuple, drawn["calibration"]))
    assert np.array_equal(draw_clips(episodes, np.arange(3), 8, 10, seed=0)["spliced"], drawn["spliced"])
    single = draw_clips(episodes, np.array([1]), window=4, clips=5, seed=0)
    assert np.all(np.abs(single["spliced"][:, -1] - single["normal"][:, -1]) >= 4)  # same episode, far away
    stacked = stacked_clip(episodes, drawn["normal"][:2], frame_stack=2)
    assert torch.equal(stacked[..., 3], torch.as_tensor(t_normal[:2]))  # newest frame last
    first = 1000 * (t_normal[:2, :1] // 1000)
    assert torch.equal(stacked[..., 0], torch.as_tensor(np.maximum(t_normal[:2] - 1, first)))


def test_exact_model_flags_every_teleport_at_the_splice_and_copy_last_cannot():
    episodes = jumping_point_episodes()
    drawn = draw_clips(episodes, np.arange(12), window=16, clips=100, seed=0)
    spliced, _ = step_surprise(PointModel(), stacked_clip(episodes, drawn["spliced"], 1),
                            torch.from_numpy(episodes.actions[drawn["spliced_actions"]]), batch_size=64)
    assert np.array_equal(spliced.argmax(1), drawn["splice"])  # the spike is exactly at the splice
    spliced[np.arange(100), drawn["splice"]] = 0
    assert np.all(spliced == 0)  # and nothing anywhere else
    exact = surprise_test(PointModel(), episodes, np.arange(12), 16, 100, 0.99, 64, seed=0)
    assert exact["detection_rate"] == 1.0 and exact["false_alarm_rate"] == 0.0 and exact["auc"] == 1.0
    assert exact["clips"] == 100 and len(exact["curve_impossible"]) == len(exact["offsets"]) == 9
    assert exact["curve_impossible"][4] > 0 and exact["curve_normal"] == [0.0] * 9
    assert exact["copy_auc"] < 0.75  # the latent's jump alone does not tell a teleport from a move here
    copy = surprise_test(PointModel(uses_actions=False), episodes, np.arange(12), 16, 100, 0.99, 64, seed=0)
    assert copy["detection_rate"] < 0.2 and copy["auc"] < 0.75  # a teleport looks like any other move
    too_short = surprise_test(PointModel(), jumping_point_episodes(2, 5), np.arange(2), 16, 100, 0.99, 64, 0)
    assert too_short["clips"] == 0 and "no held-out episode has 16 steps" in too_short["skipped"]

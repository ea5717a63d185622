"""Surprise: does the latent flag a physically impossible event?

LeWM's claim is that a world model's one-step prediction error spikes when the world does
something its actions cannot cause. Here the impossible event is made from held-out data alone,
without the simulator, so it works for any task and for state or pixel observations: a clip of
``window`` steps is cut from one episode and, after transition ``splice``, its observations are
replaced by those of a *different* episode (or the same episode far in time) — a teleport. The
action at the splice stays the original one, so nothing it does can reach the new state in one
step; the actions after it are the new episode's, so the world then moves lawfully again and only
the splice itself is impossible.

The surprise of transition ``t`` is ``mean((predict(z_t, a_t) - z_{t+1})^2)``; a latent-variable
predictor is asked for its prior's mean (``predict`` without ``u``), the simplest honest choice.
The threshold is a quantile of the clip maxima of *other* normal clips (calibration), so neither the
detection rate nor the false-alarm rate is fit to the clips it is scored on, and a normal clip raises
a false alarm with probability about ``1 - quantile`` whatever the window's length.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.episodes import EpisodeSet
from worldmodel.frames import history_index, stack_frames
from worldmodel.world_model import WorldModel


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC = P(positive score > negative score), ties counting half (Mann-Whitney U / (n_p n_n)).

    Average ranks over the pooled scores make ties exact: identical score sets give 0.5.
    """
    scores = np.concatenate([positive, negative]).astype(np.float64)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    ranks = (sums / counts)[inverse]  # tied scores share their average rank
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def clip_windows(episodes: EpisodeSet, episode_ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (episode, start) pair of a ``window``-transition clip inside the given episodes."""
    lengths = episodes.episode_lengths
    usable = [int(e) for e in episode_ids if lengths[e] >= window]
    if not usable:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    episode = np.concatenate([np.full(lengths[e] - window + 1, e) for e in usable])
    start = np.concatenate([np.arange(lengths[e] - window + 1) for e in usable])
    return episode, start


def draw_clips(
    episodes: EpisodeSet, episode_ids: np.ndarray, window: int, clips: int, seed: int
) -> dict[str, np.ndarray] | str:
    """``clips`` test windows, each with a splice step and a donor, plus ``clips`` other calibration
    windows (fewer of each where the held-out episodes hold fewer than ``2 * clips`` windows).

    Returns flat observation indices ``normal``/``spliced``/``calibration`` ``(clips, window + 1)``,
    action indices ``(clips, window)`` for each (``actions``, ``spliced_actions``, ``calibration_actions``), ``episode``/``start`` of the test windows and
    ``splice`` (the transition whose target is the first foreign observation, in the middle half of
    the clip so the curve has the same steps before and after it). A string says why no clip could
    be drawn. The donor is a window of another episode; with one usable episode, of the same one at
    least ``window`` steps away.
    """
    episode, start = clip_windows(episodes, episode_ids, window)
    if len(episode) == 0:
        longest = int(episodes.episode_lengths[episode_ids].max()) if len(episode_ids) else 0
        return f"no held-out episode has {window} steps (longest: {longest}); lower surprise.window"
    clips = min(clips, len(episode) // 2)  # test and calibration windows are distinct
    if clips == 0:
        return f"held-out episodes hold a single {window}-step clip; two are needed (test, calibration)"
    rng = np.random.default_rng([seed, 24])
    order = rng.permutation(len(episode))
    test, calibration = order[:clips], order[clips : 2 * clips]
    margin = window // 4
    splice = rng.integers(margin, window - margin, size=clips)
    donors = []
    for i in test:
        candidates = np.flatnonzero(episode != episode[i])
        if len(candidates) == 0:  # one episode: the same one, far in time
            candidates = np.flatnonzero(np.abs(start - start[i]) >= window)
        if len(candidates) == 0:
            return f"one held-out episode, too short for two clips {window} steps apart; lower surprise.window"
        donors.append(rng.choice(candidates))
    donor = np.asarray(donors)
    obs_starts, action_starts, steps = episodes.obs_starts, episodes.action_starts, np.arange(window + 1)
    normal = obs_starts[episode[test]][:, None] + start[test][:, None] + steps
    foreign = obs_starts[episode[donor]][:, None] + start[donor][:, None] + steps
    actions = action_starts[episode[test]][:, None] + start[test][:, None] + steps[:-1]
    foreign_actions = action_starts[episode[donor]][:, None] + start[donor][:, None] + steps[:-1]
    return {
        "normal": normal, "spliced": np.where(steps > splice[:, None], foreign, normal),
        "calibration": obs_starts[episode[calibration]][:, None] + start[calibration][:, None] + steps,
        "actions": actions, "spliced_actions": np.where(steps[:-1] > splice[:, None], foreign_actions, actions),
        "calibration_actions": action_starts[episode[calibration]][:, None] + start[calibration][:, None]
        + steps[:-1],
        "episode": episode[test], "start": start[test], "splice": splice,
    }


def stacked_clip(episodes: EpisodeSet, index: np.ndarray, frame_stack: int) -> torch.Tensor:
    """Observations of clips ``index (B, T+1)`` with ``frame_stack`` frames each, ``(B, T+1, *obs_shape)``.

    A frame's history runs along the clip as shown (so after a splice it mixes the old and the new
    world, as a video of the teleport would); before the clip's first frame it is that frame's own
    episode history, clamped to the episode start as in training.
    """
    first = index[:, 0]
    start_of_episode = episodes.obs_starts[np.searchsorted(episodes.obs_starts, first, side="right") - 1]
    before = history_index(first, start_of_episode, frame_stack)[:, :-1]  # (B, frame_stack - 1)
    sequence = np.concatenate([before, index], axis=1)
    frames = np.stack([sequence[:, t : t + frame_stack] for t in range(index.shape[1])], axis=1)
    return stack_frames(torch.from_numpy(episodes.observations[frames]), episodes.observations.ndim - 1)


@torch.no_grad()
def step_surprise(
    model: WorldModel, obs: torch.Tensor, actions: torch.Tensor, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-step latent prediction error per transition, and the copy-last-latent baseline's:
    ``obs (B, T+1, ...)``, ``actions (B, T, A)`` -> two ``(B, T)``."""
    batch, steps = obs.shape[:2]
    flat = obs.flatten(0, 1)
    z = torch.cat([model.encode(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)])
    z = z.unflatten(0, (batch, steps))
    predicted = model.predict(z[:, :-1].flatten(0, 1), actions.flatten(0, 1).to(z.device)).unflatten(0, (batch, -1))
    error, copy = ((predicted - z[:, 1:]) ** 2).mean(-1), ((z[:, :-1] - z[:, 1:]) ** 2).mean(-1)
    return error.double().cpu().numpy(), copy.double().cpu().numpy()


def detection(spliced: np.ndarray, normal: np.ndarray, calibration: np.ndarray, splice: np.ndarray,
              quantile: float) -> dict[str, float]:
    """Detection and false-alarm rates at a calibrated threshold, and the AUC, for ``(clips, T)`` surprises."""
    threshold = float(np.quantile(calibration.max(1), quantile))  # per clip, as an alarm is raised
    return {
        "detection_rate": float((spliced[np.arange(len(spliced)), splice] > threshold).mean()),
        "false_alarm_rate": float((normal.max(1) > threshold).mean()),
        "auc": rank_auc(spliced.max(1), normal.max(1)),
        "threshold": threshold,
    }


def surprise_test(
    model: WorldModel, episodes: EpisodeSet, episode_ids: np.ndarray, window: int, clips: int, quantile: float,
    batch_size: int, seed: int,
) -> dict[str, object]:
    """The ``surprise`` entry of probe.json: detection and false-alarm rates, AUC and the mean curves,
    and the same three figures for the copy-last-latent baseline (``copy_*``).

    ``detection_rate``: spliced clips whose surprise *at the splice* exceeds the threshold;
    ``false_alarm_rate``: normal test clips whose largest surprise anywhere exceeds it; ``auc``: the
    per-clip largest surprise, spliced vs. the same windows unaltered. The curves are mean and std
    of surprise at ``offsets`` steps from the splice (aligned per clip; normal clips at the same
    steps). A dataset too small for the window gives ``{"skipped": why}`` instead of a crash.
    """
    drawn = draw_clips(episodes, episode_ids, window, clips, seed)
    if isinstance(drawn, str):
        return {"skipped": drawn, "clips": 0, "window": window, "threshold_quantile": quantile}
    actions = torch.from_numpy(episodes.actions)

    def surprise(index: np.ndarray, action_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs = stacked_clip(episodes, index, model.frame_stack)
        return step_surprise(model, obs, actions[torch.from_numpy(action_index)], batch_size)

    (normal, normal_copy), (spliced, spliced_copy), (calibration, calibration_copy) = (
        surprise(drawn["normal"], drawn["actions"]), surprise(drawn["spliced"], drawn["spliced_actions"]),
        surprise(drawn["calibration"], drawn["calibration_actions"]))
    splice, rows = drawn["splice"], np.arange(len(spliced))
    copy = detection(spliced_copy, normal_copy, calibration_copy, splice, quantile)
    margin = window // 4
    offsets = np.arange(-margin, margin + 1)
    at = splice[:, None] + offsets  # (clips, offsets): every index lies inside the clip by construction
    return {
        **detection(spliced, normal, calibration, splice, quantile),
        # the same test on how far the latent moved (no predictor): a teleport bigger than any one
        # step is caught by it too, so the model's figures mean "learned dynamics" only above these
        "copy_detection_rate": copy["detection_rate"], "copy_false_alarm_rate": copy["false_alarm_rate"],
        "copy_auc": copy["auc"],
        "clips": len(spliced), "window": window, "threshold_quantile": quantile,
        "offsets": offsets.tolist(),
        "curve_impossible": spliced[rows[:, None], at].mean(0).tolist(),
        "curve_impossible_std": spliced[rows[:, None], at].std(0).tolist(),
        "curve_normal": normal[rows[:, None], at].mean(0).tolist(),
        "curve_normal_std": normal[rows[:, None], at].std(0).tolist(),
    }

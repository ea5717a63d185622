"""Frame stacking: the encoder sees the last ``k`` observations so that a latent can carry velocity.

One image shows where an arm is, not how fast it moves; a planner that cannot see speed overshoots
the goal. Frames are stacked oldest first along the last (channel) axis, so a CNN sees ``k * C``
channels. Before an episode's first observation the history repeats that observation: episodes
start at rest, and a repeated frame reads as "not moving" (the goal, also at rest, is stacked the
same way).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import torch


def stacked_shape(frame_shape: Sequence[int], frames: int) -> tuple[int, ...]:
    """The shape ``WorldModel.encode`` sees per sample: the last axis holds ``frames`` observations."""
    return (*frame_shape[:-1], frames * int(frame_shape[-1]))


def history_index(index: np.ndarray, first: np.ndarray, frames: int) -> np.ndarray:
    """Flat indices ``(..., frames)`` of the observations ending at ``index``, clamped to ``first``
    (the index of each one's episode start, broadcastable to ``index``)."""
    return np.maximum(index[..., None] + np.arange(1 - frames, 1), np.asarray(first)[..., None])


def stack_frames(history: torch.Tensor, frame_ndim: int) -> torch.Tensor:
    """``(..., k, *frame_shape) -> (..., *frame_shape[:-1], k * C)``, oldest frame first."""
    return torch.cat(history.unbind(-frame_ndim - 1), dim=-1)  # 3x faster than movedim + reshape on uint8


class FrameHistory:
    """The last ``frames`` observations of the running episode, stacked for ``WorldModel.encode``."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self._buffer: deque[np.ndarray] = deque(maxlen=frames)

    def reset(self) -> None:
        self._buffer.clear()

    def push(self, observation: np.ndarray) -> torch.Tensor:
        """Add the newest observation (the first of an episode fills the whole history)."""
        if not self._buffer:
            self._buffer.extend([observation] * self.frames)
        else:
            self._buffer.append(observation)
        return stack_frames(torch.as_tensor(np.stack(self._buffer)), np.ndim(observation))

    def still(self, observation: np.ndarray) -> torch.Tensor:
        """``observation`` held for the whole history: a configuration at rest, e.g. the goal."""
        return stack_frames(torch.as_tensor(np.stack([observation] * self.frames)), np.ndim(observation))

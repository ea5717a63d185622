"""Fast headless frames from a fixed top-down camera, one GL renderer per image size, made on demand.

Renderers are created lazily (on the first frame) because a GL context made before a fork hangs the
child: an env can be built in a parent process and used in spawned workers. Shadows, reflections,
skybox, fog and haze are switched off: they cost time and add nothing a 64x64 world model can use.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

_DISABLED_EFFECTS = (
    mujoco.mjtRndFlag.mjRND_SHADOW,
    mujoco.mjtRndFlag.mjRND_REFLECTION,
    mujoco.mjtRndFlag.mjRND_SKYBOX,
    mujoco.mjtRndFlag.mjRND_FOG,
    mujoco.mjtRndFlag.mjRND_HAZE,
)


@dataclass(frozen=True)
class TopDownView:
    """An orthographic camera looking straight down: world x to the right, world y up the image."""

    center: tuple[float, float]
    extent: float  # side of the square of floor that fills the frame, in metres
    height: float = 5.0  # camera height above the floor; only has to clear the tallest geom

    def pixels(self, points: np.ndarray, size: int) -> np.ndarray:
        """Where world points ``(..., 2)`` (x, y on the floor) fall in a ``size`` pixel frame of this view:
        ``(..., 2)`` (column, row) in pixel units, (0, 0) the top-left corner of the top-left pixel."""
        points = np.asarray(points, dtype=np.float64)
        scale = size / self.extent
        column = (points[..., 0] - self.center[0]) * scale + size / 2
        row = size / 2 - (points[..., 1] - self.center[1]) * scale
        return np.stack([column, row], axis=-1)


class FrameRenderer:
    """Renders square RGB frames of a model's data from one :class:`TopDownView`."""

    def __init__(self, model: mujoco.MjModel, view: TopDownView) -> None:
        self.model = model
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.orthographic = 1
        self.camera.lookat[:] = (*view.center, 0.0)
        self.camera.distance = view.height
        self.camera.elevation = -90.0
        self.camera.azimuth = 90.0
        # For an orthographic free camera MuJoCo reads fovy as the vertical extent in metres.
        model.vis.global_.fovy = view.extent
        self._renderers: dict[int, mujoco.Renderer] = {}

    def render(self, data: mujoco.MjData, size: int) -> np.ndarray:
        """Return a ``uint8 (size, size, 3)`` frame of ``data`` (positions must be up to date)."""
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._make_renderer(size)
        renderer.update_scene(data, camera=self.camera)
        return renderer.render()

    def _make_renderer(self, size: int) -> mujoco.Renderer:
        global_vis = self.model.vis.global_
        global_vis.offwidth = max(global_vis.offwidth, size)
        global_vis.offheight = max(global_vis.offheight, size)
        renderer = mujoco.Renderer(self.model, height=size, width=size)
        for flag in _DISABLED_EFFECTS:
            renderer.scene.flags[flag] = False
        self._renderers[size] = renderer
        return renderer

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame (H, W, 3)`` as ``(size, size, 3)`` by nearest pixels: a third-party env renders at the size
    it was built with, and videos or galleries ask for others."""
    if frame.shape[:2] == (size, size):
        return frame
    rows = (np.arange(size) * frame.shape[0]) // size
    cols = (np.arange(size) * frame.shape[1]) // size
    return frame[rows][:, cols]

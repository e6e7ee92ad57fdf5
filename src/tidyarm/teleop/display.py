"""A window that shows what the operator needs to see: the front and wrist cameras, rendered each step (pygame)."""

from __future__ import annotations

import numpy as np

from tidyarm.teleop.base import INSTALL_HINT, TeleopUnavailable


class CameraWindow:
    def __init__(self, env, cameras: tuple[str, ...] = ("front", "wrist"), size: tuple[int, int] = (360, 480),
                 title: str = "tidyarm"):
        try:
            import pygame
        except ImportError as error:
            raise TeleopUnavailable(f"the camera window needs pygame: {INSTALL_HINT}, or pass --no-show") from error
        self._pygame, self.env, self.cameras, self.size = pygame, env, cameras, size
        pygame.init()
        try:
            self.screen = pygame.display.set_mode((size[1] * len(cameras), size[0]))
        except pygame.error as error:
            raise TeleopUnavailable(f"cannot open a window ({error}); pass --no-show to record without one") from error
        pygame.display.set_caption(title)

    def show(self) -> None:
        canvas = np.concatenate([self.env.render_camera(camera, self.size) for camera in self.cameras], axis=1)
        surface = self._pygame.surfarray.make_surface(canvas.swapaxes(0, 1))  # pygame surfaces are (x, y)
        self.screen.blit(surface, (0, 0))
        self._pygame.display.flip()
        self._pygame.event.pump()  # keep the window responsive; leaves events for the gamepad to read

    def close(self) -> None:
        self._pygame.display.quit()

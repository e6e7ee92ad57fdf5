"""Keyboard teleoperation through pynput (needs a desktop session: X11, Wayland with XWayland, macOS, Windows).

Hold keys to move; each held key drives its axis at full speed:
  w / s  forward / back (+x / -x)      a / d  left / right (+y / -y)      r / f  up / down
  q / e  roll the wrist                space  close / open the jaw (toggle)
  enter  keep the episode now          backspace  discard it            tab  redo it (same seed)
  esc    stop recording (finished episodes are kept)
"""

from __future__ import annotations

import threading

import numpy as np

from tidyarm.teleop.base import INSTALL_HINT, Event, TeleopCommand, TeleopUnavailable

MOVES = {"w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0),
         "q": (3, -1.0), "e": (3, 1.0)}
EVENT_KEYS = {"enter": Event.KEEP, "backspace": Event.DISCARD, "tab": Event.REDO, "esc": Event.STOP}


class KeyboardTeleop:
    help = __doc__.split("\n\n", 1)[1].strip()

    def __init__(self):
        try:
            import pynput  # noqa: F401
        except ImportError as error:
            raise TeleopUnavailable(f"keyboard teleoperation needs pynput: {INSTALL_HINT} ({error})") from error
        try:  # pynput picks its backend on import and raises ImportError when none works (e.g. no X display)
            from pynput import keyboard
        except ImportError as error:
            raise TeleopUnavailable(f"pynput cannot reach a keyboard here: {error}. Keyboard teleoperation needs a "
                                    "desktop session (X11, XWayland, macOS or Windows)") from error
        self._keyboard = keyboard
        self._held: set[str] = set()
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._listener = None
        self.jaw_open = True

    def connect(self) -> None:
        self._listener = self._keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        self._listener.start()

    def reset(self) -> None:
        with self._lock:
            self.jaw_open, self._events = True, []

    def _name(self, key) -> str | None:
        if getattr(key, "char", None):
            return key.char.lower()
        return getattr(key, "name", None)

    def _on_press(self, key) -> None:
        name = self._name(key)
        with self._lock:
            if name == "space" and name not in self._held:
                self.jaw_open = not self.jaw_open
            elif name in EVENT_KEYS:
                self._events.append(EVENT_KEYS[name])
            if name:
                self._held.add(name)

    def _on_release(self, key) -> None:
        with self._lock:
            self._held.discard(self._name(key))

    def read(self, observation=None) -> TeleopCommand:
        action = np.zeros(5, dtype=np.float32)
        with self._lock:
            for name in self._held:
                if name in MOVES:
                    axis, sign = MOVES[name]
                    action[axis] += sign
            action[4] = 1.0 if self.jaw_open else -1.0
            event = self._events.pop(0) if self._events else None
        return TeleopCommand(np.clip(action, -1.0, 1.0), event)

    def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

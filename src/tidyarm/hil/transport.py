"""The link between the HIL-SERL learner and its actor: TCP with an authentication key, across machines.

Built on `multiprocessing.connection` (the standard library's framed, HMAC-authenticated socket), carrying
pickled dicts of numpy arrays. Pickle runs code on load, so the key is what keeps strangers out: use a
private network and your own `--authkey` (or TIDYARM_HIL_AUTHKEY) when the two ends are on different machines.

- `LearnerServer` (the GPU box): listens, accepts one actor at a time on a background thread (a restarted actor
  replaces a dead one), never blocks the learner: `receive()` drains what arrived, `send()` reports failure
  instead of raising.
- `ActorLink` (the robot laptop): connects with retries, and raises `LinkLost` when the learner is gone, the
  socket breaks, or nothing came from the learner for `timeout` seconds (the learner sends a status message
  at least once a second). The actor then holds the arm and reconnects.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener

_BROKEN = (OSError, EOFError, AuthenticationError)


class LinkLost(ConnectionError):
    """The learner cannot be reached: the actor must stop the arm (hold) and reconnect."""


def parse_address(text: str) -> tuple[str, int]:
    """'host:port' -> (host, port), with a clear error for anything else."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:6001 (port 0 picks a free one)")
    return host, int(port)


class LearnerServer:
    """The learner's end: listens on `address`; the connected actor is replaced when a new one connects."""

    def __init__(self, address: str, authkey: bytes):
        self._listener = Listener(parse_address(address), authkey=authkey)
        host, port = self._listener.address
        self.address = f"{host}:{port}"  # the real port when port 0 was asked for
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.connections = self.disconnections = 0
        self._thread = threading.Thread(target=self._accept_loop, name="hil-accept", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except _BROKEN:  # a wrong key or a half-open client
                continue
            if self._closed:  # the wake-up call from close()
                conn.close()
                return
            with self._lock:
                previous, self._conn = self._conn, conn
                self.connections += 1
            if previous is not None:
                previous.close()

    def _drop(self, conn: Connection) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
                self.disconnections += 1
        conn.close()

    def receive(self) -> list[dict]:
        """Every message that has arrived (possibly none); a broken link just disconnects the actor."""
        conn, messages = self._conn, []
        if conn is None:
            return messages
        try:
            while conn.poll(0):
                messages.append(conn.recv())
        except _BROKEN:
            self._drop(conn)
        return messages

    def send(self, message: dict) -> bool:
        """Send to the connected actor; False when none is connected or the link broke."""
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.send(message)
            return True
        except _BROKEN:
            self._drop(conn)
            return False

    def close(self) -> None:
        """Stop listening and drop the actor. Closing a socket does not wake a thread blocked in accept() (the
        port would stay open), so the accept thread is woken by one last connection of our own first. It is a
        bare TCP connection: an authenticated Client would wait forever for a challenge when the thread had
        already left accept() (after refusing a wrong key, say) and nobody answers."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            socket.create_connection(parse_address(self.address), timeout=1.0).close()
        self._thread.join(timeout=5)
        self._listener.close()
        if self._conn is not None:
            self._conn.close()


class ActorLink:
    """The actor's end. Every failure surfaces as `LinkLost`."""

    def __init__(self, address: str, authkey: bytes, timeout: float = 10.0):
        if not timeout > 0:
            raise ValueError(f"timeout = {timeout}: expected a positive number of seconds")
        self.address, self._key, self.timeout = parse_address(address), authkey, float(timeout)
        self._conn: Connection | None = None
        self._heard = 0.0

    def connect(self, give_up_after: float = 60.0) -> None:
        """Connect, retrying twice a second; LinkLost after `give_up_after` seconds without success."""
        deadline = time.monotonic() + give_up_after
        while True:
            try:
                self._conn = Client(self.address, authkey=self._key)
                self._heard = time.monotonic()
                return
            except AuthenticationError as error:
                raise LinkLost(f"the learner at {self.address[0]}:{self.address[1]} refused the key "
                               "(--authkey / TIDYARM_HIL_AUTHKEY must match on both ends)") from error
            except OSError as error:
                if time.monotonic() >= deadline:
                    raise LinkLost(f"cannot reach the learner at {self.address[0]}:{self.address[1]} within "
                                   f"{give_up_after:.0f} s ({error})") from error
                time.sleep(0.5)

    def send(self, message: dict) -> None:
        conn = self._require()
        try:
            conn.send(message)
        except _BROKEN as error:
            self.close()
            raise LinkLost(f"sending to the learner failed ({error})") from error

    def receive(self, wait: float = 0.0) -> list[dict]:
        """Messages that arrived, waiting up to `wait` s for the first; LinkLost on a broken or silent link."""
        conn, messages = self._require(), []
        try:
            if conn.poll(wait):
                messages.append(conn.recv())
                while conn.poll(0):
                    messages.append(conn.recv())
        except _BROKEN as error:
            self.close()
            raise LinkLost(f"the learner closed the link ({type(error).__name__})") from error
        now = time.monotonic()
        if messages:
            self._heard = now
        elif now - self._heard > self.timeout:
            self.close()
            raise LinkLost(f"no message from the learner for {self.timeout:.0f} s")
        return messages

    def _require(self) -> Connection:
        if self._conn is None:
            raise LinkLost("not connected to the learner")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

"""The learner-actor link: messages both ways, a wrong key refused, a dead or silent learner seen as LinkLost,
a reconnecting actor replacing the old connection."""

import time

import numpy as np
import pytest

from tidyarm.hil.transport import ActorLink, LearnerServer, LinkLost, parse_address

KEY = b"test-key"


def _wait_connected(server: LearnerServer, connections: int) -> None:
    deadline = time.monotonic() + 5
    while server.connections < connections:
        assert time.monotonic() < deadline, "the actor never got through"
        time.sleep(0.01)


def _receive(server: LearnerServer) -> list[dict]:
    deadline = time.monotonic() + 5
    while not (messages := server.receive()):
        assert time.monotonic() < deadline, "nothing arrived"
        time.sleep(0.01)
    return messages


@pytest.mark.parametrize("text", ["localhost", "host:", ":6001", "host:port", "host:70000"])
def test_bad_addresses_are_named(text):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)


def test_messages_flow_both_ways_and_a_new_actor_replaces_the_old():
    server = LearnerServer("127.0.0.1:0", KEY)
    try:
        assert server.send({"type": "status"}) is False  # nobody connected yet: reported, not raised
        link = ActorLink(server.address, KEY)
        link.connect(give_up_after=5)
        _wait_connected(server, 1)
        frames = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
        link.send({"type": "episode", "obs": {"front": frames}})
        (message,) = _receive(server)
        np.testing.assert_array_equal(message["obs"]["front"], frames)
        assert server.send({"type": "status", "status": {"done": False}})
        assert link.receive(wait=5) == [{"type": "status", "status": {"done": False}}]
        restarted = ActorLink(server.address, KEY)  # e.g. the actor process was restarted
        restarted.connect(give_up_after=5)
        _wait_connected(server, 2)
        assert server.send({"type": "status", "status": {"done": True}})
        assert restarted.receive(wait=5)[0]["status"]["done"] is True
        with pytest.raises(LinkLost):  # the old connection was closed by the learner
            link.receive(wait=1)
    finally:
        server.close()


def test_wrong_key_is_refused_with_a_clear_message():
    server = LearnerServer("127.0.0.1:0", KEY)
    try:
        with pytest.raises(LinkLost, match="refused the key"):
            ActorLink(server.address, b"other-key").connect(give_up_after=5)
    finally:
        server.close()


def test_actor_sees_a_dead_learner_and_a_silent_one_as_link_lost():
    server = LearnerServer("127.0.0.1:0", KEY)
    link = ActorLink(server.address, KEY, timeout=0.3)
    link.connect(give_up_after=5)
    _wait_connected(server, 1)
    with pytest.raises(LinkLost, match="no message from the learner"):
        for _ in range(50):
            link.receive(wait=0.05)
    link.connect(give_up_after=5)
    _wait_connected(server, 2)
    server.close()
    with pytest.raises(LinkLost):
        link.receive(wait=1)
    with pytest.raises(LinkLost, match="cannot reach the learner"):
        link.connect(give_up_after=0.6)

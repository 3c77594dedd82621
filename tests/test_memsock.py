"""The in-memory socket pair used as ``sock=`` by fast protocol tests."""

from __future__ import annotations

import socket
import threading
import time

import pytest


def test_bytes_flow_both_ways(mem_socket_pair):
    a, b = mem_socket_pair
    assert a.send(b"hello") == 5
    assert b.recv(3) == b"hel"
    assert b.recv(10) == b"lo"
    b.sendall(b"back")
    assert a.recv(100) == b"back"


def test_no_fileno(mem_socket_pair):
    a, _ = mem_socket_pair
    assert not hasattr(a, "fileno")


def test_timeout_raises_socket_timeout(mem_socket_pair):
    a, _ = mem_socket_pair
    a.settimeout(0.05)
    t0 = time.monotonic()
    with pytest.raises(socket.timeout):
        a.recv(1)
    assert time.monotonic() - t0 < 2


def test_eof_after_peer_close_delivers_pending_data_first(mem_socket_pair):
    a, b = mem_socket_pair
    a.send(b"last words")
    a.close()
    assert a._closed
    assert b.recv(100) == b"last words"
    assert b.recv(100) == b""
    with pytest.raises(OSError):
        b.send(b"x")


def test_close_wakes_blocked_reader(mem_socket_pair):
    a, b = mem_socket_pair
    got = []
    t = threading.Thread(target=lambda: got.append(b.recv(10)))
    t.start()
    time.sleep(0.05)
    a.close()
    t.join(2)
    assert not t.is_alive() and got == [b""]

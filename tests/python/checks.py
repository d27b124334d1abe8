"""What the Python test scripts share: a free loopback port, and a check that prints `ok - …`
(TAP's form) or fails with what was expected and what came."""
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(what: str, got, expected) -> None:
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}")
    print(f"ok - {what}")

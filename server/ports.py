"""What start-up says when the gateway cannot listen on a port: which port, and how to change it.

`[Errno 98] Address already in use` or gRPC's `Failed to bind to address` alone leave an
operator guessing which of the two ports is taken and where it was set; these messages name the
port and its flag, environment variable and TOML key.
"""

from __future__ import annotations

import errno
import socket

from citadel.server.config import ConfigError

# setting -> (what listens there, flag, environment variable, TOML key)
PORT_SETTINGS = {
    "grpc_port": ("gRPC", "--grpc-port", "CITADEL_GRPC_PORT", "server.grpc_port"),
    "http_port": ("HTTP", "--http-port", "CITADEL_HTTP_PORT", "server.http_port"),
}


def cannot_listen(setting: str, host: str, port: int, error: OSError) -> ConfigError:
    """The start-up error for a failed bind of `setting`'s port, naming how to choose another."""
    what, flag, env, key = PORT_SETTINGS[setting]
    choose = f"choose another with {flag}, {env} or {key}"
    if error.errno == errno.EADDRINUSE:
        return ConfigError(f"{what} port {port} is already in use: {choose}")
    reason = error.strerror or str(error)
    return ConfigError(f"{what} port {port}: cannot listen on {host}:{port} ({reason}): {choose}")


def why_bind_failed(host: str, port: int) -> OSError:
    """The OSError a plain bind of host:port gets now: gRPC reports a failed bind without its
    cause, so it is asked again here (SO_REUSEADDR as servers set it: TIME_WAIT is no conflict)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as e:
            return e
    # Free again already (whoever held it let go): say what gRPC said, with no errno to go on.
    return OSError(None, "the gRPC server could not bind it")

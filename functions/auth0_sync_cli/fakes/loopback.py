"""Serving a WSGI app with waitress on a loopback port from a background thread: what the
reference CRM server and the vendor fakes share (start, wait until accepting, stop)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

from waitress import wasyncore
from waitress.server import create_server


def serve_in_thread(
    app: Any, host: str, port: int, *, threads: int = 8, name: str = "loopback"
) -> tuple[Any, threading.Thread, int]:
    """Bind `app` on host:port (0: the OS picks a free port), serve it from a daemon
    thread and return (server, thread, port) once connections are accepted."""
    # Any: types-waitress lacks effective_port and _map, and types trigger as an int.
    server: Any = create_server(app, host=host, port=port, threads=threads)
    bound = int(server.effective_port)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        wait_until_accepting(host, bound)
    except OSError:
        stop_waitress(server, thread)
        raise
    return server, thread, bound


def wait_until_accepting(host: str, port: int, timeout: float = 5.0) -> None:
    """Poll until host:port accepts a connection (OSError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def stop_waitress(server: Any, thread: threading.Thread | None) -> None:
    """Stop a waitress server running in `thread` and close its connections."""

    def close_everything() -> None:
        wasyncore.close_all(server._map, ignore_all=True)

    # Closing from inside the serving loop (via its trigger) ends the loop at once,
    # instead of racing it from this thread. If the loop has already closed its trigger,
    # pulling it fails: then the loop is ending anyway.
    if thread is not None and thread.is_alive():
        with contextlib.suppress(OSError):
            server.trigger.pull_trigger(close_everything)
        thread.join(timeout=5)
    close_everything()
    server.task_dispatcher.shutdown(timeout=5)


class ServedInThread:
    """What a server served by `serve_in_thread` shares: stopping it (its connections
    closed), and `with server:` to start and stop it. Subclasses define `start`."""

    _server: Any = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and close open connections (nothing if not running)."""
        server, thread = self._server, self._thread
        if server is not None:
            self._server = self._thread = None
            stop_waitress(server, thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackServer(ServedInThread):
    """A vendor fake's server. Start with `with Server() as s:`; `base_url` is known once
    started (port 0: the OS picks a free one)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = 0

    def wsgi_app(self) -> Any:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._server, self._thread, self.port = serve_in_thread(
            self.wsgi_app(), self.host, 0, name=type(self).__name__
        )
        return self

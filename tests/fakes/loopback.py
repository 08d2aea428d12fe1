"""A WSGI app served by waitress on a loopback port from a background thread (the same
way as the reference CRM server), for the vendor fakes."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

from waitress.server import create_server

from auth0_sync_cli.crm_server import stop_waitress


class LoopbackServer:
    """Start with `with Server() as s:`; `base_url` is known once started (port 0: the OS
    picks a free one)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def wsgi_app(self) -> Any:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        server: Any = create_server(self.wsgi_app(), host=self.host, port=0, threads=8)
        self.port = int(server.effective_port)
        self._server = server
        self._thread = threading.Thread(target=server.run, name=type(self).__name__, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 5
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            self._server = self._thread = None
            stop_waitress(server, thread)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

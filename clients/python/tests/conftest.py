"""Starts the real ``voucher-ledger serve --demo`` for the tests, on 127.0.0.1:0 and a data
folder of its own, and stops it with SIGTERM afterwards.

The binary is ``VOUCHER_LEDGER_BIN``, or ``voucher-ledger`` in ``$CARGO_TARGET_DIR/debug`` (or
the repository's ``target/debug``): build it first with ``cargo build -p ledger-server``.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
LISTENING = "voucher-ledger listening on "
#: Longest wait for the server to start or stop, in seconds: generous, for a busy 2-core machine.
WAIT_S = 120


def binary() -> Path:
    configured = os.environ.get("VOUCHER_LEDGER_BIN")
    if configured:
        return Path(configured)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPOSITORY / "target"))
    return target / "debug" / "voucher-ledger"


class Server:
    def __init__(self, data: Path, log: Path) -> None:
        path = binary()
        if not path.is_file():
            raise RuntimeError(f"no server binary at {path}: cargo build -p ledger-server")
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("VOUCHER_LEDGER__") and name != "VOUCHER_LEDGER_LOG"
        }
        environment["VOUCHER_LEDGER__POLICY_FILE"] = str(REPOSITORY / "config" / "policy.toml")
        self.log_path = log
        self.process = subprocess.Popen(
            [str(path), "serve", "--demo", "--listen", "127.0.0.1:0", "--data", str(data)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            env=environment,
            cwd=REPOSITORY,
            text=True,
        )
        lines: "queue.Queue[str]" = queue.Queue()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=WAIT_S)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"the server printed no address: {log.read_text()}") from None
            if line.startswith(LISTENING):
                self.address = line[len(LISTENING) :].strip()
                break

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_S)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("ledger")
    running = Server(home / "data", home / "server.log")
    yield running
    assert running.stop() == 0, running.log_path.read_text()

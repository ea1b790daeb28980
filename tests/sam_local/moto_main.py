"""Runs inside the moto container (tests/sam_local/moto.py): tests/moto_server.py's server on 0.0.0.0:8000.

moto's DynamoDB, Secrets Manager, EventBridge and SQS, one request at a time, until SIGTERM. It listens
on the container's own address, which only the function containers on the same Docker network and
the host's published loopback port reach.
"""

from __future__ import annotations

import signal

from tests.moto_server import MotoServer

PORT = 8000


def main() -> int:
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before the server's threads start
    server = MotoServer("0.0.0.0", PORT).start()  # the container's own interfaces
    try:
        print(server.endpoint_url, flush=True)
        signal.sigwait(stop_signals)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A charger's TLS server in its own process, for the memory test of ``test_pc_hardening.py``.

``python _pc_idle_server.py MAX_CONNECTIONS`` (``0``: no caps) listens on 127.0.0.1 with an ISO 15118-2
TLS context, holds every connection its caps admit (the handler waits for a frame that never comes),
prints ``PORT <port>`` and then, for each line on stdin, ``STATS <active> <refused> <VmRSS kB>``."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _pc_testcerts import make_chain  # noqa: E402
from plugcharge.net.tls import server_context  # noqa: E402
from plugcharge.net.transport import ConnectionLimits, start_charger_server  # noqa: E402


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main(cap: int) -> None:
    chain = make_chain("SECC-IDLE", "CPO")
    limits = ConnectionLimits(cap, None) if cap else ConnectionLimits(None, None)

    async def hold(stream) -> None:
        try:
            await stream.read_frame(timeout=120)
        except Exception:
            pass

    server = await start_charger_server(hold, "127.0.0.1", 0, limits=limits, handshake_timeout=30,
                                        ssl_context=server_context(chain.tls_chain, chain.leaf.key_pem))
    print(f"PORT {server.port}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(f"STATS {limits.active} {limits.refused} {rss_kb()}", flush=True)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

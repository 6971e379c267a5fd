"""The only room with I/O: SDP (:mod:`~plugcharge.net.sdp`), TLS contexts (:mod:`~plugcharge.net.tls`),
the V2GTP stream (:mod:`~plugcharge.net.stream`), TCP/TLS servers with connection caps and the EV's
connection (:mod:`~plugcharge.net.transport`), the asyncio session runner (:mod:`~plugcharge.net.runner`)
and rate-limited logging of what peers cause (:mod:`~plugcharge.net.logs`).  Imports only
:mod:`plugcharge.core` of plugcharge (the runner also the backend interface it calls)."""
__all__ = ["logs", "runner", "sdp", "stream", "tls", "transport"]

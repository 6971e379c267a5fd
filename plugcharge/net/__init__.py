"""The only room with I/O: SDP (:mod:`~plugcharge.net.sdp`), TLS contexts (:mod:`~plugcharge.net.tls`),
TCP/TLS transports (:mod:`~plugcharge.net.transport`) and the asyncio session runner
(:mod:`~plugcharge.net.runner`).  Imports only :mod:`plugcharge.core` of plugcharge (the runner
also the backend interface it calls)."""
__all__ = ["runner", "sdp", "tls", "transport"]

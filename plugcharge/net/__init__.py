"""The only room with I/O: SDP, TLS contexts, TCP/TLS transports and the asyncio session runner."""
__all__: list[str] = []

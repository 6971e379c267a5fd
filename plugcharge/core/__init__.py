"""Protocol-neutral, sans-IO core of the V2G sessions: framing, codec access, events, errors."""
__all__: list[str] = []

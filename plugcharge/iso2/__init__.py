"""ISO 15118-2 sessions: EV and charger handlers, transition tables, message builders, timing."""
__all__: list[str] = []

"""Plug & Charge: message signatures and the EV's contract wallet."""
__all__: list[str] = []

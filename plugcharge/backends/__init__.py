"""The charger's backend interface (OCPP-shaped) and a simulated backend."""
__all__: list[str] = []

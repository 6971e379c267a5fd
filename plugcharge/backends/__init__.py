"""The charger's backend: the OCPP-shaped interface (:mod:`~plugcharge.backends.base`) and a simulated
CPS + eMSP (:mod:`~plugcharge.backends.simulated`).  Imports :mod:`plugcharge.core` and
:mod:`plugcharge.pnc` of plugcharge."""
__all__ = ["base", "simulated"]

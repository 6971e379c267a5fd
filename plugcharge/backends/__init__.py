"""The charger's backend: the OCPP-shaped interface (:mod:`~plugcharge.backends.base`), a simulated
CPS + eMSP (:mod:`~plugcharge.backends.simulated`) and the optional capabilities beyond it
(:mod:`~plugcharge.backends.capabilities`).  With the ``ocpp`` extra (``pip install
'plugcharge[ocpp]'``): the OCPP 2.0.1 charging-station client (:mod:`~plugcharge.backends.ocpp`) and
the test CSMS (:mod:`~plugcharge.backends.csms`), imported on demand.  Imports
:mod:`plugcharge.core` and :mod:`plugcharge.pnc` of plugcharge."""
__all__ = ["base", "simulated", "simulated20", "capabilities"]

"""Charger backends: the OCPP 2.0.1 charging-station client and the test CSMS (``ocpp`` extra).

:mod:`plugcharge.backends.capabilities` (always importable) declares the optional backend
capabilities; :mod:`plugcharge.backends.ocpp` (:class:`~plugcharge.backends.ocpp.OCPPBackend`) and
:mod:`plugcharge.backends.csms` (:class:`~plugcharge.backends.csms.TestCSMS`) need
``pip install 'plugcharge[ocpp]'`` and are imported on demand.
"""
from __future__ import annotations

from .capabilities import (
    CertificateStatusBackend, GetCertificateStatusResponse, SECCCertificate, SECCRenewalBackend,
    SessionReportingBackend, SessionReporter,
)

__all__ = [
    "CertificateStatusBackend", "GetCertificateStatusResponse", "SECCCertificate", "SECCRenewalBackend",
    "SessionReportingBackend", "SessionReporter",
]

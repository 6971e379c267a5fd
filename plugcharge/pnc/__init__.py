"""Plug & Charge: message signatures (:mod:`~plugcharge.pnc.signatures`), the EV's contract wallet
(:mod:`~plugcharge.pnc.wallet`), certificate helpers (:mod:`~plugcharge.pnc.certs`) and the
security settings of a session (:mod:`~plugcharge.pnc.security`).  Imports only
:mod:`plugcharge.core` of plugcharge (and :mod:`pki`)."""
__all__ = ["auth20", "certs", "codes20", "install20", "security", "signatures", "wallet"]

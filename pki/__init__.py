"""pki: the ISO 15118 certificate engine."""

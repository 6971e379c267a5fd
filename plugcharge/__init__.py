"""plugcharge: ISO 15118 Plug & Charge sessions (sans-IO), transports and the command-line tool."""

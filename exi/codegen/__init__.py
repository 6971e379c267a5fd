"""Dev-only schema compiler: XSD -> EXI grammar tables in exi/_generated (never imported at run time)."""

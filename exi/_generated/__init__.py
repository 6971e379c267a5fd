"""Generated EXI grammar tables (python -m exi.codegen). Do not edit."""

"""The typer command line: parse flags, call the library, render. No trading logic here."""

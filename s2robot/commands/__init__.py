"""The command-line entries; `python -m s2robot` lists them."""

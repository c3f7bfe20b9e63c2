"""The benchmark of source-kustomer against the fake Kustomer API: see bench/README.md.

Run it as `python bench/run.py ...` or `python -m bench ...` from the repository root.
"""

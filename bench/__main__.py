"""`python -m bench ...` (from the repository root): the same as `python bench/run.py ...`; see bench/README.md."""

from bench.cli import main

main(invocation=("python", "-m", "bench"), prog="python -m bench")

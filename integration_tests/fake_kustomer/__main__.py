"""python -m integration_tests.fake_kustomer --port 8585 [...]: see the package docstring, or --help."""

from .command_line import main

if __name__ == "__main__":
    main()

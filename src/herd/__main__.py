"""`python -m herd`: the same entry point as the `herd` script."""

from herd.cli import main

main()

"""`python -m herd`: the same entry point as the `herd` script."""

from herd.cli import main

# Guarded: Dask's worker processes are spawned and re-import the main module.
if __name__ == "__main__":
    main()

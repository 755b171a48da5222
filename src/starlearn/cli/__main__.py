"""``python -m starlearn.cli``: the ``starlearn`` command."""

from starlearn.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()

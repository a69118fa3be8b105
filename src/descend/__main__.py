"""``python -m descend``: the same as the ``descend`` console script."""

from descend.cli.app import main

main()

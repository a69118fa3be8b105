"""``python -m descend.cli``: the same as the ``descend`` console script."""

from descend.cli.app import main

main()

"""``python -m egi ARGS``: the ``egi`` command, as the installed script runs it."""

from ._cli import main

main()

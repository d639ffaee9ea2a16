"""``python -m quark_cli``: the same as the ``quark`` command."""

from quark_cli.launcher import main

main()

"""The lowest layer: what every other part of the package uses, importing nothing above it.

* :mod:`.fileio`       the one atomic writer (temporary sibling, fsync, rename; umask mode);
* :mod:`.scope`        one toolbox's mm default scope for a block, restored after it;
* :mod:`.cli`          the one command-line convention (parser, ``PROG: error:`` line, exit 2);
* :mod:`.environment`  package versions and host facts for reports;
* :mod:`.configs`      where the shipped configs and model index are (checkout or wheel).

Nothing is imported here, so using one of them never pays for the others.
"""

"""``python -m iformer_mm.deploy ...``: ``tools/deploy.py`` from an installed package."""
import sys

from ..utils.cli import quiet_known_warnings

quiet_known_warnings()

from .cli import main  # noqa: E402

sys.exit(main(prog='python -m iformer_mm.deploy'))

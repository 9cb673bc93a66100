"""``python -m pipeline.cli``: the ``driftwire`` command."""

import sys

from pipeline.cli.main import main

sys.exit(main())

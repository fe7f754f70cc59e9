"""``python -m hybridwrap.train`` / ``accelerate launch -m hybridwrap.train``: the `hybridwrap train` command."""

import sys

from hybridwrap.train_cli import main

sys.exit(main())

"""`python -m tasker_cli`."""

import sys

from tasker_cli.main import main

sys.exit(main())

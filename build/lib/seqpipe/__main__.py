"""`python -m seqpipe`: the same as the `seqpipe` command."""

import sys

from seqpipe.cli import main

sys.exit(main())

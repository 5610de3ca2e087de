"""seqpipe: recurrent sequence models on text, audio, stock prices and DNA."""

import os

# Set before torch starts OpenMP: on shared cores, spin-waiting threads run ~10x slower whenever
# another process holds a core (measured here); passive waiting costs little on a quiet machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from seqpipe.errors import SeqpipeError

__version__ = "0.1.0"
__all__ = ["SeqpipeError", "__version__"]

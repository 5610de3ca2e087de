"""seqpipe: recurrent sequence models on text, audio, stock prices and DNA."""

from seqpipe.errors import SeqpipeError

__version__ = "0.1.0"
__all__ = ["SeqpipeError", "__version__"]

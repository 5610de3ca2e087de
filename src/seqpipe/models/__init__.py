"""Models: composed from front end -> fused recurrent core -> head, each built from a DataSpec."""

from seqpipe.models.crnn import CRNN
from seqpipe.models.recurrent import RecurrentModel

__all__ = ["CRNN", "RecurrentModel"]

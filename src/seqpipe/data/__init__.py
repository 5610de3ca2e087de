"""The shared data layer: prepared stores, windows, the DataSpec contract and the datamodules.

Datamodules are importable on their own in any Lightning project (no DVC or MLflow needed)::

    from seqpipe.data import TextDataModule
    dm = TextDataModule(source="my_corpus.txt", prepared_dir="prepared/my_corpus")
"""

from seqpipe.data.audio import AudioDataModule
from seqpipe.data.dna import DNADataModule
from seqpipe.data.module import SequenceDataModule
from seqpipe.data.spec import DataSpec
from seqpipe.data.store import PreparedStore, StoreWriter
from seqpipe.data.stocks import StockDataModule
from seqpipe.data.text import TextDataModule

__all__ = ["AudioDataModule", "DNADataModule", "DataSpec", "PreparedStore", "SequenceDataModule", "StockDataModule", "StoreWriter", "TextDataModule"]

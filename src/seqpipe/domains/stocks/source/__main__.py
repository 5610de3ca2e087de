"""``python -m seqpipe.domains.stocks.source [OUT_DIR]``: export the embedded default stock data to CSV files."""

from seqpipe.data.generated import run_generator
from seqpipe.domains.stocks.source.embedded import main

if __name__ == "__main__":
    run_generator(main)

"""``python -m seqpipe.sources.stocks [OUT_DIR]``: export the embedded default stock data to CSV files."""

from seqpipe.errors import exit_code
from seqpipe.sources.stocks.embedded import main

if __name__ == "__main__":
    raise SystemExit(exit_code(main))

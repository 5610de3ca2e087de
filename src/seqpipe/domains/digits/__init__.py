"""Spoken digit strings: a spoken string of 1-7 digits -> the digits (encoder-decoder with attention)."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="digits",
    task="seqpipe.domains.digits.task",
    datamodules={"DigitStringsDataModule": "seqpipe.domains.digits.datamodule"},
    extra="audio",
    builds_on=("audio",),
)


def __getattr__(name: str):  # from seqpipe.domains.digits import <its datamodule>
    return DOMAIN.export(name, __name__)

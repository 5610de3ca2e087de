"""Sequence-to-sequence forecasting: an encoder-decoder over the stock windows, scored per horizon step."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="forecast",
    task="seqpipe.domains.forecast.task",
    extra="stocks",
    builds_on=("stocks",),
)


def __getattr__(name: str):  # from seqpipe.domains.forecast import <its datamodule>
    return DOMAIN.export(name, __name__)

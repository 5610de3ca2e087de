"""ECG beats: classify synthetic heartbeats (normal / premature / wide QRS) from their 1-D waveform.

An example of a seqpipe domain that lives outside seqpipe: any importable package whose ``__init__``
declares ``DOMAIN`` is found by ``domain: ecg_beats`` in a config (see docs/add_a_domain.md). Only this
declaration runs on import; the datamodule (torch) and the task (evaluation) load when a stage asks.
"""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="ecg_beats",
    task="ecg_beats.task",
    datamodules={"BeatDataModule": "ecg_beats.datamodule"},
    store_builders={"BeatDataModule": "ecg_beats.prepare:build_beat_store"},
)


def __getattr__(name: str):  # from ecg_beats import BeatDataModule
    return DOMAIN.export(name, __name__)

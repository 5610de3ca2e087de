"""Audio: spoken-word classification from log-mel spectrograms; digits spoken by espeak-ng voices ship."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="audio",
    task="seqpipe.domains.audio.task",
    datamodules={"AudioDataModule": "seqpipe.domains.audio.datamodule"},
    extra="audio",
    packages=("librosa", "soundfile", "soxr", "threadpoolctl", "torchaudio", "espeakng_loader"),
)


def __getattr__(name: str):  # from seqpipe.domains.audio import <its datamodule>
    return DOMAIN.export(name, __name__)

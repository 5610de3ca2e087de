"""DNA: sequence classification (motif sets, splice junctions) from one-hot bases."""

from seqpipe.domain import Domain

DOMAIN = Domain(
    name="dna",
    task="seqpipe.domains.dna.task",
    datamodules={"DNADataModule": "seqpipe.domains.dna.datamodule"},
    extra="dna",
    packages=("pyjaspar",),
)


def __getattr__(name: str):  # from seqpipe.domains.dna import <its datamodule>
    return DOMAIN.export(name, __name__)

"""DNA: labeled sequences (FASTA / CSV / folder per class) -> one byte a base in the store -> class samples.

Preprocessing (``seqpipe.domains.dna.prepare.prepare_dna``, re-exported here, with its settings declared once
in ``seqpipe.domains.dna.settings.DnaSettings``) streams every record through
``seqpipe.domains.dna.source`` (rules there: alphabet, IUPAC codes, U, empty, too long, duplicate ids, missing
labels, single class) into one flat uint8 array (codes 1..5 = A C G T N), then splits; the index holds
each record's offset, length, split, label and id. Splits: the source's own (train/test folders, a CSV
``split`` column, val carved from train) or stratified by label, seeded; identical sequences always land
in one split, so no test sequence is seen in training. The class list is fitted on the train split.

Length policy: records are stored at full length (ragged); a batch is padded to its longest record
(pad code 0) and carries ``lengths``, so recurrent cores pack and pooling masks the padding. Records
longer than ``max_len`` are an error in strict mode, else center-cropped to ``max_len`` (reported).

Reverse complement: strand handling is a property of the task, so it is off unless a dataset's config
turns it on. With ``rc_augment`` = p, each training sample is replaced by its reverse complement with
probability p -- right when labels are strand-symmetric (a motif counts on either strand), wrong for
strand-specific tasks (splice sites, promoters: a reverse-complemented donor is not a donor). Val/test
batches are never augmented. Test-time averaging over both strands is the evaluator's choice
(``evaluate.rc_average``, picked on val by default; ``reverse_complement_batch``). ``rc_augment`` is
kept in the checkpoint's data info, so ``predict`` averages both strands only for models trained on both.

The default source is the generated JASPAR motif set (``seqpipe.domains.dna.motifs``), written as
FASTA + labels.csv under data/raw/dna by the ``dna_generate`` DVC stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqpipe.data.module import SequenceDataModule
from seqpipe.data.windows import pad_batch
from seqpipe.domains.dna.prepare import dna_settings, prepare_dna
from seqpipe.domains.dna.settings import DnaSettings
from seqpipe.domains.dna.source.alphabet import COMPLEMENT, PAD, reverse_complement
from seqpipe.errors import SeqpipeError

# what users imported from here (the preprocess and its settings have their own modules)
__all__ = [
    "DNADataModule",
    "DnaCollate",
    "DnaSamples",
    "DnaSettings",
    "ReverseComplementAugment",
    "dna_settings",
    "prepare_dna",
    "reverse_complement_batch",
]


# -- samples ----------------------------------------------------------------------------------
class DnaSamples(Dataset):
    """One sample a record: (bases as uint8 codes, class id), sliced from the memory-mapped store."""

    def __init__(self, bases: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, labels: np.ndarray):
        self.bases, self.offsets, self.lengths, self.labels = bases, offsets, lengths, labels

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        o, n = int(self.offsets[i]), int(self.lengths[i])
        return np.asarray(self.bases[o : o + n]), int(self.labels[i])


_COMP_T = torch.from_numpy(COMPLEMENT.astype(np.int64))


def reverse_complement_batch(inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Reverse complement of every row of a padded (B, T) code batch; padding stays at the end."""
    b, t = inputs.shape
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long)
    lengths = lengths.to(inputs.device)
    src = lengths[:, None] - 1 - torch.arange(t, device=inputs.device)[None, :]
    valid = src >= 0
    flipped = torch.gather(inputs, 1, src.clamp_min(0))
    comp = _COMP_T.to(inputs.device)[flipped]
    return torch.where(valid, comp, torch.full_like(comp, PAD))


class ReverseComplementAugment:
    """Replace a training sample by its reverse complement with probability ``p`` (its own rng)."""

    def __init__(self, p: float):
        self.p = float(p)

    def __call__(self, sample: tuple[np.ndarray, int], rng: np.random.Generator) -> tuple[np.ndarray, int]:
        codes, label = sample
        return (reverse_complement(codes) if rng.random() < self.p else codes), label


class DnaCollate:
    """Pad a list of (codes, label) to a batch; reverse-complement each sample with probability ``rc_prob``."""

    def __init__(self, rc_prob: float = 0.0):
        self.rc_prob = float(rc_prob)

    def __call__(self, samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
        inputs, lengths = pad_batch([torch.from_numpy(s.astype(np.int64)) for s, _ in samples], pad_value=PAD)
        if self.rc_prob > 0:
            flip = torch.rand(len(samples)) < self.rc_prob
            if bool(flip.any()):
                inputs = torch.where(flip[:, None], reverse_complement_batch(inputs, lengths), inputs)
        return {
            "inputs": inputs,
            "targets": torch.tensor([y for _, y in samples], dtype=torch.long),
            "lengths": lengths,
        }


class DNADataModule(SequenceDataModule):
    """Labeled DNA sequence classification (binary or multi-class) from FASTA, CSV/TSV or class folders.

    Args:
        source: FASTA/FASTA.gz, CSV/TSV (columns sequence,label[,id][,split]) or a folder per class
            (``<root>/<class>/*`` or genomic-benchmarks ``<root>/train|test/<class>/*``).
        labels: sidecar CSV of id,label for a FASTA source (else labels come from the header).
        label_field: FASTA header label: a key (``label`` reads ``>id label=1``) or a field number.
        strict: errors instead of repairs (IUPAC codes, empty records, too long, missing labels).
        convert_u: read U as T (RNA input).
        max_len: longest allowed record (strict: error; else center-crop). None = no limit.
        min_len: shortest allowed record (shorter: error in strict mode, else skipped).
        val_fraction, test_fraction: stratified split fractions (when the source defines no split).
        rc_augment: probability of reverse-complementing a training sample (0 = off, the default:
            only strand-symmetric tasks should turn it on, e.g. 0.5).
        sequence_column, label_column, id_column: CSV/TSV column names.
        batch_size, num_workers, seed, rebuild: see SequenceDataModule.
    """

    def __init__(
        self,
        source: str = "data/raw/dna/sequences.fa",
        labels: str | None = "data/raw/dna/labels.csv",
        prepared_dir: str = "data/prepared/dna",
        label_field: str | int | None = "label",
        strict: bool = True,
        convert_u: bool = False,
        max_len: int | None = None,
        min_len: int = 1,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        rc_augment: float = 0.0,
        sequence_column: str = "sequence",
        label_column: str = "label",
        id_column: str = "id",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        rebuild: bool = False,
    ):
        super().__init__(prepared_dir, batch_size, num_workers, seed, rebuild)
        self.save_hyperparameters()
        if not 0 <= float(rc_augment) <= 1:
            raise SeqpipeError(f"rc_augment must be a probability in [0, 1], got {rc_augment}", where="data.rc_augment")
        self.rc_augment = float(rc_augment)
        self.settings = DnaSettings.from_args(self.hparams)  # the preprocessing arguments, by name

    def build_store(self) -> None:
        hp = self.hparams
        if not Path(hp.source).exists() and hp.source == "data/raw/dna/sequences.fa":
            raise SeqpipeError(
                "the default DNA dataset has not been generated yet",
                where=hp.source,
                fix="run `dvc repro dna_generate` or `python -m seqpipe.domains.dna.motifs --out data/raw/dna`",
            )
        prepare_dna(hp.source, self.prepared_dir, self.settings)

    def make_dataset(self, split: str) -> Dataset:
        rows = self.store.records(split)
        ix = self.store.index
        return DnaSamples(self.store.arrays["bases"], ix["offset"][rows], ix["length"][rows], ix["label"][rows])

    def records(self, split: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """(codes of each record, class ids, record ids) of one split, in store order."""
        ds = self.datasets[split]
        rows = self.store.records(split)
        return [ds[i][0] for i in range(len(ds))], np.asarray(ds.labels, dtype=np.int64), self.store.index["id"][rows]

    def train_dataloader(self):
        return self._loader("train", shuffle=True, collate=DnaCollate())

    def sample_augment(self) -> ReverseComplementAugment | None:
        return ReverseComplementAugment(self.rc_augment) if self.rc_augment > 0 else None

    def collate(self, samples: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
        return DnaCollate(0.0)(samples)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["dna"]["classes"])

    def preprocessing_settings(self) -> dict[str, Any]:
        """The settings this config would record in meta.json["settings"] (see store.check_settings)."""
        return self.settings.recorded(self.hparams.source)

    def data_info(self) -> dict[str, Any]:
        info = super().data_info()
        info.pop("read_report", None)
        info.pop("class_counts", None)
        info["rc_augment"] = self.rc_augment  # predict averages both strands only for models trained on both
        return info

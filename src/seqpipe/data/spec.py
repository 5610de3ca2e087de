"""DataSpec: the one small contract between a datamodule and any model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# Output token ids shared by sequence targets (datamodules emit them, the seq2seq decoder reads them).
PAD, BOS, EOS = 0, 1, 2

InputKind = Literal["tokens", "features"]
TargetKind = Literal["next_token", "class", "regression", "sequence", "masked_token"]


@dataclass(frozen=True)
class Target:
    """How a target kind is trained: the one table models, the precision probe and the gradient replay read.

    per_step:   a prediction at every input step (language modeling, masked tokens), not one a sample.
    head:       the DataSpec field that sizes the output layer.
    loss:       "cross_entropy" (ids or classes) or "regression" (numbers, MSE or L1).
    recurrent:  RecurrentModel/CRNN train it (a "sequence" target needs the encoder-decoder).
    traced:     the gradient-through-time replay has a loss at the last step to trace back.
    """

    per_step: bool
    head: str
    loss: Literal["cross_entropy", "regression"]
    recurrent: bool = True
    traced: bool = True


TARGETS: dict[str, Target] = {
    "next_token": Target(per_step=True, head="vocab_size", loss="cross_entropy"),
    "masked_token": Target(per_step=True, head="vocab_size", loss="cross_entropy", traced=False),
    "class": Target(per_step=False, head="num_classes", loss="cross_entropy"),
    "regression": Target(per_step=False, head="output_dim", loss="regression"),
    "sequence": Target(per_step=True, head="num_classes", loss="cross_entropy", recurrent=False, traced=False),
}


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know to build its front end and head.

    input:        "tokens" (integer ids, embedded or one-hot in the model) or "features" (float frames).
    target:       "next_token" (language modeling), "class" (one label a sample), "regression"
                  (``output_dim`` numbers a sample), "sequence" (a token sequence, seq2seq) or
                  "masked_token" (fill in masked positions from both sides).
    vocab_size:   number of input token ids (tokens input).
    feature_dim:  size of one input frame (features input).
    num_classes:  number of classes (class target) or output vocabulary (sequence target).
    output_dim:   regression outputs a sample (e.g. forecast horizon).
    max_len:      longest sample, if bounded.
    causal:       the task may not see the future; bidirectional cores are refused.
    """

    input: InputKind
    target: TargetKind
    vocab_size: int | None = None
    feature_dim: int | None = None
    num_classes: int | None = None
    output_dim: int | None = None
    max_len: int | None = None
    causal: bool = False

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"DataSpec target must be one of {sorted(TARGETS)}, got {self.target!r}")
        if self.input == "tokens" and not self.vocab_size:
            raise ValueError("DataSpec(input='tokens') needs vocab_size")
        if self.input == "features" and not self.feature_dim:
            raise ValueError("DataSpec(input='features') needs feature_dim")
        if not getattr(self, TARGETS[self.target].head):
            raise ValueError(f"DataSpec(target='{self.target}') needs {TARGETS[self.target].head}")

    @property
    def kind(self) -> Target:
        """How this spec's target is trained (``TARGETS``)."""
        return TARGETS[self.target]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(**d)

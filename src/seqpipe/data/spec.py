"""DataSpec: the one small contract between a datamodule and any model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# Output token ids shared by sequence targets (datamodules emit them, the seq2seq decoder reads them).
PAD, BOS, EOS = 0, 1, 2

InputKind = Literal["tokens", "features"]
TargetKind = Literal["next_token", "class", "regression", "sequence", "masked_token"]


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
        if self.input == "tokens" and not self.vocab_size:
            raise ValueError("DataSpec(input='tokens') needs vocab_size")
        if self.input == "features" and not self.feature_dim:
            raise ValueError("DataSpec(input='features') needs feature_dim")
        if self.target in ("class", "sequence") and not self.num_classes:
            raise ValueError(f"DataSpec(target='{self.target}') needs num_classes")
        if self.target == "regression" and not self.output_dim:
            raise ValueError("DataSpec(target='regression') needs output_dim")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(**d)

"""The stocks store's preprocessing settings, declared once.

A setting is what changes the prepared store (features, split dates, the reader's repair rules, ...),
nothing that only shapes the loaders (target, stride, batch size). The datamodule takes them from its
arguments (``StockSettings.of``); preprocessing records ``recorded()`` in meta.json["settings"] and hashes
``fingerprint_extra()`` into the store's fingerprint; fit and evaluate compare the config's ``recorded()``
with the store's (seqpipe.data.store.check_settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from seqpipe.domains.stocks.features import DEFAULT_FEATURES
from seqpipe.domains.stocks.source.schema import Rules


@dataclass(frozen=True)
class StockSettings:
    """What a stocks store is prepared with; the defaults are the datamodule's (tests/domains/stocks/test_stocks.py
    checks).

    ``features`` is kept as a tuple and the split dates as text (YAML may hand in date objects).
    ``embargo`` None means the minimum, lookback + horizon (``resolved_embargo``).
    """

    source: str | Sequence[str] = "data/raw/stocks"
    features: Sequence[str] = DEFAULT_FEATURES
    lookback: int = 60
    horizon: int = 5
    embargo: int | None = None
    val_start: str = "2009-07-01"
    test_start: str = "2011-01-01"
    price_column: str = "auto"
    rules: Rules = Rules()
    short_series: str = "error"

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "val_start", str(self.val_start))
        object.__setattr__(self, "test_start", str(self.test_start))

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> StockSettings:
        """The settings among a datamodule's arguments, the reader's rules (flat there) gathered into ``Rules``."""
        rules = Rules(**{f.name: args[f.name] for f in fields(Rules)})
        return cls(rules=rules, **{f.name: args[f.name] for f in fields(cls) if f.name != "rules"})

    @property
    def resolved_embargo(self) -> int:
        """Rows dropped at the start of val and of test: ``embargo``, or lookback + horizon when unset."""
        return self.lookback + self.horizon if self.embargo is None else int(self.embargo)

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def recorded(self) -> dict[str, Any]:
        """What the store records in meta.json["settings"]: every setting, the rules flattened, as given."""
        values = self._values()
        source = values.pop("source")
        rules = values.pop("rules")
        source = source if isinstance(source, str) else [str(x) for x in source]
        return {"source": source, **values, "features": list(self.features), **asdict(rules)}

    def fingerprint_extra(self) -> dict[str, Any]:
        """The parameters hashed into the fingerprint beside the source files' bytes (the embargo resolved,
        the rules nested), as stores have always been fingerprinted: a fingerprint never moves with the code."""
        values = self._values()
        del values["source"]
        return dict(values, features=list(self.features), embargo=self.resolved_embargo, rules=asdict(self.rules))

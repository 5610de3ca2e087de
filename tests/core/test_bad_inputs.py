"""The bad-input test set: one case a bad input, across stocks, DNA, audio and text (and corrupt stores).

Every case builds its bad file(s) in tmp_path and runs the domain's preprocess function. An error case
must raise one SeqpipeError whose message is one line and names the file (and the line or record where
there is one), and must leave no prepared store and no temporary directory behind. A repair case must
succeed and count the repair in meta.json.
"""

from __future__ import annotations

import gzip
import json
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from seqpipe.data.store import PreparedStore, check_settings
from seqpipe.domains.audio.datamodule import AudioDataModule
from seqpipe.domains.audio.prepare import prepare_audio
from seqpipe.domains.audio.source import load_audio
from seqpipe.domains.dna.datamodule import DNADataModule, prepare_dna
from seqpipe.domains.dna.source import DnaRules, read_dna
from seqpipe.domains.fill_blank.datamodule import FillBlankDataModule
from seqpipe.domains.stocks.datamodule import StockDataModule, prepare_stocks
from seqpipe.domains.stocks.source import Rules, read_csv
from seqpipe.domains.text.datamodule import TextDataModule, prepare_text
from seqpipe.errors import SeqpipeError

CASES: list[Any] = []


def case(domain: str, kind: str = "error") -> Callable:
    """Register a builder ``fn(tmp_path) -> (run(out_dir), expected)``; expected: message fragments
    (error) or a check on the store (repair)."""

    def deco(fn: Callable) -> Callable:
        CASES.append(pytest.param(fn, kind, id=f"{domain}-{kind}-{fn.__name__}"))
        return fn

    return deco


# == stocks ====================================================================================
STOCK_ARGS = dict(
    lookback=10, horizon=2, features=["log_return", "hl_range"], val_start="2005-06-01", test_start="2005-10-01"
)


def ohlcv(n: int = 500, seed: int = 0, start: str = "2004-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {
            "Date": pd.bdate_range(start, periods=n).strftime("%Y-%m-%d"),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Volume": rng.integers(1000, 9000, n),
        }
    )


def stocks_case(tmp: Path, df: pd.DataFrame, name: str = "AAA.csv", **rules: Any):
    src = tmp / "raw"
    src.mkdir(exist_ok=True)
    path = src / name
    df.to_csv(path, index=False)
    return lambda out: prepare_stocks(str(src), out, rules=Rules(**rules), **STOCK_ARGS), path


@case("stocks")
def day_first_dates(tmp):
    df = ohlcv()
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime("%d/%m/%Y")
    run, path = stocks_case(tmp, df)
    return run, [str(path), "ambiguous day/month order", "'13/01/2004' (line 10)", "data.date_format: '%d/%m/%Y'"]


@case("stocks")
def sp500_export_day_first(tmp):
    """The issue's case: the real S&P 500 series exported with %d/%m/%Y (was: 423 rows 'repaired' by sorting)."""
    pytest.importorskip("arch")
    from arch.data import sp500

    d = sp500.load().reset_index()
    d = d.rename(columns={d.columns[0]: "Date"})[["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]]
    d["Date"] = pd.to_datetime(d["Date"]).dt.strftime("%d/%m/%Y")
    src = tmp / "raw"
    src.mkdir()
    d.to_csv(src / "SP500.csv", index=False)
    return (lambda out: prepare_stocks(str(src), out)), [
        str(src / "SP500.csv"),
        "ambiguous day/month order",
        "'13/01/1999'",
        "date_format",
    ]


@case("stocks")
def mixed_day_and_month_first(tmp):
    df = ohlcv()
    d = pd.to_datetime(df["Date"])
    df["Date"] = d.dt.strftime("%m/%d/%Y")
    df.loc[300:, "Date"] = d[300:].dt.strftime("%d/%m/%Y")
    run, path = stocks_case(tmp, df)
    return run, [str(path), "dates mix day-first", "month-first", "date_format"]


@case("stocks")
def no_field_above_twelve(tmp):
    df = ohlcv(12)
    df["Date"] = [f"{m:02d}/01/2004" for m in range(1, 13)]
    run, path = stocks_case(tmp, df)
    return run, [str(path), "ambiguous day/month order: no date has a field above 12", "date_format"]


@case("stocks")
def iso_and_slash_dates_mixed(tmp):
    df = ohlcv()
    df.loc[100, "Date"] = "05/26/2004"
    run, path = stocks_case(tmp, df)
    return run, [str(path), "dates mix formats ('05/26/2004' on line 102, '2004-01-01' on line 2)"]


@case("stocks")
def date_not_matching_date_format(tmp):
    df = ohlcv()
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime("%d/%m/%Y")
    df.loc[40, "Date"] = "2004-02-26"
    run, path = stocks_case(tmp, df, date_format="%d/%m/%Y")
    return run, [f"{path}, line 42, column Date", "'2004-02-26'", "'%d/%m/%Y'"]


@case("stocks")
def unreadable_date(tmp):
    df = ohlcv()
    df["Date"] = "someday"
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 2, column Date", "'someday'", "cannot tell its format", "date_format"]


@case("stocks")
def wholesale_reordering_refused(tmp):
    df = ohlcv().sample(frac=1.0, random_state=0)
    run, path = stocks_case(tmp, df)
    return run, [str(path), "rows out of date order", "max_unsorted_rows=5", "date_format"]


@case("stocks")
def missing_column(tmp):
    run, path = stocks_case(tmp, ohlcv().drop(columns="Low"))
    return run, [f"{path}, column Low", "missing column(s) ['Low']"]


@case("stocks")
def text_in_a_number_cell(tmp):
    df = ohlcv().astype({"High": object})
    df.loc[7, "High"] = "12,5x"
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 9, column High", "not a number: '12,5x'"]


@case("stocks")
def empty_date_cell(tmp):
    df = ohlcv()
    df.loc[10, "Date"] = ""
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 12, column Date", "missing or unreadable date"]


@case("stocks")
def non_positive_price(tmp):
    df = ohlcv()
    df.loc[20, "Close"] = 0.0
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 22, column Close", "non-positive price 0"]


@case("stocks")
def negative_volume(tmp):
    df = ohlcv()
    df.loc[30, "Volume"] = -5
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 32, column Volume", "negative volume -5"]


@case("stocks")
def gap_of_missing_dates(tmp):
    df = ohlcv()
    df = df.drop(index=range(50, 70))
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 52, column Date", "missing dates: 29 days"]


@case("stocks")
def duplicated_date(tmp):
    df = ohlcv()
    df.loc[60, "Date"] = df.loc[59, "Date"]
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 62, column Date", "duplicated date", "lines 61 and 62"]


@case("stocks")
def series_too_short(tmp):
    run, path = stocks_case(tmp, ohlcv(20))
    return run, [str(path), "series too short: 20 rows", "short_series: skip"]


@case("stocks")
def empty_csv(tmp):
    src = tmp / "raw"
    src.mkdir()
    (src / "AAA.csv").write_text("")
    return (lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)), [str(src / "AAA.csv"), "cannot read as CSV"]


@case("stocks")
def binary_file_named_csv(tmp):
    src = tmp / "raw"
    src.mkdir()
    (src / "AAA.csv").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    return (lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)), [str(src / "AAA.csv"), "cannot read as CSV"]


@case("stocks")
def row_with_too_many_fields(tmp):
    src = tmp / "raw"
    src.mkdir()
    lines = ohlcv().to_csv(index=False).splitlines()
    lines[30] += ",17,extra"
    (src / "AAA.csv").write_text("\n".join(lines) + "\n")
    return (lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)), [
        str(src / "AAA.csv"),
        "cannot read as CSV",
        "Expected 6 fields in line 31, saw 8",
    ]


@case("stocks")
def missing_source(tmp):
    return (lambda out: prepare_stocks(str(tmp / "nope"), out, **STOCK_ARGS)), [
        str(tmp / "nope"),
        "stock source not found",
    ]


@case("stocks")
def truncated_csv_gz(tmp):
    src = tmp / "raw"
    src.mkdir()
    data = gzip.compress(ohlcv().to_csv(index=False).encode())
    (src / "AAA.csv.gz").write_bytes(data[: len(data) // 2])
    return (lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)), [
        str(src / "AAA.csv.gz"),
        "truncated or corrupt .gz",
    ]


@case("stocks")
def numeric_and_text_month_dates_mixed(tmp):
    df = ohlcv()
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime("%d-%b-%Y")
    df.loc[200, "Date"] = "2004-10-15"
    run, path = stocks_case(tmp, df)
    return run, [f"{path}, line 202, column Date", "'2004-10-15'", "not in the file's date format '%d-%b-%Y'"]


@case("stocks")
def ticker_in_two_files(tmp):
    src = tmp / "raw"
    src.mkdir()
    long = ohlcv().assign(Ticker="AAA")
    long.to_csv(src / "all.csv", index=False)
    ohlcv(seed=1).to_csv(src / "AAA.csv", index=False)
    return (lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)), [
        str(src / "all.csv"),
        "ticker 'AAA' appears in two places",
    ]


@case("stocks", "repair")
def a_few_unsorted_rows_sorted(tmp):
    df = ohlcv()
    df = pd.concat([df.iloc[:100], df.iloc[103:106], df.iloc[100:103], df.iloc[106:]])
    run, _ = stocks_case(tmp, df)
    return run, lambda store: store.meta["repairs"]["AAA"] == {"unsorted_rows_sorted": 1}


@case("stocks", "repair")
def newest_first_file_reversed(tmp):
    run, _ = stocks_case(tmp, ohlcv().iloc[::-1])
    return run, lambda store: store.meta["repairs"]["AAA"] == {"newest_first_reversed": 1}


@case("stocks", "repair")
def nonfinite_rows_dropped(tmp):
    df = ohlcv().astype({"Open": object})
    df.loc[[5, 77], "Open"] = ["NaN", "inf"]
    run, _ = stocks_case(tmp, df)
    return run, lambda store: store.meta["repairs"]["AAA"] == {"nonfinite_rows_dropped": 2}


@case("stocks", "repair")
def blank_lines_dropped(tmp):
    src = tmp / "raw"
    src.mkdir()
    text = ohlcv().to_csv(index=False).splitlines()
    (src / "AAA.csv").write_text("\n".join(text[:50] + ["", ",,,,,"] + text[50:]) + "\n")
    return (
        lambda out: prepare_stocks(str(src), out, **STOCK_ARGS)
    ), lambda store: store.meta["repairs"]["AAA"] == {"blank_lines_dropped": 2}


# == DNA =======================================================================================
def seqs(n: int = 40, length: int = 60, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def fasta_text(records: list[tuple[str, str]]) -> str:
    return "".join(f">{h}\n{s}\n" for h, s in records)


def good_records(n: int = 40) -> list[tuple[str, str]]:
    return [(f"r{i} label={i % 2}", s) for i, s in enumerate(seqs(n))]


def dna_case(tmp: Path, text: str | bytes, name: str = "seqs.fa", **kw: Any):
    path = tmp / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return (lambda out: prepare_dna(path, out, **kw)), path


@case("dna")
def latin1_header(tmp):
    text = fasta_text(good_records()).encode().replace(b"r7 label=1", "r7 label=caf\xe9".encode("latin-1"))
    run, path = dna_case(tmp, text)
    return run, [str(path), "line 15: not UTF-8 text (byte 0xe9 at byte offset 524)", "UTF-8"]


@case("dna")
def truncated_gz(tmp):
    data = gzip.compress(fasta_text(good_records(400)).encode())
    run, path = dna_case(tmp, data[: len(data) // 2], "seqs.fa.gz")
    return run, [str(path), "truncated gzip file"]


@case("dna")
def not_gzip_data_in_gz_file(tmp):
    run, path = dna_case(tmp, fasta_text(good_records()), "seqs.fa.gz")
    return run, [str(path), "not a readable gzip file"]


@case("dna")
def corrupt_gz_body(tmp):
    data = bytearray(gzip.compress(fasta_text(good_records(400)).encode()))
    data[-8] ^= 0xFF  # the CRC in the trailer
    run, path = dna_case(tmp, bytes(data), "seqs.fa.gz")
    return run, [str(path), "corrupt gzip data", "CRC check failed"]


@case("dna")
def single_line_record_over_max_len(tmp):
    text = fasta_text(good_records()) + ">huge label=1\n" + "ACGT" * 2_000_000 + "\n"
    run, path = dna_case(tmp, text, max_len=100)
    return run, [f"{path}:81 record 'huge'", "sequence longer than 1,000 bases: reading stopped", "max_len"]


@case("dna")
def csv_line_over_max_len(tmp):
    rows = ["sequence,label"] + [f"{s},{i % 2}" for i, s in enumerate(seqs())] + ["A" * 3_000_000 + ",1"]
    run, path = dna_case(tmp, "\n".join(rows) + "\n", "seqs.csv", max_len=100)
    return run, [str(path), "line 42 is longer than", "reading stopped there"]


@case("dna")
def header_line_too_long(tmp):
    text = ">r0 label=0 " + "x" * 200_000 + "\nACGT\n" + fasta_text(good_records())
    run, path = dna_case(tmp, text)
    return run, [str(path), "header line 1 is longer than 65,536 characters"]


@case("dna")
def invalid_character(tmp):
    recs = good_records()
    recs[3] = (recs[3][0], recs[3][1][:9] + "7" + recs[3][1][10:])
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [f"{path}:7 record 'r3'", "invalid character '7' at position 10"]


@case("dna")
def non_ascii_base(tmp):
    recs = good_records()
    recs[5] = (recs[5][0], recs[5][1][:19] + "é" + recs[5][1][20:])
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [f"{path}:11 record 'r5'", "invalid character 'é' at position 20"]


@case("dna")
def iupac_code_in_strict_mode(tmp):
    recs = good_records()
    recs[2] = (recs[2][0], "R" + recs[2][1][1:])
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [f"{path}:5 record 'r2'", "IUPAC ambiguity code 'R' at position 1", "strict: false"]


@case("dna")
def empty_sequence(tmp):
    recs = good_records()
    recs[4] = (recs[4][0], "")
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [f"{path}:9 record 'r4'", "empty sequence"]


@case("dna")
def duplicate_id(tmp):
    recs = good_records() + [("r1 label=0", "ACGT")]
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [f"{path}:81 record 'r1'", "duplicate id 'r1'"]


@case("dna")
def missing_labels(tmp):
    recs = good_records() + [("r90", "ACGT"), ("r91", "ACGA")]
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [str(path), "no label for 2 record(s): r90, r91"]


@case("dna")
def single_class(tmp):
    recs = [(f"r{i} label=x", s) for i, s in enumerate(seqs())]
    run, path = dna_case(tmp, fasta_text(recs))
    return run, [str(path), "only one class ('x')"]


@case("dna")
def longer_than_max_len_strict(tmp):
    recs = good_records()
    run, path = dna_case(tmp, fasta_text(recs), max_len=50)
    return run, [f"{path}:1 record 'r0'", "sequence of 60 bases is longer than max_len 50"]


@case("dna")
def sequence_before_first_header(tmp):
    run, path = dna_case(tmp, "ACGT\n" + fasta_text(good_records()))
    return run, [str(path), "sequence data before the first '>' header (line 1)"]


@case("dna")
def header_without_id(tmp):
    run, path = dna_case(tmp, fasta_text(good_records()) + ">\nACGT\n")
    return run, [str(path), "record at line 81 has an empty id"]


@case("dna")
def unknown_suffix(tmp):
    run, path = dna_case(tmp, fasta_text(good_records()), "seqs.dat")
    return run, [str(path), "cannot tell the format from the file name"]


@case("dna")
def csv_without_sequence_column(tmp):
    run, path = dna_case(tmp, "seq,label\nACGT,0\n", "seqs.csv")
    return run, [str(path), "no 'sequence' column"]


@case("dna")
def sidecar_id_with_two_labels(tmp):
    labels = tmp / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"r{i},{i % 2}\n" for i in range(40)) + "r3,0\n")
    recs = [(f"r{i}", s) for i, s in enumerate(seqs())]
    run, _ = dna_case(tmp, fasta_text(recs), labels=labels)
    return run, [str(labels), "id 'r3' has two labels ('1', '0') (line 42)"]


@case("dna")
def folder_file_not_utf8(tmp):
    root = tmp / "classes"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i, s in enumerate(seqs(10, seed=ord(c))):
            (root / c / f"s{i}.txt").write_text(s)
    (root / "b" / "s3.txt").write_bytes(b"ACGT\xff\xfeACGT")
    return (lambda out: prepare_dna(root, out)), [
        str(root / "b" / "s3.txt"),
        "line 1: not UTF-8 text (byte 0xff at byte offset 4)",
    ]


@case("dna", "repair")
def lenient_mode_counts_repairs(tmp):
    recs = good_records()
    recs[2] = (recs[2][0], "RY" + recs[2][1][2:])
    recs[4] = (recs[4][0], "")
    recs[6] = (recs[6][0], recs[6][1] * 3)
    run, _ = dna_case(tmp, fasta_text(recs), strict=False, max_len=100)

    def check(store):
        rep = store.meta["dna"]["read_report"]
        return (
            rep["ambiguous_to_n_bases"] == 2
            and rep["cropped_ids"] == ["r6"]
            and rep["skipped_count"] == 1
            and store.meta["records"] == 39
        )

    return run, check


# == audio =====================================================================================
def tone(seconds: float = 0.3, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def audio_dir(tmp: Path) -> Path:
    """2 labels x 4 speakers of 0.3 s tones: a valid set to add one bad file to."""
    root = tmp / "clips"
    for label, freq in (("a", 300.0), ("b", 900.0)):
        (root / label).mkdir(parents=True)
        for spk in ("s1", "s2", "s3", "s4"):
            sf.write(root / label / f"{spk}_nohash_0.wav", tone(freq=freq), 16000)
    return root


def audio_run(source: Path, **kw: Any) -> Callable:
    return lambda out: prepare_audio(source, out, val_fraction=0.25, test_fraction=0.25, **kw)


def wav_header(data: bytes, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A PCM WAV written by hand (any header values, however implausible)."""
    block = channels * bits // 8
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
    body = b"WAVE" + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@case("audio")
def one_hz_header(tmp):
    root = audio_dir(tmp)
    bad = root / "a" / "zz_nohash_0.wav"
    bad.write_bytes(wav_header((tone() * 32767).astype("<i2").tobytes(), sample_rate=1))
    return audio_run(root), [str(bad), "header declares a sample rate of 1 Hz", "strict: false"]


@case("audio")
def one_sample_clip(tmp):
    root = audio_dir(tmp)
    bad = root / "b" / "zz_nohash_0.wav"
    sf.write(bad, np.array([0.5], np.float32), 16000)
    return audio_run(root), [str(bad), "clip too short: 1 sample(s) at 16000 Hz", "400 samples"]


@case("audio", "repair")
def one_sample_clip_lenient_skipped(tmp):
    root = audio_dir(tmp)
    bad = root / "b" / "zz_nohash_0.wav"
    sf.write(bad, np.array([0.5], np.float32), 16000)
    return (
        audio_run(root, strict=False),
        lambda store: (
            [s["path"] for s in store.meta["audio"]["skipped"]] == [str(bad)]
            and "clip too short" in store.meta["audio"]["skipped"][0]["reason"]
            and store.meta["records"] == 8
        ),
    )


@case("audio")
def nan_in_float_wav(tmp):
    root = audio_dir(tmp)
    bad = root / "a" / "zz_nohash_0.wav"
    x = tone()
    x[100] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    return audio_run(root), [str(bad), "audio holds NaN/inf samples"]


@case("audio")
def corrupt_wav(tmp):
    root = audio_dir(tmp)
    bad = root / "a" / "zz_nohash_0.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio at all" * 4)
    return audio_run(root), [str(bad), "no 'data' chunk"]


@case("audio")
def truncated_wav(tmp):
    root = audio_dir(tmp)
    good = (root / "a" / "s1_nohash_0.wav").read_bytes()
    bad = root / "a" / "zz_nohash_0.wav"
    bad.write_bytes(good[: len(good) // 2])
    return audio_run(root), [str(bad), "truncated: the data chunk declares"]


@case("audio")
def zero_length_file(tmp):
    root = audio_dir(tmp)
    bad = root / "b" / "zz_nohash_0.wav"
    bad.write_bytes(b"")
    return audio_run(root), [str(bad), "zero-length file"]


@case("audio")
def all_silent_clip(tmp):
    root = audio_dir(tmp)
    bad = root / "b" / "zz_nohash_0.wav"
    sf.write(bad, np.zeros(8000, np.float32), 16000)
    return audio_run(root), [str(bad), "all-silent clip"]


@case("audio")
def unsupported_format(tmp):
    root = audio_dir(tmp)
    bad = root / "b" / "zz_nohash_0.mp3"
    bad.write_bytes(b"ID3\x03\x00" + b"\x00" * 100)
    return audio_run(root), [str(bad), "unsupported format '.mp3'"]


@case("audio")
def empty_label_folder(tmp):
    root = audio_dir(tmp)
    (root / "c").mkdir()
    return audio_run(root), [str(root / "c"), "empty label folder"]


@case("audio")
def manifest_row_missing_file(tmp):
    root = audio_dir(tmp)
    m = root / "manifest.csv"
    rows = [f"{label}/{spk}_nohash_0.wav,{label},{spk}" for label in "ab" for spk in ("s1", "s2", "s3", "s4")]
    m.write_text("path,label,speaker\n" + "\n".join(rows) + "\nb/ghost.wav,b,s9\n")
    return audio_run(m), [f"{m}:10 (b/ghost.wav)", "file in manifest does not exist"]


@case("audio")
def manifest_not_utf8(tmp):
    root = audio_dir(tmp)
    m = root / "manifest.csv"
    m.write_bytes("path,label\na/s1_nohash_0.wav,caf\xe9\n".encode("latin-1"))
    return audio_run(m), [str(m), "manifest is not UTF-8 text (byte 0xe9)"]


@case("audio")
def manifest_without_label_column(tmp):
    root = audio_dir(tmp)
    m = root / "manifest.csv"
    m.write_text("file,class\na/s1_nohash_0.wav,a\n")
    return audio_run(m), [str(m), "manifest columns are ['class', 'file'], need path,label"]


@case("audio")
def one_class_folder(tmp):
    root = audio_dir(tmp)
    for f in (root / "b").iterdir():
        f.unlink()
    (root / "b").rmdir()
    return audio_run(root), [str(root), "found 1 class(es) ['a']"]


@case("audio")
def missing_folder(tmp):
    return audio_run(tmp / "nowhere"), [str(tmp / "nowhere"), "audio folder not found"]


# == text (behaviour that exists today; the text reader belongs to another change) ================
@case("text")
def text_missing_path(tmp):
    return (lambda out: prepare_text(str(tmp / "nope.txt"), out)), [str(tmp / "nope.txt"), "not found"]


@case("text")
def text_empty_file(tmp):
    (tmp / "empty.txt").write_text("")
    return (lambda out: prepare_text(str(tmp / "empty.txt"), out)), [str(tmp / "empty.txt"), "file is empty"]


@case("text")
def text_binary_file(tmp):
    (tmp / "blob.txt").write_bytes(b"hello" + bytes(range(256)) * 10)
    return (lambda out: prepare_text(str(tmp / "blob.txt"), out)), [str(tmp / "blob.txt"), "binary data"]


@case("text")
def text_not_utf8(tmp):
    (tmp / "latin.txt").write_bytes(("caf\xe9 " * 1000).encode("latin-1"))
    return (lambda out: prepare_text(str(tmp / "latin.txt"), out)), [str(tmp / "latin.txt"), "not UTF-8"]


# == the test ==================================================================================
@pytest.mark.parametrize("build,kind", CASES)
def test_bad_input(build: Callable, kind: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "prep"
    run, expected = build(tmp_path)
    if kind == "error":
        with pytest.raises(SeqpipeError) as err:
            run(out)
        message = str(err.value)
        assert "\n" not in message and "Traceback" not in message
        for fragment in expected:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        assert not out.exists(), "a failed preprocess left a prepared store"
        assert not (out.parent.exists() and any(out.parent.iterdir())), "a failed preprocess left temporary files"
    else:
        store = run(out)
        assert expected(store), json.dumps({k: store.meta.get(k) for k in ("repairs", "skipped")}, default=str)


def test_every_domain_has_both_refusals_and_repairs() -> None:
    """Each data domain's reader is tried with inputs it must refuse and inputs it must repair and keep (a domain
    with refusals only would never show that lenient mode keeps what it can)."""
    kinds: dict[str, set[str]] = {}
    for p in CASES:
        domain, kind = p.id.split("-")[:2]
        kinds.setdefault(domain, set()).add(kind)
    assert set(kinds) >= {"stocks", "dna", "audio", "text"}
    assert all(k <= {"error", "repair"} for k in kinds.values()), kinds
    assert all(kinds[d] == {"error", "repair"} for d in ("stocks", "dna", "audio")), kinds


# == things that must read, not fail ===========================================================
def test_day_first_dates_read_with_date_format(tmp_path: Path) -> None:
    df = ohlcv()
    iso = read_csv(_write(tmp_path / "iso.csv", df))[0]
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime("%d/%m/%Y")
    [s] = read_csv(_write(tmp_path / "dmy.csv", df), Rules(date_format="%d/%m/%Y"))
    assert np.array_equal(s.dates, iso.dates) and not s.repairs and s.date_format == "%d/%m/%Y"


@pytest.mark.parametrize("fmt", ["%m/%d/%Y", "%d-%b-%Y", "%Y%m%d", "%b %d, %Y", "%Y-%m-%d 00:00:00"])
def test_unambiguous_formats_are_detected(tmp_path: Path, fmt: str) -> None:
    df = ohlcv()
    iso = read_csv(_write(tmp_path / "iso.csv", df))[0]
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime(fmt)
    [s] = read_csv(_write(tmp_path / "x.csv", df))
    assert np.array_equal(s.dates, iso.dates) and not s.repairs


def test_stock_date_format_reaches_the_store_and_predict_rules(tmp_path: Path) -> None:
    df = ohlcv()
    df["Date"] = pd.to_datetime(df["Date"]).dt.strftime("%d.%m.%Y")
    (tmp_path / "raw").mkdir()
    _write(tmp_path / "raw" / "AAA.csv", df)
    dm = StockDataModule(
        source=str(tmp_path / "raw"),
        prepared_dir=str(tmp_path / "prep"),
        date_format="%d.%m.%Y",
        batch_size=8,
        **STOCK_ARGS,
    )
    dm.prepare_data()
    dm.setup()
    assert dm.data_info()["rules"]["date_format"] == "%d.%m.%Y"
    assert dm.store.meta["date_formats"] == {"AAA": "%d.%m.%Y"}


def _write(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def test_utf8_labels_and_ids_stay_distinct(tmp_path: Path) -> None:
    labels = ["café", "naïve", "日本"]
    recs = [(f"séq{i} label={labels[i % 3]}", s) for i, s in enumerate(seqs(60))]
    fa = tmp_path / "u.fa.gz"
    fa.write_bytes(gzip.compress(fasta_text(recs).encode("utf-8")))
    store = prepare_dna(fa, tmp_path / "prep")
    assert sorted(store.meta["dna"]["classes"]) == sorted(labels)
    assert "séq0" in store.index["id"].tolist()
    # the same label typed decomposed (e + combining accent) is the same class
    decomposed = "cafe\u0301"
    res = read_dna(_text_file(tmp_path / "d.fa", f">a label={decomposed}\nACGT\n>b label=café\nACGA\n"))
    assert res.labels == ["café", "café"]


def _text_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_fields_of_any_length(tmp_path: Path) -> None:
    long = seqs(1, 300_000)[0]  # over the csv module's default field limit of 131,072
    rows = "sequence,label,id\n" + f"{long},1,big\n" + "".join(f"{s},{i % 2},r{i}\n" for i, s in enumerate(seqs()))
    res = read_dna(_text_file(tmp_path / "t.csv", rows))
    assert len(res.codes[0]) == 300_000 and res.ids[0] == "big"


def test_gzip_bomb_stops_early_in_bounded_memory(tmp_path: Path) -> None:
    """~0.3 MB of gzip expanding to 256 MiB of one line: an error after max_len x 10 bases, memory stays small."""
    path = tmp_path / "bomb.fa.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"A" * (1 << 20)
    with open(path, "wb") as f:
        f.write(comp.compress(b">bomb label=1\n"))
        for _ in range(256):
            f.write(comp.compress(block))
        f.write(comp.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(SeqpipeError, match=r"bomb.fa.gz:1 record 'bomb': sequence longer than 10,000 bases"):
            read_dna(path, DnaRules(max_len=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_truncated_gz_in_lenient_mode_is_still_an_error(tmp_path: Path) -> None:
    data = gzip.compress(fasta_text(good_records(400)).encode())
    (tmp_path / "t.fa.gz").write_bytes(data[:-20])
    with pytest.raises(SeqpipeError, match="t.fa.gz: truncated gzip file"):
        read_dna(tmp_path / "t.fa.gz", DnaRules(strict=False))


@pytest.mark.parametrize(
    "subtype,tol",
    [("PCM_U8", 1e-2), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-6), ("FLOAT", 1e-7), ("DOUBLE", 1e-7)],
)
def test_wav_sample_formats_decode_to_the_same_wave(tmp_path: Path, subtype: str, tol: float) -> None:
    x = tone(0.2)
    sf.write(tmp_path / "x.wav", x, 16000, subtype=subtype)
    assert sf.info(str(tmp_path / "x.wav")).subtype == subtype
    y = load_audio(tmp_path / "x.wav", 16000)
    assert y.dtype == np.float32 and len(y) == len(x) and np.abs(y - x).max() < tol


def test_only_the_kept_part_is_decoded(tmp_path: Path, monkeypatch) -> None:
    import soundfile

    x = np.concatenate([tone(5.0, freq=300), tone(1.0, freq=900), tone(5.0, freq=300)])
    sf.write(tmp_path / "long.wav", x, 16000)
    calls = []
    real = soundfile.read
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: calls.append(k.get("frames")) or real(*a, **k))
    y = load_audio(tmp_path / "long.wav", 16000, max_seconds=1.0)
    full = load_audio(tmp_path / "long.wav", 16000)
    assert calls == [16000, 176000] and np.array_equal(y, full[80000:96000])  # the centre, bit for bit
    noise = (0.3 * np.random.default_rng(0).standard_normal(int(7.3 * 22050))).astype(np.float32)
    sf.write(tmp_path / "long22k.wav", noise, 22050, subtype="FLOAT")
    calls.clear()
    z = load_audio(tmp_path / "long22k.wav", 16000, max_seconds=1.0)
    assert calls[0] < 1.2 * 22050  # 1 s + 0.1 s of resampler context, not 7.3 s
    whole = load_audio(tmp_path / "long22k.wav", 16000)
    start = (len(whole) - 16000) // 2
    assert (
        len(z) == 16000 and np.abs(z - whole[start : start + 16000]).max() < 1e-5
    )  # as decoding it all, then cropping


# == corrupt stores and settings =================================================================
@pytest.fixture
def dna_store(tmp_path: Path) -> Path:
    fa = tmp_path / "s.fa"
    fa.write_text(fasta_text(good_records()))
    prepare_dna(fa, tmp_path / "prep")
    return tmp_path / "prep"


@pytest.mark.parametrize(
    "damage,fragment",
    [
        ("meta_garbage", "meta.json does not read as JSON"),
        ("meta_not_object", "meta.json is not a JSON object"),
        ("index_missing", "index.npz is missing"),
        ("index_truncated", "index.npz does not read"),
        ("bin_truncated", "bases.bin holds"),
        ("bin_missing", "bases.bin is missing"),
    ],
)
def test_corrupt_store_is_a_one_line_error(dna_store: Path, damage: str, fragment: str) -> None:
    if damage == "meta_garbage":
        (dna_store / "meta.json").write_text('{"schema_version": 1, "arr')
    elif damage == "meta_not_object":
        (dna_store / "meta.json").write_text("[1, 2]")
    elif damage == "index_missing":
        (dna_store / "index.npz").unlink()
    elif damage == "index_truncated":
        data = (dna_store / "index.npz").read_bytes()
        (dna_store / "index.npz").write_bytes(data[: len(data) // 2])
    elif damage == "bin_truncated":
        data = (dna_store / "bases.bin").read_bytes()
        (dna_store / "bases.bin").write_bytes(data[:-7])
    elif damage == "bin_missing":
        (dna_store / "bases.bin").unlink()
    with pytest.raises(SeqpipeError) as err:
        PreparedStore.open(dna_store)
    message = str(err.value)
    assert fragment in message and str(dna_store) in message and "\n" not in message and "preprocess" in message


def test_recorded_settings_match_each_datamodule(tmp_path: Path) -> None:
    """What preprocess records is exactly what the datamodule would ask for: no false refusals."""
    fa = tmp_path / "s.fa"
    fa.write_text(fasta_text(good_records()))
    dna = DNADataModule(source=str(fa), labels=None, prepared_dir=str(tmp_path / "dna"), max_len=500)
    dna.prepare_data()
    check_settings(PreparedStore.open(tmp_path / "dna").meta, dna.preprocessing_settings(), tmp_path / "dna")
    root = audio_dir(tmp_path)
    audio = AudioDataModule(
        source=str(root), prepared_dir=str(tmp_path / "audio"), val_fraction=0.25, test_fraction=0.25, max_seconds=1.0
    )
    audio.prepare_data()
    check_settings(PreparedStore.open(tmp_path / "audio").meta, audio.preprocessing_settings(), tmp_path / "audio")
    (tmp_path / "raw").mkdir()
    _write(tmp_path / "raw" / "AAA.csv", ohlcv())
    stocks = StockDataModule(source=str(tmp_path / "raw"), prepared_dir=str(tmp_path / "stocks"), **STOCK_ARGS)
    stocks.prepare_data()
    stocks.setup()  # the datamodule checks its own store
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 200)
    text = TextDataModule(source=str(corpus), prepared_dir=str(tmp_path / "text"), seq_len=16)
    text.prepare_data()
    text.setup()
    blank = FillBlankDataModule(source=str(corpus), prepared_dir=str(tmp_path / "text"), seq_len=40, margin=5)
    blank.setup()  # fill-in-the-blank reads the same character store


def test_store_built_with_other_settings_is_refused_naming_the_keys(tmp_path: Path) -> None:
    fa = tmp_path / "s.fa"
    fa.write_text(fasta_text(good_records()))
    DNADataModule(source=str(fa), labels=None, prepared_dir=str(tmp_path / "dna")).prepare_data()
    other = DNADataModule(source=str(fa), labels=None, prepared_dir=str(tmp_path / "dna"), max_len=500, seed=3)
    with pytest.raises(SeqpipeError) as err:
        check_settings(PreparedStore.open(tmp_path / "dna").meta, other.preprocessing_settings(), tmp_path / "dna")
    message = str(err.value)
    assert "prepared with max_len=None, this config asks for 500" in message and "differing: max_len, seed" in message
    assert str(tmp_path / "dna") in message and "\n" not in message
    (tmp_path / "raw").mkdir()
    _write(tmp_path / "raw" / "AAA.csv", ohlcv())
    StockDataModule(source=str(tmp_path / "raw"), prepared_dir=str(tmp_path / "stocks"), **STOCK_ARGS).prepare_data()
    dm = StockDataModule(source=str(tmp_path / "raw"), prepared_dir=str(tmp_path / "stocks"), gaps="keep", **STOCK_ARGS)
    with pytest.raises(
        SeqpipeError, match=r"prepared with gaps='error', this config asks for 'keep' \(differing: gaps\)"
    ):
        dm.setup()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 200)
    TextDataModule(source=str(corpus), prepared_dir=str(tmp_path / "text"), seq_len=16).prepare_data()
    cased = TextDataModule(source=str(corpus), prepared_dir=str(tmp_path / "text"), seq_len=16, lowercase=False)
    with pytest.raises(SeqpipeError, match=r"prepared with lowercase=True, this config asks for False"):
        cased.setup()
    blank = FillBlankDataModule(
        source=str(corpus), prepared_dir=str(tmp_path / "text"), seq_len=40, margin=5, test_fraction=0.1
    )
    with pytest.raises(SeqpipeError, match=r"\(differing: test_fraction\)"):
        blank.setup()

"""benchmarks/harness.py's arithmetic and reporting, and benchmarks/run.py's one results file, on known inputs."""

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # benchmarks/ is scripts, not a package
    return importlib.import_module("harness")


def test_samples_median_spread_and_format(harness):
    s = harness.Samples([0.003, 0.001, 0.002, 0.010])
    assert s.median == pytest.approx(0.0025)
    assert s.spread == (0.001, 0.010)
    assert s.fmt("ms", 1000, 1) == "2.5 ms (1.0-10.0, 4 rounds)"
    assert harness.Samples([1.5]).fmt() == "1.50 s (1 round)"


def test_alternate_reverses_the_order_every_other_round_and_pairs_the_rounds(harness):
    calls, values = [], {"a": iter([4.0, 6.0, 5.0]), "b": iter([2.0, 2.0, 4.0])}

    def variant(name):
        def once():
            calls.append(name)
            return next(values[name])

        return once

    got = harness.alternate({"a": variant("a"), "b": variant("b")}, rounds=3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert got["a"].values == [4.0, 6.0, 5.0] and got["b"].values == [2.0, 2.0, 4.0]
    assert harness.ratio(got["a"], got["b"]) == pytest.approx(5.0 / 2.0)
    assert harness.round_ratios(got["a"], got["b"]) == [1.25, 2.0, 3.0]


def test_repeat_times_a_call_unless_it_reports_its_own_measure(harness):
    assert harness.repeat(lambda: 7.0, 3).values == [7.0, 7.0, 7.0]
    timed = harness.repeat(lambda: None, 2)
    assert len(timed.values) == 2 and all(0 <= v < 1 for v in timed.values)


def test_run_child_returns_the_last_json_line_and_a_peak_rss(harness):
    code = "x = bytearray(64 << 20)\nimport json\nprint('noise')\nprint(json.dumps({'peak': mb('VmHWM')}))\n"
    assert harness.run_child(code)["peak"] >= 64
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        harness.run_child("1 / 0")


def test_report_is_one_table_with_skips_the_command_and_the_machine(harness):
    results = [
        harness.Result("text", rows=[("ratio a|b", "1.02")], about="what it measures"),
        harness.Result("gpu", skipped="no CUDA device"),
    ]
    text = harness.report(results, "make bench", {"CPU": "test cpu", "date (UTC)": "2026-01-01"}, "noisy machine")
    assert "Reproduce: `make bench`" in text and "- CPU: test cpu" in text and "noisy machine" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == [
        "| benchmark | measure | value |",
        "|---|---|---|",
        "| text | ratio a\\|b | 1.02 |",
        "| gpu | skipped | no CUDA device |",
    ]
    header = harness.machine()
    assert {"CPU", "Python / torch / numpy", "date (UTC)", "load average (1, 5, 15 min)"} <= set(header)


def test_run_writes_every_benchmark_into_one_file_and_a_failure_as_a_row(harness, tmp_path, monkeypatch):
    run = importlib.import_module("run")

    def boom(quick):
        raise ValueError("boom\nthe last line")

    seen = []
    monkeypatch.setattr(
        run,
        "BENCHMARKS",
        {"ok": lambda quick: seen.append(quick) or harness.Result("ok", rows=[("x", "1")]), "bad": boom},
    )
    monkeypatch.setattr(run, "machine", lambda: {"CPU": "test"})
    out = tmp_path / "results.md"
    assert run.main(["--out", str(out)]) == 1
    text = out.read_text()
    assert seen == [True]  # quick sizes unless --full
    assert "| ok | x | 1 |" in text and "| bad | skipped | failed: ValueError: the last line |" in text
    assert run.main(["ok", "--out", str(out)]) == 0 and "bad" not in out.read_text()
    assert "Reproduce: `python benchmarks/run.py ok --out" in out.read_text()
    with pytest.raises(SystemExit):
        run.main(["nonesuch"])

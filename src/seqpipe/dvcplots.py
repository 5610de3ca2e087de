"""`make plots`: every DVC plot of dvc.yaml as one HTML page that opens with no network.

`dvc plots show` writes a page whose <script> tags load vega, vega-lite and vega-embed from a CDN, so
offline it is blank. Here the page template carries the three libraries inline (the bundle that the
pinned ``vl-convert-python`` ships) and DVC fills in the plot divs: dvc_plots/index.html, one file.

The stock forecasts put dates on x, which DVC's stock templates type quantitative (an empty plot):
their plot definitions name the ``temporal`` template, .dvc/plots/temporal.json, written here when a
project lacks it (DVC looks templates up in .dvc/plots/ by name).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError
from seqpipe.io import write_text

log = logging.getLogger(__name__)

VEGA_LITE = "5.21"  # DVC's templates declare vega-lite v5
TEMPLATES_DIR = Path(".dvc/plots")


def _anchor(name: str) -> str:
    return f"<DVC_METRIC_{name.upper()}>"


# DVC's "simple" line template with a temporal x: dates parsed, not read as numbers
TEMPORAL_TEMPLATE: dict[str, Any] = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": _anchor("data")},
    "title": {"text": _anchor("title"), "anchor": "middle"},
    "params": [_anchor("zoom_and_pan")],
    "width": _anchor("plot_width"),
    "height": _anchor("plot_height"),
    "mark": {"type": "line", "tooltip": {"content": "data"}},
    "encoding": {
        "x": {"field": _anchor("x"), "type": "temporal", "title": _anchor("x_label")},
        "y": {"field": _anchor("y"), "type": "quantitative", "title": _anchor("y_label"), "scale": {"zero": False}},
        "color": _anchor("color"),
        "strokeDash": _anchor("stroke_dash"),
        "tooltip": _anchor("tooltip"),
    },
}
TEMPLATES = {"temporal": TEMPORAL_TEMPLATE}

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>seqpipe: DVC plots</title>
    <script type="text/javascript">
%s
    </script>
    <style>
        body { font-family: sans-serif; }
        div[id] { margin: 1em 0; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def template_text(name: str) -> str:
    """The JSON of one of seqpipe's DVC plot templates, as .dvc/plots/<name>.json holds it."""
    return json.dumps(TEMPLATES[name], indent=4) + "\n"


def ensure_templates(root: Path = Path(".")) -> list[Path]:
    """Write seqpipe's DVC plot templates into <root>/.dvc/plots/ where missing (an edited one stays)."""
    written = []
    for name in TEMPLATES:
        path = root / TEMPLATES_DIR / f"{name}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, template_text(name))
            written.append(path)
    return written


def offline_page() -> str:
    """The HTML template for `dvc plots show --html-template`: vega, vega-lite and vega-embed inline."""
    try:
        import vl_convert
    except ImportError as e:
        raise SeqpipeError(
            "vl-convert-python is not installed (it ships the vega JavaScript the offline page inlines)",
            where="make plots",
            fix="pip install 'seqpipe[pipeline]' (or: pip install -r requirements.lock)",
        ) from e
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)  # sets window.vegaEmbed, vega, vegaLite
    if "</script" in bundle.lower() or any(f"{{{p}}}" in bundle for p in ("plot_divs", "scripts", "refresh_tag")):
        raise SeqpipeError("the vega bundle cannot be inlined as is", where="vl_convert.javascript_bundle")
    return PAGE % bundle


def show(out: Path = Path("dvc_plots"), targets: list[str] | None = None) -> Path:
    """Run `dvc plots show` with the offline page: <out>/index.html; returns its path."""
    ensure_templates()
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "offline.html"
        page.write_text(offline_page(), encoding="utf-8")
        cmd = [dvc, "plots", "show", "--html-template", str(page), "-o", str(out), *(targets or [])]
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SeqpipeError(
            f"dvc plots show failed: {(done.stderr or done.stdout).strip()[-800:]}",
            where=" ".join(cmd[:3]),
            fix="run it in the project root (where dvc.yaml is) after the stages that write the plots",
        )
    for line in (done.stderr or "").splitlines():
        if line.strip():
            log.warning("%s", line)
    if "failed to load" in (done.stderr or ""):
        log.warning("a plot whose CSV is missing is left out: run the stage that writes it (dvc repro <stage>)")
    index = out / "index.html"
    log.info("wrote %s (opens with no network)", index)
    return index


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = argv if argv is not None else sys.argv[1:]
    try:
        print(show(targets=args))
    except SeqpipeError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`seqpipe` command line: preprocess, fit, baselines, evaluate, generate, predict, verify, summary, dvc-yaml, repro.

Every stage takes an experiment YAML (pipelines/<domain>/<experiment>.yaml), an optional
``--profile`` (e.g. ``fast`` for CI) and ``--set key=value`` overrides, which is how dvc.yaml
passes params.yaml values in. Errors a user can fix print as one line and exit with status 2.

Progress and warnings are log records of the ``seqpipe`` logger; the command shows them on stderr as
``[seqpipe] message`` (``[seqpipe] warning: message`` from WARNING up). What a command produces (the summary
table, generated text, predictions, ``--print-config``) goes to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from seqpipe.errors import exit_code


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so a redirected or captured stderr gets the records)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _PlainFormatter(logging.Formatter):
    """``[seqpipe] message``, with ``warning: `` / ``error: `` in front from WARNING up: the lines seqpipe printed
    before it logged."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"[seqpipe] {level}{record.getMessage()}"


def configure_logging(level: int = logging.INFO) -> None:
    """Show the ``seqpipe`` logger's records on stderr (the command line does this; the library never does)."""
    root = logging.getLogger("seqpipe")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
        root.addHandler(handler)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="experiment YAML, e.g. pipelines/text/lstm.yaml")
    p.add_argument("--profile", default="default", help="a profile from the config's `profiles` (e.g. fast)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.init_args.hidden_size=512 (repeatable; wins over --profile)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved, checked config and exit")


def build_parser() -> argparse.ArgumentParser:
    from seqpipe import __version__

    parser = argparse.ArgumentParser(prog="seqpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"seqpipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("preprocess", help="raw source -> prepared store (data/prepared/<name>)")
    _config_args(p)
    p = sub.add_parser("fit", help="train an experiment, log to MLflow, write models/<name>/")
    _config_args(p)
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="PATH",
        help="continue training: alone, the interrupted run of this experiment; or from checkpoint PATH",
    )
    p = sub.add_parser("baselines", help="fit the domain's baselines on train, score them on test")
    _config_args(p)
    p = sub.add_parser("evaluate", help="test metrics of model and baselines -> reports/<name>/, metrics/<name>.json")
    _config_args(p)
    p = sub.add_parser("summary", help="markdown table over reports/*/evaluation.json -> metrics/summary.md")
    p.add_argument("--metrics-dir", default="metrics", help="where summary.md is written")
    p.add_argument("files", nargs="*", help="only these evaluation files (default: every reports/*/evaluation.json)")

    p = sub.add_parser("compare", help="experiments x primary metric, best baseline, margin (metrics/ or MLflow)")
    p.add_argument("--metrics-dir", default="metrics")
    p.add_argument("--mlflow", action="store_true", help="read the MLflow store instead of metrics/")

    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from pipelines/ (--check: fail if it differs)")
    p.add_argument("--check", action="store_true")

    p = sub.add_parser("repro", help="dvc repro with --jobs stages at a time (independent branches side by side)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="stages at a time (default: one a CPU core)")
    p.add_argument("targets", nargs="*", help="only these stages and what they read (default: the whole pipeline)")

    p = sub.add_parser("demo", help="every domain end to end on the fast profile, in a scratch project (minutes)")
    p.add_argument("--dir", default="demo", help="the scratch project's folder (replaced if it is an earlier demo)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="stages at a time (default: one a CPU core)")

    p = sub.add_parser("generate", help="sample text from a next-token checkpoint")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--prompt", default="\n")
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-unk", action="store_true", help="map prompt characters outside the vocabulary to <unk>")

    p = sub.add_parser("predict", help="predict from a checkpoint: audio files -> labels, CSV -> forecasts, ...")
    p.add_argument("--ckpt", required=True)
    p.add_argument("inputs", nargs="+", help="input files (WAV/FLAC/OGG, CSV, FASTA, ...)")

    p = sub.add_parser("verify", help="check stores and checkpoints against their recorded SHA-256 (exit 1: changed)")
    p.add_argument("paths", nargs="+", help="prepared stores, model folders, .ckpt files, or folders of them")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    return exit_code(lambda _: run(args))


def run(args: argparse.Namespace) -> int:
    from seqpipe import stages
    from seqpipe.config import load_config

    if args.command == "dvc-yaml":
        from seqpipe import dvcgen

        return dvcgen.main(check=args.check)
    if args.command == "repro":
        from seqpipe.repro import repro

        return repro(jobs=args.jobs, targets=args.targets)
    if args.command == "demo":
        from seqpipe.demo import demo

        return demo(Path(args.dir), jobs=args.jobs)
    if args.command == "compare":
        from seqpipe import compare

        if args.mlflow:
            from seqpipe.tracking import tracking_uri

            rows = compare.from_mlflow(tracking_uri())
        else:
            rows = compare.from_metrics(Path(args.metrics_dir))
        print(compare.table(rows), end="")
        return 0
    if args.command == "summary":
        files = [Path(f) for f in args.files] or None
        print(stages.summary(Path(args.metrics_dir), files=files), end="")
        return 0
    if args.command == "generate":
        from seqpipe.predict import generate

        print(
            generate(
                args.ckpt,
                args.prompt,
                length=args.length,
                temperature=args.temperature,
                top_k=args.top_k,
                seed=args.seed,
                allow_unk=args.allow_unk,
            )
        )
        return 0
    if args.command == "predict":
        import json

        from seqpipe.predict import predict

        for r in predict(args.ckpt, args.inputs):
            print(json.dumps(r, allow_nan=False))  # predict refuses NaN/inf naming the input: never printed
        return 0
    if args.command == "verify":
        from seqpipe.verify import verify

        return verify(args.paths)
    cfg = load_config(args.config, args.overrides, args.profile, data_only=args.command == "preprocess")
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    {"preprocess": stages.preprocess, "baselines": stages.baselines, "evaluate": stages.evaluate}.get(
        args.command, lambda c: stages.fit(c, resume=args.resume)
    )(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())

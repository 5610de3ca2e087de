"""The built-in domains, one package each; every package defines ``DOMAIN`` (seqpipe.domain.Domain).

Each folder holds what is that domain's alone: reading or generating its raw data (``source``), building
its store (``prepare``), its datamodule, its baselines and its task (evaluate, predict). A domain imports
the core and the domains its ``DOMAIN.builds_on`` names, never the pipeline (stages, tracking, CLI).
"""

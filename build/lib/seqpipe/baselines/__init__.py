"""Baselines reported beside every model, on the same split."""

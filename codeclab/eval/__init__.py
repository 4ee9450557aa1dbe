"""Evaluation: metrics, reconstruction and token-LM benchmarks, probes, speed, reports."""

"""Evaluation: metrics, test-set comparison, report and plots."""

"""Evaluation as the paper measures it.

Metrics, the evaluation run, the classical baseline and the figures the Model performance
page shows.
"""

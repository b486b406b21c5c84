"""Evaluation as the paper measures it: metrics, the evaluation run, the classical baseline
and the figures the Model performance page shows."""

"""Evaluation: batched generation, parsing through the task objects, metrics, and reports."""

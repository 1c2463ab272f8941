"""Dataset-composition sweeps: variants of a base mixture, their statistics, results tables, plots and fits.

``stats`` (paired bootstrap over resampling units, multiple-testing corrections), ``collect`` (per-example
predictions of every cell -> results table, CSV, Parquet, plots), ``plots`` (heatmaps, scaling curves,
interaction matrix) and ``fit`` (regression from mixture weights to score, constrained proposal, Olmix CSVs).
"""

"""``biotune data build CONFIG [key=value ...]`` and ``biotune data stats DIR``.

Example::

    biotune data build configs/data/medtuned.yaml data.tokenizer=/models/llama2-7b-chat
    biotune data stats runs/data/3f2a9c0d1e2b4a5f
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``data`` command group."""
    data = subparsers.add_parser("data", help="build and inspect instruction datasets")
    sub = data.add_subparsers(dest="data_command", required=True)
    build = sub.add_parser("build", help="sources -> samples -> mixture -> tokenized, packed shards (cached)")
    build.add_argument("config", help="YAML config (e.g. configs/data/medtuned.yaml)")
    build.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache has this build")
    build.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    build.set_defaults(func=_build)
    stats = sub.add_parser("stats", help="composition table and length histogram of a built dataset")
    stats.add_argument("dir", help="a built dataset directory")
    stats.set_defaults(func=_stats)


def _build(args: argparse.Namespace) -> int:
    from biotune import config
    from biotune.data.build import build_dataset, read_manifest

    cfg = config.load(args.config, args.overrides)
    if args.dry_run:
        print(config.to_yaml(cfg))
        return 0
    out = build_dataset(cfg, force=args.force)
    print(format_stats(read_manifest(out)))
    print(out)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from biotune.data.build import read_manifest

    print(format_stats(read_manifest(Path(args.dir))))
    return 0


def format_stats(m: dict[str, Any]) -> str:
    """The composition table (requested vs realised per source and task) and the token-length histogram."""
    lines = [f"dataset {m['cache_key']}  template={m['template']}  ner_format={m['ner_format']}  "
             f"max_seq_len={m['max_seq_len']}  tokenizer={m['tokenizer']}", ""]
    head = f"{'source':<24} {'task':<12} {'avail':>8} {'request':>8} {'realised':>8} {'kept':>8} {'mean tok':>8}  licence"
    lines += [head, "-" * len(head)]
    for name, s in sorted(m["sources"].items()):
        flag = " (restricted)" if s["restricted"] else ""
        mean = s["tokens"].get("mean", 0)
        lines.append(f"{name:<24} {s['group']:<12} {s['available']:>8} {s['requested']:>8} {s['realised']:>8} "
                     f"{s['kept_after_tokenize']:>8} {mean:>8}  {s['licence']}{flag}")
    lines += ["", f"{'task group':<24} {'requested':>10} {'realised':>10}"]
    lines += [f"{g:<24} {t['requested']:>10} {t['realised']:>10}" for g, t in sorted(m["tasks"].items())]
    t, p, tr = m["totals"], m["packing"], m["truncation"]
    lines += ["", f"samples kept {t['samples_kept']} of {t['samples_mixed']} (dropped {tr['dropped']}, truncated "
              f"{tr['truncated']}, policy {tr['policy']}); tokens {t['tokens']} ({t['loss_tokens']} with loss)",
              f"packed rows {p['rows']}  efficiency {p['efficiency']:.4f}  sequences/row {p['mean_seqs_per_row']}"]
    leak = m.get("leakage")
    if leak:
        lines.append(f"leakage: {leak['total_exact']} exact / {leak['total_normalised']} normalised overlaps with eval splits")
    hist = m["length_stats"].get("histogram", {})
    if hist:
        top = max(hist.values()) or 1
        lines += ["", "token lengths per sample:"]
        lines += [f"  {rng:>11} {n:>8} {'#' * round(40 * n / top)}" for rng, n in hist.items() if n or rng.startswith("0")]
    return "\n".join(lines)

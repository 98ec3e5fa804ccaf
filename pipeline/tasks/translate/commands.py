"""The translator's use commands: `translate` (a file, line by line) and `evaluate` (sacreBLEU).

Thin argparse wiring; the work is in `inference.py`. Registered on the main CLI through the
task registry (`pipeline/use_commands.py`).
"""
from __future__ import annotations

import argparse
import json
import sys

from components.inference.textfiles import progress


def _load(args, task: str):
    from components.inference.model_source import load_export

    return load_export(args.model, args.tracking_uri, args.cache_dir).require(task, args.command)


def _metrics_arg(text: str) -> list[str]:
    from components.inference.errors import InferenceError
    from components.inference.metrics import parse_metrics

    try:
        return parse_metrics(text)
    except InferenceError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_parsers(sub, common) -> None:
    """Register `translate` and `evaluate`; `common(parser)` adds MODEL and the registry options."""
    tr = sub.add_parser("translate", help="translate a file (or stdin) line by line with an exported translator",
                        description="One translation per input line, in order; blank lines stay blank.")
    common(tr)
    tr.add_argument("--input", default=None, metavar="FILE", help="UTF-8 source lines (default: stdin)")
    tr.add_argument("--output", default=None, metavar="FILE",
                    help="where to write the translations (default: stdout); written atomically")
    tr.add_argument("--beam", type=int, default=None, metavar="N",
                    help="1 = greedy; default and the only other choice: the beam width the model was exported with")
    tr.add_argument("--batch-size", type=int, default=32, metavar="N", help="lines per model call (default 32)")

    ev = sub.add_parser("evaluate", help="translate --src and score it against --ref file(s) with sacreBLEU",
                        description="Corpus BLEU / chrF / TER with sacreBLEU signatures; several --ref files "
                                    "are references for the same lines (multi-reference).")
    common(ev)
    ev.add_argument("--src", required=True, metavar="FILE", help="UTF-8 source lines")
    ev.add_argument("--ref", dest="refs", action="append", required=True, metavar="FILE",
                    help="UTF-8 reference lines, aligned with --src (repeat for more references)")
    ev.add_argument("--metrics", type=_metrics_arg, default=["bleu"], metavar="LIST",
                    help="comma-separated: bleu, chrf, ter (default: bleu)")
    ev.add_argument("--tokenize", default=None,
                    help="sacreBLEU tokenizer for BLEU (default: the evaluate.bleu_tokenize the model was exported "
                         "with, recorded in its assets.extra/pipeline.json; 13a for exports without it)")
    ev.add_argument("--beam", type=int, default=None, metavar="N", help="as for translate")
    ev.add_argument("--batch-size", type=int, default=32, metavar="N", help="lines per model call (default 32)")
    ev.add_argument("--output", default=None, metavar="FILE", help="also write the translations here (atomically)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def cmd_translate(args) -> int:
    from components.inference.textfiles import atomic_text_output, iter_lines, read_lines
    from pipeline.tasks.translate.inference import pick_translate, translate_lines

    lines = read_lines(args.input) if args.input else None  # a bad file fails before the model loads
    export = _load(args, "translate")
    translate, _ = pick_translate(export, args.beam)
    interactive = lines is None and sys.stdin.isatty()
    source = lines if lines is not None else iter_lines(sys.stdin.buffer, "<stdin>")
    with progress(len(lines) if lines is not None else 0, lines is not None) as bar, \
            atomic_text_output(args.output) as out:
        for hyp in translate_lines(translate, source, args.batch_size, flush_each_line=interactive,
                                   on_batch=bar.update):
            out.write(hyp + "\n")
            if out is sys.stdout and lines is None:
                out.flush()
    return 0


def cmd_evaluate(args) -> int:
    from components.inference.errors import InferenceError
    from components.inference.metrics import score_corpus
    from components.inference.textfiles import atomic_text_output, read_lines
    from pipeline.tasks.translate.inference import pick_translate, translate_lines

    sources = read_lines(args.src)
    if not sources:
        raise InferenceError(f"--src {args.src}: the file is empty")
    references = []
    for ref in args.refs:
        lines = read_lines(ref)
        if len(lines) != len(sources):
            raise InferenceError(f"--ref {ref}: {len(lines)} lines, but --src {args.src} has {len(sources)}; "
                                 "each reference file needs one line per source line")
        references.append(lines)
    export = _load(args, "translate")
    translate, signature = pick_translate(export, args.beam)
    with progress(len(sources), True) as bar:
        hypotheses = list(translate_lines(translate, sources, args.batch_size, on_batch=bar.update))
    tokenize = args.tokenize or export.metadata.get("bleu_tokenize", "13a")
    scores = score_corpus(hypotheses, references, args.metrics, tokenize)
    if args.output:
        with atomic_text_output(args.output) as out:
            out.writelines(h + "\n" for h in hypotheses)
    beam = 1 if signature == "translate_greedy" else export.beam_width
    if args.json:
        print(json.dumps({"model": str(export.path), "signature": signature, "beam": beam, "src": args.src,
                          "refs": args.refs, "lines": len(sources), **scores}, ensure_ascii=False))
    else:
        print(f"{export.path}: {len(sources)} lines, {len(references)} reference(s), {signature} (beam {beam})")
        for name, s in scores.items():
            print(f"{s['text']}  ({s['signature']})")
    return 0


COMMANDS = {"translate": cmd_translate, "evaluate": cmd_evaluate}

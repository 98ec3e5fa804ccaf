"""`translate`, `evaluate`, `score`, `generate`: use an exported model on your files.

Thin argparse wiring; the work is in components/inference/. MODEL is an export folder
(`exports/NAME`: its newest version), a version folder (`exports/NAME/3`) or a registry URI
(`models:/NAME@ALIAS`, `models:/NAME/VERSION`). Bad input -> one `error: ...` line, exit 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

COMMANDS = ("translate", "evaluate", "score", "generate")
_MODEL_HELP = "exports/NAME (newest version), exports/NAME/VERSION, or models:/NAME@ALIAS | models:/NAME/VERSION"


def _metrics_arg(text: str) -> list[str]:
    from components.inference.errors import InferenceError
    from components.inference.metrics import parse_metrics

    try:
        return parse_metrics(text)
    except InferenceError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI for models:/ (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    p.add_argument("--cache-dir", default=None,
                   help="where models:/ downloads are kept (default: work/registry_models, shared with serve)")


def add_parsers(sub) -> None:
    """Register the four commands on the main CLI's subparsers."""
    tr = sub.add_parser("translate", help="translate a file (or stdin) line by line with an exported translator",
                        description="One translation per input line, in order; blank lines stay blank.")
    _common(tr)
    tr.add_argument("--input", default=None, metavar="FILE", help="UTF-8 source lines (default: stdin)")
    tr.add_argument("--output", default=None, metavar="FILE",
                    help="where to write the translations (default: stdout); written atomically")
    tr.add_argument("--beam", type=int, default=None, metavar="N",
                    help="1 = greedy; default and the only other choice: the beam width the model was exported with")
    tr.add_argument("--batch-size", type=int, default=32, metavar="N", help="lines per model call (default 32)")

    ev = sub.add_parser("evaluate", help="translate --src and score it against --ref file(s) with sacreBLEU",
                        description="Corpus BLEU / chrF / TER with sacreBLEU signatures; several --ref files "
                                    "are references for the same lines (multi-reference).")
    _common(ev)
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

    sc = sub.add_parser("score", help="perplexity (and bits per character) of a text file under an exported LM",
                        description="Per-file perplexity over all lines, the evaluate stage's convention "
                                    "(word level: whitespace tokens + <eos> per line; char level: every "
                                    "character + a newline per line).")
    _common(sc)
    sc.add_argument("--input", default=None, metavar="FILE", help="UTF-8 text (default: stdin)")
    sc.add_argument("--chunk-lines", type=int, default=64, metavar="N",
                    help="lines scored as one running text, state reset between chunks (default 64; 0 = whole file)")
    sc.add_argument("--batch-size", type=int, default=8, metavar="N", help="chunks per model call (default 8)")
    sc.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    ge = sub.add_parser("generate", help="continue prompts with an exported LM")
    _common(ge)
    ge.add_argument("--prompt", dest="prompts", action="append", required=True, metavar="TEXT",
                    help="text to continue (repeatable); \\n in TEXT is a line break")
    ge.add_argument("--max-tokens", type=int, default=50, metavar="N", help="tokens to add (default 50)")
    ge.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    ge.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K likeliest (0 = all)")
    ge.add_argument("--seed", type=int, default=None, help="fixed seed: the same output every time")
    ge.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _progress(total: int, enabled: bool):
    """A progress bar on stderr (tqdm, a dependency of tensorflow-datasets); off when not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="line", file=sys.stderr, disable=None if enabled else True, leave=False)


def _load(args, task: str):
    from components.inference.model_source import load_export

    return load_export(args.model, args.tracking_uri, args.cache_dir).require(task, args.command)


def cmd_translate(args) -> int:
    from components.inference.textfiles import atomic_text_output, iter_lines, read_lines
    from components.inference.translate_file import pick_translate, translate_lines

    lines = read_lines(args.input) if args.input else None  # a bad file fails before the model loads
    export = _load(args, "translate")
    translate, _ = pick_translate(export, args.beam)
    interactive = lines is None and sys.stdin.isatty()
    source = lines if lines is not None else iter_lines(sys.stdin.buffer, "<stdin>")
    with _progress(len(lines) if lines is not None else 0, lines is not None) as bar, \
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
    from components.inference.translate_file import pick_translate, translate_lines

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
    with _progress(len(sources), True) as bar:
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


def cmd_score(args) -> int:
    from components.inference.lm_score import score_lines
    from components.inference.textfiles import iter_lines, read_lines

    lines = read_lines(args.input) if args.input else list(iter_lines(sys.stdin.buffer, "<stdin>"))
    export = _load(args, "lm")
    with _progress(len(lines), args.input is not None) as bar:
        result = score_lines(export, lines, args.chunk_lines, args.batch_size, on_batch=bar.update)
    if args.json:
        print(json.dumps({"model": str(export.path), "input": args.input or "<stdin>", **result}))
    else:
        bpc = f" | bpc {result['bpc']:.4f}" if "bpc" in result else ""
        print(f"perplexity {result['perplexity']:.4f}{bpc} | loss {result['loss']:.4f} nats/token | "
              f"{result['tokens']:,} tokens, {result['lines']:,} lines ({result['unit']} level: {result['convention']})")
    return 0


def cmd_generate(args) -> int:
    from components.inference.lm_score import generate

    export = _load(args, "lm")
    prompts = [p.replace("\\n", "\n") for p in args.prompts]
    texts = generate(export, prompts, args.max_tokens, args.temperature, args.top_k, args.seed)
    if args.json:
        print(json.dumps({"model": str(export.path), "settings": {
            "max_tokens": args.max_tokens, "temperature": args.temperature, "top_k": args.top_k, "seed": args.seed},
            "outputs": [{"prompt": p, "text": t} for p, t in zip(prompts, texts)]}, ensure_ascii=False))
    else:
        print("\n----\n".join(texts))
    return 0


def dispatch(args) -> int:
    """Run one of COMMANDS; an InferenceError becomes one `error:` line and exit code 1."""
    from components.inference.errors import InferenceError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hasattr(sys.stdout, "reconfigure"):  # inputs are read as strict UTF-8; outputs are written so too
        sys.stdout.reconfigure(encoding="utf-8")
    run = {"translate": cmd_translate, "evaluate": cmd_evaluate, "score": cmd_score, "generate": cmd_generate}
    try:
        return run[args.command](args)
    except InferenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `... | head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 1

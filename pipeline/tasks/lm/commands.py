"""The language model's use commands: `score` (perplexity of a file) and `generate` (continue prompts).

Thin argparse wiring; the work is in `inference.py`. Registered on the main CLI through the
task registry (`pipeline/use_commands.py`).
"""
from __future__ import annotations

import json
import sys

from components.inference.textfiles import progress


def _load(args, task: str):
    from components.inference.model_source import load_export

    return load_export(args.model, args.tracking_uri, args.cache_dir).require(task, args.command)


def add_parsers(sub, common) -> None:
    """Register `score` and `generate`; `common(parser)` adds MODEL and the registry options."""
    sc = sub.add_parser("score", help="perplexity (and bits per character) of a text file under an exported LM",
                        description="Per-file perplexity over all lines, the evaluate stage's convention "
                                    "(word level: whitespace tokens + <eos> per line; char level: every "
                                    "character + a newline per line).")
    common(sc)
    sc.add_argument("--input", default=None, metavar="FILE", help="UTF-8 text (default: stdin)")
    sc.add_argument("--chunk-lines", type=int, default=64, metavar="N",
                    help="lines scored as one running text, state reset between chunks (default 64; 0 = whole file)")
    sc.add_argument("--batch-size", type=int, default=8, metavar="N", help="chunks per model call (default 8)")
    sc.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    ge = sub.add_parser("generate", help="continue prompts with an exported LM")
    common(ge)
    ge.add_argument("--prompt", dest="prompts", action="append", required=True, metavar="TEXT",
                    help="text to continue (repeatable); \\n in TEXT is a line break")
    ge.add_argument("--max-tokens", type=int, default=50, metavar="N", help="tokens to add (default 50)")
    ge.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    ge.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K likeliest (0 = all)")
    ge.add_argument("--seed", type=int, default=None, help="fixed seed: the same output every time")
    ge.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def cmd_score(args) -> int:
    from components.inference.textfiles import iter_lines, read_lines
    from pipeline.tasks.lm.inference import score_lines

    lines = read_lines(args.input) if args.input else list(iter_lines(sys.stdin.buffer, "<stdin>"))
    export = _load(args, "lm")
    with progress(len(lines), args.input is not None) as bar:
        result = score_lines(export, lines, args.chunk_lines, args.batch_size, on_batch=bar.update)
    if args.json:
        print(json.dumps({"model": str(export.path), "input": args.input or "<stdin>", **result}))
    else:
        bpc = f" | bpc {result['bpc']:.4f}" if "bpc" in result else ""
        print(f"perplexity {result['perplexity']:.4f}{bpc} | loss {result['loss']:.4f} nats/token | "
              f"{result['tokens']:,} tokens, {result['lines']:,} lines "
              f"({result['unit']} level: {result['convention']})")
    return 0


def cmd_generate(args) -> int:
    from pipeline.tasks.lm.inference import generate

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


COMMANDS = {"score": cmd_score, "generate": cmd_generate}

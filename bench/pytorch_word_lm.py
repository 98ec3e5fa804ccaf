"""The classic PyTorch word-level LM training loop, as a yardstick for the pipeline's LM.

    /path/to/torch-python bench/pytorch_word_lm.py --train STREAM.npy --vocab 24033 --steps 100

A restatement of pytorch/examples `word_language_model` (model.py `RNNModel` with an LSTM,
main.py `train()`): embedding -> dropout -> nn.LSTM(layers, dropout) -> dropout -> Linear
decoder; `batchify` into `batch_size` contiguous streams; windows of `bptt`; hidden state
detached between windows (`repackage_hidden`); CrossEntropyLoss; `clip_grad_norm_`; plain SGD
as `p.data.add_(p.grad, alpha=-lr)`. It reads the pipeline's own prepared token stream, so
both train on the same ids. Needs only torch and numpy (not a project dependency: run it with
an interpreter that has torch, e.g. `python -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy`).
Prints one JSON line: tokens/s per epoch (training only, like the pipeline's `tokens_per_sec`).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn


class RNNModel(nn.Module):
    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, tokens, hidden):
        emb = self.drop(self.encoder(tokens))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)), hidden


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="int32 token ids (.npy), e.g. <prepare>/streams/train.npy")
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--embedding", type=int, default=200)
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=100, help="windows per epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    torch.manual_seed(args.seed)

    ids = torch.from_numpy(np.load(args.train).astype("int64"))
    nbatch = ids.size(0) // args.batch
    data = ids[: nbatch * args.batch].view(args.batch, -1).t().contiguous()  # batchify: [time, streams]
    model = RNNModel(args.vocab, args.embedding, args.units, args.layers, args.dropout)
    criterion = nn.CrossEntropyLoss()

    rates, losses = [], []
    for _ in range(args.epochs):
        model.train()
        hidden = tuple(torch.zeros(args.layers, args.batch, args.units) for _ in range(2))
        start, tokens, total = time.perf_counter(), 0, 0.0
        for step, i in enumerate(range(0, data.size(0) - 1, args.bptt)):
            if step == args.steps:
                break
            seq_len = min(args.bptt, data.size(0) - 1 - i)
            x, y = data[i:i + seq_len], data[i + 1:i + 1 + seq_len].reshape(-1)
            hidden = tuple(h.detach() for h in hidden)  # repackage_hidden
            model.zero_grad()
            output, hidden = model(x, hidden)
            loss = criterion(output.view(-1, args.vocab), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            for param in model.parameters():
                param.data.add_(param.grad, alpha=-args.lr)
            tokens += y.numel()
            total += loss.item()
        rates.append(tokens / (time.perf_counter() - start))
        losses.append(total / max(step, 1))
    print(json.dumps({"tokens_per_sec": rates, "train_loss": losses, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()

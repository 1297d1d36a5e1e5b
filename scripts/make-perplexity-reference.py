#!/usr/bin/env python3
"""Reference perplexity of a GGUF model on a text, computed by Hugging Face transformers.

transformers loads the GGUF (dequantising its weights to fp32, as in make-smollm2-reference.py)
and its tokenizer, tokenizes the text once (BOS as the tokenizer's config says), keeps the first
--max-tokens tokens, and cuts them into consecutive non-overlapping windows of --window tokens,
each scored alone: every token after a window's first is predicted from the ones before it in
that window (a last window of one token predicts nothing). Perplexity = exp(mean negative
log-likelihood over every predicted token), log-softmax in float64. These are exactly the
windows of `conveyor eval --window N --max-tokens M`, whose perplexity must agree within 1%.

Needs: pip install torch transformers gguf accelerate (CPU is enough). Not needed for the normal
test run.
Usage: make-perplexity-reference.py GGUF_PATH TEXT OUT_JSON [--window 512] [--max-tokens 2048]
"""
import argparse
import hashlib
import json
import math
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gguf")
    parser.add_argument("text")
    parser.add_argument("out")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=0, help="0: the whole text")
    args = parser.parse_args()
    if args.window < 2:
        parser.error("--window: at least 2")

    directory, name = os.path.split(os.path.abspath(args.gguf))
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    with open(args.text, "rb") as f:
        raw = f.read()
    ids = tokenizer(raw.decode("utf-8"))["input_ids"]
    text_tokens = len(ids)
    if args.max_tokens > 0:
        ids = ids[:args.max_tokens]

    start = time.time()
    nll_sum = 0.0
    scored = 0
    windows = 0
    with torch.no_grad():
        for begin in range(0, len(ids), args.window):
            window = ids[begin:begin + args.window]
            if len(window) < 2:
                break
            x = torch.tensor([window])
            logits = model(x, attention_mask=torch.ones_like(x)).logits[0, :-1].double()
            log_probs = torch.log_softmax(logits, dim=-1)
            targets = torch.tensor(window[1:]).unsqueeze(1)
            nll_sum += -log_probs.gather(1, targets).sum().item()
            scored += len(window) - 1
            windows += 1
            print(f"window {windows}: {scored} tokens, running perplexity "
                  f"{math.exp(nll_sum / scored):.4f}", flush=True)
    mean_nll = nll_sum / scored
    result = {
        "model": name,
        "text": os.path.basename(args.text),
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "window": args.window,
        "max_tokens": args.max_tokens,
        "text_tokens": text_tokens,
        "tokens_scored": scored,
        "windows": windows,
        "mean_nll": mean_nll,
        "perplexity": math.exp(mean_nll),
        "dtype": "float32",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "seconds": round(time.time() - start, 1),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference greedy continuations of SmolLM2-135M-Instruct through the same GGUF file.

Hugging Face transformers loads the GGUF (dequantising its Q4_1/Q8_0 weights to fp32 and
undoing the q/k row permutation of the conversion), applies the model's chat template and
continues each prompt greedily. Conveyor's tokens must match these.

Needs: pip install torch transformers gguf (CPU is enough). Not needed for the normal test run.
Usage: make-smollm2-reference.py GGUF_PATH OUT_JSON
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "Explain what a CPU does in one sentence.",
    "Translate 'good morning' into Spanish.",
    "What is 12 plus 30?",
    "Give me a name for a friendly robot.",
    "Why is the sky blue?",
    "Write a Python function that adds two numbers.",
    "What are the three states of water?",
]
NEW_TOKENS = 48


def main():
    gguf_path, out_path = sys.argv[1], sys.argv[2]
    directory, name = os.path.split(os.path.abspath(gguf_path))
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    cases = []
    for prompt in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            x = torch.tensor([ids])
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=NEW_TOKENS,
                                 do_sample=False, eos_token_id=None, pad_token_id=2)
        new = out[0, len(ids):].tolist()
        cases.append({"prompt": prompt, "chat_text": text, "input_ids": ids,
                      "greedy_new_tokens": new,
                      "text": tokenizer.decode(new, skip_special_tokens=False)})
        print(prompt, "->", repr(cases[-1]["text"][:80]), flush=True)
    with open(out_path, "w") as f:
        json.dump({"model": name, "dtype": "float32", "new_tokens": NEW_TOKENS,
                   "note": "eos ignored: continuations run the full length", "cases": cases},
                  f, indent=1)


if __name__ == "__main__":
    main()

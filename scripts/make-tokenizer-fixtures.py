#!/usr/bin/env python3
"""Regenerates tests/fixtures/tokenizer/: tokenizers and the ids Hugging Face
produces for a fixed corpus, so the C++ tokenizers can be checked id for id.

    /tmp/fixenv/bin/python scripts/make-tokenizer-fixtures.py [--gguf PATH]

Needs tokenizers, transformers, sentencepiece, protobuf and gguf. What it writes:

  corpus.json                  the test texts (invalid UTF-8 kept as hex)
  smollm2.data.json            SmolLM2's vocabulary in TokenizerData form, with
  smollm2.tokens.txt           its tokens (one a line) and merges beside it; taken
  smollm2.merges.txt           from the GGUF, as the real tokenizer.json is too big
  gpt2-bpe/, llama3-bpe/,      small byte-level BPE tokenizers trained here with
  qwen2-bpe/                   each family's exact pre-tokenizer configuration
  gpt2-added/                  gpt2-bpe plus added tokens with lstrip, rstrip,
                               single_word and non-special flags
  spm-llama/, spm-metaspace/   a SentencePiece BPE with byte fallback, converted to
                               tokenizer.json in the legacy (Llama-2) and the
                               Metaspace (newer transformers) style
  spm.data.json                the same vocabulary as GGUF would carry it (tokens,
                               scores, token types)
  <name>.expected.json         reference ids and decodes for every corpus text
  chat_templates.json          chat templates with transformers' renderings

Reference ids come from the tokenizers library for tokenizer.json files and from
the sentencepiece library (split at special tokens, as llama.cpp does) for the
GGUF-style SentencePiece data. Invalid UTF-8 is decoded with errors="replace"
before tokenizing, the behaviour the C++ side defines.
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile

import gguf
import sentencepiece as spm
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)
from transformers import AutoTokenizer, LlamaTokenizer, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
DEFAULT_GGUF = os.path.expanduser("~/.cache/conveyor/models/SmolLM2-135M-Instruct.Q4_1.gguf")

GPT2_REGEX = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------
# The corpus: every test text, each run through every tokenizer.

CORPUS = [
    ("english", "Hello world! The quick brown fox jumps over the lazy dog."),
    ("contractions", "It's John's book; they'LL say we'VE done it, I'm sure you'd agree. "
                     "DON'T, IT'S FINE, we'd've"),
    ("code_python", "def fib(n):\n    if n < 2:\n        return n\n"
                    "    return fib(n - 1) + fib(n - 2)\n"),
    ("code_c", "for (int i = 0; i < 10; ++i) { sum += a[i] * 0x1F; }  // TODO: SIMD\n"),
    ("digits", "1 12 123 1234 12345 123456789 3.14159 -42 1e10 2024-05-01 $1,000,000.00"),
    ("long_number", "31415926535897932384626433832795028841971693993751058209749445923"),
    ("whitespace", "  leading spaces, trailing   \t\ttabs\n\n\nnewlines\r\n  mixed \u00a0nbsp   \n"),
    ("only_spaces", "     "),
    ("empty", ""),
    ("newline", "\n"),
    ("leading_space", " Hello"),
    ("two_leading_spaces", "  two leading"),
    ("emoji", "I \u2764\ufe0f emoji \U0001F600\U0001F389\U0001F44D\U0001F3FD and a family "
              "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 flags "
              "\U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5"),
    ("zwj_and_marks", "\U0001F469\U0001F3FD\u200d\U0001F4BB e\u0301\u0302 a\u0308"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\u4e2d\u6587\u6587\u672c"
            "\uff0c\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8"),
    ("accented", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00dcber stra\u00dfe \u00c5ngstr\u00f6m "
                 "fa\u00e7ade S\u00e3o Paulo \u0141\u00f3d\u017a"),
    ("decomposed", "Cafe\u0301 ni\u0303o A\u030angstro\u0308m \u1112\u1161\u11ab \u2126"),
    ("scripts", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440! "
                "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5! \u0645\u0631\u062d\u0628\u0627 "
                "\u05e9\u05dc\u05d5\u05dd \u0928\u092e\u0938\u094d\u0924\u0947"),
    ("unicode_spaces", "a\u2003b\u3000c\u0085d\u2028e\u00a0\u00a0f \u0085 g"),
    ("unicode_digits", "\u216b \u0661\u0662\u0663 \u0661\u0662\u0663\u0664 \uff15\uff16\uff17 "
                       "x\u00b2\u00b3 \u2460"),
    ("math", "\u2200x \u2208 \u211d: x\u00b2 \u2265 0 \u21d2 \u221ax \u2208 \u211d"),
    ("quotes", "It\u2019s the \u2018quoted\u2019 \u201ctext\u201d \u00abhere\u00bb"),
    ("long_s", "IT'\u017f ok, 'S and '\u212a"),
    ("repeats", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!!!!!???? ============ ....."),
    ("long_words", "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism"),
    ("url", "https://example.com/path/to?query=value&x=1#frag mail user@example.org"),
    ("json", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": \"t\\u00e9\"}}"),
    ("chatml_specials", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
    ("llama3_specials", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi"
                        "<|eot_id|>"),
    ("spm_specials", "<s>[INST] Hello [/INST] Hi</s><s> again</s>"),
    ("adjacent_specials", "<|endoftext|><|endoftext|>x<|im_end|> y</s>z<unk>"),
    ("not_specials", "<|im_start and <|im_end| and < s> are not special"),
    ("space_marks", "\u2581leading mark, \u2581\u2581 inside and </s>\u2581after"),
    ("invalid_ff", b"abc\xff\xfedef"),
    ("invalid_cut_euro", b"\xe2\x82 euro \xe2\x82\xac"),
    ("invalid_cut_emoji", b"emoji \xf0\x9f\x98 cut"),
    ("invalid_overlong", b"\xc0\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80"),
    ("invalid_at_end", b"end\xe2\x82"),
    ("paragraph", "Conveyor turns large prompt sets into generated data with LLMs. It shards "
                  "requests, drives pipeline stages, and keeps 8 GPUs busy at 97.5% "
                  "utilisation\u2014even when 1,024 sequences arrive at once!\n\nQ: Why?\n"
                  "A: Because batch jobs tokenize millions of prompts."),
]


ADDED_TOKEN_CORPUS = [
    ("lstrip", "fill <mask> here and   <mask>there\t<mask>"),
    ("rstrip", "[END]   next line\n[END]\tx [END]"),
    ("single_word", "foo food foo_bar afoo foo. (foo) foo1 \u00e9foo foo"),
    ("user_defined", "<tool>call</tool> <tool><tool>"),
    ("longest", "<tool><mask> and <tool> <mask>"),
    ("mixed", "\u00e9<mask>  [END]foo <|endoftext|>foo"),
]


def corpus_text(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def corpus_entry(name, value):
    if isinstance(value, bytes):
        return {"name": name, "hex": value.hex()}
    return {"name": name, "text": value}


# ---------------------------------------------------------------------------------------------
# Training text for the small tokenizers: deterministic, varied, and made of the
# same kinds of text the corpus has.

WORDS = ("the of and to in is that for it with as was on be by this are from at or an "
         "have not but which they all were we when your can said there use each she do how "
         "their if will up other about out many then them these so some her would make like "
         "him into time has look two more write go see number no way could people my than "
         "first water been call who oil its now find long down day did get come made may part "
         "model token batch engine prompt data pipeline stage worker cache kernel tensor "
         "sequence generate inference schedule request response queue memory device "
         "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe fa\u00e7ade \u00e9t\u00e9 "
         "ni\u00f1o \u00e0 \u00e7a \u0441\u043b\u043e\u0432\u043e \u043c\u0438\u0440 "
         "\u043f\u0440\u0438\u0432\u0435\u0442 \u03ba\u03cc\u03c3\u03bc\u03bf\u03c2 "
         "\u65e5\u672c \u4e2d\u6587 \u6587\u672c \u8a9e").split()
CODE = [
    "def {w}(x):\n    return x + {n}\n",
    "for (int i = 0; i < {n}; ++i) {{ {w}[i] = i * 2; }}\n",
    "if ({w} != nullptr && {w}->size() > {n}) {{\n\treturn -1;\n}}\n",
    "{{\"{w}\": [{n}, {n}], \"ok\": true}}\n",
    "SELECT {w} FROM t WHERE id = {n};\n",
]


def training_lines(rng, count, with_emoji):
    lines = []
    for i in range(count):
        kind = rng.randrange(10)
        if kind < 6:
            words = [rng.choice(WORDS) for _ in range(rng.randrange(4, 16))]
            if rng.random() < 0.3:
                words[0] = words[0].capitalize()
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)), rng.choice(["it's", "I'm", "don't",
                                                                     "we'll", "they've"]))
            line = " ".join(words) + rng.choice([".", "!", "?", ",", ":", ""])
        elif kind < 8:
            line = rng.choice(CODE).format(w=rng.choice(WORDS[:60]), n=rng.randrange(100000))
        elif kind < 9:
            line = " ".join(str(rng.randrange(10 ** rng.randrange(1, 8))) for _ in range(5))
        else:
            line = "  " * rng.randrange(3) + "\t" * rng.randrange(2) + rng.choice(WORDS)
        if with_emoji and i % 50 == 0:
            line += " \U0001F600 \u2764\ufe0f \U0001F44D"
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------
# Helpers


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def references(tok, add_special=True, corpus=None):
    """Reference ids for every corpus text from a tokenizers.Tokenizer."""
    cases = []
    for name, value in corpus or CORPUS:
        text = corpus_text(value)
        tok.encode_special_tokens = False
        ids = tok.encode(text, add_special_tokens=add_special).ids
        tok.encode_special_tokens = True
        plain = tok.encode(text, add_special_tokens=add_special).ids
        tok.encode_special_tokens = False
        case = corpus_entry(name, value)
        case["ids"] = ids
        if plain != ids:
            case["ids_specials_as_text"] = plain
        case["decoded"] = tok.decode(ids, skip_special_tokens=False)
        case["decoded_skip_special"] = tok.decode(ids, skip_special_tokens=True)
        cases.append(case)
    return cases


def byte_level_tokenizer(pre_tokenizer, specials, normalizer=None, post=None):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, show_progress=False,
                                  special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(20240501)
    lines = training_lines(rng, 6000, with_emoji=True)
    lines += [corpus_text(v) for _, v in CORPUS]
    tok.train_from_iterator(lines, trainer)
    if post is not None:
        tok.post_processor = post
    return tok


def save_tokenizer_dir(name, tok, config=None, edit=None):
    directory = os.path.join(OUT, name)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tokenizer.json")
    tok.save(path)
    if edit is not None:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        edit(data)
        write_json(path, data)
    else:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        write_json(path, data)
    if config is not None:
        write_json(os.path.join(directory, "tokenizer_config.json"), config)
    return Tokenizer.from_file(path)


# ---------------------------------------------------------------------------------------------
# SmolLM2: the real vocabulary, from the GGUF


def gguf_string(reader, key):
    field = reader.fields[key]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def gguf_scalar(reader, key):
    field = reader.fields[key]
    return field.parts[field.data[0]].tolist()[0]


def make_smollm2(gguf_path):
    directory, filename = os.path.split(gguf_path)
    hf = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    converted = hf.backend_tokenizer
    # transformers' GGUF conversion gives SmolLM2 a plain ByteLevel pre-tokenizer;
    # the published tokenizer.json splits digits first. Reference ids use the
    # published configuration, and the script checks the two agree on this corpus.
    real = Tokenizer.from_str(converted.to_str())
    real.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    cases = references(real)
    disagreements = [c["name"] for c in cases
                     if converted.encode(corpus_text(dict(CORPUS)[c["name"]])).ids != c["ids"]]
    if disagreements:
        print("note: GGUF-converted SmolLM2 tokenizer differs on", disagreements)

    reader = gguf.GGUFReader(gguf_path)
    tokens_field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(tokens_field.parts[i]).decode("utf-8") for i in tokens_field.data]
    merges_field = reader.fields["tokenizer.ggml.merges"]
    merges = [bytes(merges_field.parts[i]).decode("utf-8") for i in merges_field.data]
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    assert all("\n" not in t for t in tokens) and all(m.count(" ") == 1 for m in merges)
    assert tokens == [real.id_to_token(i) for i in range(len(tokens))]

    with open(os.path.join(OUT, "smollm2.tokens.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    with open(os.path.join(OUT, "smollm2.merges.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(merges) + "\n")
    write_json(os.path.join(OUT, "smollm2.data.json"), {
        "kind": "gpt2",
        "pre": gguf_string(reader, "tokenizer.ggml.pre"),
        "tokens_file": "smollm2.tokens.txt",
        "merges_file": "smollm2.merges.txt",
        # Only the types that are not "normal", as {id: type}.
        "token_types": {str(i): t for i, t in enumerate(types) if t != 1},
        "bos_id": gguf_scalar(reader, "tokenizer.ggml.bos_token_id"),
        "eos_id": gguf_scalar(reader, "tokenizer.ggml.eos_token_id"),
        "unk_id": gguf_scalar(reader, "tokenizer.ggml.unknown_token_id"),
        "pad_id": gguf_scalar(reader, "tokenizer.ggml.padding_token_id"),
        "add_bos": bool(gguf_scalar(reader, "tokenizer.ggml.add_bos_token")),
        "add_eos": False,
        "chat_template": gguf_string(reader, "tokenizer.chat_template"),
    })
    write_json(os.path.join(OUT, "smollm2.expected.json"), {"cases": cases})

    conversations = chat_conversations()
    rendered = []
    for messages in conversations:
        for gen in (False, True):
            text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            rendered.append({"messages": messages, "add_generation_prompt": gen,
                             "expected": text,
                             "expected_ids": real.encode(text, add_special_tokens=False).ids})
    return {"name": "smollm2", "family": "chatml",
            "template": gguf_string(reader, "tokenizer.chat_template"),
            "bos_token": tokens[gguf_scalar(reader, "tokenizer.ggml.bos_token_id")],
            "eos_token": tokens[gguf_scalar(reader, "tokenizer.ggml.eos_token_id")],
            "default_system_prompt":
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
            "cases": rendered}


# ---------------------------------------------------------------------------------------------
# Byte-level BPE families, trained small


def make_gpt2():
    tok = byte_level_tokenizer(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                               ["<|endoftext|>"])

    def legacy_merges(data):
        # Older tokenizer.json files write merges as "a b" strings; keep one such file.
        data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]

    tok = save_tokenizer_dir("gpt2-bpe", tok, edit=legacy_merges)
    write_json(os.path.join(OUT, "gpt2-bpe.expected.json"), {"cases": references(tok)})

    # Added tokens with every matching flag, on texts made to exercise them.
    tok.add_special_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        AddedToken("[END]", lstrip=False, rstrip=True, normalized=False, special=True),
    ])
    tok.add_tokens([
        AddedToken("foo", single_word=True, normalized=False, special=False),
        AddedToken("<tool>", normalized=False, special=False),
        AddedToken("<tool><mask>", normalized=False, special=False),
    ])
    tok = save_tokenizer_dir("gpt2-added", tok)
    write_json(os.path.join(OUT, "gpt2-added.expected.json"),
               {"cases": references(tok, corpus=ADDED_TOKEN_CORPUS)})
    return tok


LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_0|>"]


def make_llama3():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok = byte_level_tokenizer(pre, LLAMA3_SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])

    def set_ignore_merges(data):
        data["model"]["ignore_merges"] = True

    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
              "chat_template": LLAMA3_TEMPLATE}
    tok = save_tokenizer_dir("llama3-bpe", tok, config=config, edit=set_ignore_merges)
    write_json(os.path.join(OUT, "llama3-bpe.expected.json"), {"cases": references(tok)})
    return tok


def make_qwen2():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok = byte_level_tokenizer(pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                               normalizer=normalizers.NFC())
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
              "chat_template": QWEN2_TEMPLATE}
    tok = save_tokenizer_dir("qwen2-bpe", tok, config=config)
    write_json(os.path.join(OUT, "qwen2-bpe.expected.json"), {"cases": references(tok)})
    return tok


# ---------------------------------------------------------------------------------------------
# SentencePiece BPE with byte fallback


def make_sentencepiece(work):
    rng = random.Random(7)
    # No emoji and no CJK in training: those must come out as <0xNN> byte tokens.
    lines = [l for l in training_lines(rng, 6000, with_emoji=False)
             if all(ord(c) < 0x3000 for c in l)]
    train_path = os.path.join(work, "spm-train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    prefix = os.path.join(work, "spm")
    # The normaliser settings of Llama-2's tokenizer.model.
    spm.SentencePieceTrainer.train(
        input=train_path, model_prefix=prefix, vocab_size=1000, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, add_dummy_prefix=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", split_digits=True,
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

    n = sp.get_piece_size()
    types = []
    for i in range(n):
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    write_json(os.path.join(OUT, "spm.data.json"), {
        "kind": "llama", "pre": "default",
        "tokens": [sp.id_to_piece(i) for i in range(n)],
        "scores": [sp.get_score(i) for i in range(n)],
        "token_types": {str(i): t for i, t in enumerate(types) if t != 1},
        "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id(), "pad_id": -1,
        "add_bos": True, "add_eos": False, "add_space_prefix": True,
        "chat_template": LLAMA2_TEMPLATE,
    })

    specials = {sp.id_to_piece(i): i for i in range(n) if types[i] in (2, 3)}

    def slow_encode(text, parse_special=True):
        # SentencePiece per run between special tokens (leftmost, longest first),
        # with BOS: llama.cpp's behaviour for GGUF vocabularies.
        ids = [sp.bos_id()]
        pos = run = 0
        while parse_special and pos < len(text):
            match = max((s for s in specials if text.startswith(s, pos)), key=len, default=None)
            if match is None:
                pos += 1
                continue
            if pos > run:
                ids += sp.encode(text[run:pos])
            ids.append(specials[match])
            pos = run = pos + len(match)
        if run < len(text):
            ids += sp.encode(text[run:])
        return ids

    # The tokenizer.json conversions come from transformers, as a user would get them.
    model_dir = os.path.join(work, "spm-model")
    os.makedirs(model_dir, exist_ok=True)
    shutil.copy(prefix + ".model", os.path.join(model_dir, "tokenizer.model"))
    legacy = LlamaTokenizer.from_pretrained(model_dir, legacy=True).backend_tokenizer
    metaspace = LlamaTokenizer.from_pretrained(model_dir, legacy=False).backend_tokenizer

    # Llama-2's published tokenizer.json predates the Metaspace pre-tokenizer: it
    # prepends and replaces in the normaliser and adds BOS in the post-processor.
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                              normalizers.Replace(" ", "\u2581")])
    legacy.pre_tokenizer = None
    legacy.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", sp.bos_id())])
    legacy = save_tokenizer_dir("spm-llama", legacy, config={
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "chat_template": LLAMA2_TEMPLATE})
    metaspace = save_tokenizer_dir("spm-metaspace", metaspace)

    cases = []
    for name, value in CORPUS:
        text = corpus_text(value)
        case = corpus_entry(name, value)
        case["ids"] = slow_encode(text)
        plain = slow_encode(text, parse_special=False)
        if plain != case["ids"]:
            case["ids_specials_as_text"] = plain
        case["decoded"] = legacy.decode(case["ids"], skip_special_tokens=False)
        case["decoded_skip_special"] = legacy.decode(case["ids"], skip_special_tokens=True)
        cases.append(case)
    write_json(os.path.join(OUT, "spm.expected.json"), {"cases": cases})
    legacy_cases = references(legacy)
    write_json(os.path.join(OUT, "spm-llama.expected.json"), {"cases": legacy_cases})
    write_json(os.path.join(OUT, "spm-metaspace.expected.json"),
               {"cases": references(metaspace)})
    differ = [c["name"] for c, l in zip(cases, legacy_cases) if c["ids"] != l["ids"]]
    if differ:
        print("note: SentencePiece and its legacy tokenizer.json differ on", differ)
    return legacy


# ---------------------------------------------------------------------------------------------
# Chat templates

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}")

# Llama 3.1's system header, without the tool-calling branches.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n"
    "{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n{%- else %}\n"
    "    {%- set system_message = \"\" %}\n{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n")

QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# A ChatML template with no default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}")

MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}")

# Mistral's later template: a space before [INST], an optional system message
# folded into the first user turn.
MISTRAL_V3_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n"
    "    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must "
    "alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the "
    "exception of an initial optional system message!') }}\n    {%- endif %}\n"
    "{%- endfor %}\n")


def chat_conversations(system=True, alternate_only=False):
    convs = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "user", "content": "What is 2+2?"},
         {"role": "assistant", "content": "4"},
         {"role": "user", "content": "  And 3+3?  \n"}],
    ]
    if system:
        convs.append([{"role": "system", "content": "You are terse."},
                      {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": " Hello. "},
                      {"role": "user", "content": "Bye \u2764\ufe0f"}])
    return convs


def render_family(name, family, template, tokenizer_obj, bos, eos, conversations, extra=None):
    hf = PreTrainedTokenizerFast(tokenizer_object=tokenizer_obj, bos_token=bos, eos_token=eos)
    cases = []
    for messages in conversations:
        for gen in (False, True):
            cases.append({"messages": messages, "add_generation_prompt": gen,
                          "expected": hf.apply_chat_template(messages, chat_template=template,
                                                             tokenize=False,
                                                             add_generation_prompt=gen)})
    entry = {"name": name, "family": family, "template": template, "bos_token": bos,
             "eos_token": eos, "cases": cases}
    if extra:
        entry.update(extra)
    return entry


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", default=DEFAULT_GGUF, help="SmolLM2 GGUF file")
    args = parser.parse_args()
    if not os.path.exists(args.gguf):
        sys.exit(f"missing {args.gguf}: scripts/setup.sh downloads it")
    os.makedirs(OUT, exist_ok=True)
    write_json(os.path.join(OUT, "corpus.json"),
               {"cases": [corpus_entry(n, v) for n, v in CORPUS]})

    chats = [make_smollm2(args.gguf)]
    make_gpt2()
    llama3 = make_llama3()
    qwen2 = make_qwen2()
    with tempfile.TemporaryDirectory() as work:
        spm_tok = make_sentencepiece(work)

    chats.append(render_family("llama3", "llama3", LLAMA3_TEMPLATE, llama3, "<|begin_of_text|>",
                               "<|eot_id|>", chat_conversations()))
    chats.append(render_family("llama3.1", "llama3", LLAMA31_TEMPLATE, llama3,
                               "<|begin_of_text|>", "<|eot_id|>", chat_conversations()))
    chats.append(render_family("qwen2", "chatml", QWEN2_TEMPLATE, qwen2, None, "<|im_end|>",
                               chat_conversations(),
                               {"default_system_prompt": "You are a helpful assistant."}))
    chats.append(render_family("chatml", "chatml", CHATML_TEMPLATE, qwen2, None, "<|im_end|>",
                               chat_conversations()))
    chats.append(render_family("llama2", "llama2", LLAMA2_TEMPLATE, spm_tok, "<s>", "</s>",
                               chat_conversations()))
    chats.append(render_family("mistral", "mistral", MISTRAL_TEMPLATE, spm_tok, "<s>", "</s>",
                               chat_conversations(system=False)))
    chats.append(render_family("mistral-v3", "mistral", MISTRAL_V3_TEMPLATE, spm_tok, "<s>",
                               "</s>", chat_conversations()))
    write_json(os.path.join(OUT, "chat_templates.json"), {"templates": chats})

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

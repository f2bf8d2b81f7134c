#!/usr/bin/env python3
"""Writes the tokenizer fixtures of tests/dataload/ into tests/data/data/tokenizer/.

Oracles (the real libraries, run here once; CI only reads the small JSON they produce):
  * Hugging Face `tokenizers` (Rust): Tokenizer.encode / decode.
  * Hugging Face `transformers`: GPT2Tokenizer.from_pretrained on the same GPT-2 files.
  * OpenAI's original GPT-2 algorithm (gpt-2/src/encoder.py, re-typed below, with the `regex`
    package it used) as a third, independent implementation for the real GPT-2 vocabulary.
The script stops if they disagree on any string.

Outputs (all small enough to commit):
  gpt2_cases.json            ids for varied strings with the real GPT-2 vocabulary
                             (../shared/data/gpt2-bpe; the vocabulary itself is not copied)
  gpt2_tinyshakespeare.json  count, FNV-1a-64 hash and the first ids of the whole of
                             ../shared/data/tinyshakespeare.txt encoded with GPT-2
  tiny_gpt2/tokenizer.json   a byte-level BPE trained here on a few KB of generated text
                             (GPT-2 style: ByteLevel pre-tokenizer, specials, one added token)
  tiny_prefix/tokenizer.json the same with add_prefix_space=true
  tiny_llama3/tokenizer.json LLaMA-3 style: Split(LLaMA-3 regex) + ByteLevel(use_regex=false),
                             ignore_merges, specials after the vocabulary, a
                             TemplateProcessing that adds <|begin_of_text|>; plus a
                             tokenizer_config.json naming BOS / EOS
  tiny_cases.json            ids of the same strings for the three tiny tokenizers

Usage: python3 tests/gen/gen_tokenizer_fixtures.py [--shared ../shared/data]
Needs: pip install tokenizers transformers regex
"""
import argparse
import json
import os
import random
import shutil
import struct
import sys
import tempfile

import regex
import tokenizers
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers, Regex

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "data", "tokenizer")

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Varied text: every case is encoded by every tokenizer.
CASES = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "  leading spaces",
    "trailing spaces   ",
    "multiple     spaces   between    words",
    "tabs\tand\t\ttabs",
    "\n\nnewlines\n\n\nhere\n",
    "windows\r\nline\r\nendings\r\n",
    " \n \n  mixed \t\n whitespace  \n",
    "it's I'm you're we've they'll he'd can't won't",
    "IT'S I'M YOU'RE WE'VE THEY'LL HE'D DON'T",
    "'s 't 're 've 'm 'll 'd ''quoted'' 'single'",
    "1234567890 3.14159 1,000,000 2024-01-01 007",
    "12345678901234567890123456789",
    "x=1+2*3-4/5 ; y = [1, 2, 3]",
    "café naïve résumé Ünïcödé façade",
    "e\u0301 combining acute, a\u0308 umlaut",
    "日本語のテキストです。中文字符。한국어 텍스트.",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "Ελληνικά κείμενο, кириллица текст, العربية, עברית, हिन्दी",
    "fullwidth １２３ ＡＢＣ roman Ⅻ superscript x² fractions ½",
    "ligature ﬁ and ß and İstanbul",
    "nbsp\u00a0here and\u00a0\u00a0two",
    "ideographic\u3000space em\u2003space thin\u2009space",
    "nel\u0085line sep\u2028para sep\u2029end",
    "zero\u200bwidth\u200cjoiner\u200d",
    "vertical\u000btab form\u000cfeed",
    "nul\u0000byte and \u0001\u007f controls",
    "Hello<|endoftext|>world",
    "<|endoftext|><|endoftext|>",
    "a <|endoftext|> b <|endoftext|>",
    "<|endoftext partial |> <|end",
    "Hello!!! What??? ... --- ;;; (parens) [brackets] {braces} @#$%^&*",
    "C++ code: int main() { return a->b[0] >= 1 ? x : y; }",
    "https://example.com/path?query=1&b=two#frag user@example.org",
    "def f(x):\n    return x ** 2  # square\n\n\tpass\n",
    "a" * 300,
    " " * 100 + "x",
    "\n" * 40,
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
    "O Romeo, Romeo! wherefore art thou Romeo? Deny thy father and refuse thy name.",
    "[CUSTOM] added token [CUSTOM]x y[CUSTOM]",
    "<|begin_of_text|>Hi<|eot_id|><|end_of_text|>",
    "zzqx zzqxzzqx",
]


# ---- OpenAI's GPT-2 encoder (gpt-2/src/encoder.py, MIT) -------------------------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


class OpenAIEncoder:
    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.byte_encoder = bytes_to_unicode()
        self.pat = regex.compile(GPT2_PATTERN)

    def bpe(self, token):
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        return " ".join(word)

    def encode_ordinary(self, text):
        ids = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def encode(self, text, special="<|endoftext|>"):
        ids = []
        parts = text.split(special)
        for k, part in enumerate(parts):
            if k > 0:
                ids.append(self.encoder[special])
            ids.extend(self.encode_ordinary(part))
        return ids


# ---- helpers -------------------------------------------------------------------------------

def fnv1a64_ids(ids):
    """FNV-1a 64 over the ids as little-endian int32, as the C test computes it."""
    h = 0xCBF29CE484222325
    for b in struct.pack("<%di" % len(ids), *ids):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hf_cases(tk, round_trip=True):
    """ids (HF default encode), ids_plain (specials as text, no template) and decodes
    (decoded_plain: of ids_plain; equal to the text unless a prefix space was added)."""
    out = []
    for text in CASES:
        tk.encode_special_tokens = False
        ids = tk.encode(text).ids
        tk.encode_special_tokens = True
        plain = tk.encode(text, add_special_tokens=False).ids
        tk.encode_special_tokens = False
        dec = tk.decode(ids, skip_special_tokens=False)
        dec_skip = tk.decode(ids, skip_special_tokens=True)
        dec_plain = tk.decode(plain, skip_special_tokens=False)
        assert not round_trip or dec_plain == text, ("round trip", text)
        out.append({"text": text, "ids": ids, "ids_plain": plain, "decoded": dec, "decoded_skip": dec_skip,
                    "decoded_plain": dec_plain})
    return out


def to_json(obj, indent=""):
    """JSON with one line per list element of dicts/lists of dicts, compact inside (diffable, small)."""
    if isinstance(obj, dict) and any(isinstance(v, (dict, list)) and v and isinstance(v, dict) or
                                     (isinstance(v, list) and v and isinstance(v[0], dict)) for v in obj.values()):
        inner = indent + " "
        items = ["%s%s: %s" % (inner, json.dumps(k), to_json(v, inner)) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        inner = indent + " "
        return "[\n" + ",\n".join(inner + json.dumps(v, ensure_ascii=False, separators=(",", ":"))
                                   for v in obj) + "\n" + indent + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_json(obj))
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes")


# ---- real GPT-2 ----------------------------------------------------------------------------

def gen_gpt2(shared):
    bpe_dir = os.path.join(shared, "gpt2-bpe")
    enc_path, merges_path = os.path.join(bpe_dir, "encoder.json"), os.path.join(bpe_dir, "vocab.bpe")
    # The tokenizers library, built as GPT2TokenizerFast builds it.
    tk = Tokenizer(models.BPE.from_file(enc_path, merges_path))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(["<|endoftext|>"])
    cases = hf_cases(tk)

    # transformers, from a directory holding the same files under Hugging Face's names.
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(enc_path, os.path.join(d, "vocab.json"))
        shutil.copy(merges_path, os.path.join(d, "merges.txt"))
        tf = transformers.GPT2Tokenizer.from_pretrained(d)
        for c in cases:
            got = tf.encode(c["text"])
            assert got == c["ids"], ("transformers disagrees", c["text"], got, c["ids"])
        assert tf.eos_token_id == 50256 and tf.bos_token_id == 50256

    # OpenAI's algorithm.
    with open(enc_path, encoding="utf-8") as f:
        encoder = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        merges = [tuple(l.split()) for l in f.read().split("\n")[1:-1]]
    oa = OpenAIEncoder(encoder, merges)
    for c in cases:
        assert oa.encode(c["text"]) == c["ids"], ("OpenAI algorithm disagrees", c["text"])
        assert oa.encode_ordinary(c["text"]) == c["ids_plain"], ("OpenAI algorithm disagrees (plain)", c["text"])

    write_json(os.path.join(OUT, "gpt2_cases.json"), {
        "about": "ids from tokenizers %s, checked equal to transformers %s GPT2Tokenizer and to OpenAI's "
                 "encoder.py algorithm; vocabulary: ../shared/data/gpt2-bpe" % (tokenizers.__version__,
                                                                                 transformers.__version__),
        "cases": cases})

    with open(os.path.join(shared, "tinyshakespeare.txt"), encoding="utf-8") as f:
        text = f.read()
    tk.encode_special_tokens = False
    ids = tk.encode(text).ids
    assert ids == oa.encode(text), "OpenAI algorithm disagrees on tinyshakespeare"
    write_json(os.path.join(OUT, "gpt2_tinyshakespeare.json"), {
        "about": "../shared/data/tinyshakespeare.txt encoded whole by tokenizers %s (GPT-2 vocabulary); "
                 "fnv1a64 over the ids as little-endian int32" % tokenizers.__version__,
        "bytes": len(text.encode("utf-8")), "n_ids": len(ids), "fnv1a64": "%016x" % fnv1a64_ids(ids),
        "first_ids": ids[:64], "last_ids": ids[-64:]})


# ---- tiny trained tokenizers ---------------------------------------------------------------

WORDS = ("the of and to in is was he for it with as his on be at by had are but from or have an they which one "
         "you were her all she there would their we him been has when who will more no if out so said what up its "
         "about into than them can only other new some could time these two may then do first any my now such like "
         "our over man me even most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make world still own see "
         "men work long get here between both life being under never day same another know while last might us "
         "great old year off come since against go came right used take three king queen lord sweet night love "
         "death speak hear citizen romeo thou thee thy art doth hath").split()
UNICODE_WORDS = "café naïve résumé 東京 日本語 中文 한국어 Ελληνικά кириллица 😀 👍🏽 ½ ² Ünïcödé".split()


def corpus(n_sentences=260, seed=1234):
    rng = random.Random(seed)
    lines = []
    for _ in range(n_sentences):
        n = rng.randint(4, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(UNICODE_WORDS))
        if rng.random() < 0.25:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
        if rng.random() < 0.2:
            words[0] = words[0] + rng.choice(["'s", "'t", "'ll", "'re", "'d", "'ve", "'m"])
        s = " ".join(words)
        s = s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", ":", "..."])
        lines.append(s)
        if rng.random() < 0.1:
            lines.append("")
    return "\n".join(lines) + "\n"


def train(pre_tokenizer, vocab_size, specials, text):
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizer
    tk.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator([text], trainer=tr)
    return tk


def gen_tiny():
    text = corpus()
    assert 4000 < len(text.encode("utf-8")) < 16000, len(text)
    result = {}

    # GPT-2 style: specials first (ids 0, 1), a non-special added token after the vocabulary.
    tk = train(pre_tokenizers.ByteLevel(add_prefix_space=False), 560, ["<|endoftext|>", "<pad>"], text)
    tk.add_tokens(["[CUSTOM]"])
    path = os.path.join(OUT, "tiny_gpt2", "tokenizer.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tk.save(path, pretty=False)
    result["tiny_gpt2"] = hf_cases(Tokenizer.from_file(path))

    tk = train(pre_tokenizers.ByteLevel(add_prefix_space=True), 420, ["<|endoftext|>"], text)
    path = os.path.join(OUT, "tiny_prefix", "tokenizer.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tk.save(path, pretty=False)
    result["tiny_prefix"] = hf_cases(Tokenizer.from_file(path), round_trip=False)

    # LLaMA-3 style: Split(regex) + ByteLevel(use_regex=False), ignore_merges, specials after the
    # vocabulary, <|begin_of_text|> added by the post-processor.
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk = train(pre, 600, [], text)
    d = json.loads(tk.to_str())
    assert d["model"]["type"] == "BPE"
    d["model"]["ignore_merges"] = True
    # A vocabulary entry no merge sequence builds: only ignore_merges can produce it. Ids stay
    # contiguous (the special tokens come after it, as LLaMA-3's come after its vocabulary).
    zzqx = len(d["model"]["vocab"])
    assert sorted(d["model"]["vocab"].values()) == list(range(zzqx))
    d["model"]["vocab"]["Ġzzqx"] = zzqx
    tk = Tokenizer.from_str(json.dumps(d))
    tk.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    bot = tk.token_to_id("<|begin_of_text|>")
    assert bot == zzqx + 1
    tk.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                      special_tokens=[("<|begin_of_text|>", bot)])
    path = os.path.join(OUT, "tiny_llama3", "tokenizer.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tk.save(path, pretty=False)
    write_json(os.path.join(OUT, "tiny_llama3", "tokenizer_config.json"),
               {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>", "special": True}})
    tk = Tokenizer.from_file(path)
    assert tk.encode(" zzqx", add_special_tokens=False).ids == [zzqx]
    assert tk.token_to_id("<|eot_id|>") == zzqx + 3
    result["tiny_llama3"] = hf_cases(tk)
    result["tiny_llama3_ids"] = {"bos": bot, "eos": tk.token_to_id("<|eot_id|>"),
                                 "end_of_text": tk.token_to_id("<|end_of_text|>")}

    for name in ("tiny_gpt2", "tiny_prefix", "tiny_llama3"):
        print(name, os.path.getsize(os.path.join(OUT, name, "tokenizer.json")), "bytes")
    result["about"] = "ids from tokenizers %s for the tokenizers in tiny_*/" % tokenizers.__version__
    write_json(os.path.join(OUT, "tiny_cases.json"), result)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    a = ap.parse_args()
    gen_tiny()
    if os.path.isdir(os.path.join(a.shared, "gpt2-bpe")):
        gen_gpt2(a.shared)
    else:
        print("no %s/gpt2-bpe: GPT-2 fixtures not regenerated" % a.shared, file=sys.stderr)


if __name__ == "__main__":
    main()

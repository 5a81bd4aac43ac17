"""A byte-level BPE vocabulary in CLIP's scheme (OpenAI's SimpleTokenizer), learned from the demo
captions, written in Hugging Face's CLIP layout (vocab.json + merges.txt, which vqclip reads),
and an encoder that gives the same ids as vqclip's tokenizer for the demo's (ASCII) captions."""
import json
import os
import re


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def learn_merges(word_counts):
    """Merges until every word is one symbol; the most frequent pair first (ties by text)."""
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): c for w, c in word_counts.items()}
    merges = []
    while True:
        pairs = {}
        for w, c in words.items():
            for p in zip(w, w[1:]):
                pairs[p] = pairs.get(p, 0) + c
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = c
        words = new


def vocabulary(merges):
    v = list(bytes_to_unicode().values())
    v = v + [x + "</w>" for x in v]
    v += ["".join(m) for m in merges]
    v += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(v)}


def write(folder, merges):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2 (vqclip demo: learned from the demo world's captions)\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocabulary(merges), f, ensure_ascii=False, separators=(",", ":"))


def read(folder):
    with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    return [tuple(l.split()) for l in lines if l.strip()]


class Tokenizer:
    PAT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")

    def __init__(self, merges, context):
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.vocab = vocabulary(merges)
        self.sot, self.eot = self.vocab["<|startoftext|>"], self.vocab["<|endoftext|>"]
        self.context = context
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        w = tuple(word[:-1]) + (word[-1] + "</w>",)
        while len(w) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(w, w[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            first, second = w[i], w[i + 1]
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == first and w[j + 1] == second:
                    out.append(first + second)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            w = tuple(out)
        self.cache[word] = [self.vocab[t] for t in w]
        return self.cache[word]

    def encode(self, text):
        ids = []
        for word in self.PAT.findall(" ".join(text.lower().split())):
            ids += self.bpe(word)
        return ids

    def tokenize(self, texts):
        import torch
        out = torch.zeros(len(texts), self.context, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [self.sot] + self.encode(t)[: self.context - 2] + [self.eot]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

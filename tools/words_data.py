"""The words data set: Debian's wamerican list (apt-get install wamerican → /usr/share/dict/american-english),
words of 2–12 lowercase letters a–z only (no capitals, apostrophes or accents), deduplicated, split by a
seeded shuffle into train and a 5% held-out set.

Token ids: 0 = pad (written '_'), 1..26 = a..z, and for the absorbing model 27 = mask. Words are padded
on the right to 12 tokens.
"""
import numpy as np

DICT = "/usr/share/dict/american-english"
SEQ_LEN = 12
PAD = 0
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def load_words(path=DICT):
    words = set()
    for line in open(path, encoding="utf-8", errors="replace"):
        w = line.strip()
        if 2 <= len(w) <= SEQ_LEN and all("a" <= c <= "z" for c in w):
            words.add(w)
    return sorted(words)


def load_frequent(n=10000, path=DICT):
    """The n most frequent English words (pip package wordfreq 3.1.1, its "large" English list) among
    load_words(): dictionary words only, ranked by wordfreq's frequency, ties by spelling."""
    from wordfreq import word_frequency
    words = load_words(path)
    freq = {w: word_frequency(w, "en", wordlist="large") for w in words}
    return sorted(sorted(words, key=lambda w: (-freq[w], w))[:n])


def frequencies(words):
    """wordfreq 3.1.1's English frequency ("large" list) of each word."""
    from wordfreq import word_frequency
    return np.array([word_frequency(w, "en", wordlist="large") for w in words])


# The training vocabularies a words model may use (--vocab): the whole list, or its most frequent words.
VOCABS = {"full": load_words, "frequent": load_frequent}  # frequent: 10,000 words


def load_vocab(name="full"):
    return VOCABS[name]()


def split(words, seed=0, heldout_frac=0.05):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(words))
    n_held = int(round(len(words) * heldout_frac))
    held = sorted(words[i] for i in idx[:n_held])
    train = sorted(words[i] for i in idx[n_held:])
    return train, held


def encode(words):
    out = np.zeros((len(words), SEQ_LEN), dtype=np.int64)
    for i, w in enumerate(words):
        out[i, : len(w)] = [1 + ALPHABET.index(c) for c in w]
    return out


def decode(ids):
    """Letters up to the first pad; a non-letter id (mask) becomes '?'."""
    s = []
    for i in ids:
        i = int(i)
        if i == PAD:
            break
        s.append(ALPHABET[i - 1] if 1 <= i <= 26 else "?")
    return "".join(s)


if __name__ == "__main__":
    w = load_words()
    tr, he = split(w)
    print(len(w), len(tr), len(he), he[:10])

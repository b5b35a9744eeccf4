import pytest

from seqlab.data.batching import BucketedBatches, fixed_batches
from seqlab.data.dates import LOCALES, date_pairs, split_dates, styles
from seqlab.data.text import read_lines, read_parallel, read_tsv_pairs
from seqlab.data.tokenizer import BOS_ID, EOS_ID, KINDS, PAD_ID, decode, train_tokenizer
from seqlab.errors import DataError

TEXTS = ["Ein Mann fährt Fahrrad.", "2026年11月21日星期六", "суббота, 21 ноября 2026 г.", "a  b\tc"]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizer_round_trip_is_exact(kind):
    tokenizer = train_tokenizer(TEXTS * 3, kind, 500)
    for text in TEXTS[:3]:
        assert decode(tokenizer, tokenizer.encode(text).ids + [EOS_ID, 7]) == text


def test_word_tokenizer_and_specials():
    for kind in KINDS:
        tokenizer = train_tokenizer(TEXTS, kind, 500)
        assert [tokenizer.token_to_id(t) for t in ("<pad>", "<bos>", "<eos>", "<unk>")] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="char, word, bpe"):
        train_tokenizer(TEXTS, "sentencepiece")


def test_teacher_forcing_shift():
    batch = next(BucketedBatches([[5, 6], [7]], [[8, 9, 10], [11]], batch_size=2, seed=0))
    rows = {tuple(r) for r in batch["tgt_in"].tolist()}, {tuple(r) for r in batch["tgt_out"].tolist()}
    assert rows[0] == {(BOS_ID, 8, 9, 10), (BOS_ID, 11, PAD_ID, PAD_ID)}
    assert rows[1] == {(8, 9, 10, EOS_ID), (11, EOS_ID, PAD_ID, PAD_ID)}


def test_bucketed_batches_cover_each_epoch_and_resume():
    sources = [[4] * (i % 9 + 1) for i in range(100)]
    batches = BucketedBatches(sources, sources, batch_size=10, seed=1)
    seen = sorted(n for _ in range(len(batches)) for n in next(batches)["src"].ne(PAD_ID).sum(1).tolist())
    assert seen == sorted(len(s) for s in sources)
    state = batches.state_dict()
    expected = [next(batches)["src"] for _ in range(3)]
    again = BucketedBatches(sources, sources, batch_size=10, seed=5)
    again.load_state_dict(state)
    assert all((next(again)["src"] == e).all() for e in expected)


def test_fixed_batches_map_rows_back():
    sources = [[4] * n for n in (5, 1, 3)]
    rows = [r for b in fixed_batches(sources, sources, 2) for r in b["rows"].tolist()]
    assert sorted(rows) == [0, 1, 2]


def test_parallel_and_tsv_reading_errors(tmp_path):  # read_lines' own errors: tests/data/test_text.py
    (tmp_path / "a.txt").write_text("x\n\nz\n")
    (tmp_path / "b.txt").write_text("x\ny\nz\n")
    with pytest.raises(DataError, match="line 2 is empty"):
        read_parallel(tmp_path / "a.txt", tmp_path / "b.txt")
    (tmp_path / "three.tsv").write_text("a\tb\tc\n")
    with pytest.raises(DataError, match="3 tab-separated columns"):
        read_tsv_pairs(tmp_path / "three.tsv")
    (tmp_path / "ok.tsv").write_text('say "hi"\tsag "hallo"\n')
    assert read_tsv_pairs(tmp_path / "ok.tsv") == (['say "hi"'], ['sag "hallo"'])


def test_gzip_files_are_read(tmp_path):
    import gzip

    (tmp_path / "x.gz").write_bytes(gzip.compress("eins\nzwei\n".encode()))
    assert read_lines(tmp_path / "x.gz") == ["eins", "zwei"]


def test_date_corpus_is_hard_enough_and_disjoint():
    kept = styles()
    assert len(LOCALES) >= 8 and {"zh_CN", "ja_JP", "ru_RU"} <= set(LOCALES)
    assert {w for _, w in kept} == {"medium", "long", "full"}
    assert ("de_DE", "medium") not in kept  # 21.11.2026: day/month order needs the locale
    train_days, test_days = split_dates(0)
    assert not set(train_days) & set(test_days)
    assert max(train_days).year - min(train_days).year >= 99
    sources, targets = date_pairs(test_days, 50, 1)
    assert all(len(t) == 10 and t[4] == "-" for t in targets)


def test_lines_break_only_at_newlines(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 \x85 ok\r\nform\x0cfeed\nlast".encode("latin-1"))
    assert read_lines(path, encoding="latin-1") == ["caf\xe9 \x85 ok", "form\x0cfeed", "last"]


def test_unknown_pieces_are_the_tokenizers_own_unknown_token():
    from seqlab.data.tokenizer import train_tokenizer, train_wordpiece, unknown_pieces, with_cls_sep

    wordpiece = with_cls_sep(train_wordpiece(["the cat sees a tree"] * 5, vocab_size=40))
    assert unknown_pieces(wordpiece, ["the zebra sees a tree"]) == ["zebra"]  # [UNK] (id 1); not [CLS], [SEP]
    words = train_tokenizer(["the cat sees a tree"] * 5, "word", 40)
    assert unknown_pieces(words, ["the zebra sees a yak"]) == ["zebra", "yak"]  # <unk>
    assert unknown_pieces(train_tokenizer(["the cat"] * 5, "bytebpe", 300), ["the zebra"]) == []  # any byte

"""Labelled text tables: hand-written CSV and TSV files, the rows expected from them and every refusal."""

import pytest

from seqlab.data.labelled_text import duplicate_header, read_labelled
from seqlab.errors import DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_quotes_commas_and_values_pandas_would_convert(tmp_path):
    path = write(tmp_path / "reviews.csv", 'id,text,label\n1,"good, really",pos\n2,NA,  neg \n3,007,null\n')
    assert read_labelled(path, "text", "label") == (["good, really", "NA", "007"], ["pos", "neg", "null"])
    assert read_labelled(path, "id", "text") == (["1", "2", "3"], ["good, really", "NA", "007"])


def test_tsv_is_tab_separated_and_quotes_are_plain_characters(tmp_path):
    path = write(tmp_path / "reviews.tsv", 'text\tlabel\n"great" she said, twice\tpos\nit, was "bad\tneg\n')
    assert read_labelled(path, "text", "label") == (['"great" she said, twice', 'it, was "bad'], ["pos", "neg"])
    header_quoted = write(tmp_path / "quoted.tsv", '"text"\ttext\tlabel\na\tb\tpos\nc\td\tneg\n')
    assert read_labelled(header_quoted, "text", "label") == (["b", "d"], ["pos", "neg"])
    commas = write(tmp_path / "commas.tsv", "text,raw\tlabel,text\na\tpos\nb\tneg\n")  # commas inside two names
    assert read_labelled(commas, "text,raw", "label,text") == (["a", "b"], ["pos", "neg"])


def test_other_encodings(tmp_path):
    path = write(tmp_path / "latin.csv", "texté,label\ncafé,pos\nthé,neg\n", "latin-1")
    assert read_labelled(path, "texté", "label", encoding="latin-1") == (["café", "thé"], ["pos", "neg"])
    with pytest.raises(DataError, match=r"latin.csv is not valid utf-8; pass its encoding with --encoding "
                                        r"\(e.g. latin-1\)"):
        read_labelled(path, "texté", "label")
    with pytest.raises(DataError, match="^unknown encoding 'klingon'$"):
        read_labelled(path, "texté", "label", encoding="klingon")
    with pytest.raises(DataError, match=r"latin.csv is not valid utf-16; pass its encoding"):  # no byte-order mark
        read_labelled(path, "texté", "label", encoding="utf-16")


def test_one_class_is_enough_only_when_asked(tmp_path):
    path = write(tmp_path / "one.csv", "text,label\na,pos\nb,pos\n")
    with pytest.raises(DataError, match=r"one.csv has a single class \('pos' in every row\); classification needs two "
                                        "or more"):
        read_labelled(path, "text", "label")
    assert read_labelled(path, "text", "label", min_classes=1) == (["a", "b"], ["pos", "pos"])
    single_row = write(tmp_path / "row.csv", "text,label\na,pos\n")
    with pytest.raises(DataError, match=r"row.csv has a single class \('pos' in every row\)"):
        read_labelled(single_row, "text", "label")
    three = write(tmp_path / "three.csv", "text,label\na,x\nb,y\nc,z\n")
    assert read_labelled(three, "text", "label", min_classes=3)[1] == ["x", "y", "z"]


@pytest.mark.parametrize("name, text, columns, message", [
    ("t.csv", "text,label\na,pos\n \t ,neg\n", ("text", "label"), r"t.csv row 3: the text is empty"),
    ("t.csv", "text,label\na,pos\nb,neg\nc, \n", ("text", "label"), r"t.csv row 4: the label is empty"),
    ("t.csv", "text,label\n", ("text", "label"), r"t.csv has a header but no rows"),
    ("t.csv", "text,label\na,pos\n", ("text", "text"),
     r"the text column and the label column are both 'text'; name two columns"),
    ("t.csv", "text,label\na,pos\nb,neg\n", ("txt", "label"), r"t.csv has no column 'txt'; its columns are text, label$"),
    ("t.csv", "text,label\na,pos\nb,neg\n", ("text", "lbl"), r"t.csv has no column 'lbl'; its columns are text, label$"),
    ("t.csv", "text,label,text\na,pos,b\nc,neg,d\n", ("text", "label"),
     r"t.csv names the column 'text' twice in its header; give each column its own name"),
    ("t.tsv", "text\tlabel\ttext\na\tpos\tb\nc\tneg\td\n", ("text", "label"), r"t.tsv names the column 'text' twice"),
    ("t.csv", "text,label\na,pos\nb,neg,extra\n", ("text", "label"),
     r"t.csv is not a readable table: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3$"),
    ("t.csv", "", ("text", "label"), r"t.csv is not a readable table: No columns to parse from file$"),
])
def test_unusable_tables(tmp_path, name, text, columns, message):
    with pytest.raises(DataError, match=message):
        read_labelled(write(tmp_path / name, text), *columns)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found: .*missing.csv"):
        read_labelled(tmp_path / "missing.csv", "text", "label")


def test_duplicate_header_reads_the_header_only_as_text(tmp_path):
    assert duplicate_header(write(tmp_path / "a.csv", "a,b,a\n1,2,3\n")) == "a"
    assert duplicate_header(write(tmp_path / "b.csv", "a,b,c\nx,x,x\n")) is None  # repeats below the header are data
    assert duplicate_header(write(tmp_path / "c.csv", "a,b\n")) is None
    assert duplicate_header(write(tmp_path / "d.csv", "1,01,1.0,NA,nan,\n")) is None  # no number or NA parsing
    assert duplicate_header(write(tmp_path / "e.csv", "x,y,x\n1,2,3,4\n")) == "x"  # rows below are not read
    assert duplicate_header(write(tmp_path / "f.tsv", "x\ty\ty\n"), sep="\t") == "y"


def test_duplicate_header_reads_names_as_written_with_the_file_options(tmp_path):
    na = tmp_path / "na.csv"
    na.write_text("NA,nan\n1,2,3\n")  # pandas' NA strings are names; only the header line is read
    assert duplicate_header(na) is None
    nas = tmp_path / "nas.csv"
    nas.write_text("NA,NA\n1,2\n")
    assert duplicate_header(nas) == "NA"
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\ta\n1\t2\n")
    assert duplicate_header(tsv, sep="\t") == "a"

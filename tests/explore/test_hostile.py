"""The explorer under hostile requests: bodies over the limit with or without a Content-Length, text
that JSON can spell but UTF-8 cannot hold, and an image that declares more pixels than memory holds.
Each is a 4xx answer; none is a 500, and the server still answers the next request."""

import base64
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from seqlab.cli.main import main
from seqlab.explore.app import MAX_REQUEST_BYTES, create_app

QUICK = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.curves=false",
         "--set", "train.eval_every=2", "--max-steps", "2"]


@pytest.fixture(scope="module")
def translation_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 4
    (root / "a.txt").write_text("\n".join(words) + "\n")
    (root / "b.txt").write_text("\n".join(w[::-1] for w in words) + "\n")
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"),
                 "--out", str(root / "run"), "--set", "model.d_model=16", "--set", "model.n_heads=2",
                 "--set", "model.n_layers=1", "--set", "model.d_ff=32", "--set", "data.tokenizer='char'",
                 "--set", "train.batch_size=8", "--set", "decode.max_output_len=6", *QUICK]) == 0
    return TestClient(create_app(root / "run"), raise_server_exceptions=False)


def chunks(total: int, size: int = 64 * 1024):
    """A JSON body of ``total`` bytes, streamed in pieces: httpx sends it chunked, with no Content-Length."""
    yield b'{"text": "hello", "padding": "'
    sent = 30
    while sent < total - 2:
        piece = min(size, total - 2 - sent)
        yield b"x" * piece
        sent += piece
    yield b'"}'


def test_a_chunked_body_over_the_limit_is_refused(translation_client):
    response = translation_client.post("/api/infer", content=chunks(MAX_REQUEST_BYTES + 100_000),
                                       headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    # Under the limit, the same chunked request is read whole and answered.
    small = translation_client.post("/api/infer", content=chunks(1000), headers={"content-type": "application/json"})
    assert small.status_code == 200 and isinstance(small.json()["output"], str), small.text


@pytest.mark.parametrize("length", [str(MAX_REQUEST_BYTES + 1), "not-a-number", "-5"])
def test_a_declared_length_over_the_limit_or_malformed_is_refused(translation_client, length):
    response = translation_client.post("/api/infer", content=b'{"text": "hello"}',
                                       headers={"content-type": "application/json", "content-length": length})
    assert response.status_code in (400, 413), response.text


@pytest.mark.parametrize("text", ['"\\ud800"', '"ab\\udfffcd"', '"\\udc00\\ud800"'])
def test_a_lone_surrogate_is_a_422_not_a_500(translation_client, text):
    response = translation_client.post("/api/infer", content=b'{"text": ' + text.encode() + b"}",
                                       headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("text: ")  # one line naming the field, for the page
    assert translation_client.post("/api/infer", json={"text": "hello"}).status_code == 200  # still serving


def bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_an_image_bomb_is_a_422(tmp_path):
    for name, shade in (("dark", 30), ("light", 220)):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), color=shade).save(tmp_path / "img" / name / f"{i}.png")
    assert main(["train", "vision", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "vit"),
                 "--set", "data.image_size=8", "--set", "data.test_fraction=0.34", "--set", "data.valid_fraction=0.25",
                 "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.d_ff=32", *QUICK]) == 0
    client = TestClient(create_app(tmp_path / "vit"), raise_server_exceptions=False)
    for width, height in ((20_000, 20_000), (10_000, 10_000)):  # Pillow raises over 2 × its limit, warns below
        upload = "data:image/png;base64," + base64.b64encode(bomb_png(width, height)).decode()
        response = client.post("/api/infer", json={"image": upload})
        assert response.status_code == 422, response.text


@pytest.mark.parametrize("body, status, detail", [
    (b'{"text": "\xff\xfe"}', 400, "the request body is not UTF-8 (byte 10)"),
    (b'{"text": "hello", "beam": true}', 422, "beam: Input should be a valid integer"),
    (b'{"text": "hello", "beam": "2"}', 422, "beam: Input should be a valid integer"),
    (b'{"text": "hello", "max_new_tokens": 4.5}', 422, "max_new_tokens: Input should be a valid integer"),
])
def test_a_body_that_is_not_utf8_or_a_count_that_is_no_integer_is_named(translation_client, body, status, detail):
    """FastAPI said only "There was an error parsing the body" for the first; pydantic read true as beam 1
    and "2" as 2."""
    response = translation_client.post("/api/infer", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["detail"]) == (status, detail), response.text
    assert translation_client.post("/api/infer", json={"text": "hello", "beam": 2}).status_code == 200

"""The attention explorer: its JSON API on small runs trained here, its limits (length, request size,
no file reads from a request's path), the command's bad-input path, and the page in a real headless
Chromium."""

import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from seqlab.cli.main import main
from seqlab.explore.app import create_app
from seqlab.errors import UserError

TRANSLATE_TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2",
                  "--set", "model.d_ff=32", "--set", "data.tokenizer='char'", "--set", "data.max_len=24",
                  "--set", "train.batch_size=8", "--set", "train.eval_every=10", "--set", "train.progress=false",
                  "--set", "train.tensorboard=false", "--set", "decode.max_output_len=12", "--max-steps", "10"]
LM_TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2",
           "--set", "data.block_size=64", "--set", "train.batch_size=8", "--set", "train.eval_every=10",
           "--set", "train.progress=false", "--set", "train.tensorboard=false", "--max-steps", "10"]


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    words = ["abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"] * 6
    (root / "a.txt").write_text("\n".join(words) + "\n")
    (root / "b.txt").write_text("\n".join(w[::-1] for w in words) + "\n")
    run = root / "translate"
    assert main(["train", "translate", "--src", str(root / "a.txt"), "--tgt", str(root / "b.txt"),
                 "--out", str(run), *TRANSLATE_TINY]) == 0
    return run


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore-lm")
    (root / "text.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 200)
    run = root / "lm"
    assert main(["train", "lm", "--text", str(root / "text.txt"), "--out", str(run), *LM_TINY]) == 0
    return run


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    import numpy as np
    import pandas as pd

    root = tmp_path_factory.mktemp("explore-fc")
    n = 500
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "OT": np.sin(np.arange(n) * 2 * np.pi / 24)})
    frame.to_csv(root / "series.csv", index=False)
    run = root / "fc"  # 120 steps a window: a heat map of 14-px cells would be 1,750 px wide; intervals shaded
    assert main(["train", "forecast", "--csv", str(root / "series.csv"), "--model", "transformer", "--input-len", "120",
                 "--horizon", "24", "--quantiles", "0.1,0.25,0.75,0.9", "--split", "0.7,0.1,0.2", "--out", str(run), "--set", "model.d_model=16",
                 "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32", *QUICK]) == 0
    return run


def snapshot_of(html: str) -> dict:
    """The data a saved page carries, read back as the browser would (JSON is JavaScript)."""
    import json

    start = html.index("window.SEQLAB_SNAPSHOT = ") + len("window.SEQLAB_SNAPSHOT = ")
    return json.loads(html[start : html.index(";</script>", start)])


def test_the_page_opens_on_an_example_from_the_run(translation_run, lm_run, tmp_path):
    words = {"abc", "hello", "cat", "dog", "sun", "moon", "tree", "seq", "lab", "zebra"}
    client = TestClient(create_app(translation_run))
    example = client.get("/api/example").json()
    assert example["text"] in words and "validation" in example["source"]
    assert client.post("/api/infer", json={"text": example["text"]}).status_code == 200
    example = TestClient(create_app(lm_run)).get("/api/example").json()
    text = (lm_run.parent / "text.txt").read_text()
    assert example["text"] in text[int(len(text) * 0.9) - 64 :] and "validation" in example["source"]
    assert len(example["text"]) == 16 and example["max_new_tokens"] == 40  # char tokens; 16 + 40 <= 64
    # Runs trained before runs kept an example open on a generic one.
    for run, gone in ((translation_run, "example.json"), (lm_run, "valid.bin")):
        old = tmp_path / run.name
        shutil.copytree(run, old)
        (old / gone).unlink()
        client = TestClient(create_app(old))
        example = client.get("/api/example").json()
        assert "generic" in example["source"]
        assert client.post("/api/infer", json={k: v for k, v in example.items() if k != "source"}).status_code == 200


def test_save_as_html_is_one_file_that_needs_no_server(translation_run, lm_run):
    client = TestClient(create_app(translation_run))
    hostile = "</script><b>\u2028<!--"  # within the 23 tokens the model reads
    for text in ("hello", hostile):
        answer = client.post("/api/infer", json={"text": text, "beam": 2}).json()
        response = client.post("/api/export", json={"request": {"text": text, "beam": 2},
                                                    "ui": {"view": "cross-attention", "layer": 1, "head": 0}})
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
        html = response.text
        for reference in ("http://", "https://", 'src="/', "href=\"/", "/static/", "url("):
            assert reference not in html, reference
        assert html.count("<script") == 4 and html.count("</script>") == 4  # the data cannot close its script
        assert "<style>" in html and "function heatmap" in html and "function renderNext" in html
        assert "function tokenLines" in html
        saved = snapshot_of(html)
        assert saved["result"] == answer and saved["request"]["text"] == text
        assert saved["ui"] == {"view": "cross-attention", "layer": 1, "head": 0}
        assert saved["info"]["task"] == "translate" and saved["positional"]["kind"] == "sinusoidal"
    client = TestClient(create_app(lm_run))
    html = client.post("/api/export", json={"request": {"text": "the cat", "max_new_tokens": 3},
                                            "next": {"text": "the cat", "temperature": 0.5, "top_k": 4}}).text
    expected = client.post("/api/next", json={"text": "the cat", "temperature": 0.5, "top_k": 4}).json()
    assert snapshot_of(html)["next"] == expected


@pytest.mark.parametrize("temperature, k", [(1.0, 5), (0.5, 3), (2.0, 19)])
def test_next_token_probabilities_are_the_models_softmax(lm_run, temperature, k):
    import torch

    from seqlab.tasks.language_model import LanguageModel

    lm = LanguageModel.load(lm_run)
    ids = lm.tokenizer.encode("the cat").ids
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids]))[0]  # (T, V)
    expected = torch.softmax(logits.double() / temperature, dim=-1)
    client = TestClient(create_app(lm_run))
    answer = client.post("/api/next", json={"text": "the cat", "temperature": temperature, "top_k": k}).json()
    assert answer["tokens"] == list("the cat") and len(answer["positions"]) == len(ids)
    for t, top in enumerate(answer["positions"]):
        assert len(top) == k  # top-k keeps k
        assert [row["p"] for row in top] == sorted((row["p"] for row in top), reverse=True)
        for row in top:
            assert row["p"] == pytest.approx(expected[t, row["id"]].item(), abs=1e-6)
        kth = torch.sort(expected[t], descending=True).values[k - 1].item()
        assert top[-1]["p"] == pytest.approx(kth, abs=1e-6)  # the k most probable, no other
    # One generation step: the chosen token appended, its distribution computed over the longer input.
    chosen = answer["positions"][-1][0]
    stepped = client.post("/api/next", json={"text": "the cat", "temperature": temperature, "top_k": k,
                                             "append": chosen["id"]}).json()
    assert stepped["text"] == "the cat" + chosen["text"] and len(stepped["positions"]) == len(ids) + 1
    assert client.post("/api/next", json={"text": "the cat", "temperature": 0}).status_code == 422
    assert client.post("/api/next", json={"text": "the cat", "append": 10**6}).status_code == 422
    translation = client.post("/api/next", json={"text": "x" * 200})
    assert translation.status_code == 422 and "context" in translation.json()["detail"]


QUICK = ["--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.eval_every=10",
         "--max-steps", "10"]


def test_translation_run_shows_every_attention_kind(translation_run):
    client = TestClient(create_app(translation_run))
    info = client.get("/api/run").json()
    assert info["task"] == "translate" and info["model"] == "Transformer"
    result = client.post("/api/infer", json={"text": "hello", "beam": 2}).json()
    assert isinstance(result["output"], str)
    views = result["views"]
    assert set(views) == {"encoder self-attention", "decoder self-attention", "cross-attention"}
    cross = views["cross-attention"]
    layers, heads = len(cross["weights"]), len(cross["weights"][0])
    assert (layers, heads) == (2, 2)
    assert len(cross["weights"][0][0]) == len(cross["queries"]) and len(cross["weights"][0][0][0]) == len(cross["keys"])
    assert cross["keys"] == list("hello")
    for row in cross["weights"][1][0]:
        assert sum(row) == pytest.approx(1.0, abs=1e-3)  # each query's weights are a distribution
    assert client.get("/").status_code == 200 and "seqlab explore" in client.get("/").text
    assert client.get("/api/positional").json()["kind"] == "sinusoidal"
    assert any("val_loss" in row for row in client.get("/api/curves").json())


def model_ids(run, shown: list[str]) -> list[int]:
    """The token ids behind the tokens a view shows (the run's own tokenizer)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(run / "tokenizer.json"))
    return [tokenizer.token_to_id(t) for t in shown]


def test_language_model_run_and_its_limits(lm_run):
    client = TestClient(create_app(lm_run))
    result = client.post("/api/infer", json={"text": "the cat", "max_new_tokens": 5}).json()
    view = result["views"]["causal self-attention"]
    assert len(view["queries"]) == len("the cat") + 5
    first_query = view["weights"][0][0][0]
    assert first_query[0] == pytest.approx(1.0) and sum(first_query[1:]) == 0  # causal: sees only itself
    # Q·Kᵀ/√d_k of the first layer, from its projection matrices by hand; None (masked) above the diagonal
    import torch

    from seqlab.explore.inspect import Inspector

    model = Inspector(lm_run).model
    ids = torch.tensor([model_ids(lm_run, view["queries"])])
    layer, T = model.layers[0], len(view["queries"])
    with torch.no_grad():
        x = model.position(model.embedding(ids), 0)
        h = layer.norm1(x) if layer.norm_first else x
        attention = layer.self_attn
        q = (h @ attention.w_q.weight.T + attention.w_q.bias).view(1, T, 2, 8).transpose(1, 2)  # (B, H, T, d_head)
        k = (h @ attention.w_k.weight.T + attention.w_k.bias).view(1, T, 2, 8).transpose(1, 2)
        expected = (q @ k.transpose(-1, -2))[0] / 8 ** 0.5  # (H, T, T)
    scores = view["scores"][0]
    for head in range(2):
        for i in range(T):
            assert scores[head][i][i + 1:] == [None] * (T - i - 1)
            assert scores[head][i][: i + 1] == pytest.approx(expected[head, i, : i + 1].tolist(), abs=2e-3)
            weights = torch.tensor(scores[head][i][: i + 1]).softmax(-1)
            assert weights.tolist() == pytest.approx(view["weights"][0][head][i][: i + 1], abs=2e-3)
    too_long = client.post("/api/infer", json={"text": "x" * 80})
    assert too_long.status_code == 422 and "context" in too_long.json()["detail"]
    assert client.post("/api/infer", json={"text": "   "}).status_code == 422
    huge = client.post("/api/infer", content=b'{"text": "' + b"a" * 3_000_000 + b'"}',
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413




def test_classifier_forecaster_and_vit_runs(tmp_path):
    import base64
    import io

    import torch

    import numpy as np
    import pandas as pd
    from PIL import Image

    rows = [f"{w} film,{'pos' if w == 'good' else 'neg'}" for w in ["good", "bad"] * 30]
    (tmp_path / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    assert main(["train", "classify", "--csv", str(tmp_path / "reviews.csv"), "--out", str(tmp_path / "cls"),
                 "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
                 "--set", "model.pool='cls'", *QUICK]) == 0
    client = TestClient(create_app(tmp_path / "cls"))
    assert client.get("/api/example").json()["text"] in {"good film", "bad film"}  # a test text of the run's
    result = client.post("/api/infer", json={"text": "good film"}).json()
    assert set(result["probabilities"]) == {"pos", "neg"}
    assert result["views"]["self-attention"]["keys"] == ["[CLS]", "good", "film"]
    scores, weights = (result["views"]["self-attention"][key][0][0] for key in ("scores", "weights"))
    for row, expected in zip(scores, weights):  # no mask: every logit finite, and softmax gives the weights
        assert all(v is not None for v in row)
        assert torch.tensor(row).softmax(-1).tolist() == pytest.approx(expected, abs=2e-3)

    n = 400
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"),
                          "OT": np.sin(np.arange(n) * 2 * np.pi / 24)})
    frame.to_csv(tmp_path / "series.csv", index=False)
    assert main(["train", "forecast", "--csv", str(tmp_path / "series.csv"), "--model", "patch", "--input-len", "48",
                 "--horizon", "12", "--split", "0.7,0.1,0.2", "--out", str(tmp_path / "fc"),
                 "--set", "model.patch_len=8", "--set", "model.stride=8", *QUICK]) == 0
    client = TestClient(create_app(tmp_path / "fc"))
    example = client.get("/api/example").json()
    start = int(400 * 0.7) - 48  # the validation rows begin input_len rows before the 70 % mark
    assert pd.Timestamp(example["text"]) == frame["date"][start + 48 - 1]
    assert client.post("/api/infer", json={"text": example["text"]}).status_code == 200
    result = client.post("/api/infer", json={"text": "2024-01-10 00:00"}).json()
    assert result["series"]["times"][47] == "2024-01-10 00:00:00" and result["series"]["times"][48] == "2024-01-10 01:00:00"
    assert len(result["series"]["history"]) == 48 and len(result["series"]["forecast"]) == 12
    patches = result["views"]["attention over past patches"]["keys"]  # labelled by the steps they cover
    assert len(patches) == (48 - 8) // 8 + 2  # the input, 2024-01-08 01:00 to 2024-01-10 00:00, cut every 8 steps
    assert patches[:3] == ["01-08 01:00–08:00", "01-08 09:00–16:00", "01-08 17:00–01-09 00:00"]
    assert patches[-1] == "01-10 00:00"  # the last patch: the padding that repeats the last step
    assert client.post("/api/infer", json={"text": "2024-01-01 03:00"}).status_code == 422  # too early

    for name in ("a", "b"):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), color=40 if name == "a" else 220).save(tmp_path / "img" / name / f"{i}.png")
    assert main(["train", "vision", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "vit"),
                 "--set", "data.image_size=8", "--set", "data.test_fraction=0.34", "--set", "data.valid_fraction=0.25",
                 "--set", "model.d_model=16", "--set", "model.n_layers=1", *QUICK]) == 0
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=200).save(buffer, format="PNG")
    upload = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    client = TestClient(create_app(tmp_path / "vit"))
    example = client.get("/api/example").json()
    shown = Image.open(io.BytesIO(base64.b64decode(example["image"].split(",", 1)[1])))
    assert shown.size == (8, 8) and set(np.asarray(shown).ravel().tolist()) <= {40, 220}  # one of the run's own images
    assert client.post("/api/infer", json={"image": example["image"]}).status_code == 200
    result = client.post("/api/infer", json={"image": upload}).json()
    rollout = result["views"]["attention rollout over patches"]["weights"]
    assert len(rollout[0][0]) == 4 and len(rollout[0][0][0]) == 4  # 8×8 image, 2×2 patches: a 4×4 grid
    bad = client.post("/api/infer", json={"image": "data:image/png;base64,bm90IGFuIGltYWdl"})
    assert bad.status_code == 422 and "not an image" in bad.json()["detail"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("run, requests", [
    ("translation_run", [{"text": t, "beam": b} for t, b in [("hello", 2), ("cat", None), ("zebra", 3), ("moon", 1)]]),
    ("lm_run", [{"text": t, "max_new_tokens": n} for t, n in [("the cat", 5), ("on", 12), ("the dog sat", 3), ("a", 8)]]),
])
def test_requests_served_at_once_each_get_their_own_attention(run, requests, request):
    """FastAPI serves requests on a thread pool over one model: the weights a response shows must be
    those its own call computed, never a neighbour's (inputs of different lengths: a mix-up shows)."""
    from concurrent.futures import ThreadPoolExecutor

    with TestClient(create_app(request.getfixturevalue(run))) as client:
        def infer(body: dict) -> dict:
            response = client.post("/api/infer", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        alone = [infer(body) for body in requests]
        assert len({str(result["views"]) for result in alone}) == len(requests)  # the inputs differ
        order = [i % len(requests) for i in range(8 * 3)]  # 8 threads, 3 requests each
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(infer, [requests[i] for i in order]))
    for i, result in zip(order, together):
        assert result == alone[i], f"request {requests[i]} answered with another request's weights"


def test_no_request_reads_a_file_by_its_path(translation_run):
    client = TestClient(create_app(translation_run))
    assert client.get("/static/app.js").status_code == 200
    for path in ("/static/../../run.json", "/static/..%2F..%2Frun.json", "/static/run.json",
                 "/static/%2Fetc%2Fpasswd", "/run.json", "/metrics.jsonl"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "task" not in response.text


def test_explore_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    code = main(["explore", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "not a seqlab run" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "reviews.csv").write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 10)
    assert main(["train", "classify", "--csv", str(tmp_path / "reviews.csv"), "--model", "nbsvm",
                 "--out", str(tmp_path / "nbsvm")]) == 0
    capsys.readouterr()
    code = main(["explore", str(tmp_path / "nbsvm")])
    err = capsys.readouterr().err
    assert code == 2 and "no attention to show" in err and len(err.strip().splitlines()) == 1
    assert main(["compare", "classify", "--csv", str(tmp_path / "reviews.csv"), "--models", "nbsvm,tfidf",
                 "--out", str(tmp_path / "cmp")]) == 0
    capsys.readouterr()
    code = main(["explore", str(tmp_path / "cmp")])
    assert code == 2 and f"seqlab explore {tmp_path / 'cmp'}/MODEL" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Served:
    """A run's explorer on a free local port, in a thread, for the browser tests."""

    def __init__(self, run) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(run), host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])


def fits_the_window(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.timeout(120)
def test_the_page_in_a_real_browser(translation_run, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test tries: apt-get install chromium); browser test skipped")
    from playwright.sync_api import sync_playwright

    with Served(translation_run) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_function("document.getElementById('run-info').textContent.includes('parameters')")
        page.wait_for_selector("#head-view canvas")  # the run's own example, shown without typing
        example = TestClient(create_app(translation_run)).get("/api/example").json()["text"]
        assert page.locator("#input").input_value() == example
        page.fill("#input", "hello")
        page.click("#run")
        expected = TestClient(create_app(translation_run)).post("/api/infer", json={"text": "hello", "beam": 1}).json()
        page.wait_for_function(f"document.getElementById('output').textContent === {expected['output']!r}")
        assert page.locator("#head-view canvas:not(.lines)").count() == 2  # 2 heads in the chosen layer
        lines = page.locator("#head-view canvas.lines")  # and beside each map, its token-to-token lines
        assert lines.count() == 2
        encoder = expected["views"]["encoder self-attention"]
        lines.nth(1).hover(position={"x": 4, "y": 8 + 16 // 2})  # head 2's first query token, "h"
        strongest = sorted(zip(encoder["keys"], encoder["weights"][0][1][0]), key=lambda kw: -kw[1])[:3]
        reads = ", ".join(f"{k} {w:.3f}" for k, w in strongest)
        assert lines.nth(1).get_attribute("title") == f"L1 H2: h reads {reads}"
        assert page.evaluate("state.focus") == {"side": "query", "index": 0}  # every head's lines keep h's
        assert page.locator("#scores-box").is_hidden()  # a translation's views carry no logits
        assert page.locator("#model-view canvas").count() == 4  # 2 layers × 2 heads
        captions = page.locator("#model-view figcaption").all_inner_texts()
        assert captions == ["L1 H1", "L1 H2", "L2 H1", "L2 H2"]
        thumb = page.locator("#model-view canvas").nth(3)
        thumb.hover(position={"x": 2, "y": 2})  # the top-left cell: query 1, key 1
        value = expected["views"]["encoder self-attention"]["weights"][1][1][0][0]
        assert thumb.get_attribute("title") == f"L2 H2: h → h: {value:.3f}"
        thumb.click()  # layer 2, head 2
        assert page.locator("#layer").input_value() == "1"
        assert page.locator(".head.selected").count() == 1
        page.select_option("#view", "cross-attention")
        page.locator("#head-view canvas").first.click(position={"x": 60, "y": 75})  # a query row
        page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
        page.click("button[data-tab=training]")
        page.wait_for_function("document.getElementById('pe-kind').textContent.length > 0")
        browser.close()
    assert (tmp_path / "explore.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory):
    """Tiny runs of the four other tasks: classify, vision (the bundled digits), mlm and detect."""
    root = tmp_path_factory.mktemp("explore-more")
    rows = [f"a {w} film,{'pos' if w == 'good' else 'neg'}" for w in ["good", "bad", "fine", "dull"] * 15]
    (root / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (root / "corpus.txt").write_text("the cat sat on the mat and the dog sat on the log .\n" * 300)
    small = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=2", *QUICK]
    commands = {"classify": ["--csv", root / "reviews.csv", "--set", "model.pool='cls'", *small],
                "vision": ["--set", "data.image_size=8", *small],
                "mlm": ["--text", root / "corpus.txt", "--set", "data.block_size=30", "--set", "data.vocab_size=60", *small],
                "detect": ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_encoder_layers=1",
                           "--set", "model.n_decoder_layers=2", "--set", "model.d_ff=32", "--set", "model.n_queries=5",
                           "--set", "model.backbone_width=4", "--set", "data.digits_train=8", "--set", "data.digits_valid=2",
                           "--set", "data.digits_test=2", "--set", "data.image_size=64", "--set", "train.batch_size=4",
                           *QUICK]}
    for task, args in commands.items():
        assert main(["train", task, *map(str, args), "--out", str(root / task)]) == 0, task
    return {task: root / task for task in commands}


@pytest.mark.timeout(420)
def test_no_page_is_wider_than_the_window(translation_run, lm_run, forecast_run, other_runs, tmp_path):
    """Each task's page, opened on its example at two window sizes, scrolls only down; the language
    model's next-token view answers its controls and its chosen head shows Q·Kᵀ before and after the
    softmax. SEQLAB_SCREENSHOTS=DIR keeps the docs' pictures."""
    import os

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test tries: apt-get install chromium); browser test skipped")
    from playwright.sync_api import sync_playwright

    keep = os.environ.get("SEQLAB_SCREENSHOTS")
    runs = {"translation": translation_run, "lm": lm_run, "forecast": forecast_run, **other_runs}
    with sync_playwright() as p:
        browser = launch(p)
        for name, run in runs.items():
            with Served(run) as url:
                for width, height in ((1280, 800), (800, 600)):
                    page = browser.new_page(viewport={"width": width, "height": height})
                    errors = []
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    page.goto(url)
                    page.wait_for_selector("#model-view canvas")
                    assert page.locator("#error").inner_text() == "", name
                    if name in ("lm", "classify", "mlm"):  # self-attention with its logits
                        assert page.locator("#scores-box").is_visible() and page.locator("#scores-maps canvas").count() == 2
                        page.locator("#model-view canvas").nth(1).click()  # layer 1, head 2
                        assert page.locator("#scores-maps figcaption").first.inner_text() == "Q·Kᵀ/√d_k, layer 1, head 2"
                    if name == "lm":  # causal: the top right cell of the logits is masked
                        scores = page.locator("#scores")
                        box = scores.bounding_box()
                        def first_cell(points):  # the first point over a cell: its title names the pair
                            for x, y in points:
                                scores.hover(position={"x": x, "y": y})
                                if "→" in scores.get_attribute("title"):
                                    return x, scores.get_attribute("title")
                            raise AssertionError("no cell under the pointer")

                        w, h = int(box["width"]), int(box["height"])
                        x, last = first_cell((x, h - 2) for x in range(w - 1, 0, -2))  # the last query, last key
                        assert not last.endswith(": masked")  # the last query sees every key
                        _, first = first_cell((x, y) for y in range(0, h, 2))  # up the last key's column
                        assert first.endswith(": masked")  # the first query sees only itself
                    if name == "forecast":  # the 50 % and 80 % intervals, shaded without a script error
                        assert sorted(page.evaluate("Object.keys(state.result.series.bands)")) == ["50", "80"]
                    if name == "vision":
                        assert page.locator("#overlay").is_visible() and page.locator("#head-view canvas.lines").count() == 0
                    if name == "detect":  # the image with its boxes; a click on a box opens its query's attention
                        assert page.locator("#overlay").is_visible() and page.locator("#head-view canvas.lines").count() == 0
                        views = page.locator("#view option").all_inner_texts()
                        assert views and all(v.startswith(f"box {k + 1} (") for k, v in enumerate(views))
                        # Choose the last box in the list, then click the centre of the first: the smallest box
                        # under that point (the first's own, or one inside it) is chosen.
                        page.select_option("#view", views[-1])
                        page.dispatch_event("#view", "change")
                        first = page.evaluate("state.result.views[Object.keys(state.result.views)[0]].box")
                        size = page.locator("#overlay").bounding_box()
                        page.locator("#overlay").click(position={"x": first[0] * size["width"], "y": first[1] * size["height"]})
                        chosen = page.evaluate("state.result.views[state.view].box")
                        assert abs(chosen[0] - first[0]) <= chosen[2] / 2 and abs(chosen[1] - first[1]) <= chosen[3] / 2
                        if len(views) == 1 or chosen == first:
                            assert page.locator("#view").input_value() == views[0]
                    if name == "lm":
                        page.wait_for_selector("#next-table tr")
                        assert page.locator("#next-table tr").count() == 10  # top-k 10 by default
                        page.fill("#top-k", "4")
                        page.dispatch_event("#top-k", "change")
                        page.wait_for_function("document.querySelectorAll('#next-table tr').length === 4")
                        before = page.locator("#input").input_value()
                        page.click("#step-greedy")
                        page.wait_for_function(f"document.getElementById('input').value.length === {len(before) + 1}")
                        page.locator("#next-tokens .tok").nth(3).click()
                        assert "position 4" in page.locator("#next-caption").inner_text()
                    if name == "forecast":
                        assert page.locator("#series").is_visible()
                    assert fits_the_window(page), f"{name} at {width}×{height} is wider than the window"
                    page.wait_for_timeout(100)  # the overlay draws when its image has loaded
                    assert errors == [], (name, errors)
                    page.click("button[data-tab=training]")
                    page.wait_for_function("document.getElementById('pe-kind').textContent.length > 0")
                    assert fits_the_window(page), f"{name}'s training tab at {width}×{height}"
                    page.click("button[data-tab=attention]")
                    if keep and width == 1280:
                        page.screenshot(path=os.path.join(keep, f"explore-{name}.png"), full_page=True)
                    page.close()
        browser.close()


def test_a_saved_page_opens_without_the_server(translation_run, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test tries: apt-get install chromium); browser test skipped")
    from playwright.sync_api import sync_playwright

    client = TestClient(create_app(translation_run))
    html = client.post("/api/export", json={"request": {"text": "hello"}, "ui": {"view": "cross-attention"}}).text
    (tmp_path / "saved.html").write_text(html, encoding="utf-8")
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        asked = []
        page.on("request", lambda request: asked.append(request.url))
        page.goto((tmp_path / "saved.html").as_uri())
        page.wait_for_selector("#model-view canvas")
        assert page.locator("#view").input_value() == "cross-attention"
        assert page.locator("#output").inner_text() == snapshot_of(html)["result"]["output"]
        assert page.locator("#run").is_disabled() and page.locator("#error").inner_text() == ""
        browser.close()
    assert [u for u in asked if not u.startswith("file:")] == []  # it asked nothing of any server


def test_the_next_token_view_reads_the_ids_it_gave_while_their_text_is_unchanged():
    """Byte-level BPE can encode a text back into other tokens than were generated ("a"+"b" -> "ab"):
    the ids of the last answer are read as they are while they still decode to the text shown."""
    import torch

    from seqlab.tasks import views

    class Tokenizer:  # "ab" encodes as one token (3); the pieces "a" (1) and "b" (2) decode to it too
        pieces = {0: "?", 1: "a", 2: "b", 3: "ab"}

        def get_vocab_size(self):
            return 4

        def decode(self, ids):
            return "".join(self.pieces[i] for i in ids)

        def id_to_token(self, i):
            return self.pieces[i]

    class Model(torch.nn.Module):
        max_len = 16

        def forward(self, ids):
            seen.append(ids[0].tolist())
            return torch.zeros(1, ids.size(1), 4)

    class LM:
        tokenizer, model, device = Tokenizer(), Model(), "cpu"

        def encode_prompt(self, text):
            return torch.tensor([[3] if text == "ab" else [1]])

    seen = []
    assert views.next_tokens(LM(), "ab", 1.0, 2, given=[1, 2])["ids"] == [1, 2]  # as generated
    assert views.next_tokens(LM(), "ab", 1.0, 2, given=[1])["ids"] == [3]  # the text was edited: encoded
    assert views.next_tokens(LM(), "ab", 1.0, 2)["ids"] == [3]
    assert seen == [[1, 2], [3], [3]]
    with pytest.raises(UserError, match="token id 9"):
        views.next_tokens(LM(), "ab", 1.0, 2, given=[9])

"""The explorer's web server (FastAPI). It serves the page's three files from the package and answers
JSON requests about one run; it never reads a path that a request names."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from .export import standalone_page
from .inspect import Inspector

MAX_REQUEST_BYTES = 2 * 1024 * 1024  # an uploaded image, base64-encoded, fits
STATIC = {"app.js": "text/javascript", "next.js": "text/javascript", "heads.js": "text/javascript",
          "style.css": "text/css"}


class InferRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # true is no beam width, "4" no count: 422, not a guess

    text: str = Field(default="", max_length=4000)
    beam: int | None = Field(default=None, ge=1, le=16)
    max_new_tokens: int = Field(default=40, ge=1, le=512)
    image: str | None = Field(default=None, max_length=MAX_REQUEST_BYTES)  # a data: URL (vision runs)


class NextRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    text: str = Field(default="", max_length=4000)
    temperature: float = Field(default=1.0, ge=0.05, le=10.0)
    top_k: int = Field(default=10, ge=1, le=100)
    append: int | None = Field(default=None, ge=0)  # a token id to add at the end: one generation step
    # the ids of the last answer, used while ``text`` is still their text: a generated token stays the
    # token it was, where encoding the text again could merge it with its neighbour or split it
    ids: list[int] | None = Field(default=None, max_length=4096)


class ExportRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    request: InferRequest
    next: NextRequest | None = None  # a language model's next-token view, as shown
    ui: dict[str, int | str | None] = Field(default_factory=dict, max_length=16)  # chosen view, layer, head, row


class BodyLimit:
    """Refuses (413) a request body over ``limit`` bytes, whether it declares a Content-Length or
    arrives in chunks without one, and (400) one that is not UTF-8; the body is read here, at most
    ``limit`` bytes of it, and handed on."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self.refuse(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self.refuse(scope, receive, send)
        try:
            body.decode("utf-8")  # JSON is UTF-8 (RFC 8259 §8.1); FastAPI only says "error parsing the body"
        except UnicodeDecodeError as error:
            return await JSONResponse({"detail": f"the request body is not UTF-8 (byte {error.start})"},
                                      status_code=400)(scope, receive, send)
        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def refuse(self, scope, receive, send) -> None:
        response = JSONResponse({"error": f"request larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


def create_app(run: str | Path) -> FastAPI:
    inspector = Inspector(run)  # a bad run directory fails here, before the server starts
    app = FastAPI(title="seqlab explore", docs_url=None, redoc_url=None, openapi_url=None)
    static = resources.files("seqlab.explore") / "static"

    app.add_middleware(BodyLimit, limit=MAX_REQUEST_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes each bad input back, and one that UTF-8 cannot encode (a lone
        # surrogate, which JSON can spell as "\\ud800") would turn the 422 into a 500: say where and
        # what, without the input.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in error.errors())
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (static / "index.html").read_text(encoding="utf-8")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404)
        return Response((static / name).read_text(encoding="utf-8"), media_type=STATIC[name])

    @app.get("/api/run")
    def describe() -> dict:
        return inspector.describe()

    @app.get("/api/example")
    def example() -> dict:
        return inspector.example()

    @app.post("/api/infer")
    def infer(request: InferRequest) -> dict:
        try:
            image = None
            if request.image:
                import base64
                import binascii

                try:
                    image = base64.b64decode(request.image.split(",", 1)[-1], validate=True)
                except binascii.Error:
                    raise UserError("the image upload is not valid base64") from None
            return inspector.infer(request.text, request.beam, request.max_new_tokens, image)
        except UserError as error:
            raise HTTPException(422, str(error)) from None

    @app.post("/api/next")
    def next_tokens(request: NextRequest) -> dict:
        try:
            return inspector.next_tokens(request.text, request.temperature, request.top_k, request.append,
                                         request.ids)
        except UserError as error:
            raise HTTPException(422, str(error)) from None

    @app.post("/api/export", response_class=HTMLResponse)
    def export(request: ExportRequest) -> Response:
        """The view as one standalone HTML file: the page, its script and style, and every answer it
        shows, inline (nothing to fetch from this server or elsewhere)."""
        snapshot = {"info": inspector.describe(), "request": request.request.model_dump(), "ui": request.ui,
                    "result": infer(request.request), "positional": inspector.positional(),
                    "curves": inspector.curves()}
        if request.next is not None:
            snapshot["next"] = next_tokens(request.next)
        html = standalone_page(static, snapshot)
        return HTMLResponse(html, headers={"Content-Disposition": 'attachment; filename="seqlab-explore.html"'})

    @app.get("/api/positional")
    def positional() -> dict:
        return inspector.positional()

    @app.get("/api/curves")
    def curves() -> list:
        return inspector.curves()

    return app


def serve(run: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    import sys

    import uvicorn

    app = create_app(run)
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"warning: serving on {host}: anyone who can reach this machine can use the model\n")
    print(f"seqlab explore: http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")

"""The playground's JSON API and page, as a FastAPI app (:func:`create_app`).

Routes:
    ``GET /``: the page. ``GET /static/...``: its script and style sheet.
    ``GET /vendor/plotly.min.js``: Plotly.js from the installed plotly package (no CDN).
    ``GET /api/openapi.json``: the API's schema.
    ``GET /api/problems``: the landscapes: name, f*, minima, bounds, start, description.
    ``GET /api/methods``: the methods with their options and defaults.
    ``GET /api/datasets``: the data mode's data sets (the bundled ones' features).
    ``POST /api/landscape``: ``{problem | formula, n, bounds}`` -> f on an n x n grid.
    ``POST /api/race``: ``{problem | formula, start, racers: [{method, options, schedule,
    clip_grad_norm}], steps, noise, seed}`` -> per racer the iterates, f, gradient norm,
    learning rate, status, message, diagnoses and the code that reproduces it.
    ``POST /api/train``: ``{data, model, racers: [{method, options, batch_size}], epochs,
    seed, l1, l2, schedule, clip_grad_norm, early_stopping}`` -> the data's points and per
    racer the loss and test loss per epoch, the decision boundary, status, message,
    diagnoses and code.

Every bad request is answered 4xx with ``{"error": "<field>: <what is wrong>", "field":
...}`` on one line: 422 for a value (unknown problem or method, bad option, formula,
NaN start), 413 for a body over :data:`MAX_BODY` bytes, 411 for a body without a length.

Example:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> client.post("/api/race", json={"problem": "rosenbrock", "racers": [{"method": "adam"}]})
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from descend.extras import require

require("fastapi", "playground", feature="descend playground")  # one line if it is missing

import plotly  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import FileResponse, JSONResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator  # noqa: E402
from pydantic_core import to_json  # noqa: E402
from starlette.types import ASGIApp, Receive, Scope, Send  # noqa: E402

from descend.playground.datasets import MAX_POINTS, DataSet, dataset_table, make_dataset  # noqa: E402
from descend.playground.formula import MAX_FORMULA_LENGTH  # noqa: E402
from descend.playground.landscape import MAX_GRID, Landscape, get_landscape, grid, problem_names  # noqa: E402
from descend.playground.race import (  # noqa: E402
    MAX_RACERS,
    MAX_STEPS,
    Racer,
    RacerError,
    StartError,
    method_table,
    race,
)
from descend.playground.training import (  # noqa: E402
    MAX_EPOCHS,
    ModelSpec,
    Trainer,
    TrainerError,
    Training,
    train,
)
from descend.problems import PROBLEMS  # noqa: E402

__all__ = ["MAX_BODY", "create_app"]

#: the largest request body accepted, in bytes
MAX_BODY = 64 * 1024

#: racers of one training request (each trains a network: slower than a racer's step)
MAX_TRAINERS = 4

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(os.path.dirname(plotly.__file__)) / "package_data" / "plotly.min.js"

OptionValue = (
    bool | int | FiniteFloat | Annotated[str, Field(max_length=64)] | list[FiniteFloat] | None
)


class LandscapeChoice(BaseModel):
    """Which landscape: a registered problem or a formula in x and y."""

    model_config = ConfigDict(extra="forbid")

    problem: Annotated[str, Field(max_length=100)] | None = None
    formula: Annotated[str, Field(max_length=MAX_FORMULA_LENGTH)] | None = None
    bounds: Annotated[list[Annotated[list[FiniteFloat], Field(min_length=2, max_length=2)]],
                      Field(min_length=2, max_length=2)] | None = None  # fmt: skip

    @model_validator(mode="after")
    def _one_landscape(self) -> LandscapeChoice:
        if (self.problem is None) == (self.formula is None):
            raise ValueError("give exactly one of problem (a name) or formula (in x and y)")
        return self


class LandscapeRequest(LandscapeChoice):
    """A landscape to draw, on an n x n grid."""

    n: Annotated[int, Field(ge=2, le=MAX_GRID)] = 80


class RacerRequest(BaseModel):
    """One racer: a method name and its options (``lr``, ``momentum``, ``betas``, ...)."""

    model_config = ConfigDict(extra="forbid")

    method: Annotated[str, Field(max_length=40)]
    options: Annotated[dict[Annotated[str, Field(max_length=40)], OptionValue],
                       Field(max_length=20)] = Field(default_factory=dict)  # fmt: skip


#: a learning-rate schedule by name (:data:`descend.train.schedules.NAMES`)
ScheduleName = Literal["step", "exponential", "cosine", "warmup_cosine", "one_cycle", "plateau"]

#: a gradient clipping norm
ClipNorm = Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]


class LandscapeRacerRequest(RacerRequest):
    """A racer on a landscape: its method and options, and the learning-rate schedule and
    gradient clipping around its steps (``descend.minimize``'s; first-order methods)."""

    schedule: ScheduleName | None = None
    clip_grad_norm: ClipNorm | None = None


class RaceRequest(LandscapeChoice):
    """A race: racers from one start on one landscape, ``steps`` iterations at most."""

    start: Annotated[list[FiniteFloat], Field(min_length=2, max_length=2)] | None = None
    racers: Annotated[list[LandscapeRacerRequest], Field(min_length=1, max_length=MAX_RACERS)]
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 200
    noise: Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)] = 0.0
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0


class DataRequest(BaseModel):
    """A data set: a generated one (n points, jitter, seed) or two features of a bundled one."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=40)] = "moons"
    n: Annotated[int, Field(ge=10, le=MAX_POINTS)] = 200
    noise: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = 0.1
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    features: Annotated[list[Annotated[int, Field(ge=0, le=100)]],
                        Field(min_length=2, max_length=2)] = [0, 1]  # fmt: skip
    test_fraction: Annotated[float, Field(ge=0.0, le=0.5, allow_inf_nan=False)] = 0.25


class ModelRequest(BaseModel):
    """Logistic regression, or an MLP of ``layers`` x ``width`` with an activation."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["logistic", "mlp"] = "mlp"
    layers: Annotated[int, Field(ge=1, le=4)] = 1
    width: Annotated[int, Field(ge=1, le=64)] = 8
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = "tanh"


class TrainerRequest(RacerRequest):
    """A racer of the data mode: a method, its options and its batch size (1 to the full set)."""

    batch_size: Annotated[int, Field(ge=1, le=MAX_POINTS)] | Literal["full"] = "full"


class TrainRequest(BaseModel):
    """Racers training one model on one data set by ``descend.fit``."""

    model_config = ConfigDict(extra="forbid")

    data: DataRequest = Field(default_factory=DataRequest)
    model: ModelRequest = Field(default_factory=ModelRequest)
    racers: Annotated[list[TrainerRequest], Field(min_length=1, max_length=MAX_TRAINERS)]
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 50
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    l1: Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)] = 0.0
    l2: Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)] = 0.0
    schedule: ScheduleName | None = None
    clip_grad_norm: ClipNorm | None = None
    early_stopping: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] | None = None
    grid: Annotated[int, Field(ge=10, le=100)] = 60


class FieldError(ValueError):
    """A request value that the library refused, with the field it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def create_app() -> ASGIApp:
    """The playground app: the page, its assets and the JSON API, behind a body-size limit."""
    # no Swagger or ReDoc pages: they load their scripts from a CDN; the schema is served
    app = FastAPI(
        title="descend playground", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json"
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        # a union's member tags (``constrained-int``, ``literal['full']``) are no fields
        loc = [
            str(p)
            for p in first.get("loc", ())
            if isinstance(p, int) or (p != "body" and str(p).isidentifier())
        ]
        field = ".".join(loc) or "body"
        message = first.get("msg", "invalid value")
        return _error(422, field, f"{field}: {message}")

    @app.exception_handler(FieldError)
    async def _refused(request: Request, exc: FieldError) -> JSONResponse:
        return _error(422, exc.field, f"{exc.field}: {exc}")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/problems")
    def problems() -> list[dict[str, Any]]:
        """Every landscape: its name, dimension, f*, minima, bounds, start, description."""
        return [_landscape_meta(get_landscape(problem=name)) for name in problem_names()]

    @app.get("/api/methods")
    def methods() -> list[dict[str, Any]]:
        """Every method with its summary and options (name, default)."""
        return method_table()

    @app.get("/api/datasets")
    def datasets() -> list[dict[str, Any]]:
        """Every data set of the data mode, with the features of the bundled ones."""
        return dataset_table()

    @app.post("/api/landscape")
    def landscape(request: LandscapeRequest) -> ArraysResponse:
        """f on an n x n grid over the landscape's bounds, with what to mark on it."""
        land = _landscape(request)
        try:
            values = grid(land, request.n)
        except ValueError as exc:
            raise FieldError("formula" if land.formula else "problem", str(exc)) from None
        return ArraysResponse({**_landscape_meta(land), **values})

    @app.post("/api/race")
    def race_route(request: RaceRequest) -> ArraysResponse:
        """Every racer's run from the start: iterates, f, gradient norm, status, message,
        diagnoses and the code that reproduces it."""
        land = _landscape(request)
        start = request.start if request.start is not None else list(land.start)
        racers = [
            Racer(r.method, dict(r.options), r.schedule, r.clip_grad_norm) for r in request.racers
        ]
        try:
            runs = race(
                land, start, racers, steps=request.steps, noise=request.noise, seed=request.seed
            )
        except RacerError as exc:
            raise FieldError(f"racers.{exc.index}", str(exc)) from None
        except StartError as exc:
            raise FieldError("start", str(exc)) from None
        return ArraysResponse({"landscape": _landscape_meta(land), "start": start, "racers": runs})

    @app.post("/api/train")
    def train_route(request: TrainRequest) -> ArraysResponse:
        """Each racer trains the model on the data set by ``descend.fit``: loss and test
        loss per epoch, the decision boundary, status, message, diagnoses and code."""
        d = request.data
        try:
            data = make_dataset(d.name, n=d.n, noise=d.noise, seed=d.seed,
                                features=d.features, test_fraction=d.test_fraction)  # fmt: skip
        except ValueError as exc:
            field = "data.features" if "features" in str(exc) else "data.name"
            raise FieldError(field, str(exc)) from None
        m = request.model
        trainers = [Trainer(r.method, dict(r.options), r.batch_size) for r in request.racers]
        shared = Training(
            epochs=request.epochs, seed=request.seed, l1=request.l1, l2=request.l2,
            schedule=request.schedule, clip_grad_norm=request.clip_grad_norm,
            early_stopping=request.early_stopping,
        )  # fmt: skip
        try:
            runs = train(data, ModelSpec(m.kind, m.layers, m.width, m.activation), trainers,
                         shared, grid=request.grid)  # fmt: skip
        except TrainerError as exc:
            raise FieldError(f"racers.{exc.index}", str(exc)) from None
        return ArraysResponse({"data": _data_points(data), "racers": runs})

    return BodyLimit(app, MAX_BODY)


def _landscape(request: LandscapeChoice) -> Landscape:
    try:
        return get_landscape(request.problem, request.formula, request.bounds)
    except ValueError as exc:
        field = "problem" if request.problem is not None else "formula"
        if "bounds" in str(exc).split(" ", 1)[0]:
            field = "bounds"
        raise FieldError(field, str(exc)) from None


def _landscape_meta(land: Landscape) -> dict[str, Any]:
    problem = PROBLEMS.get(land.name)
    return {
        "name": land.name,
        "dim": problem.dim if problem is not None else 2,
        "f_min": land.f_min,
        "minima": [list(m) for m in land.minima],
        "bounds": [list(b) for b in land.bounds],
        "start": list(land.start),
        "formula": land.formula,
        "description": land.description,
    }


def _data_points(data: DataSet) -> dict[str, Any]:
    return {
        "name": data.name,
        "X_train": data.X_train.tolist(),
        "y_train": data.y_train.tolist(),
        "X_test": data.X_test.tolist(),
        "y_test": data.y_test.tolist(),
        "classes": data.classes,
        "features": list(data.features),
    }


class ArraysResponse(JSONResponse):
    """A JSON answer of long arrays (a race's iterates, a landscape's grid), written by
    pydantic-core's serializer: ~4 ms for a race of six racers x 1,000 steps where
    ``json.dumps`` takes ~30 ms and FastAPI's ``jsonable_encoder``, which a returned dict
    goes through first, ~95 ms. The content must already be JSON values (``json_values``
    makes them); the numbers read back exactly as ``json.dumps`` writes them."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split()), "field": field}, status_code=status)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes (413) or of unknown length (411) before
    the app reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            refusal = None
            if length is None and b"transfer-encoding" in headers:
                refusal = (411, "a request body needs a Content-Length header")
            elif length is not None and (not length.isdigit() or int(length) > self.limit):
                refusal = (413, f"the request body is over {self.limit} bytes")
            if refusal is not None:
                response = _error(refusal[0], "body", f"body: {refusal[1]}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

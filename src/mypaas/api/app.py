"""The REST API (/api/v1, OpenAPI at /api/v1/openapi.json): parse, call the manager, format.

Errors leave in one shape, ``{"error": "...", "field": "..."}``, with a 4xx status for bad input.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mypaas import __version__
from mypaas.api.access_docs import document_access
from mypaas.api.audit import AuditMiddleware, audit_routes
from mypaas.api.automation import automation_routes
from mypaas.api.backup import backup_routes
from mypaas.api.certs import cert_routes
from mypaas.api.declare import declare_routes
from mypaas.api.deps import User, app_url, field_of, in_thread, instance_dict, json_answer, new_app_team
from mypaas.api.error_docs import document_errors, without_validation_422
from mypaas.api.git import git_routes
from mypaas.api.git_sources import git_source_routes
from mypaas.api.hosts import host_routes
from mypaas.api.identity import identity_routes
from mypaas.api.image_builds import image_build_routes
from mypaas.api.limits import BodyLimits, caps_of, error_headers
from mypaas.api.longpoll import long_poll
from mypaas.api.monitor import monitor_routes
from mypaas.api.multipart import read_multipart
from mypaas.api.previews import preview_request, preview_routes
from mypaas.api.registry_images import registry_image_routes
from mypaas.api.registry_routes import registry_routes
from mypaas.api.schemas import (
    ConfigBody,
    DeployBody,
    DomainBody,
    HttpsBody,
    RollbackBody,
    ScaleBody,
)
from mypaas.api.scoping import narrow_hint, only_seen
from mypaas.api.secrets import decode_values, secret_routes
from mypaas.api.session import session_routes
from mypaas.api.streams import Followed
from mypaas.api.tls import tls_routes
from mypaas.api.volumes import volume_routes
from mypaas.domain import AppSpec, BuildSpec, ServiceSpec
from mypaas.errors import InvalidSpec, MyPaasError, UnknownApp
from mypaas.manager.identity.policy import platform_wide, visible_apps
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform
from mypaas.manager.releases import DeployRequest
from mypaas.settings import Settings
from mypaas.spec.compose import (
    ComposeResult,
    Policy,
    ProjectSource,
    read_compose,
    read_project,
    single_image_spec,
)
from mypaas.spec.hardening import Hardening, harden
from mypaas.uploads import Blob, Uploads, discard
from mypaas.web.dashboard import dashboard_routes
from mypaas.web.status import render_status

MAX_PARTS = 64  # a deploy's uploaded parts: one per build context and per project files source
MAX_FIELDS = 4  # a deploy's form fields: its JSON 'request'


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="MyPaas",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )

    _error_handlers(app)
    v1 = APIRouter(prefix="/api/v1")
    # the token and the body's size are checked before routing reads the body; the audit log sees both
    app.add_middleware(
        BodyLimits,
        platform=platform,
        routes=lambda: [*v1.routes, *app.routes],
        caps=caps_of(platform.settings),
    )
    app.add_middleware(AuditMiddleware, log=platform.audit)
    app.state.platform = platform
    _platform_routes(v1, platform)
    _app_routes(v1, platform)
    _lifecycle_routes(v1, platform)
    _release_routes(v1, platform)
    secret_routes(v1, platform)
    preview_routes(v1, platform)
    _domain_routes(v1, platform)
    cert_routes(v1, platform)
    registry_routes(v1, platform)
    image_build_routes(v1, platform)
    registry_image_routes(v1, platform)
    monitor_routes(app, v1, platform)
    automation_routes(v1, platform)
    host_routes(v1, platform)
    volume_routes(v1, platform)
    git_routes(v1, platform)
    backup_routes(v1, platform)
    session_routes(v1, platform, identity_routes(v1, platform))
    audit_routes(v1, platform)
    tls_routes(v1, platform)
    declare_routes(v1, platform)
    git_source_routes(v1, platform)
    document_access([*v1.routes, *app.router.routes])
    document_errors([*v1.routes, *app.router.routes])
    without_validation_422(app)
    app.include_router(v1)

    @app.get("/status", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> str:
        return render_status(platform.status())

    dashboard_routes(app)

    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MyPaasError)
    async def _mypaas_error(request: Request, exc: MyPaasError) -> JSONResponse:
        if isinstance(exc, UnknownApp):  # "did you mean" names only an app the caller sees
            exc = await in_thread(narrow_hint, request.app.state.platform, request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = field_of(tuple(first.get("loc", ())))
        return JSONResponse({"error": f"{field}: {first.get('msg')}", "field": field}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


def _platform_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/health", tags=["platform"])
    def health() -> dict[str, str]:
        """Liveness of the manager (no token needed)."""
        return {"status": "ok", "version": __version__}

    @v1.get("/status", tags=["platform"])
    def status(_: User) -> dict[str, Any]:
        """Health of each component: manager, engine, router, reconcile loop."""
        return platform.status()

    @v1.post("/reconcile", tags=["platform"])
    def reconcile(_: User) -> dict[str, Any]:
        """Run one reconcile pass now; answers how long it took (the loop also runs by itself)."""
        start = time.perf_counter()
        again = platform.reconciler.pass_once()
        return {"pass_ms": round((time.perf_counter() - start) * 1000, 2), "more_work": again}

    @v1.get("/operations/{op_id}", tags=["operations"])
    async def operation(
        op_id: str,
        _: User,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
        log_offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """An operation; with ``wait``, held until it finishes or its log grows past ``log_offset``."""
        ops = platform.operations
        op = await long_poll(
            lambda: ops.get(op_id),
            lambda op: op.status.finished or len(op.log) > log_offset,
            ops.changes,
            wait,
        )
        return op_dict(op, log_offset)


def _app_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/apps", tags=["apps"], response_model=list[dict[str, Any]])
    def list_apps(who: User) -> Response:
        """The apps of the caller's teams (every app for the platform admin), each with its ``team``,
        ``desired`` instances (0 when stopped) and ``url``."""
        apps = platform.apps.summaries()
        seen = None  # the platform admin sees every app: no need to map them to their teams
        if not platform_wide(who):
            seen = visible_apps(who, {a["name"]: a["team"] for a in apps if a["team"] is not None})
        links = platform.previews.links()  # a preview app: the app it previews and its branch
        shown = only_seen(apps, seen, "name")
        for a in shown:  # the summaries are this request's own: completed in place
            link = links.get(a["name"])
            a["url"] = app_url(platform.settings, a["name"])
            a["preview_of"], a["preview_branch"] = link if link else (None, None)
        return json_answer(shown)

    @v1.get("/apps/{name}", tags=["apps"])
    def get_app(name: str, _: User) -> dict[str, Any]:
        info = platform.apps.get(name)
        info["url"] = app_url(platform.settings, name)
        return {**info, **platform.previews.about(name)}

    @v1.post(
        "/apps/{name}/deploys",
        status_code=202,
        tags=["apps"],
        responses={200: {"description": "dry_run: the normalized spec, the warnings and the changes"}},
    )
    async def deploy(
        name: str,
        request: Request,
        who: User,
        dry_run: Annotated[
            bool,
            Query(description="validate and answer what the deploy would change, making nothing (200)"),
        ] = False,
    ) -> Any:
        """Deploy from an image, a compose project or a Dockerfile folder (multipart with build contexts).

        JSON body: a DeployBody. Multipart: a ``request`` part holding a DeployBody as JSON, and one
        gzipped tar part per build context, named after the context.

        With ``dry_run=true`` nothing is made (no pull, no build, no container, no release): the answer
        (200) is ``{"dry_run": true, "spec", "warnings", "changes": {"release", "added", "changed",
        "removed", "unchanged", "top"}}``, or the same error a deploy would give.
        """
        body, contexts = await _read_deploy(request, platform.uploads)
        try:  # from here the uploads are removed on failure; a build removes them when it ends
            return await _deploy(platform, name, body, contexts, request, who, dry_run)
        except BaseException:
            discard(contexts)
            raise

    @v1.get("/apps/{name}/instances", tags=["apps"])
    def instances(name: str, _: User) -> list[dict[str, Any]]:
        return [instance_dict(i, platform.apps.ready(i)) for i in platform.apps.instances(name)]

    @v1.get("/apps/{name}/logs", tags=["apps"])
    def logs(
        name: str,
        _: User,
        service: str | None = None,
        tail: Annotated[int | None, Query(ge=0)] = None,
        follow: bool = False,
        probes: Annotated[
            bool, Query(description="also the lines MyPaas's health probes left (User-Agent MyPaas-probe/…)")
        ] = False,
    ) -> StreamingResponse:
        stop = threading.Event()
        lines = platform.apps.logs(name, service, tail, follow, stop, probes)

        def body() -> Iterator[bytes]:
            try:
                for line in lines:
                    yield (line + "\n").encode()
            finally:
                stop.set()

        # `stop` is set when the client goes away, even if no line ever came (api/streams.py)
        return Followed(body(), stop=stop, media_type="text/plain; charset=utf-8")


def _lifecycle_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.put("/apps/{name}/scale", tags=["apps"])
    def scale(name: str, body: ScaleBody, who: User) -> dict[str, Any]:
        if not body.replicas:
            raise InvalidSpec("give at least one SERVICE=N", field="replicas")
        return op_dict(platform.apps.scale(name, body.replicas, who.label))

    @v1.post("/apps/{name}/stop", tags=["apps"])
    def stop(name: str, who: User) -> dict[str, Any]:
        """Stop every instance; the app and its releases stay."""
        return op_dict(platform.apps.set_state(name, "stop", who.label))

    @v1.post("/apps/{name}/start", tags=["apps"])
    def start(name: str, who: User) -> dict[str, Any]:
        return op_dict(platform.apps.set_state(name, "start", who.label))

    @v1.post("/apps/{name}/restart", tags=["apps"])
    def restart(name: str, who: User) -> dict[str, Any]:
        """Replace every instance, rolling: new ones start and get ready before old ones stop."""
        return op_dict(platform.apps.set_state(name, "restart", who.label))

    @v1.delete("/apps/{name}", status_code=202, tags=["apps"])
    def remove(
        name: str, who: User, volumes: bool = False, force: bool = False, keep_images: bool = False
    ) -> dict[str, Any]:
        """Remove the app; its named volumes only with ``volumes`` (else kept: GET /volumes lists
        them). ``force`` finishes a removal that cannot (foreign containers on its network). Its
        registry repositories go too (``images`` says which), unless ``keep_images``."""
        previews = [p["name"] for p in platform.previews.listing(name)]  # they go with it
        repos = (
            []
            if keep_images
            else [r for a in (name, *previews) for r in platform.image_copies.app_repositories(a)]
        )
        op = op_dict(platform.apps.delete(name, who.label, volumes=volumes, force=force))
        return op if keep_images else {**op, "images": platform.image_copies.remove_repositories(repos)}


def _release_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/apps/{name}/releases", tags=["releases"])
    def releases(name: str, _: User) -> list[dict[str, Any]]:
        return platform.releases.releases(name)

    @v1.post("/apps/{name}/rollback", status_code=202, tags=["releases"])
    def rollback(name: str, body: RollbackBody, who: User) -> dict[str, Any]:
        return op_dict(platform.releases.rollback(name, body.release, who.label))

    @v1.get("/apps/{name}/config", tags=["config"])
    def get_config(name: str, _: User) -> dict[str, str]:
        return platform.releases.config(name)

    @v1.patch("/apps/{name}/config", status_code=202, tags=["config"])
    def set_config(name: str, body: ConfigBody, who: User) -> dict[str, Any]:
        if not body.set and not body.unset:
            raise InvalidSpec("nothing to change: give KEY=VALUE to set or KEY to unset", field="set")
        return op_dict(platform.releases.set_config(name, body.set, body.unset, who.label))


def _domain_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/apps/{name}/domains", tags=["domains"])
    def list_domains(name: str, _: User) -> list[str]:
        return platform.apps.domains(name)

    @v1.post("/apps/{name}/domains", status_code=201, tags=["domains"])
    def add_domain(name: str, body: DomainBody, _: User) -> dict[str, str]:
        return {"domain": platform.apps.add_domain(name, body.domain)}

    @v1.delete("/apps/{name}/domains/{domain}", status_code=204, tags=["domains"])
    def remove_domain(name: str, domain: str, _: User) -> None:
        platform.apps.remove_domain(name, domain)

    @v1.get("/apps/{name}/https", tags=["domains"])
    def get_https(name: str, _: User) -> dict[str, bool]:
        return {"redirect": platform.apps.https_redirect(name)}

    @v1.put("/apps/{name}/https", tags=["domains"])
    def set_https(name: str, body: HttpsBody, _: User) -> dict[str, bool]:
        platform.apps.set_https_redirect(name, body.redirect)
        return {"redirect": body.redirect}


async def _deploy(
    platform: Platform,
    name: str,
    body: DeployBody,
    contexts: dict[str, Blob],
    request: Request,
    who: User,
    dry_run: bool,
) -> Any:
    read = _spec_of(body, platform.settings, contexts)
    req = DeployRequest(
        spec=harden(read.spec, Hardening.of(platform.settings)),  # the defaults go into the release
        contexts=contexts,
        user=who.label,
        description=body.description or "",  # none: the release describes what changed
        warnings=read.warnings,
        secret_values=decode_values(body.secret_values),
        team=new_app_team(request),
    )
    if body.preview is not None:  # the app's preview for a git branch: an app of its own
        name, req = await preview_request(platform, name, body.preview, req)
    if dry_run:
        try:
            spec, changes = await in_thread(platform.releases.dry_run, name, req)
        finally:
            discard(contexts)
        answer = {
            "dry_run": True,
            "spec": spec.model_dump(mode="json", exclude_defaults=True),
            "warnings": list(read.warnings),
            "changes": changes.as_dict(),
        }
        return JSONResponse(answer, status_code=200)
    op = await in_thread(platform.releases.deploy, name, req)
    return op_dict(op)


async def _read_deploy(request: Request, uploads: Uploads) -> tuple[DeployBody, dict[str, Blob]]:
    """The deploy's body and its uploaded parts, each streamed to a file (removed if this fails)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        fields, files = await read_multipart(
            ctype, request.stream(), uploads, max_files=MAX_PARTS, max_fields=MAX_FIELDS
        )
        contexts: dict[str, Blob] = {}
        for key, upload in files:
            discard([contexts.pop(key, b"")])  # a part named twice: the last one counts
            contexts[key] = upload
        try:
            raw = fields.get("request")
            if raw is None:
                raise InvalidSpec(
                    "multipart deploy needs a 'request' part with the JSON body", field="request"
                )
            return _parse_body(raw), contexts
        except BaseException:
            discard(contexts)
            raise
    return _parse_body((await request.body()).decode("utf-8", "replace")), {}


def _parse_body(raw: str) -> DeployBody:
    from pydantic import ValidationError

    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"the request body is not JSON: {exc.msg}", field="body") from exc
    except RecursionError as exc:
        raise InvalidSpec("the request body is nested too deeply", field="body") from exc
    try:
        return DeployBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = field_of(tuple(first.get("loc", ())))
        raise InvalidSpec(f"{field}: {first.get('msg')}", field=field) from exc


def _spec_of(body: DeployBody, settings: Settings, contexts: dict[str, Blob]) -> ComposeResult:
    """The app the request describes, with the warnings of what MyPaas maps differently."""
    given = [k for k in ("image", "compose", "compose_files", "dockerfile", "source") if getattr(body, k)]
    if len(given) != 1:
        raise InvalidSpec(
            "give exactly one of image, compose, compose_files, dockerfile or source", field="image"
        )
    if body.image:
        return ComposeResult(single_image_spec(body.image, port=body.port))
    policy = Policy(
        allow_host_mounts=settings.allow_host_mounts,
        allow_privileged=settings.allow_privileged,
        allow_docker_socket=settings.allow_docker_socket,
    )
    if body.compose_files:
        source = ProjectSource(
            tuple(body.compose_files),
            body.files,
            shell=body.variables,
            env_files=None if body.env_file is None else tuple(body.env_file),
            profiles=None if body.profiles is None else tuple(body.profiles),
        )
        return read_project(source, policy)
    if body.compose:
        return read_compose(body.compose, env_files=body.env_files, policy=policy)
    if "app" not in contexts:
        raise InvalidSpec("a Dockerfile deploy needs the uploaded folder as part 'app'", field="dockerfile")
    build = BuildSpec(context="app", dockerfile=body.dockerfile or "Dockerfile", detect=body.source)
    svc = ServiceSpec(name="web", build=build, expose=[body.port] if body.port else [])
    return ComposeResult(AppSpec(services={"web": svc}))

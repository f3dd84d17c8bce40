"""The token vendor's configuration: which application may become which role, and how narrowly.

Applications are named by their JWT's `sub`. Each is entitled to role aliases; an alias names a RAM
role, the longest session it may get, an optional ExternalId and an optional session policy (a
catalog template with fixed parameters, or an inline document). Session policies are rendered once
at load time, so a broken template stops the function at start instead of failing one caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from shared.errors import BadRequest, ConfigError, NotEntitled, ValidationFailed
from shared.policy.templates import canonical_json

MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
MAX_SESSION_POLICY_CHARS = 2048  # STS AssumeRole's limit for the Policy parameter

RoleArn = Annotated[str, Field(pattern=r"^acs:ram::\d{1,32}:role/[A-Za-z0-9.@_-]{1,64}$")]
Alias = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
AppName = Annotated[str, Field(min_length=1, max_length=256)]
ExternalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9=,.@:/_-]{2,1224}$")]


class SessionPolicySpec(BaseModel):
    """Narrows the role for this alias: a catalog template with fixed params, or a literal document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: StrictStr | None = None
    params: dict[str, StrictStr] = Field(default_factory=dict)
    document: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SessionPolicySpec:
        if (self.template is None) == (self.document is None):
            raise ValueError("give exactly one of 'template' (with params) or 'document'")
        if self.document is not None and self.params:
            raise ValueError("'params' only goes with 'template'")
        return self


class RoleAliasSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role_arn: RoleArn
    max_duration: Annotated[int, Field(ge=MIN_DURATION, le=MAX_DURATION)] = DEFAULT_DURATION
    external_id: ExternalId | None = None
    session_policy: SessionPolicySpec | None = None
    description: str = ""


class AppSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: Annotated[list[Alias], Field(min_length=1)]
    description: str = ""


class EntitlementsFile(BaseModel):
    """The YAML file as written by an operator (see local/dev/entitlements.yaml for an example)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    issuer: Annotated[str, Field(min_length=1)]
    audience: Annotated[str, Field(min_length=1)]
    jwks: dict[str, Any] | None = None
    jwks_file: str | None = None
    leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    cache_margin_seconds: Annotated[int, Field(ge=0, le=3600)] = 1200
    default_duration: Annotated[int, Field(ge=MIN_DURATION, le=MAX_DURATION)] = DEFAULT_DURATION
    roles: dict[Alias, RoleAliasSpec]
    apps: dict[AppName, AppSpec]

    @model_validator(mode="after")
    def _consistent(self) -> EntitlementsFile:
        if (self.jwks is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of 'jwks' (inline) or 'jwks_file'")
        for app, spec in self.apps.items():
            unknown = sorted(set(spec.roles) - self.roles.keys())
            if unknown:
                raise ValueError(f"app {app!r} names unknown role aliases {unknown}")
        return self


@dataclass(frozen=True)
class RoleGrant:
    """One vendable role alias, with its session policy rendered and measured."""

    alias: str
    role_arn: str
    max_duration: int
    external_id: str | None = None
    session_policy: dict[str, Any] | None = field(default=None, compare=False)
    policy_canonical: str | None = None  # part of the cache key: equal text, equal session

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[1]


TemplateRenderer = Callable[[str, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Entitlements:
    issuer: str
    audience: str
    jwks: dict[str, Any] = field(repr=False)
    leeway_seconds: int
    cache_margin_seconds: int
    default_duration: int
    roles: dict[str, RoleGrant]
    apps: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: str | Path, *, renderer: TemplateRenderer | None = None) -> Entitlements:
        """Read the YAML file; `jwks_file` is relative to it. Anything wrong → ConfigError."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"entitlements {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"entitlements {path}: not valid YAML: {exc}") from None
        return cls.from_dict(raw, base_dir=path.parent, origin=str(path), renderer=renderer)

    @classmethod
    def from_dict(
        cls,
        raw: Any,
        *,
        base_dir: Path | None = None,
        origin: str = "<entitlements>",
        renderer: TemplateRenderer | None = None,
    ) -> Entitlements:
        try:
            spec = EntitlementsFile.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"entitlements {origin}: {problems}") from None
        if spec.jwks is not None:
            jwks = spec.jwks
        else:
            jwks_path = Path(spec.jwks_file or "")
            if not jwks_path.is_absolute():
                jwks_path = (base_dir or Path.cwd()) / jwks_path
            try:
                jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"entitlements {origin}: cannot read jwks_file ({type(exc).__name__})"
                ) from None
        roles = {
            alias: _grant(alias, role, renderer or catalog_renderer(), origin)
            for alias, role in spec.roles.items()
        }
        return cls(
            issuer=spec.issuer,
            audience=spec.audience,
            jwks=jwks,
            leeway_seconds=spec.leeway_seconds,
            cache_margin_seconds=spec.cache_margin_seconds,
            default_duration=spec.default_duration,
            roles=roles,
            apps={app: tuple(a.roles) for app, a in spec.apps.items()},
        )

    def grant_for(self, app: str, alias: str | None) -> RoleGrant:
        """The role `app` may have under `alias` (or its only one). NotEntitled / BadRequest otherwise.

        An alias the app is not entitled to is refused the same way whether it exists or not, so a
        caller cannot probe which aliases are configured.
        """
        entitled = self.apps.get(app, ())
        if alias is None or alias == "":
            if len(entitled) == 1:
                return self.roles[entitled[0]]
            if not entitled:
                raise NotEntitled("this application is not entitled to any role")
            raise BadRequest(f"'role' is required: this application may ask for one of {sorted(entitled)}")
        if alias not in entitled:
            raise NotEntitled(f"this application is not entitled to role {_printable(alias)!r}")
        return self.roles[alias]

    def duration_for(self, grant: RoleGrant, requested: int | str | None) -> int:
        """Seconds of the session: `requested` checked against 900 … the alias's maximum."""
        if requested is None or requested == "":
            return min(self.default_duration, grant.max_duration)
        if isinstance(requested, bool):
            raise BadRequest("'duration' must be a whole number of seconds")
        if isinstance(requested, str):
            if not re.fullmatch(r"[0-9]{1,6}", requested):  # ASCII digits only: str.isdigit() takes "²"
                raise BadRequest("'duration' must be a whole number of seconds")
            requested = int(requested)
        if not isinstance(requested, int):
            raise BadRequest("'duration' must be a whole number of seconds")
        if not MIN_DURATION <= requested <= grant.max_duration:
            raise BadRequest(f"'duration' must be between {MIN_DURATION} and {grant.max_duration} seconds")
        return requested


def _printable(value: str) -> str:
    """A caller-supplied value, cut and stripped to what is safe to echo in a message."""
    return re.sub(r"[^A-Za-z0-9._@-]", "?", value[:64])


def _grant(alias: str, role: RoleAliasSpec, renderer: TemplateRenderer, origin: str) -> RoleGrant:
    document: dict[str, Any] | None = None
    if role.session_policy is not None:
        sp = role.session_policy
        document = sp.document if sp.document is not None else renderer(sp.template or "", dict(sp.params))
    canonical = None
    if document is not None:
        canonical = canonical_json(document)  # exactly the text StsGateway sends
        if len(canonical) > MAX_SESSION_POLICY_CHARS:
            raise ConfigError(
                f"entitlements {origin}: roles.{alias}.session_policy renders to {len(canonical)} characters; "
                f"STS accepts at most {MAX_SESSION_POLICY_CHARS}"
            )
    return RoleGrant(
        alias=alias,
        role_arn=role.role_arn,
        max_duration=role.max_duration,
        external_id=role.external_id,
        session_policy=json.loads(canonical) if canonical else None,
        policy_canonical=canonical,
    )


def catalog_renderer(catalog_path: str | Path | None = None) -> TemplateRenderer:
    """Render session policies from the reviewed policy catalog's templates (loaded on first use)."""

    loaded: list[Any] = []

    def render_template(name: str, params: dict[str, str]) -> dict[str, Any]:
        from shared.config import DEFAULT_CATALOG
        from shared.policy.catalog import Catalog
        from shared.policy.templates import render

        if not loaded:
            loaded.append(Catalog.load(catalog_path or DEFAULT_CATALOG))
        catalog = loaded[0]
        template = catalog.template(name)
        if template is None:
            raise ConfigError(f"session policy template {name!r} is not in the policy catalog")
        try:
            return render(name, template, params).document
        except ValidationFailed as exc:
            raise ConfigError(f"session policy template {name!r}: {exc}") from None

    return render_template

"""`make build` / `python -m local.build`: one self-contained code package per function for `s deploy`.

Why a build step and not a layer: each `build/<function>/` holds the handler, `shared/` and every
dependency at its top level, exactly what FC 3.0 puts on `sys.path` (`/code`), so a package runs
by itself, can be inspected and tested as deployed, and `s deploy` needs no layer ARN to publish
or keep in step. The dependencies are the same distributions at the same versions the test suite
ran with: the closure of `[project.dependencies]` is read from the installed environment and
pinned as pip constraints.

Two ways to fill the dependencies:
- `--deps pip` (default, for deploying): `pip install --target` for the FC runtime's platform
  (`manylinux2014_x86_64`, CPython of `s.yaml`'s runtime), binary wheels only, constrained to the
  tested versions;
- `--deps venv`: copy the installed distributions of this environment (offline, fast; what the
  packaging test uses to run every built handler in a clean virtual environment).

`local/` is never packaged. The Tablestore SDK is added only with `--with-tablestore` (or when
`RAMFLOW_STORE` names `tablestore://`): it pulls in numpy and friends that a Redis deployment does
not need.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO / "functions"
DEFAULT_OUT = REPO / "build"
CONFIG_DIR = REPO / "config"
ENTITLEMENTS_FILE = "entitlements.yaml"  # s.yaml: RAMFLOW_ENTITLEMENTS=/code/config/entitlements.yaml
DESTINATIONS_FILE = "destinations.yaml"  # RAMFLOW_DESTINATIONS=/code/config/destinations.yaml when packaged
DEPLOY_DIR = REPO / "deploy"
TARGET_PLATFORM = "manylinux2014_x86_64"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
# `functions/<name>/__init__.py` makes the folder importable in the repo; in FC the folder is /code.
_SKIP_FUNCTION = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "__init__.py")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def requirements(*, with_tablestore: bool = False) -> list[Requirement]:
    """The runtime dependencies (`[project.dependencies]` of the installed project), plus the
    Tablestore SDK (pinned in its `local` extra) when asked."""
    declared = [Requirement(r) for r in metadata.requires("ramflow") or []]
    found = [r for r in declared if r.marker is None]
    if with_tablestore:
        found += [r for r in declared if canonicalize_name(r.name) == "tablestore"]
        for r in found:
            r.marker = None
    return found


def closure(roots: Iterable[Requirement], environment: dict[str, str] | None = None) -> list[Pin]:
    """Every distribution the roots need, as installed here: the versions the tests ran with."""
    base = environment or {k: str(v) for k, v in default_environment().items()}
    env = {**base, "extra": ""}
    seen: dict[str, Pin] = {}
    pending = [r for r in roots if r.marker is None or r.marker.evaluate(env)]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{requirement.name} is not installed here: run `make install` first") from None
        seen[name] = Pin(name, dist.version)
        extras = ["", *requirement.extras]
        for needed in map(Requirement, dist.requires or []):
            marker = needed.marker
            if marker is None or any(marker.evaluate({**env, "extra": e}) for e in extras):
                pending.append(needed)
    return sorted(seen.values(), key=lambda p: p.name)


def _deps_key(mode: str, python_version: str, pins: Sequence[Pin]) -> str:
    text = "\n".join([mode, python_version, TARGET_PLATFORM, *map(str, pins)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def install_dependencies(
    target: Path, roots: Sequence[Requirement], pins: Sequence[Pin], *, mode: str, python_version: str
) -> None:
    """Fill `target` with the dependencies (see the module docstring for the two modes)."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if mode == "venv":
        for pin in pins:
            _copy_distribution(metadata.distribution(pin.name), staging)
    else:
        constraints = staging / "constraints.txt"
        constraints.write_text("\n".join(map(str, pins)) + "\n", encoding="utf-8")
        # Some pure-Python dependencies are published as sdists only; `--platform` accepts wheels only.
        # A pure-Python wheel fits every platform, so build those here first.
        wheelhouse = staging / ".wheelhouse"
        pure = [str(p) for p in pins if _pure_python(p.name)]
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheelhouse), *pure], check=True)
        command = [
            *pip, "install", "--target", str(staging), "--only-binary=:all:", "--implementation", "cp",
            "--platform", TARGET_PLATFORM, "--python-version", python_version,
            "--find-links", str(wheelhouse), "--constraint", str(constraints), *map(str, roots),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        constraints.unlink()
        shutil.rmtree(wheelhouse)
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: nothing runs them in FC
    staging.rename(target)


def _pure_python(name: str) -> bool:
    wheel = metadata.distribution(name).read_text("WHEEL") or ""
    return "Root-Is-Purelib: true" in wheel


def _copy_distribution(dist: metadata.Distribution, target: Path) -> None:
    for file in dist.files or []:
        relative = Path(str(file))
        if ".." in relative.parts or "__pycache__" in relative.parts or relative.suffix == ".pyc":
            continue  # scripts outside site-packages, and bytecode of this interpreter
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _link_tree(source: Path, destination: Path, ignore: Any = _SKIP) -> None:
    """Hard links where the filesystem allows (seven packages share one copy of the dependencies)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link, dirs_exist_ok=True, ignore=ignore)


def function_folders(names: Sequence[str] | None = None) -> list[Path]:
    folders = sorted(p for p in FUNCTIONS_DIR.iterdir() if (p / "index.py").is_file())
    if names:
        wanted = {n.replace("-", "_") for n in names}
        unknown = wanted - {p.name for p in folders}
        if unknown:
            raise SystemExit(f"no such function: {', '.join(sorted(unknown))}")
        folders = [p for p in folders if p.name in wanted]
    return folders


def runtime_python_version() -> str:
    """`python3.12` in s.yaml → `3.12`: the dependencies are built for the runtime that runs them."""
    text = (REPO / "s.yaml").read_text(encoding="utf-8")
    found = re.search(r"^\s*runtime:\s*python(3\.\d+)\s*$", text, re.MULTILINE)
    return found.group(1) if found else "3.12"


def check_entitlements(config: Path = CONFIG_DIR) -> None:
    """The token vendor's entitlements, as it will load them in FC: present, valid, and naming only
    roles the functions' role may assume. Without this, the package would deploy and fail every call."""
    from local.emulator.enforcement import NamedPolicy, RequestContext, evaluate
    from shared.config import dev_mode
    from shared.entitlements import Entitlements
    from shared.errors import ConfigError
    from shared.tokens import JwtVerifier, load_jwks

    path = config / ENTITLEMENTS_FILE
    if not path.is_file():
        raise SystemExit(
            f"cannot build token-vendor: {path} is missing. The deployed function reads it as "
            f"/code/config/{ENTITLEMENTS_FILE}: write your identity provider's issuer, audience and JWKS "
            'and the applications\' role aliases there (README "Deploy", step 3; the format is that of '
            "local/dev/entitlements.yaml, whose key is public and must not be deployed), or pass --config DIR"
        )
    try:
        entitlements = Entitlements.load(path)
    except ConfigError as exc:
        raise SystemExit(f"cannot build token-vendor: {exc}") from None
    if not dev_mode():  # the deployed vendor builds this verifier and refuses the published dev trust
        try:
            JwtVerifier(
                load_jwks(entitlements.jwks), issuer=entitlements.issuer, audience=entitlements.audience
            )
        except ConfigError as exc:
            raise SystemExit(
                f"cannot build token-vendor: {path}: {exc} (the deployed vendor would answer 500 to every request)"
            ) from None
    from local.roles import ROLES, VENDED_ROLE_PATTERN, role_policy

    vendor = ROLES["token-vendor"]
    policy = [NamedPolicy(vendor.role, role_policy(vendor.function))]
    request = RequestContext("sts:AssumeRole", {}, now=0.0)
    refused = sorted(
        f"roles.{alias}.role_arn {grant.role_arn}"
        for alias, grant in entitlements.roles.items()
        if evaluate(policy, "sts:AssumeRole", grant.role_arn, request)[0] != "Allow"
    )
    if refused:
        raise SystemExit(
            f"cannot build token-vendor: {path}: {'; '.join(refused)}: the token vendor's role may assume only "
            f"{VENDED_ROLE_PATTERN} (never a function's role, ramflow-fn-…); name every vended role ramflow-…"
        )


def check_destinations(config: Path = CONFIG_DIR, deploy: Path = DEPLOY_DIR) -> None:
    """A packaged destinations file loads, and every EventBridge bus it names is one the roles in
    `deploy/` may put events on. Without this, results to another bus would be refused at every
    attempt and end as dead deliveries."""
    from local.emulator.enforcement import NamedPolicy, RequestContext, evaluate
    from local.roles import ROLES, result_buses
    from shared.errors import ConfigError

    path = config / DESTINATIONS_FILE
    if not path.is_file():
        return
    try:
        buses = result_buses(path)
    except ConfigError as exc:
        raise SystemExit(f"cannot build: {exc}") from None
    action = "eventbridge:PutEvents"
    request = RequestContext(action, {}, now=0.0)
    refused = []
    for entry in ROLES.values():
        if "publish" not in entry.duties:
            continue
        document = json.loads((deploy / f"{entry.role}-policy.json").read_text(encoding="utf-8"))
        policy = [NamedPolicy(entry.role, document)]
        refused += [
            f"{entry.role}: {bus}"
            for bus in buses
            if evaluate(policy, action, f"acs:eventbridge:*:*:eventbus/{bus}", request)[0] != "Allow"
        ]
    if refused:
        raise SystemExit(
            f"cannot build: {path} routes results to event buses the roles in deploy/ may not put events on "
            f"({'; '.join(refused)}): run `RAMFLOW_DESTINATIONS={path} .venv/bin/python -m local.build "
            "--write-policy`, review the diff and publish the policies (deploy/README.md)"
        )


def build(
    out: Path = DEFAULT_OUT,
    *,
    functions: Sequence[str] | None = None,
    mode: str = "pip",
    python_version: str | None = None,
    with_tablestore: bool = False,
    config: Path = CONFIG_DIR,
) -> list[Path]:
    """Build the packages; returns their folders (`<out>/<function folder>`). `config` is packaged as
    `config/`; the token vendor's package is refused unless its entitlements there are usable."""
    folders = function_folders(functions)
    if any(folder.name == "token_vendor" for folder in folders):
        check_entitlements(config)
    check_destinations(config)
    python_version = python_version or (
        runtime_python_version() if mode == "pip" else f"{sys.version_info.major}.{sys.version_info.minor}"
    )
    roots = requirements(with_tablestore=with_tablestore)
    pins = closure(roots)
    deps = out / ".deps" / _deps_key(mode, python_version, pins)
    if not deps.is_dir():
        install_dependencies(deps, roots, pins, mode=mode, python_version=python_version)
    built = []
    for folder in folders:
        package = out / folder.name
        shutil.rmtree(package, ignore_errors=True)
        _link_tree(deps, package)
        _link_tree(folder, package, _SKIP_FUNCTION)
        _link_tree(REPO / "shared", package / "shared")
        if config.is_dir() and any(config.iterdir()):
            _link_tree(config, package / "config")
        manifest = {
            "function": folder.name.replace("_", "-"),
            "python": python_version,
            "dependencies": mode,
            "platform": TARGET_PLATFORM if mode == "pip" else "this machine",
            "pins": [str(p) for p in pins],
            "commit": _commit(),
        }
        (package / "BUILD.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        built.append(package)
    return built


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.build", description=__doc__.split("\n")[0])
    parser.add_argument("functions", nargs="*", help="function names (default: every function)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the packages go (default: build/)"
    )
    parser.add_argument("--deps", choices=["pip", "venv"], default="pip", help="how to fill the dependencies")
    parser.add_argument("--python-version", help="CPython of the packages (default: s.yaml's runtime)")
    parser.add_argument(
        "--with-tablestore",
        action="store_true",
        default=os.environ.get("RAMFLOW_STORE", "").startswith("tablestore://"),
        help="include the Tablestore SDK (default: when RAMFLOW_STORE is tablestore://)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=CONFIG_DIR,
        help=f"packaged as config/; token-vendor needs its {ENTITLEMENTS_FILE} (default: config/)",
    )
    parser.add_argument(
        "--write-policy",
        action="store_true",
        help="render every function role's policy and trust in deploy/ (local/roles.py) instead of building; "
        "RAMFLOW_MANAGED_USER_PREFIX sets the managed-user prefix (default rf-), RAMFLOW_DESTINATIONS the "
        "result buses (default ramflow-results)",
    )
    args = parser.parse_args(argv)
    if args.write_policy:
        from local.roles import write

        for path in write():
            print(f"wrote {path.relative_to(REPO)}")
        print("review the diff: a role's power grows only where a reviewer sees it")
        return
    for package in build(
        args.out,
        functions=args.functions,
        mode=args.deps,
        python_version=args.python_version,
        with_tablestore=args.with_tablestore,
        config=args.config,
    ):
        size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
        print(
            f"built {package.relative_to(Path.cwd()) if package.is_relative_to(Path.cwd()) else package}  ({size / 1e6:.1f} MB)"
        )


if __name__ == "__main__":
    main()

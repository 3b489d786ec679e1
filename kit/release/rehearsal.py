"""`invoke rehearse`: run the committed release workflow's jobs here, as hosted runners would.

Each job runs in a fresh container of the kit's runner image (kit.release.runner_image: Debian
from Debian's packages, an unprivileged user with passwordless sudo, rustup with a stable
toolchain), with the jobs in the order their `needs` give. Every `run:` step runs as the
workflow writes it, in order, with `bash -e` (GitHub's default shell), after `${{ matrix.* }}`,
`${{ env.* }}` and `${{ steps.<id>.outputs.* }}` are put in, and with the files GitHub gives a
step: $GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH and $GITHUB_STEP_SUMMARY.

The actions the workflow uses are not run (they are GitHub's, in JavaScript); each is done the
way it would act on a runner, and anything else stops the rehearsal:

- actions/checkout: a shallow clone of the repository's HEAD, copied into the workspace
  (uncommitted changes are not in it, as they are not in a push);
- actions/setup-python: a venv of the image's Python, on PATH (another version is refused);
- actions/upload-artifact, download-artifact: the directory copied out of the job's container
  and into a later one, laid out as the actions lay it out (one directory per artifact when a
  pattern matches several);
- Swatinem/rust-cache: nothing restored, as on a first run;
- actions/attest-build-provenance: not run (it needs GitHub's OIDC token and Sigstore); its
  inputs are checked to have resolved to an image name and a sha256 digest.

Every job runs on this machine's architecture, whatever its `runs-on` (an arm64 runner's job
cross-builds here). A workflow construct the rehearsal does not model (an `if:`, `defaults`,
another action, a matrix with both axes and `include`) is a ConfigError naming it, never
skipped silently. A step that fails is a CommandFailedError with its log's last lines. Every
job's log is kept in reports/rehearsal/<job>.log, the artifacts in reports/rehearsal/artifacts/,
and rehearsal.json records each step's time and the steps' outputs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import itertools
import os
import re
import shlex
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from kit.core import console, engine, fs, runner
from kit.core.errors import CommandFailedError, ConfigError
from kit.core.options import Options
from kit.core.paths import Paths
from kit.release import runner_image
from kit.release.runner_image import HOME, UID

if TYPE_CHECKING:
    from docker.models.containers import Container

# --- the workflow, as the rehearsal reads it (pure) -------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# What the rehearsal reads of a workflow, a job and a step; any other key stops it (`if`,
# `defaults`, `continue-on-error`, `working-directory` would change what runs).
WORKFLOW_KEYS = {"name", "on", "permissions", "env", "jobs", "concurrency"}
JOB_KEYS = {"name", "runs-on", "needs", "strategy", "steps", "permissions", "env"}
STEP_KEYS = {"name", "id", "run", "uses", "with", "env", "shell"}


def _refuse_unknown(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = {str(k) for k in raw} - known
    if unknown:
        raise ConfigError(
            f"{where}: the rehearsal does not model "
            + ", ".join(f"`{k}`" for k in sorted(unknown))
            + "."
        )


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    id: str | None = None
    run: str | None = None
    uses: str | None = None  # owner/name, without the pinned ref
    with_: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    matrix: Mapping[str, str]
    needs: tuple[str, ...]
    env: Mapping[str, str]  # the workflow's env, then the job's
    steps: tuple[Step, ...]


@dataclass
class Context:
    """What `${{ … }}` can read: the job's matrix and env, earlier steps' outputs."""

    matrix: Mapping[str, str]
    env: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expression: str) -> str:
        parts = expression.split(".")
        found: Any = None
        if len(parts) == 2 and parts[0] == "matrix":
            found = self.matrix.get(parts[1])
        elif len(parts) == 2 and parts[0] == "env":
            found = self.env.get(parts[1])
        elif len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            found = self.outputs.get(parts[1], {}).get(parts[3])
        else:
            raise ConfigError(
                f"The rehearsal does not evaluate the expression `${{{{ {expression} }}}}`.",
                hint="It reads matrix.*, env.* and steps.<id>.outputs.*.",
            )
        return "" if found is None else str(found)

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), text)


def _strings(mapping: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}


def matrix_entries(job_id: str, strategy: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """A job's matrix combinations: its `include` list, or the product of its axes."""
    matrix = (strategy or {}).get("matrix")
    if not matrix:
        return [{}]
    include, axes = matrix.get("include"), {k: v for k, v in matrix.items() if k != "include"}
    if (include and axes) or "exclude" in axes:
        raise ConfigError(
            f"Job {job_id!r}: the rehearsal runs a matrix of `include` entries or of axes, "
            "not both, and no `exclude`."
        )
    if include:
        return [_strings(e) for e in include]
    names = list(axes)
    return [
        _strings(dict(zip(names, combo, strict=True)))
        for combo in itertools.product(*axes.values())
    ]


def _step(job_id: str, index: int, raw: Mapping[str, Any]) -> Step:
    _refuse_unknown(raw, STEP_KEYS, f"Job {job_id!r}, step {index + 1}")
    if raw.get("shell") not in (None, "bash"):
        raise ConfigError(f"Job {job_id!r}, step {index + 1}: only bash steps are rehearsed.")
    uses = str(raw["uses"]).split("@", 1)[0] if raw.get("uses") else None
    name = str(raw.get("name") or uses or (str(raw.get("run", "")).splitlines() or [""])[0])
    return Step(
        index,
        name,
        raw.get("id"),
        raw.get("run"),
        uses,
        _strings(raw.get("with")),
        _strings(raw.get("env")),
    )


def jobs_of(workflow: Mapping[str, Any]) -> list[Job]:
    """Every job run the workflow makes (one per matrix entry), each after the jobs it needs."""
    _refuse_unknown(workflow, WORKFLOW_KEYS, "The workflow")
    raw_jobs: Mapping[str, Any] = workflow.get("jobs") or {}
    top_env = _strings(workflow.get("env"))
    runs: dict[str, list[Job]] = {}
    for job_id, raw in raw_jobs.items():
        _refuse_unknown(raw, JOB_KEYS, f"Job {job_id!r}")
        needs = raw.get("needs") or ()
        needs = (needs,) if isinstance(needs, str) else tuple(needs)
        for entry in matrix_entries(job_id, raw.get("strategy")):
            ctx = Context(entry, dict(top_env))
            env = {**top_env, **{k: ctx.substitute(v) for k, v in _strings(raw.get("env")).items()}}
            steps = tuple(_step(job_id, i, s) for i, s in enumerate(raw.get("steps") or ()))
            name = ctx.substitute(str(raw.get("name") or job_id))
            runs.setdefault(job_id, []).append(Job(job_id, name, entry, needs, env, steps))
    ordered: list[Job] = []
    done: set[str] = set()
    pending = list(runs)
    while pending:
        ready = [j for j in pending if all(n in done for n in runs[j][0].needs)]
        if not ready:
            raise ConfigError(
                "The workflow's jobs need each other in a cycle, or a job they need is missing: "
                + ", ".join(pending)
                + "."
            )
        for j in ready:
            ordered += runs[j]
            done.add(j)
            pending.remove(j)
    return ordered


def parse_file_command(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT / $GITHUB_ENV: `name=value` lines and `name<<DELIMITER` blocks, as the
    runner reads them (GitHub's "Workflow commands" reference; no library parses this)."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            else:
                raise CommandFailedError(
                    f"A step wrote {name}<<{delimiter} and never the closing {delimiter}."
                )
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise CommandFailedError(f"A step wrote a line GitHub would refuse: {line!r}.")
    return values


def artifact_layout(pattern: str | None, name: str | None, available: list[str]) -> dict[str, str]:
    """download-artifact's layout: artifact -> its directory under `path` ("" for `path`
    itself): one artifact by name goes straight into `path`; a pattern puts each match in a
    directory of its own name."""
    if name:
        if name not in available:
            raise CommandFailedError(f"download-artifact: no artifact named {name!r} was uploaded.")
        return {name: ""}
    matched = sorted(a for a in available if fnmatch.fnmatchcase(a, pattern or "*"))
    if not matched:
        raise CommandFailedError(f"download-artifact: no artifact matches {pattern!r}.")
    return {a: a for a in matched}


# --- running ----------------------------------------------------------------------------------

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
APT_ARCHIVES = "/var/cache/apt/archives"
# How this machine reaches its registries: passed to each step as the host has them, with CA
# bundles pointing at the image's (the host's bundle is in it, kit.release.runner_image).
NETWORK_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PIP_INDEX_URL",
    "PIP_DEFAULT_TIMEOUT",
)
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class StepResult:
    job: str
    step: str
    how: str  # "run", or what was done for an action
    seconds: float


@dataclass
class Rehearsal:
    """One rehearsal of a workflow: the artifacts its jobs pass on, what each step did."""

    image: str
    toolchain: Path
    clone: Path  # the shallow clone copied into each job
    work: Path
    logs: Path
    artifacts: dict[str, Path] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)
    outputs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # job -> steps

    @property
    def workspace(self) -> str:
        name = self.clone.name
        return f"{HOME}/work/{name}/{name}"

    def run_job(self, job: Job) -> None:
        log = self.logs / f"{_slug(job.name)}.log"
        started = time.monotonic()
        with console.step(f"rehearsal: {job.name}"), _container(self, job) as box:
            ctx = Context(job.matrix, dict(job.env))
            paths: list[str] = []
            with log.open("w") as out:
                for step in job.steps:
                    t0 = time.monotonic()
                    how = self._step(box, job, step, ctx, paths, out)
                    self.results.append(StepResult(job.name, step.name, how, time.monotonic() - t0))
                    console.info(f"  {step.name}: {how} ({time.monotonic() - t0:.0f} s)")
            self.outputs[job.name] = ctx.outputs
        console.success(f"{job.name}: every step passed in {time.monotonic() - started:.0f} s")

    # one step --------------------------------------------------------------------------------

    def _step(
        self, box: Container, job: Job, step: Step, ctx: Context, paths: list[str], out: Any
    ) -> str:
        out.write(f"\n##[group]{step.name}\n")
        out.flush()
        if step.run is not None:
            self._run_step(box, job, step, ctx, paths, out)
            return "run"
        with_ = {k: ctx.substitute(v) for k, v in step.with_.items()}
        action = ACTIONS.get(step.uses or "")
        if action is None:
            raise ConfigError(
                f"Job {job.name!r}, step {step.name!r}: the rehearsal has no model of the action "
                f"{step.uses!r}.",
                hint="Modelled: " + ", ".join(sorted(ACTIONS)) + ".",
            )
        return action(self, box, with_, paths)

    def _run_step(
        self, box: Container, job: Job, step: Step, ctx: Context, paths: list[str], out: Any
    ) -> None:
        assert step.run is not None
        files = f"{HOME}/work/_temp/_runner_file_commands"
        n = step.index
        commands = {
            "GITHUB_OUTPUT": f"{files}/set_output_{n}",
            "GITHUB_ENV": f"{files}/set_env_{n}",
            "GITHUB_PATH": f"{files}/add_path_{n}",
            "GITHUB_STEP_SUMMARY": f"{files}/step_summary_{n}",
        }
        script = f"{HOME}/work/_temp/step-{n}.sh"
        _put_file(box, script, ctx.substitute(step.run) + "\n")
        _exec(box, ["touch", *commands.values()], user=str(UID))
        env = {
            **self._base_env(job),
            **ctx.env,
            **{k: ctx.substitute(v) for k, v in step.env.items()},
            **commands,
        }
        env["PATH"] = ":".join([*reversed(paths), runner_image.PATH])
        code = _exec(
            box, ["bash", "-e", script], user=str(UID), env=env, cwd=self.workspace, out=out
        )
        if code != 0:
            raise CommandFailedError(
                f"The rehearsal's job {job.name!r} failed at step {step.name!r} (exit {code}).",
                output=_tail(out.name),
            )
        outputs = parse_file_command(_read(box, commands["GITHUB_OUTPUT"]))
        if step.id:
            ctx.outputs[step.id] = outputs
        ctx.env.update(parse_file_command(_read(box, commands["GITHUB_ENV"])))
        paths += [p for p in _read(box, commands["GITHUB_PATH"]).splitlines() if p.strip()]

    def _base_env(self, job: Job) -> dict[str, str]:
        env = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_JOB": job.id,
            "GITHUB_WORKSPACE": self.workspace,
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": f"{HOME}/work/_temp",
            "HOME": HOME,
            "USER": runner_image.USER,
        }
        env.update({k: os.environ[k] for k in NETWORK_ENV if k in os.environ})
        env.update({k: runner_image.HOST_CA_BUNDLE.as_posix() for k in CA_ENV if k in os.environ})
        return env

    # the actions -----------------------------------------------------------------------------

    def checkout(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        _put_tree(box, self.clone, self.workspace)
        return f"copied the clone of {_head(self.clone)[:12]}"

    def setup_python(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        wanted = with_.get("python-version", "")
        have = _exec_capture(
            box, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        ).strip()
        if wanted != have:
            raise ConfigError(
                f"setup-python asks for Python {wanted!r}; the runner image has {have}.",
            )
        venv = f"/opt/hostedtoolcache/Python/{have}/x64"
        _exec(box, ["sh", "-c", f"mkdir -p {venv} && chown {UID} {venv}"], user="root")
        _exec(box, ["python3", "-m", "venv", venv], user=str(UID), check=True)
        paths.append(f"{venv}/bin")
        return f"Python {have} (a venv of the image's) on PATH"

    def rust_cache(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        return "nothing restored (a first run)"

    def upload(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        name, path = with_["name"], with_["path"].strip().rstrip("/")
        if "\n" in path or any(c in path for c in "*?!"):
            raise ConfigError(f"upload-artifact {name!r}: the rehearsal copies one directory.")
        dest = self.work / "artifacts" / name
        if name in self.artifacts:
            raise CommandFailedError(f"upload-artifact: {name!r} was uploaded twice.")
        source = path if path.startswith("/") else f"{self.workspace}/{path}"
        _get_tree(box, source, dest)
        files = [p for p in dest.rglob("*") if p.is_file()]
        if not files and with_.get("if-no-files-found", "warn") == "error":
            raise CommandFailedError(f"upload-artifact: nothing at {path} for {name!r}.")
        self.artifacts[name] = dest
        return f"{len(files)} files copied out as {name!r}"

    def download(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        if with_.get("merge-multiple", "false") != "false":
            raise ConfigError("download-artifact: the rehearsal does not model merge-multiple.")
        layout = artifact_layout(with_.get("pattern"), with_.get("name"), sorted(self.artifacts))
        base = with_.get("path", ".")
        base = base if base.startswith("/") else f"{self.workspace}/{base}"
        for name, sub in layout.items():
            into = f"{base}/{sub}".rstrip("/")
            _exec(box, ["mkdir", "-p", into], user=str(UID), check=True)
            _put_tree(box, self.artifacts[name], into)
        return "copied in " + ", ".join(layout)

    def attest(self, box: Container, with_: dict[str, str], paths: list[str]) -> str:
        name, digest = with_.get("subject-name", ""), with_.get("subject-digest", "")
        if not name or not DIGEST.match(digest):
            raise CommandFailedError(
                "attest-build-provenance's inputs did not resolve to an image and a digest "
                f"(subject-name {name!r}, subject-digest {digest!r})."
            )
        return f"not run (needs GitHub's OIDC token); its subject is {name}@{digest}"


Action = Callable[["Rehearsal", "Container", dict[str, str], list[str]], str]
ACTIONS: dict[str, Action] = {
    "actions/checkout": Rehearsal.checkout,
    "actions/setup-python": Rehearsal.setup_python,
    "Swatinem/rust-cache": Rehearsal.rust_cache,
    "actions/upload-artifact": Rehearsal.upload,
    "actions/download-artifact": Rehearsal.download,
    "actions/attest-build-provenance": Rehearsal.attest,
}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def _tail(path: str, lines: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def _container(rehearsal: Rehearsal, job: Job) -> Iterator[Container]:
    client = engine.client(timeout=600)
    apt = rehearsal.work / "apt-archives"
    (apt / "partial").mkdir(parents=True, exist_ok=True)
    mounted = f"{HOME}/.rustup/toolchains/{rehearsal.toolchain.name}"
    # A hosted runner's stable is rustup's minimal profile: no std source. The host's may have
    # it (a rust-toolchain.toml asking for rust-src installs it); an empty directory over it
    # keeps the runner's choice of toolchain the runner's, not this machine's.
    src = "lib/rustlib/src"
    hidden = {f"{mounted}/{src}": "size=1m"} if (rehearsal.toolchain / src).is_dir() else {}
    box = client.containers.run(
        rehearsal.image,
        ["sleep", "infinity"],
        detach=True,
        init=True,
        name=f"kit-rehearsal-{_slug(job.name)}-{time.monotonic_ns()}",
        tmpfs=hidden,
        volumes={
            str(rehearsal.toolchain.resolve()): {"bind": mounted, "mode": "ro"},
            # downloaded .debs shared by the jobs of one rehearsal (apt still installs them)
            str(apt): {"bind": APT_ARCHIVES, "mode": "rw"},
        },
    )
    try:
        _exec(box, ["mkdir", "-p", f"{HOME}/work/_temp/_runner_file_commands"], user=str(UID))
        yield box
    finally:
        # apt-get (root, through sudo) wrote the shared archive: hand it back to this user
        _exec(box, ["chown", "-R", f"{os.getuid()}:{os.getgid()}", APT_ARCHIVES])
        box.remove(force=True)
        client.close()


def _exec(
    box: Container,
    argv: list[str],
    *,
    user: str = "root",
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    out: Any = None,
    check: bool = False,
) -> int:
    api: Any = cast(Any, box.client).api  # docker's stubs type exec's results loosely
    exec_id = api.exec_create(box.id, argv, user=user, environment=dict(env or {}), workdir=cwd)
    # Read whole, not streamed: with stream=True docker-py hands back a generator and leaves
    # the response, and its socket, open for the garbage collector (its own docstring says so).
    text = bytes(api.exec_start(exec_id)).decode(errors="replace")
    if out is not None:
        out.write(text)
        out.flush()
    for line in text.splitlines():
        console.verbose(line)
    code = int(api.exec_inspect(exec_id)["ExitCode"])
    if check and code != 0:
        raise CommandFailedError(f"In the rehearsal's container, {shlex.join(argv)} exited {code}.")
    return code


def _exec_capture(box: Container, argv: list[str]) -> str:
    code, output = box.exec_run(argv, user=str(UID))
    if code != 0:
        raise CommandFailedError(f"In the rehearsal's container, {shlex.join(argv)} exited {code}.")
    return cast(bytes, output).decode(errors="replace")


def _read(box: Container, path: str) -> str:
    return _exec_capture(box, ["cat", path])


def _owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = UID
    info.uname = info.gname = runner_image.USER
    return info


def _put_file(box: Container, path: str, text: str) -> None:
    data = text.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = _owned(tarfile.TarInfo(Path(path).name))
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    box.put_archive(str(Path(path).parent), buf.getvalue())


def _put_tree(box: Container, source: Path, dest: str) -> None:
    """The directory `source` into the container as `dest`, owned by the runner's user."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(source, arcname=Path(dest).name, filter=_owned)
    _exec(box, ["mkdir", "-p", str(Path(dest).parent)], user=str(UID), check=True)
    box.put_archive(str(Path(dest).parent), buf.getvalue())


def _get_tree(box: Container, source: str, dest: Path) -> None:
    """The contents of the container's directory `source`, written to `dest`."""
    from docker.errors import NotFound

    try:
        stream, _ = box.get_archive(source)
    except NotFound:
        raise CommandFailedError(f"upload-artifact: no {source} in the job's container.") from None
    buf = io.BytesIO(b"".join(stream))
    top = Path(source).name
    with fs.atomic_dir(dest) as tmp, tarfile.open(fileobj=buf) as tar:
        for member in tar.getmembers():
            rel = Path(member.name).relative_to(top) if member.name != top else Path(".")
            if rel == Path("."):
                continue
            member.name = rel.as_posix()
            tar.extract(member, tmp, filter="data")


def _head(repo: Path) -> str:
    return runner.capture(["git", "-C", str(repo), "rev-parse", "HEAD"]).strip()


def shallow_clone(root: Path, into: Path) -> Path:
    """actions/checkout's view of the repository: HEAD, depth 1, in a directory of its name."""
    if runner.capture(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]):
        console.warn("the rehearsal checks out HEAD: uncommitted changes are not in it")
    dest = into / root.name
    runner.run(
        ["git", "clone", "--quiet", "--depth", "1", "--no-local", root.as_uri(), str(dest)],
        what="git clone (the rehearsal's checkout)",
    )
    # actions/checkout's origin is the repository's own remote, not the place it was copied from
    origin = runner.capture(["git", "-C", str(root), "remote"]).split()
    if "origin" in origin:
        url = runner.capture(["git", "-C", str(root), "remote", "get-url", "origin"]).strip()
        runner.run(["git", "-C", str(dest), "remote", "set-url", "origin", url], echo=False)
    else:
        runner.run(["git", "-C", str(dest), "remote", "remove", "origin"], echo=False)
    return dest


@dataclass(frozen=True)
class Outcome:
    jobs: tuple[str, ...]
    steps: tuple[StepResult, ...]
    outputs: dict[str, dict[str, dict[str, str]]]
    seconds: float


def rehearse(
    opts: Options, *, workflow: Path, keep: Callable[[Job], bool] = lambda j: True
) -> Outcome:
    """Run `workflow`'s jobs (those `keep` accepts) in the kit's runner containers."""
    started = time.monotonic()
    try:
        data = yaml.safe_load(workflow.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"Cannot read the workflow {workflow}: {e}") from None
    jobs = jobs_of(data)
    image = runner_image.ensure(opts)
    toolchain = runner_image.host_stable_toolchain()
    logs = Paths.of(opts).reports / "rehearsal"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kit-rehearsal-") as tmp:
        work = Path(tmp)
        clone = shallow_clone(opts.root, work / "checkout")
        r = Rehearsal(image, toolchain, clone, work, logs)
        chosen = [j for j in jobs if keep(j)]
        for job in chosen:
            r.run_job(job)
        # what the jobs uploaded, kept beside their logs
        for name, path in r.artifacts.items():
            dest = logs / "artifacts" / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
    outcome = Outcome(
        tuple(j.name for j in chosen), tuple(r.results), r.outputs, time.monotonic() - started
    )
    fs.write_json(logs / "rehearsal.json", dataclasses.asdict(outcome))
    return outcome


def rehearse_command(opts: Options) -> Outcome | None:
    """`invoke rehearse`: the committed workflow's jobs, then a table of every step. A dry run
    lists the jobs and steps it would run, and starts nothing."""
    from kit.release.workflow import WORKFLOW_PATH

    workflow = opts.root / WORKFLOW_PATH
    if not workflow.is_file():
        raise ConfigError(
            f"There is no {WORKFLOW_PATH} to rehearse.", hint="Write it with `invoke ci-matrix`."
        )
    if runner.is_dry():
        jobs = jobs_of(yaml.safe_load(workflow.read_text()))
        rows = [
            [j.name, s.name, "run" if s.run else f"{s.uses} (modelled)"]
            for j in jobs
            for s in j.steps
        ]
        console.table(f"rehearsal of {WORKFLOW_PATH} (dry run)", ["job", "step", "as"], rows)
        return None
    outcome = rehearse(opts, workflow=workflow)
    console.table(
        f"rehearsal of {WORKFLOW_PATH}: {outcome.seconds:.0f} s",
        ["job", "step", "done", "seconds"],
        [[s.job, s.step, s.how, f"{s.seconds:.0f}"] for s in outcome.steps],
    )
    for job, steps in outcome.outputs.items():
        for step_id, values in steps.items():
            for name, value in values.items():
                console.info(f"{job}: steps.{step_id}.outputs.{name} = {value}")
    return outcome

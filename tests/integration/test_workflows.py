"""The CI workflows (.github/workflows/), run here as written: every `run:` step of each job, in order, the way
GitHub's runner runs it (the job's shell, the workflow/job/step `env:` with `${{ vars.X }}` / `${{ secrets.X }}`
substituted from the test's repository settings, GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH / GITHUB_STEP_SUMMARY
files applied between steps, `if:` conditions evaluated), in a fresh copy of the checkout per run, against a
temp `file://` backend shared by the runs as a team's backend is.

`uses:` steps are not run. Each action the workflows use has a stand-in below saying what it amounts to on this
machine (checkout: the fresh copy; setup-go: this machine's Go on PATH; the sticky comment: the file it would
post, kept for the asserts); an action without a stand-in fails the test, and so does any `${{ }}` expression
the test cannot resolve (a variable or secret it does not provide, an unknown step id, function or context):
docs/CI.md lists exactly the variables and secrets the workflows use."""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.pki import LocalCa

from .harness import ROOT
from .test_plan_engine import config
from .test_readme import fresh_checkout, fresh_shell

pytestmark = pytest.mark.integration
WORKFLOWS = ROOT / ".github" / "workflows"
STACK = "team"
SHARD = "team-eu"  # a second stack of the same fleet, for the matrix
PASSPHRASE = "ci-passphrase-3f9a61c2"  # must never appear in a step's output
REPOSITORY = "example/certplane"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STEP_TIMEOUT = 300.0  # seconds: no step may wait longer, whatever its timeout-minutes


# --- expressions ----------------------------------------------------------------------------------------------

class Unresolvable(AssertionError):
    """An expression this test cannot give a value: the workflow says something the test does not back."""


TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>&&|\|\||==|!=|<=|>=|[!<>(),])"
                   r"|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))")


@dataclass
class Context:
    """What `${{ }}` can read: the repository's variables and secrets, `github` and `runner`, the job's steps."""

    vars: dict[str, str]
    secrets: dict[str, str]
    github: dict[str, Any]
    runner: dict[str, Any]
    step_ids: set[str] = field(default_factory=set)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # the steps that ran (or were skipped)
    job_ok: bool = True
    static: bool = False  # validating a whole file: step references need only name a step of the job
    workspace: Path = ROOT
    matrix: dict[str, Any] = field(default_factory=dict)  # this job's entry of its strategy's matrix

    def lookup(self, path: str) -> Any:
        root, *rest = path.split(".")
        if root in ("vars", "secrets"):
            known = getattr(self, root)
            if len(rest) != 1 or rest[0] not in known:
                raise Unresolvable(f"{path}: the test's repository has no such {root[:-1]}")
            return known[rest[0]]
        if root in ("github", "runner"):
            value: Any = getattr(self, root)
            for part in rest:
                if not isinstance(value, dict) or part not in value:
                    raise Unresolvable(f"{path}: the test's `{root}` context has no {part!r}")
                value = value[part]
            return value
        if root == "matrix":
            if len(rest) != 1 or rest[0] not in self.matrix:
                raise Unresolvable(f"{path}: the job's matrix has no such key (keys: {sorted(self.matrix)})")
            return self.matrix[rest[0]]
        if root == "steps":
            if len(rest) < 2 or rest[0] not in self.step_ids or rest[1] not in ("outputs", "outcome", "conclusion") \
                    or (rest[1] == "outputs") != (len(rest) == 3) or len(rest) > 3:
                raise Unresolvable(f"{path}: no such step (ids: {sorted(self.step_ids)}) or property")
            if self.static:
                return ""
            if rest[0] not in self.steps:
                raise Unresolvable(f"{path}: step {rest[0]!r} has not run yet")
            step = self.steps[rest[0]]
            if rest[1] != "outputs":
                return step[rest[1]]
            if step["outcome"] != "skipped" and rest[2] not in step["outputs"]:
                raise Unresolvable(f"{path}: step {rest[0]!r} did not set output {rest[2]!r}")
            return step["outputs"].get(rest[2], "")
        raise Unresolvable(f"{path}: the test knows no context {root!r}")

    def call(self, name: str, args: list[Any]) -> Any:
        if name == "always" and not args:
            return True
        if name == "success" and not args:
            return self.job_ok
        if name == "failure" and not args:
            return not self.job_ok
        if name == "cancelled" and not args:
            return False
        if name == "fromJSON" and len(args) == 1:
            try:
                return json.loads(str(args[0]))
            except ValueError:  # GitHub fails the run before any job starts
                raise AssertionError(f"fromJSON({args[0]!r}): not JSON, the workflow would not start") from None
        if name == "hashFiles" and args:
            for pattern in args:  # each pattern must match a file, or the cache key would never change
                assert glob.glob(str(self.workspace / pattern)), f"hashFiles({pattern!r}) matches no file"
            return "0" * 64
        raise Unresolvable(f"{name}({', '.join(map(repr, args))}): the test knows no such function")

    def evaluate(self, expression: str) -> Any:
        tokens = tokenize(expression)
        value, rest = self._or(tokens)
        if rest:
            raise Unresolvable(f"{expression!r}: unexpected {rest[0][1]!r}")
        return value

    def _or(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        value, tokens = self._and(tokens)
        while tokens and tokens[0] == ("op", "||"):
            right, tokens = self._and(tokens[1:])
            value = value or right
        return value, tokens

    def _and(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        value, tokens = self._compare(tokens)
        while tokens and tokens[0] == ("op", "&&"):
            right, tokens = self._compare(tokens[1:])
            value = value and right
        return value, tokens

    def _compare(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        left, tokens = self._unary(tokens)
        if tokens and tokens[0][0] == "op" and tokens[0][1] in ("==", "!=", "<", ">", "<=", ">="):
            op = tokens[0][1]
            right, tokens = self._unary(tokens[1:])
            a, b = (left.lower(), right.lower()) if isinstance(left, str) and isinstance(right, str) else (left, right)
            left = {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return left, tokens

    def _unary(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        if tokens and tokens[0] == ("op", "!"):
            value, tokens = self._unary(tokens[1:])
            return not value, tokens
        return self._primary(tokens)

    def _primary(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        if not tokens:
            raise Unresolvable("expression ends too early")
        (kind, text), tokens = tokens[0], tokens[1:]
        if (kind, text) == ("op", "("):
            value, tokens = self._or(tokens)
            assert tokens and tokens[0] == ("op", ")"), "unbalanced parentheses"
            return value, tokens[1:]
        if kind == "str":
            return text[1:-1].replace("''", "'"), tokens
        if kind == "num":
            return float(text), tokens
        if kind == "name" and text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text], tokens
        if kind == "name" and tokens and tokens[0] == ("op", "("):
            args: list[Any] = []
            tokens = tokens[1:]
            while tokens and tokens[0] != ("op", ")"):
                arg, tokens = self._or(tokens)
                args.append(arg)
                if tokens and tokens[0] == ("op", ","):
                    tokens = tokens[1:]
            assert tokens, f"{text}(: unbalanced parentheses"
            return self.call(text, args), tokens[1:]
        if kind == "name":
            return self.lookup(text), tokens
        raise Unresolvable(f"unexpected {text!r}")

    def interpolate(self, value: Any) -> Any:
        """A value with each `${{ expression }}` replaced as GitHub does (true/false, '' for null)."""
        if not isinstance(value, str):
            return value
        return EXPRESSION.sub(lambda m: text_of(self.evaluate(m.group(1))), value)

    def value(self, value: Any) -> Any:
        """A setting's value: one whole `${{ }}` keeps its type (a list for a matrix), anything else is text."""
        wrapped = EXPRESSION.fullmatch(value.strip()) if isinstance(value, str) else None
        return self.evaluate(wrapped.group(1)) if wrapped else self.interpolate(value)

    def condition(self, value: Any) -> bool:
        """An `if:` (a bare expression or one `${{ }}`); no `if:` means success()."""
        if value is None:
            return bool(self.job_ok)
        text = str(value).strip()
        wrapped = EXPRESSION.fullmatch(text)
        return bool(self.evaluate(wrapped.group(1) if wrapped else text))


def tokenize(expression: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while expression[pos:].strip():
        match = TOKEN.match(expression, pos)
        if not match:
            raise Unresolvable(f"{expression!r}: cannot read {expression[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- running a job --------------------------------------------------------------------------------------------

@dataclass
class StepRun:
    name: str
    id: str
    outcome: str  # success | failure | skipped
    output: str = ""  # stdout and stderr, as the log shows them
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobRun:
    steps: list[StepRun]
    summary: str
    comments: dict[str, str]  # sticky comments posted, by header
    issues: list[str]  # failure issues that would be opened
    concurrency: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(s.outcome != "failure" for s in self.steps)

    def step(self, name: str) -> StepRun:
        found = [s for s in self.steps if name in (s.name, s.id)]
        assert len(found) == 1, f"no single step {name!r} in {[s.name for s in self.steps]}"
        return found[0]

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} ({s.outcome})\n{s.output}" for s in self.steps)


def load_workflow(name: str) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc


def step_name(step: dict[str, Any]) -> str:
    return str(step.get("name") or (f"Run {str(step['run']).strip().splitlines()[0]}" if "run" in step
                                    else step["uses"]))


def env_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: NAME=value lines, or NAME<<DELIMITER ... DELIMITER."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(body)
        else:
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            out[name] = value
    return out


def local_go() -> Path:
    found = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    assert found, "this machine has no Go (actions/setup-go gives the workflows one)"
    return Path(found).resolve()


def stand_in(action: str, ref: str, inputs: dict[str, Any], workspace: Path, job: JobRun, files: dict[str, Path]) \
        -> str:
    """What a `uses:` step amounts to on this machine; the log line it leaves."""
    assert re.fullmatch(r"v\d+", ref), f"{action}@{ref}: pin a major version tag"
    if action == "actions/checkout":
        return "the fresh copy of the checkout is the workspace"
    if action == "actions/setup-go":
        go = local_go()
        version = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True, check=True,
                                 timeout=30).stdout.strip()
        assert version.startswith(f"go{inputs['go-version']}"), f"the workflow wants Go {inputs['go-version']}, " \
                                                                 f"this machine has {version}"
        with files["GITHUB_PATH"].open("a") as path:
            path.write(f"{go.parent}\n")
        return f"{version} on PATH"
    if action == "actions/cache":
        assert "~/.cache/certplane" in str(inputs["path"]), "the bootstrap's build cache must be cached"
        return "cache hit: this machine's ~/.cache/certplane is the cache (and .venv a link to its venv)"
    if action == "marocchino/sticky-pull-request-comment":
        job.comments[str(inputs["header"])] = (workspace / str(inputs["path"])).read_text()
        return f"comment {inputs['header']!r} posted from {inputs['path']}"
    if action == "actions/github-script":
        job.issues.append(str(inputs["script"]))
        return "an issue would be opened (or commented on)"
    raise AssertionError(f"{action}@{ref} has no stand-in in this test: add one saying what it does here")


def run_script(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    """One `run:` step: its exit code and log. On timeout the whole process group is killed (the engine's
    plugins too), so nothing outlives the step and the wait stays bounded."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=30)
        raise AssertionError(f"{argv[-1]} did not finish within {timeout:.0f} s:\n{output}") from None
    return proc.returncode, output


def matrix_of(job: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """The entries of a job's `strategy.matrix`, in GitHub's order (one empty entry for a job without one)."""
    matrix = ctx.value((job.get("strategy") or {}).get("matrix") or {})
    assert isinstance(matrix, dict) and not {"include", "exclude"} & set(matrix), "only plain matrices are simulated"
    axes = {k: ctx.value(v) for k, v in matrix.items()}
    for key, values in axes.items():
        assert isinstance(values, list) and values, f"matrix {key}: {values!r} is not a non-empty list: " \
                                                    "GitHub would not start the job"
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def run_job(workflow: str, repo: Path, ctx: Context, *, job_id: str | None = None,
            matrix: dict[str, Any] | None = None) -> JobRun:
    """Run one job of a workflow in `repo` as GitHub's runner would (see the module's docstring), for one entry
    of its matrix."""
    doc = load_workflow(workflow)
    job_id = job_id or next(iter(doc["jobs"]))
    job = doc["jobs"][job_id]
    ctx.matrix = matrix or {}
    ctx.step_ids = {str(s["id"]) for s in job["steps"] if "id" in s}
    ctx.workspace = repo
    assert ctx.condition(job.get("if", "success()")), f"{workflow}: job {job_id} would be skipped"
    concurrency = {k: ctx.interpolate(v) for k, v in (doc.get("concurrency") or job.get("concurrency") or {}).items()}
    run = JobRun([], "", {}, [], concurrency)
    shell = ((job.get("defaults") or doc.get("defaults") or {}).get("run") or {}).get("shell")
    runner_dir = repo.parent / f"{repo.name}-runner"
    runner_dir.mkdir()
    base = {**fresh_shell(), "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(repo),
            "GITHUB_REPOSITORY": ctx.github["repository"], "GITHUB_EVENT_NAME": ctx.github["event_name"],
            "GITHUB_RUN_ID": ctx.github["run_id"], "GITHUB_SERVER_URL": ctx.github["server_url"],
            "RUNNER_OS": ctx.runner["os"], "RUNNER_TEMP": str(runner_dir)}
    workflow_env = {k: text_of(ctx.interpolate(v)) for k, v in (doc.get("env") or {}).items()}
    job_env = {k: text_of(ctx.interpolate(v)) for k, v in (job.get("env") or {}).items()}
    exported: dict[str, str] = {}  # GITHUB_ENV of the steps so far
    paths: list[str] = []  # GITHUB_PATH of the steps so far, the latest first
    deadline = time.monotonic() + float(job["timeout-minutes"]) * 60
    for index, step in enumerate(job["steps"]):
        name, sid = step_name(step), str(step.get("id", f"__{index}"))
        if not ctx.condition(step.get("if")):
            run.steps.append(StepRun(name, sid, "skipped"))
            ctx.steps[sid] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
            continue
        files = {n: runner_dir / f"{n.lower()}-{index}" for n in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                                                                  "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.touch()
        step_env = {k: text_of(ctx.interpolate(v)) for k, v in (step.get("env") or {}).items()}
        # What earlier steps exported (GITHUB_ENV), then the workflow's, job's and step's own env: (no workflow here
        # both exports and declares one name), then the step's command files.
        env = {**base, **exported, **workflow_env, **job_env, **step_env, **{k: str(v) for k, v in files.items()}}
        env["PATH"] = ":".join([*paths, env["PATH"]])
        if "uses" in step:
            action, _, ref = str(step["uses"]).partition("@")
            inputs = {k: ctx.interpolate(v) for k, v in (step.get("with") or {}).items()}
            output, outcome = stand_in(action, ref, inputs, repo, run, files), "success"
        else:
            script = str(step["run"])
            assert "${{" not in script, f"{name}: pass expressions to a script through env:, never inline"
            script_file = runner_dir / f"step-{index}.sh"
            script_file.write_text(script)
            step_shell = step.get("shell", shell)
            argv = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                    None: ["bash", "-e", str(script_file)]}.get(step_shell)
            assert argv, f"{name}: shell {step_shell!r} is not simulated here"
            budget = min(STEP_TIMEOUT, float(step.get("timeout-minutes", 1e9)) * 60, deadline - time.monotonic())
            code, output = run_script(argv, repo / str(step.get("working-directory", ".")), env, max(budget, 1.0))
            outcome = "success" if code == 0 else "failure"
        outputs = env_file(files["GITHUB_OUTPUT"].read_text())
        exported.update(env_file(files["GITHUB_ENV"].read_text()))
        paths = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line][::-1] + paths
        run.summary += files["GITHUB_STEP_SUMMARY"].read_text()
        conclusion = "success" if outcome == "success" or step.get("continue-on-error") else "failure"
        if conclusion == "failure":
            ctx.job_ok = False
        run.steps.append(StepRun(name, sid, outcome, output, outputs))
        ctx.steps[sid] = {"outcome": outcome, "conclusion": conclusion, "outputs": outputs}
    return run


# --- the repository the workflows run for ---------------------------------------------------------------------

@dataclass
class Repository:
    """The GitHub repository's settings (docs/CI.md) and its shared backend; each run gets a fresh checkout."""

    tmp: Path
    vars: dict[str, str]
    secrets: dict[str, str]
    runs: int = 0

    def checkout(self, stacks: dict[str, dict[str, Any]]) -> Path:
        """A fresh copy as a CI checkout has it, with the committed Pulumi.<stack>.yaml. Its .tools is not this
        checkout's (fresh_checkout links it): `make bootstrap` installs its own from ~/.cache/certplane, as a
        fresh clone does, rather than rewriting the shared one's language host to point into a temp copy."""
        self.runs += 1
        repo = self.tmp / f"run-{self.runs}"
        repo.mkdir()
        fresh_checkout(repo)
        (repo / ".tools").unlink()
        for stack, stack_config in stacks.items():
            (repo / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(
                {"config": {f"certplane:{k}": v for k, v in stack_config.items()}}, sort_keys=False))
        return repo

    def context(self, event: str, **overrides: dict[str, str]) -> Context:
        events: dict[str, Any] = {
            "pull_request": {"number": 7, "head": {"repo": {"full_name": REPOSITORY}}},
            "schedule": {"schedule": "23 4 * * *"},
        }
        return Context(vars={**self.vars, **overrides.get("vars", {})},
                       secrets={**self.secrets, **overrides.get("secrets", {})},
                       github={"event_name": event, "repository": REPOSITORY, "run_id": "4242",
                               "server_url": "https://github.com",
                               "event": {event: events[event]} if event == "pull_request" else events[event]},
                       runner={"os": "Linux", "temp": str(self.tmp)})

    def run(self, workflow: str, event: str, stack_config: dict[str, Any], **overrides: dict[str, str]) -> JobRun:
        """The workflow's one job, for a repository whose CERTPLANE_STACKS names one stack."""
        jobs = self.run_matrix(workflow, event, {STACK: stack_config}, **overrides)
        assert len(jobs) == 1, f"one stack was expected, the matrix has {sorted(jobs)}"
        return next(iter(jobs.values()))

    def run_matrix(self, workflow: str, event: str, stacks: dict[str, dict[str, Any]],
                   **overrides: dict[str, str]) -> dict[str, JobRun]:
        """Every entry of the job's matrix side by side, as GitHub runs them: each its own runner and checkout
        (with every stack's committed file), all on the one shared backend. By the entry's `stack`."""
        doc = load_workflow(workflow)
        job = next(iter(doc["jobs"].values()))
        entries = matrix_of(job, self.context(event, **overrides))

        checkouts = [self.checkout(stacks) for _ in entries]

        def one(entry: dict[str, Any], repo: Path) -> JobRun:
            return run_job(workflow, repo, self.context(event, **overrides), matrix=entry)

        with ThreadPoolExecutor(max_workers=len(entries)) as pool:
            runs = dict(zip((str(e.get("stack")) for e in entries), pool.map(one, entries, checkouts)))
        for run in runs.values():
            everything = run.log + run.summary + "".join(run.comments.values())
            assert PASSPHRASE not in everything, "the passphrase was printed"
            assert "PRIVATE KEY" not in everything, "a private key was printed"
        return runs

    def operator(self, command: str) -> subprocess.CompletedProcess[str]:
        """What the operator does once by hand (docs/CI.md), in a checkout of their own."""
        repo = self.tmp / "operator"
        if not repo.exists():
            repo.mkdir()
            fresh_checkout(repo)
        env = {**fresh_shell(), "PULUMI_BACKEND_URL": self.secrets["PULUMI_BACKEND_URL"],
               "PULUMI_CONFIG_PASSPHRASE": self.secrets["PULUMI_CONFIG_PASSPHRASE"]}
        return subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT, stdin=subprocess.DEVNULL)


def require_current_venv() -> None:
    """The copies link this checkout's .venv: `make bootstrap` in a copy must find it current (it cannot rebuild a
    link), as it is once this checkout's own bootstrap ran (`make test` runs it first)."""
    wanted = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in ("requirements.txt", "requirements-dev.txt")))
    stamp = ROOT / ".venv" / ".certplane-requirements"
    assert stamp.is_file() and stamp.read_text().strip() == wanted.hexdigest()[:16], \
        "this checkout's .venv is older than its requirements: run `make bootstrap` first"


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    (tmp_path / "state").mkdir()
    return Repository(tmp_path, vars={"CERTPLANE_STACKS": json.dumps([STACK]), "AWS_ROLE_ARN": "",
                                                "AWS_REGION": ""},
                      secrets={"PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
                               "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE})


# --- the tests ------------------------------------------------------------------------------------------------

def test_every_expression_action_and_setting_is_known_and_documented(repository: Repository) -> None:
    """Statically, all of both files: every `${{ }}` and `if:` resolves, every job is bounded and runs on the
    platform the bootstrap installs for (this machine's), and docs/CI.md lists exactly the variables and secrets
    the workflows read."""
    used: set[str] = set()
    machine = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    for name, event in (("plan.yml", "pull_request"), ("renew.yml", "schedule")):
        doc = load_workflow(name)
        assert event in doc["on"], f"{name} does not run on {event}"
        text = (WORKFLOWS / name).read_text()
        used |= set(re.findall(r"\b((?:vars|secrets)\.[A-Z][A-Z0-9_]*)", text))
        for job_id, job in doc["jobs"].items():
            ctx = repository.context(event)
            ctx.static, ctx.step_ids = True, {str(s["id"]) for s in job["steps"] if "id" in s}
            ctx.matrix = matrix_of(job, ctx)[0]
            assert job.get("timeout-minutes"), f"{name}: job {job_id} needs timeout-minutes"
            assert str(job.get("container", "")).startswith(machine["ID"].strip('"') + ":"), \
                f"{name}: job {job_id} runs on another platform than the one its steps are tested on"

            def walk(node: Any, key: str = "") -> None:
                if isinstance(node, dict):
                    for k, v in node.items():
                        walk(v, str(k))
                elif isinstance(node, list):
                    for v in node:
                        walk(v, key)
                elif key == "if":
                    ctx.condition(node)
                elif isinstance(node, str):
                    ctx.interpolate(node)

            walk({k: v for k, v in doc.items() if k != "jobs"})
            walk(job)
    documented = set(re.findall(r"^\| `((?:vars|secrets)\.[A-Z][A-Z0-9_]*)`", (ROOT / "docs" / "CI.md").read_text(),
                                re.M))
    assert used == documented, f"used but not documented: {sorted(used - documented)}; " \
                               f"documented but not used: {sorted(documented - used)}"
    assert {u.split(".", 1)[1] for u in used} <= set(repository.vars) | set(repository.secrets)
    # The guard itself: what the test does not provide is an error, never an empty string.
    ctx = repository.context("schedule")
    for unknown in ("${{ secrets.AWS_SECRET_ACCESS_KEY }}", "${{ vars.STACK }}", "${{ env.STACK }}",
                    "${{ steps.plan.outputs.changes }}", "${{ github.event.pull_request.number }}",
                    "${{ toJSON(github) }}"):
        with pytest.raises(Unresolvable):
            ctx.interpolate(unknown)
    assert ctx.condition("${{ !cancelled() && vars.AWS_ROLE_ARN != '' }}") is False
    ctx.matrix = {"stack": STACK}
    assert ctx.interpolate("up-${{ matrix.stack }}-${{ github.event_name == 'schedule' }}") == f"up-{STACK}-true"
    # The matrix comes from CERTPLANE_STACKS: unset (GitHub gives ''), or not a list, no job would start.
    renew = load_workflow("renew.yml")["jobs"]["renew"]
    assert matrix_of(renew, repository.context("schedule", vars={"CERTPLANE_STACKS": '["a", "b"]'})) == \
        [{"stack": "a"}, {"stack": "b"}]
    for broken in ("", "prod", '"prod"', "[]"):
        with pytest.raises(AssertionError, match="would not start"):
            matrix_of(renew, repository.context("schedule", vars={"CERTPLANE_STACKS": broken}))


def test_the_workflows_renew_check_and_plan_as_written(repository: Repository, tmp_path: Path, ca: LocalCa) -> None:
    require_current_venv()
    certs = tmp_path / "certs"
    stack = config(tmp_path)  # a private CA, `www` deployed to a `files` target in tmp_path/certs, and `api`
    shard = {"issuers": {"ca": {"type": "private_ca", "common_name": "Shard Root"}},
             "certificates": {"edge": {"domains": ["edge.eu.example.test"], "issuer": "ca"}}}
    for name in (STACK, SHARD):
        created = repository.operator(f"tools/pulumi stack init {name}")
        assert created.returncode == 0, created.stdout + created.stderr
    try:
        # The scheduled run over a fleet sharded into two stacks: one job per stack, side by side on the shared
        # backend; each `up` issues and deploys its own, each check finds its own healthy where it is served.
        runs = repository.run_matrix("renew.yml", "schedule", {STACK: stack, SHARD: shard},
                                     vars={"CERTPLANE_STACKS": json.dumps([STACK, SHARD])})
        assert sorted(runs) == sorted([STACK, SHARD])
        renew, eu = runs[STACK], runs[SHARD]
        assert renew.ok, renew.log
        assert eu.ok, eu.log
        assert eu.concurrency == {"group": f"certplane-up-{SHARD}", "cancel-in-progress": False}
        assert f"OK: 1 certificate and 1 CA certificate on stack {SHARD}" in \
            eu.step("Check every certificate where it is served").output, eu.log
        assert renew.concurrency == {"group": f"certplane-up-{STACK}", "cancel-in-progress": False}
        assert "bootstrap: ready: v3.274.1" in renew.step("Run make bootstrap").output
        assert "bootstrap: creating" not in renew.log and "bootstrap: building" not in renew.log, renew.log
        assert re.search(r"\+ \d+ created", renew.step("Issue, renew and deploy what is due").output), renew.log
        checked = renew.step("Check every certificate where it is served").output
        # www and api, and the private CA's root beside them (checked by its own expiry)
        assert f"OK: 2 certificates and 1 CA certificate on stack {STACK}" in checked, checked
        assert "1 target holds it" in checked, checked
        assert f"OK: 2 certificates and 1 CA certificate on stack {STACK}" in renew.summary
        assert sorted(p.name for p in certs.glob("www.*")) == ["www.chain.pem", "www.crt", "www.fullchain.pem",
                                                           "www.key"]
        assert renew.step("Open an issue (or comment on the open one)").outcome == "skipped" and not renew.issues

        # A pull request that changes nothing: one sticky comment with the plan's table; changes=false.
        quiet = repository.run("plan.yml", "pull_request", stack)
        assert quiet.ok, quiet.log
        assert quiet.concurrency == {"group": f"certplane-plan-{STACK}-7", "cancel-in-progress": True}
        assert quiet.step("plan").outputs == {"changes": "false", "exit-code": "0"}, quiet.log
        comment = quiet.comments[f"certplane-plan-{STACK}"]
        assert comment.startswith(f"### certplane plan: `{STACK}`") and "No changes." in comment, comment
        assert "| certificate | plan | expires (days left) | served at | policy |" in comment
        assert re.search(r"^\| `www` \| unchanged \| \d{4}-\d\d-\d\d \(\d+\.\d d\) \| disk \| ok \|$", comment, re.M)
        assert comment in quiet.summary

        # A pull request that adds a name: changes=true, and the comment says which name and what follows.
        added = repository.run("plan.yml", "pull_request",
                               config(tmp_path, domains=["a.example.test", "www.example.test", "new.example.test"]))
        assert added.ok, added.log
        assert added.step("plan").outputs == {"changes": "true", "exit-code": "2"}, added.log
        comment = added.comments[f"certplane-plan-{STACK}"]
        assert "| `www` | re-issue, re-key, redeploy |" in comment, comment
        assert "- names + new.example.test" in comment and "- www--disk: " in comment, comment

        # A pull request a mandatory policy stops: the job fails, after posting the plan that says why.
        untagged = config(tmp_path)
        untagged["certificates"]["www"]["tags"] = {"owner": "web-team"}
        blocked = repository.run("plan.yml", "pull_request", untagged)
        assert not blocked.ok and blocked.step("plan").outcome == "failure", blocked.log
        assert blocked.step("plan").outputs == {"changes": "false", "exit-code": "1"}
        comment = blocked.comments[f"certplane-plan-{STACK}"]
        assert "Blocked by a mandatory policy" in comment and "mandatory `required-tags`" in comment, comment

        # A plan that cannot be made at all (here: a stack the backend does not have): the comment says why.
        missing = repository.run("plan.yml", "pull_request", stack, vars={"CERTPLANE_STACKS": '["nosuch"]'})
        assert not missing.ok and missing.step("plan").outputs["exit-code"] == "1", missing.log
        comment = missing.comments["certplane-plan-nosuch"]
        assert comment.startswith("### certplane plan: `nosuch`\n\nThe plan could not be made:") and \
            "certplane: error: pulumi preview failed: " in comment and "nosuch" in comment.split("```")[1], comment

        # Someone replaced the deployed certificate by hand: `up` sees no change (it does not refresh), the check
        # does; the scheduled run fails and would open the issue.
        (certs / "www.fullchain.pem").write_text(ca.bundle(["www.example.test"]).fullchain_pem)
        drifted = repository.run("renew.yml", "schedule", stack)
        assert not drifted.ok, drifted.log
        assert drifted.step("Issue, renew and deploy what is due").outcome == "success"
        assert drifted.step("Check every certificate where it is served").outcome == "failure"
        assert re.search(r"^CRITICAL www +disk \(files\): ", drifted.step("Check every certificate where it is served")
                         .output, re.M), drifted.log
        assert len(drifted.issues) == 1

        # A secret that is not set stops the run at the settings step, naming it; nothing else runs.
        unset = repository.run("renew.yml", "schedule", stack, secrets={"PULUMI_CONFIG_PASSPHRASE": ""})
        settings = unset.step("Settings")
        assert settings.outcome == "failure" and "PULUMI_CONFIG_PASSPHRASE is not set" in settings.output
        assert unset.step("Run make bootstrap").outcome == "skipped"
        assert unset.step("Issue, renew and deploy what is due").outcome == "skipped"
    finally:
        for name in (STACK, SHARD):
            repository.operator(f"tools/pulumi destroy --yes --stack {name} --non-interactive")

"""A Pulumi `LanguageRuntime` plugin for Python programs, on the SDK's generated gRPC stubs.

Why this exists: the real `pulumi` engine is built from the Go module proxy, but the proxy here does not
serve the Go language host (`github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3` answers
403 at every version and commit).  The language host is a thin adapter: the engine asks it which plugins a
program needs and to run the program; the program itself talks to the engine's resource monitor through the
Python SDK.  This adapter runs the SDK's own `pulumi-language-python-exec` script exactly as the Go host does
(same arguments, same `PULUMI_CONFIG` / `PULUMI_CONFIG_SECRET_KEYS` environment), so the engine, state,
diffs, backends and dynamic providers are the real ones. One difference: a stack config too long for one
environment string (over ~100 KB, where the Go host fails with "Argument list too long", pulumi/pulumi#8680)
reaches the program through a pipe (`config_from_pipe.py`).

Protocol (as the engine expects of any plugin): start a gRPC server on a free loopback port, print the port on
the first line of stdout, serve until the engine kills us.  The engine's address is the last argument.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

# Exit code of the exec script after it already printed a user-actionable error (same as the Go host).
EXIT_AFTER_USER_MESSAGE = 32
EXEC_SCRIPT = "pulumi-language-python-exec"


def _version() -> str:
    """The engine version this host was installed beside (tools/bootstrap.sh pins it and passes it on)."""
    return (os.environ.get("CERTPLANE_PULUMI_VERSION") or pinned_engine_version()).lstrip("v")


def pinned_engine_version() -> str:
    """PULUMI_VERSION as tools/bootstrap.sh pins it: the one place the engine's version is written."""
    bootstrap = Path(__file__).resolve().parents[1] / "bootstrap.sh"
    match = re.search(r"^PULUMI_VERSION=(v[0-9.]+)$", bootstrap.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{bootstrap} pins no PULUMI_VERSION")
    return match.group(1)


def _options(info: Any) -> dict[str, Any]:
    if info is None or not info.HasField("options"):
        return {}
    return json_format.MessageToDict(info.options)


def _python_for(info: Any) -> str:
    """The interpreter that runs the program: the project's `virtualenv` option, else PULUMI_PYTHON_CMD."""
    venv = _options(info).get("virtualenv")
    if venv:
        root = Path(info.root_directory or info.program_directory or ".")
        candidate = Path(venv) if os.path.isabs(venv) else root / venv
        python = candidate / "bin" / "python"
        if python.exists():
            return str(python)
    return os.environ.get("PULUMI_PYTHON_CMD") or sys.executable


CONFIG_IN_ENV_MAX = 100_000  # bytes: Linux refuses one environment string over 128 KiB (MAX_ARG_STRLEN)
CONFIG_FD_ENV = "PULUMI_CONFIG_FD"
CONFIG_SHIM = Path(__file__).resolve().with_name("config_from_pipe.py")


def _write_and_close(fd: int, data: bytes) -> None:
    """All of `data` into the pipe, then EOF; a child that exits without reading it ends the write."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except BrokenPipeError:
        pass


class PythonLanguageRuntime(language_pb2_grpc.LanguageRuntimeServicer):  # type: ignore[misc]
    def __init__(self, engine_address: str, exec_script: str) -> None:
        self.engine_address = engine_address
        self.exec_script = exec_script
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def Handshake(self, request: Any, context: Any) -> Any:
        self.engine_address = request.engine_address or self.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=_version())

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPluginsResponse(plugins=[])

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        # Dynamic providers run in the bundled `pulumi-python` resource plugin: nothing to download.
        return language_pb2.GetRequiredPackagesResponse(packages=[])

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        deps = sorted((d.metadata["Name"], d.version) for d in metadata.distributions())
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[language_pb2.DependencyInfo(name=n, version=v) for n, v in deps]
        )

    def About(self, request: Any, context: Any) -> Any:
        info = request.info if request.HasField("info") else None
        python = _python_for(info)
        out = subprocess.run([python, "--version"], capture_output=True, text=True, timeout=30, check=False)
        return language_pb2.AboutResponse(
            executable=python,
            version=out.stdout.strip().removeprefix("Python "),
            metadata={"toolchain": "pip", "languageHost": "certplane (Python)"},
        )

    def InstallDependencies(self, request: Any, context: Any) -> Any:
        """`pulumi install`: create the project's virtualenv if missing, then pip-install requirements.txt,
        streaming the output as the Go host does."""
        info = request.info if request.HasField("info") else None
        directory = Path(request.directory or (info.program_directory if info else "") or ".")
        python = os.environ.get("PULUMI_PYTHON_CMD") or shutil.which("python3") or sys.executable
        steps: list[list[str]] = []
        venv = _options(info).get("virtualenv")
        if venv:
            root = Path(info.root_directory or directory) if info else directory
            venv_dir = Path(venv) if os.path.isabs(venv) else root / venv
            if not (venv_dir / "bin" / "python").exists():
                steps.append([python, "-m", "venv", str(venv_dir)])
            python = str(venv_dir / "bin" / "python")
        if (directory / "requirements.txt").exists():
            steps.append([python, "-m", "pip", "install", "-r", str(directory / "requirements.txt")])
        for argv in steps:
            proc = subprocess.Popen(argv, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert proc.stdout is not None
            for line in proc.stdout:
                yield language_pb2.InstallDependenciesResponse(stdout=line)
            if proc.wait() != 0:
                context.abort(grpc.StatusCode.UNKNOWN, f"{' '.join(argv[1:4])} failed with exit code {proc.returncode}")

    def Run(self, request: Any, context: Any) -> Any:
        info = request.info
        args = [_python_for(info), "-u", self.exec_script]
        for flag, value in (
            ("monitor", request.monitor_address),
            ("engine", self.engine_address),
            ("project", request.project),
            ("root_directory", info.root_directory),
            ("stack", request.stack),
            ("pwd", request.pwd),
            ("dry_run", "true" if request.dryRun else "false"),
            ("parallel", str(request.parallel)),
            ("organization", request.organization),
        ):
            if value:
                args += [f"--{flag}", value]
        args.append(info.entry_point or ".")
        args += list(request.args)
        env = dict(os.environ)
        config = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        pipe: tuple[int, int] | None = None
        if len(config) > CONFIG_IN_ENV_MAX:  # too long for one environment string: through a pipe instead
            pipe = os.pipe()
            env[CONFIG_FD_ENV] = str(pipe[0])
            args = [args[0], "-u", str(CONFIG_SHIM), *args[2:]]
        else:
            env["PULUMI_CONFIG"] = config
        try:
            child = subprocess.Popen(args, env=env, cwd=request.pwd or None, pass_fds=pipe[:1] if pipe else ())
        except OSError as err:
            if pipe:
                os.close(pipe[1])
            return language_pb2.RunResponse(error=f"could not run the Python program: {err}")
        finally:
            if pipe:
                os.close(pipe[0])
        writer = threading.Thread(target=_write_and_close, args=(pipe[1], config.encode()), daemon=True) \
            if pipe else None
        if writer:
            writer.start()  # the pipe holds 64 KiB: the rest goes as the child reads it
        with self._lock:
            self._children.add(child)
        try:
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
            if writer:
                writer.join(timeout=5)
        sys.stdout.flush()
        sys.stderr.flush()
        if code == 0:
            return language_pb2.RunResponse()
        if code == EXIT_AFTER_USER_MESSAGE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {code}")

    def RunPlugin(self, request: Any, context: Any) -> Any:
        """Run a plugin written in Python (a policy pack): `python <plugin dir> <args>` in `pwd`, with the
        engine's extra environment, its stdout and stderr streamed back as they come (the engine reads the
        plugin's port from the first stdout line), then the exit code. As the Go host does."""
        info = request.info
        directory = info.program_directory or request.program or "."
        args = [_python_for(info), "-u", directory, *request.args]
        env = dict(os.environ)
        env.update(item.split("=", 1) for item in request.env if "=" in item)
        try:
            child = subprocess.Popen(args, cwd=request.pwd or None, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as err:
            context.abort(grpc.StatusCode.UNKNOWN, f"could not run the Python plugin: {err}")
        with self._lock:
            self._children.add(child)
        chunks: queue.Queue[tuple[str, bytes] | None] = queue.Queue()

        def pump(name: str, stream: Any) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                chunks.put((name, chunk))
            chunks.put(None)

        pumps = [threading.Thread(target=pump, args=(n, s), daemon=True)
                 for n, s in (("stdout", child.stdout), ("stderr", child.stderr))]
        for thread in pumps:
            thread.start()
        try:
            open_streams = len(pumps)
            while open_streams:
                item = chunks.get()
                if item is None:
                    open_streams -= 1
                    continue
                yield language_pb2.RunPluginResponse(**{item[0]: item[1]})
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
            if child.poll() is None:
                child.kill()
        yield language_pb2.RunPluginResponse(exitcode=code)

    def Cancel(self, request: Any, context: Any) -> Any:
        with self._lock:
            for child in self._children:
                child.send_signal(signal.SIGINT)
        return empty_pb2.Empty()


    def stop_children(self, grace: float = 5.0) -> None:
        """End the programs and policy packs this host started: SIGTERM, then SIGKILL after `grace` seconds."""
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


def _watch_parent(server: grpc.Server, runtime: PythonLanguageRuntime) -> None:
    """When the engine that spawned us is gone (killed: it never said goodbye), end the program it asked us to
    run and stop; otherwise the program and this host would run on forever (the Go host health-checks instead)."""
    parent = os.getppid()
    while True:
        threading.Event().wait(1.0)
        if os.getppid() != parent:
            runtime.stop_children()
            server.stop(grace=None)
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pulumi-language-python")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--tracing", default="")
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("-v", dest="verbose", default="0")
    parser.add_argument("--use-executor", "-use-executor", dest="executor", default="")
    parser.add_argument("engine_address", nargs="?", default="")
    opts, _unknown = parser.parse_known_args(argv)
    if opts.version:
        print(_version())
        return 0
    exec_script = opts.executor or str(Path(__file__).resolve().with_name(EXEC_SCRIPT))
    if not Path(exec_script).exists():
        exec_script = os.environ.get("CERTPLANE_PULUMI_EXEC", exec_script)
    if not Path(exec_script).exists():
        print(f"missing executor {exec_script}", file=sys.stderr)
        return 1
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    runtime = PythonLanguageRuntime(opts.engine_address, exec_script)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(runtime, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # The engine stops plugins with SIGINT/SIGTERM: shut down quietly, never with a traceback.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop(grace=None))
    threading.Thread(target=_watch_parent, args=(server, runtime), daemon=True).start()
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())

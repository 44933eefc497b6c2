"""The Python language host speaks the engine's plugin protocol: port on stdout, gRPC, quiet shutdown."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import language_pb2, language_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "tools" / "langhost" / "pulumi_language_python.py"
PINNED = re.search(r"^PULUMI_VERSION=v([0-9.]+)$", (ROOT / "tools" / "bootstrap.sh").read_text(),
                   re.M).group(1)  # type: ignore[union-attr]  # what the bootstrap builds; the host says the same
EXEC = ROOT / ".tools" / "bin" / "pulumi-language-python-exec"


@contextmanager
def running_host(executor: Path = EXEC, engine: str = "127.0.0.1:1") -> Iterator[tuple[Any, list[str]]]:
    """Start the host as the engine does (flags, then the engine address), yield (stub, stderr lines), then stop
    it with SIGINT as the engine does; the stderr list is filled after the host exits."""
    proc = subprocess.Popen([sys.executable, str(HOST), "--use-executor", str(executor), "-v=9", "--logtostderr",
                             engine], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    try:
        port = int(proc.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield language_pb2_grpc.LanguageRuntimeStub(channel), stderr
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
        stderr.extend(err.splitlines())
        stderr.append(f"exit {proc.returncode}")


def program(tmp_path: Path, **options: Any) -> Any:
    struct = struct_pb2.Struct()
    struct.update(options)
    return language_pb2.ProgramInfo(root_directory=str(tmp_path), program_directory=str(tmp_path),
                                    entry_point=".", options=struct)


def test_version_flag():
    out = subprocess.run([sys.executable, str(HOST), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == PINNED


def test_serves_plugin_info_and_required_packages_then_stops_quietly_on_sigint():
    with running_host() as (stub, stderr):
        info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=10)
        assert info.version == PINNED
        packages = stub.GetRequiredPackages(language_pb2.GetRequiredPackagesRequest(), timeout=10)
        assert list(packages.packages) == []
        deps = stub.GetProgramDependencies(language_pb2.GetProgramDependenciesRequest(), timeout=10)
        assert "pulumi" in {d.name.lower() for d in deps.dependencies}
    assert stderr[-1] == "exit 0"
    assert not any("Traceback" in line for line in stderr)


def test_run_passes_the_go_hosts_arguments_and_config_and_reports_the_exit_code(tmp_path):
    """A stand-in executor records what it was given: the same flags and environment the Go host passes."""
    record = tmp_path / "record.json"
    fake = tmp_path / "fake-exec"
    fake.write_text("import json, os, sys\n"
                    f"json.dump({{'argv': sys.argv[1:], 'config': os.environ['PULUMI_CONFIG'], "
                    f"'secret_keys': os.environ['PULUMI_CONFIG_SECRET_KEYS']}}, open({str(record)!r}, 'w'))\n"
                    "sys.exit(3)\n")
    with running_host(executor=fake, engine="127.0.0.1:7") as (stub, _stderr):
        resp = stub.Run(language_pb2.RunRequest(
            project="p", stack="s", pwd=str(tmp_path), info=program(tmp_path), monitor_address="127.0.0.1:9",
            dryRun=True, parallel=4, config={"p:a": "1"}, configSecretKeys=["p:a"]), timeout=60)
    assert resp.error == "program exited with non-zero exit code: 3"
    got = json.loads(record.read_text())
    assert got["argv"] == ["--monitor", "127.0.0.1:9", "--engine", "127.0.0.1:7", "--project", "p",
                           "--root_directory", str(tmp_path), "--stack", "s", "--pwd", str(tmp_path),
                           "--dry_run", "true", "--parallel", "4", "."]
    assert json.loads(got["config"]) == {"p:a": "1"}
    assert json.loads(got["secret_keys"]) == ["p:a"]


def test_run_passes_a_config_too_long_for_the_environment_through_a_pipe(tmp_path):
    """Over 128 KiB, one environment string stops the program from starting at all ("Argument list too long"):
    ~1,000 certificates. Such a config reaches the executor whole, in its environment, by way of a pipe."""
    record = tmp_path / "record.json"
    fake = tmp_path / "fake-exec"
    fake.write_text("import json, os, sys\n"
                    f"json.dump({{'argv': sys.argv[1:], 'config': os.environ['PULUMI_CONFIG'], "
                    f"'fd': os.environ.get('PULUMI_CONFIG_FD'), 'path0': sys.path[0]}}, open({str(record)!r}, 'w'))\n"
                    "sys.exit(0)\n")
    config = {f"p:c{i:05d}": "x" * 100 for i in range(3000)}  # ~330 KB
    with running_host(executor=fake, engine="127.0.0.1:7") as (stub, _stderr):
        resp = stub.Run(language_pb2.RunRequest(
            project="p", stack="s", pwd=str(tmp_path), info=program(tmp_path), monitor_address="127.0.0.1:9",
            config=config), timeout=60)
    assert resp.error == ""
    got = json.loads(record.read_text())
    assert json.loads(got["config"]) == config and got["fd"] is None
    assert got["argv"][:2] == ["--monitor", "127.0.0.1:9"] and got["path0"] == str(tmp_path)


def test_install_dependencies_creates_the_virtualenv_and_streams_pip(tmp_path):
    """`pulumi install`: the project's virtualenv option is honoured, output is streamed back."""
    (tmp_path / "requirements.txt").write_text("# nothing to install\n")
    with running_host() as (stub, _stderr):
        request = language_pb2.InstallDependenciesRequest(
            directory=str(tmp_path), info=program(tmp_path, toolchain="pip", virtualenv="venv"))
        chunks = list(stub.InstallDependencies(request, timeout=240))
    assert (tmp_path / "venv" / "bin" / "python").exists()
    assert chunks, "pip's output is streamed"


def test_install_dependencies_reports_a_failing_pip(tmp_path):
    (tmp_path / "requirements.txt").write_text("this is not a requirement!!\n")
    with running_host() as (stub, _stderr):
        request = language_pb2.InstallDependenciesRequest(directory=str(tmp_path), info=program(tmp_path))
        with pytest.raises(grpc.RpcError) as err:
            list(stub.InstallDependencies(request, timeout=120))
    assert err.value.details() == "-m pip install failed with exit code 1"

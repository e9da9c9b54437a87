"""For native tests (pytest): generates the contract's Python types from sdk/wit/policy.wit
with componentize-py — the generator the component build uses — and puts them and the SDK
on the import path. Inside a component, componentize-py provides them itself."""

import atexit
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ensure() -> None:
    """Makes ``wit_world`` and ``portcullis`` importable (once per process)."""
    if any(pathlib.Path(p, "wit_world").is_dir() for p in sys.path):
        return
    generated = pathlib.Path(tempfile.mkdtemp(prefix="portcullis-bindings-"))
    atexit.register(shutil.rmtree, generated, ignore_errors=True)
    subprocess.run(
        ["componentize-py", "-d", str(ROOT / "sdk/wit"), "-w", "policy", "bindings", str(generated)],
        check=True,
        capture_output=True,
    )
    sys.path[:0] = [str(generated), str(ROOT / "sdk/python")]

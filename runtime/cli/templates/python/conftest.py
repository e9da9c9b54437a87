"""Native tests (pytest): the contract's Python types, generated from wit/policy.wit by
componentize-py (the generator the component build uses), on the import path. Inside a
component, componentize-py provides them itself."""

import atexit
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent

if not any(pathlib.Path(p, "wit_world").is_dir() for p in sys.path):
    generated = pathlib.Path(tempfile.mkdtemp(prefix="portcullis-bindings-"))
    atexit.register(shutil.rmtree, generated, ignore_errors=True)
    subprocess.run(
        ["componentize-py", "-d", str(HERE / "wit"), "-w", "policy", "bindings", str(generated)],
        check=True,
        capture_output=True,
    )
    sys.path[:0] = [str(generated), str(HERE)]

"""Native tests: the contract's generated Python types and the SDK on the import path."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "sdk/python"))
import native_bindings  # noqa: E402

native_bindings.ensure()

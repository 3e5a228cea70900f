"""Check for Node.js and the npm packages that package.json pins, as tools/setup.sh --with-node installs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent
SETUP_HINT = "run `bash tools/setup.sh --with-node` to install them"
# sharp, which transformers.js reads images with, declares "node": ">=20.9.0".
MIN_NODE_VERSION = (20, 9)


def missing_prerequisite(js_dir: Path = JS_DIR) -> str | None:
    """Return why the transformers.js tests cannot run on this machine, or None when they can."""
    node = shutil.which("node")
    if node is None:
        return f"node is not on PATH; install Node.js {MIN_NODE_VERSION[0]}.{MIN_NODE_VERSION[1]} or newer"
    version_text = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    version = tuple(int(part) for part in version_text.lstrip("v").split(".")[:2])
    if version < MIN_NODE_VERSION:
        return f"node {version_text} is too old; the tests need Node.js {MIN_NODE_VERSION[0]}.{MIN_NODE_VERSION[1]} or newer"

    node_modules = js_dir / "node_modules"
    pinned = json.loads((js_dir / "package.json").read_text(encoding="utf-8"))["dependencies"]
    for name, version in pinned.items():
        manifest = node_modules / name / "package.json"
        if not manifest.is_file():
            return f"npm package {name} is not installed in {node_modules}; {SETUP_HINT}"
        installed = json.loads(manifest.read_text(encoding="utf-8"))["version"]
        if installed != version:
            return f"npm package {name} is {installed} in {node_modules}, but package.json pins {version}; {SETUP_HINT}"
    return None

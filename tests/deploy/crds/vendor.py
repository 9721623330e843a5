"""Regenerate the vendored CRD schemas from the upstream CRD manifests.

    python tests/deploy/crds/vendor.py path/to/<crd>.yaml ...

Each manifest's one served version's ``openAPIV3Schema`` is written, without its
``description`` fields (they are most of the size and no part of validation), as
``<group>_<version>_<Kind>.json`` beside this file. See README.md for the sources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main(paths: list[str]) -> None:
    for path in paths:
        crd = yaml.safe_load(Path(path).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            schema = _strip(version["schema"]["openAPIV3Schema"])
            out = HERE / f"{group}_{version['name']}_{kind}.json"
            out.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
            print(out.name)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Each service image holds only its own package and libs/common (stress also greeks): no module of
a service, nor of libs/common, imports a SigmaSight package its image does not install (checked on
every import statement, including the ones inside functions)."""

from __future__ import annotations

import ast

import pytest
from tests.deploy.deploy_support import ROOT, SERVICES
from tests.deploy.test_dockerfiles import workspace_deps

PACKAGES = ("common", *SERVICES, "allinone")


def imported_packages(package: str) -> dict[str, set[str]]:
    """SigmaSight top-level packages imported anywhere in `package`, by importing file."""
    folder = ROOT / ("libs/common/src/common" if package == "common" else f"services/{package}/src/{package}")
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", ["common", *SERVICES])
def test_package_imports_only_what_its_image_installs(package: str) -> None:
    allowed = workspace_deps(package)
    outside = {pkg: files for pkg, files in imported_packages(package).items() if pkg not in allowed}
    assert outside == {}, f"{package} imports packages its image lacks: {outside}"

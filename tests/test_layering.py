"""The code's shape: lower layers never import upper ones, and raw SQL appears only where
the ORM cannot say it, each place saying why (``# raw-sql:``)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top: a package may import those before it, never those after it.
LAYERS = ["providers", "workspaces", "llm_keys", "credits", "api_tokens", "ai_gateway"]
APP_PACKAGES = [*LAYERS, "config"]
RAW_SQL = re.compile(r"\.cursor\(|\.execute\(|RawSQL\(|\.raw\(|\.extra\(")
WHY_WINDOW = 12  # lines above a statement where its "# raw-sql:" reason must be


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_a_higher_layer(package):
    higher = set(LAYERS[LAYERS.index(package) + 1 :])
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & higher)
        for path in _modules(package)
        if _imported_packages(path) & higher
    }
    assert offenders == {}


def test_the_walk_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from llm_keys.models import LLMKey\n")
    assert "llm_keys" in _imported_packages(module)


def test_raw_sql_only_where_a_comment_says_why():
    unexplained = []
    for package in APP_PACKAGES:
        for path in _modules(package):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines):
                if RAW_SQL.search(line) and not line.lstrip().startswith("#"):
                    window = lines[max(0, number - WHY_WINDOW) : number]
                    if not any("# raw-sql:" in above for above in window):
                        unexplained.append(f"{path.relative_to(ROOT)}:{number + 1}")
    assert unexplained == []

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "api_tokens"
# The token app sits above llm_keys (its pages use the member context) and below the gateway.
ALLOWED = {"django", "workspaces", "llm_keys", "api_tokens"}


def test_api_tokens_imports_only_django_workspaces_llm_keys_and_itself():
    found = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    project = {"llm_keys", "credits", "ai_gateway", "providers", "config", "workspaces", "django"}
    assert "workspaces" in found  # the walk really read the app
    assert found & project <= ALLOWED

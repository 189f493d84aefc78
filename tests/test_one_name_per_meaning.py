"""One name per meaning (issue 21): no class name is defined twice in the project's apps,
so an import says which one it means. Django's and Kombu's naming conventions aside."""

import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("ai_gateway", "api_tokens", "config", "credits", "llm_keys", "providers", "workspaces")
# Names the frameworks look up by convention: a management command, a migration, a Kombu
# transport and its channel.
CONVENTIONS = {"Command", "Migration", "Transport", "Channel"}


def test_no_class_name_is_defined_in_two_places():
    defined = defaultdict(list)
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            for name in re.findall(r"^class (\w+)", path.read_text(), flags=re.MULTILINE):
                defined[name].append(str(path.relative_to(ROOT)))
    twice = {n: where for n, where in defined.items() if len(where) > 1 and n not in CONVENTIONS}
    assert twice == {}

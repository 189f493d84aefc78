"""Write a .env with fresh development secrets, once. An existing .env is left alone."""

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_keys.crypto import generate_entry

path = Path(__file__).resolve().parent.parent / ".env"
if path.exists():
    print(".env exists; keeping it.")
    raise SystemExit(0)
path.write_text(
    "# Written once by `make run` for local development. Never commit this file.\n"
    "DJANGO_DEBUG=true\n"
    f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"LLM_KEY_ENCRYPTION_KEYS={generate_entry('dev1')}\n"
)
path.chmod(0o600)
print("Wrote .env with fresh development secrets.")

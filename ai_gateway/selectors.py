from llm_keys.selectors import NextCredentials, credentials_next  # noqa: F401 - re-exported

import logging
import re

KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_-]{4,}")


def redact(text: str) -> str:
    return KEY_PATTERN.sub("sk-ant-[redacted]", text)


class RedactKeysFilter(logging.Filter):
    """Scrub anything shaped like an Anthropic key from a record before it is written.

    A second line of defence: no code path should log a key in the first place.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if KEY_PATTERN.search(message):
            record.msg = redact(message)
            record.args = None
        return True

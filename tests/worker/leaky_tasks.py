"""A task for the real-worker leak test only (loaded with ``celery worker -I``): it logs the
sentinel key at DEBUG, in a message, in an exception's text and traceback, prints it, and
fails with it in its exception."""

import logging

from celery import shared_task

from tests.conftest import SENTINEL_KEY

logger = logging.getLogger("llm_keys.leak_test")


@shared_task(name="tests.leak_the_sentinel", ignore_result=True)
def leak_the_sentinel() -> None:
    logger.debug("A message holding the key %s", SENTINEL_KEY)
    logging.getLogger("celery.task").debug("An f-string holding the key " + SENTINEL_KEY)
    try:
        raise ValueError(f"An exception holding the key {SENTINEL_KEY}")
    except ValueError:
        logger.debug("Caught it", exc_info=True)
        logger.exception("Caught it again")
    logging.getLogger("anthropic._base_client").debug(
        "Request options: {'json_data': {'messages': [{'content': 'PROMPT-SENTINEL'}]}}"
    )
    print(f"printed {SENTINEL_KEY}")
    raise RuntimeError(f"The task fails holding the key {SENTINEL_KEY}")

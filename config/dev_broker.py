"""The development broker: Kombu's filesystem transport, with messages that appear whole.

Kombu's own ``_put`` creates the message file under its final name and only then locks and
writes it; a worker listing the folder in between takes the empty or half-written file, and
``json.loads`` kills the worker (issue 21: 2 of 8 hour-long ``make run`` sessions). This
channel writes each message under a hidden staging folder and renames it into the queue
folder: a rename within one file system is atomic, so a consumer sees no file or the whole
message (decision 131). ``_put`` is the virtual channel's documented method for a transport
to implement (``kombu.transport.virtual.AbstractChannel``).
"""

import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.json import dumps

STAGING = ".staging"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: write it aside, then rename it into the folder."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        staging = folder / STAGING
        staging.mkdir(exist_ok=True)
        written = staging / name
        try:
            with open(written, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(written, folder / name)
        except OSError as exc:
            written.unlink(missing_ok=True)
            raise filesystem.ChannelError(f"Cannot add {name!r} to the queue folder") from exc


class Transport(filesystem.Transport):
    Channel = Channel

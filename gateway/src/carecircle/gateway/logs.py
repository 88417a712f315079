"""Log lines of one gateway among several in a process carry its id."""

from __future__ import annotations

import logging
from typing import Any


class GatewayLog(logging.LoggerAdapter[logging.Logger]):
    """``label: message`` when a label is set, the message unchanged otherwise.

    A process serving one gateway logs exactly as before; one serving several
    (``[[gateway.sites]]``) labels each line with the gateway it concerns.
    """

    def __init__(self, logger: logging.Logger, label: str = "") -> None:
        super().__init__(logger, {"gw": label})
        self.label = label

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return (f"{self.label}: {msg}" if self.label else msg), kwargs

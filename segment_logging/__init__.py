"""segment-logging: Segment analytics events from the logging calls you already make.

Public names are imported here explicitly; machinery lives in ``_private``
modules. Exceptions::

    SegmentLoggingError
    ├── InvalidMessage (also ValueError)
    │   └── MessageTooLarge
    └── DeliveryError
"""

from __future__ import annotations

from ._batch import Batch
from ._batchers import AsyncAutoBatcher, AutoBatcher, Batcher
from ._context import Binding, bind, bound, clear_bound, unbind
from ._endpoint import InsecureHostWarning
from ._errors import DeliveryError, InvalidMessage, MessageTooLarge, SegmentLoggingError
from ._handler import SegmentHandler
from ._lifecycle import flush_all, shutdown
from ._messages import Alias, BaseMessage, Group, Identify, Page, Screen, Track
from ._transport import AsyncHttpClient, HttpClient
from ._version import __version__

__all__ = [
    "Alias",
    "AsyncAutoBatcher",
    "AsyncHttpClient",
    "AutoBatcher",
    "BaseMessage",
    "Batch",
    "Batcher",
    "Binding",
    "DeliveryError",
    "Group",
    "HttpClient",
    "Identify",
    "InsecureHostWarning",
    "InvalidMessage",
    "MessageTooLarge",
    "Page",
    "Screen",
    "SegmentHandler",
    "SegmentLoggingError",
    "Track",
    "bind",
    "bound",
    "clear_bound",
    "flush_all",
    "shutdown",
    "unbind",
    "__version__",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__  # report the public home, as httpx does
del _name, _obj

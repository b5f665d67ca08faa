"""The public surface: nothing becomes public by accident."""

from __future__ import annotations

import segment_logging


def test_all_is_pinned() -> None:
    """__all__ lists exactly the intended public names."""
    assert set(segment_logging.__all__) == {
        "Alias",
        "AsyncAutoBatcher",
        "AsyncHttpClient",
        "AutoBatcher",
        "BaseMessage",
        "Batch",
        "Batcher",
        "Binding",
        "InsecureHostWarning",
        "DeliveryError",
        "Group",
        "HttpClient",
        "Identify",
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
    }
    assert sorted(segment_logging.__all__) == sorted(set(segment_logging.__all__))


def test_public_classes_report_the_package_as_module() -> None:
    """Re-exported classes say they live in segment_logging, not a private module."""
    for name in segment_logging.__all__:
        obj = getattr(segment_logging, name)
        if isinstance(obj, type):
            assert obj.__module__ == "segment_logging", name


def test_exception_tree() -> None:
    """Misuse errors subclass ValueError; everything subclasses SegmentLoggingError."""
    assert issubclass(segment_logging.InvalidMessage, ValueError)
    assert issubclass(segment_logging.MessageTooLarge, segment_logging.InvalidMessage)
    assert issubclass(segment_logging.DeliveryError, segment_logging.SegmentLoggingError)
    assert issubclass(segment_logging.InvalidMessage, segment_logging.SegmentLoggingError)

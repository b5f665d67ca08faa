"""The package's layers: each module imports only from the layers below its own.

This is the shape a newcomer can rely on (a contract in the spirit of import-linter's
"layers"), read from the source with ``ast``: imports inside functions count, imports
under ``if TYPE_CHECKING:`` do not (they never run). A new module must be placed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "segment_logging"

LAYERS: list[tuple[str, set[str]]] = [
    ("entry point", {"__main__"}),
    ("command line", {"_cli", "_e2e_command", "_drain"}),
    ("tools built on the fake Segment", {"pytest_plugin", "_sink", "e2e"}),
    ("the fake Segment", {"testing"}),
    (
        "front ends and the public package",
        {"__init__", "structlog", "_capture", "contrib", "contrib.celery", "contrib.django"}
        | {"contrib.flask", "contrib.starlette"},
    ),
    ("the logging handler", {"_handler"}),
    ("the queue and its worker thread", {"_worker"}),
    ("what the queue uses", {"_lifecycle", "_reporting", "_backlog", "_batchers", "_spooling", "_encoding"}),
    ("HTTP to Segment: the clients and their retry loop", {"_transport"}),
    ("one exchange: the request and what its answer means", {"_exchange"}),
    ("where requests go: host, path, redirects", {"_endpoint"}),
    ("options and their defaults", {"_options"}),
    ("the spool file", {"_spool"}),
    ("batching rules, context, auth and deadlines", {"_batch", "_context", "_oauth", "_deadline"}),
    ("structlog's event dicts", {"_structlog_events"}),
    ("messages and values", {"_messages", "_values"}),
    ("encoding and reports", {"_json", "_diagnostics"}),
    ("leaves", {"_errors", "_clock", "_sync", "_auth", "_retry", "_version", "_compat"}),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_imports(path: Path) -> set[str]:
    """Package modules ``path`` imports when it runs (its own names, without ``segment_logging.``)."""
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package and name != "__init__" else name.split(".")[:-1]
    found: set[str] = set()

    class Imports(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                if node.module is None:
                    found.update(".".join([*base, alias.name]) for alias in node.names)
                else:
                    found.add(".".join([*base, node.module]))
            elif node.module and node.module.startswith("segment_logging."):
                found.add(node.module.removeprefix("segment_logging."))

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if alias.name.startswith("segment_logging."):
                    found.add(alias.name.removeprefix("segment_logging."))

    Imports().visit(ast.parse(path.read_text(encoding="utf-8")))
    return {module for module in found if module}


def _layer_of(module: str) -> int:
    for index, (_, modules) in enumerate(LAYERS):
        if module in modules:
            return index
    raise AssertionError(f"segment_logging.{module} is in no layer: place it in tests/test_layers.py")


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[_module_name(path) for path in SOURCES])
def test_module_imports_only_from_lower_layers(path: Path) -> None:
    """No module imports one of its own layer or above: no cycles, and the shape stays."""
    module = _module_name(path)
    layer = _layer_of(module)
    for imported in sorted(_runtime_imports(path)):
        if imported == "__init__" or imported == "":
            continue
        below = _layer_of(imported)
        assert below > layer, (
            f"segment_logging.{module} ({LAYERS[layer][0]}) imports segment_logging.{imported} "
            f"({LAYERS[below][0]}), which is not below it"
        )


def test_every_layer_names_real_modules() -> None:
    """The contract lists no module that does not exist (a rename must update it)."""
    existing = {_module_name(path) for path in SOURCES}
    listed = set().union(*(modules for _, modules in LAYERS))
    assert listed - existing == set()

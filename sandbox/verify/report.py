"""JUnit XML, the format every CI system reads: one suite per command run, one test case per
thing checked, a failure element for each that did not pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from xml.etree import ElementTree

from sandbox.verify.documents import DocumentError


@dataclasses.dataclass(frozen=True)
class TestCase:
    name: str
    classname: str
    failures: tuple[tuple[str, str], ...] = ()  # (one-line message, details)
    seconds: float = 0.0
    skipped: str | None = None

    __test__ = False  # not a pytest class


def junit_xml(suite: str, cases: list[TestCase]) -> str:
    failures = sum(1 for case in cases if case.failures)
    skipped = sum(1 for case in cases if case.skipped is not None and not case.failures)
    root = ElementTree.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    node = ElementTree.SubElement(
        root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
        errors="0", skipped=str(skipped), time=f"{sum(c.seconds for c in cases):.3f}")
    for case in cases:
        element = ElementTree.SubElement(node, "testcase", name=case.name,
                                         classname=case.classname, time=f"{case.seconds:.3f}")
        for message, details in case.failures:
            failure = ElementTree.SubElement(element, "failure", message=message)
            failure.text = details
        if case.skipped is not None and not case.failures:
            ElementTree.SubElement(element, "skipped", message=case.skipped)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | Path, suite: str, cases: list[TestCase]) -> None:
    """Write the report, making its folder first: CI recipes name `reports/x.xml` in a fresh
    checkout. DocumentError (one line, exit 2) if it cannot be written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(junit_xml(suite, cases), encoding="utf-8")
    except OSError as exc:
        raise DocumentError(f"cannot write the JUnit report {target}: {exc.strerror or exc}"
                            ) from None

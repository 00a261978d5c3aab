"""``tanlib.analysis`` imports its names on first use: every exported name resolves to the
object of the module that defines it, and an unknown name is an AttributeError."""

import importlib

import pytest

import tanlib.analysis as analysis


def test_every_export_is_the_defining_modules_object():
    assert analysis.__all__ == sorted(analysis._EXPORTS)
    for name, module in analysis._EXPORTS.items():
        assert getattr(analysis, name) is getattr(importlib.import_module(module), name), name
    assert set(analysis.__all__) <= set(dir(analysis))


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        analysis.nonexistent  # noqa: B018

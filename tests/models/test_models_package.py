"""The package's lazy attribute: LinearTextClassifier on first use (scikit-learn loads slowly), every
other unknown name an AttributeError that names it."""

import pytest

import seqlab.models


def test_linear_text_classifier_is_loaded_when_asked_for():
    from seqlab.models.linear_text import LinearTextClassifier

    assert seqlab.models.LinearTextClassifier is LinearTextClassifier
    from seqlab.models import LinearTextClassifier as again

    assert again is LinearTextClassifier


@pytest.mark.parametrize("name", ["lineartextclassifier", "LINEARTEXTCLASSIFIER", "NoSuchModel"])
def test_other_names_are_attribute_errors(name):
    with pytest.raises(AttributeError, match=f"module 'seqlab.models' has no attribute '{name}'"):
        getattr(seqlab.models, name)
    assert not hasattr(seqlab.models, name)

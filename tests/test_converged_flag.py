"""The one reading of a stored ``metrics.converged`` that every chapter's report and notebook uses."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from specvae.experiments.store import converged_flag, said_converged


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), (np.bool_(True), True), (np.bool_(False), False),
    (1, True), (0, False), (np.int64(1), True), (np.int64(0), False),
    (1.0, True), (0.0, False), (np.float64(1.0), True),
    (None, None), (float("nan"), None), (np.float32("nan"), None),
    ("true", True), ("False", False),
])
def test_converged_flag_reads_every_form_a_stored_verdict_takes(value, expected):
    assert converged_flag(value) is expected
    assert said_converged(value) is (expected is True)


@pytest.mark.parametrize("bad", [2, -1, 0.5, "yes", "not checked", [True]])
def test_a_value_that_is_no_verdict_is_an_error_not_a_silent_no(bad):
    with pytest.raises(ValueError, match="'converged' must be true/false"):
        converged_flag(bad)


def test_a_frame_of_records_counts_the_same_whatever_pandas_made_of_the_column():
    # records as the store writes them: a rule's verdict, a run without a rule (null), a missing key
    records = [{"converged": True}, {"converged": False}, {"converged": None}, {}, {"converged": True}]
    rows = [json.loads(json.dumps(r)) for r in records]
    as_object = pd.DataFrame(rows)["converged"]                      # object column: True/False/None/NaN
    as_float = pd.Series([1.0, 0.0, math.nan, math.nan, 1.0])        # what a numeric cast makes of it
    for column in (as_object, as_float):
        assert int(column.map(said_converged).sum()) == 2
        assert [converged_flag(v) for v in column] == [True, False, None, None, True]

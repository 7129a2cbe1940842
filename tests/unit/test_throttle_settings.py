"""The throttling of failed secrets and passwords is configured by SANDBOX_AUTH_FAILURES and
SANDBOX_AUTH_WINDOW_S; a value that cannot work is refused at start, naming it."""

from __future__ import annotations

import pytest

from sandbox.settings import Settings, SettingsError


def test_throttling_defaults_to_ten_failures_a_minute_and_reads_its_variables():
    assert (Settings().auth_failures, Settings().auth_window_s) == (10, 60.0)
    settings = Settings.from_env({"SANDBOX_AUTH_FAILURES": "3", "SANDBOX_AUTH_WINDOW_S": "2.5"})
    assert (settings.auth_failures, settings.auth_window_s) == (3, 2.5)


@pytest.mark.parametrize(("variable", "value"), (
    ("SANDBOX_AUTH_FAILURES", "0"), ("SANDBOX_AUTH_FAILURES", "many"),
    ("SANDBOX_AUTH_WINDOW_S", "0"), ("SANDBOX_AUTH_WINDOW_S", "soon"),
))
def test_a_throttle_that_cannot_work_is_refused_at_start(variable, value):
    with pytest.raises(SettingsError, match=variable.removeprefix("SANDBOX_").lower()
                       + "|" + variable):
        Settings.from_env({variable: value})

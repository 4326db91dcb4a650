"""Account settings: PutAccountSetting, PutAccountSettingDefault,
DeleteAccountSetting, ListAccountSettings.

Account settings are account-wide (per region), so each test that changes
them gets a server of its own instead of the shared one."""

from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import REGION, ROOT_ARN, AwsCli, error_code, start_berth, unique

# Settings every account has, with the values a new account starts with.
DEFAULTS = {
    "serviceLongArnFormat": "enabled",
    "taskLongArnFormat": "enabled",
    "containerInstanceLongArnFormat": "enabled",
    "awsvpcTrunking": "disabled",
    "containerInsights": "disabled",
}


@pytest.fixture
def own(tmp_path):
    """A fresh server for one test."""
    with start_berth(tmp_path / "data") as server:
        yield server


@pytest.fixture
def ecs_own(own):
    return own.client("ecs")


def effective(ecs, **kw) -> dict[str, dict]:
    settings = ecs.get_paginator("list_account_settings").paginate(effectiveSettings=True, **kw).build_full_result()[
        "settings"
    ]
    return {s["name"]: s for s in settings}


def test_effective_settings_of_a_new_account(ecs_own):
    settings = effective(ecs_own)
    assert set(DEFAULTS) <= set(settings), sorted(settings)
    for name, value in DEFAULTS.items():
        assert settings[name]["value"] == value, name
        assert settings[name]["principalArn"] == ROOT_ARN
    assert all(isinstance(s["value"], str) for s in settings.values())


def test_no_explicit_settings_without_effective(ecs_own):
    out = ecs_own.list_account_settings()
    assert out["settings"] == []


def test_put_account_setting(ecs_own):
    setting = ecs_own.put_account_setting(name="containerInsights", value="enabled")["setting"]
    assert setting["name"] == "containerInsights"
    assert setting["value"] == "enabled"
    assert setting["principalArn"] == ROOT_ARN

    listed = ecs_own.list_account_settings(name="containerInsights")["settings"]
    assert [(s["name"], s["value"], s["principalArn"]) for s in listed] == [("containerInsights", "enabled", ROOT_ARN)]
    assert effective(ecs_own)["containerInsights"]["value"] == "enabled"
    # The value filter.
    assert ecs_own.list_account_settings(name="containerInsights", value="disabled")["settings"] == []

    # New clusters take their containerInsights setting from the account.
    c = ecs_own.create_cluster(clusterName=unique("insights"))["cluster"]
    assert {s["name"]: s["value"] for s in c["settings"]} == {"containerInsights": "enabled"}
    # An explicit cluster setting still wins.
    c = ecs_own.create_cluster(
        clusterName=unique("explicit"), settings=[{"name": "containerInsights", "value": "disabled"}]
    )["cluster"]
    assert {s["name"]: s["value"] for s in c["settings"]} == {"containerInsights": "disabled"}


def test_put_account_setting_for_root_principal(ecs_own):
    setting = ecs_own.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn=ROOT_ARN)["setting"]
    assert setting["principalArn"] == ROOT_ARN
    assert effective(ecs_own)["awsvpcTrunking"]["value"] == "enabled"
    listed = ecs_own.list_account_settings(principalArn=ROOT_ARN)["settings"]
    assert ("awsvpcTrunking", "enabled") in [(s["name"], s["value"]) for s in listed]


def test_put_account_setting_default(ecs_own):
    setting = ecs_own.put_account_setting_default(name="containerInsights", value="enhanced")["setting"]
    assert setting["name"] == "containerInsights"
    assert setting["value"] == "enhanced"
    assert setting["principalArn"]
    # The root user has no setting of its own: the default is what applies.
    assert effective(ecs_own)["containerInsights"]["value"] == "enhanced"
    c = ecs_own.create_cluster(clusterName=unique("default-insights"))["cluster"]
    assert {s["name"]: s["value"] for s in c["settings"]} == {"containerInsights": "enhanced"}


def test_delete_account_setting(ecs_own):
    ecs_own.put_account_setting(name="containerInsights", value="enabled")
    deleted = ecs_own.delete_account_setting(name="containerInsights")["setting"]
    assert deleted["name"] == "containerInsights"
    assert deleted["principalArn"] == ROOT_ARN
    remaining = ecs_own.list_account_settings(name="containerInsights")["settings"]
    assert [s for s in remaining if s["value"] == "enabled"] == []
    assert effective(ecs_own)["containerInsights"]["value"] == "disabled"


def test_invalid_value(ecs_own):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_own.put_account_setting(name="containerInsights", value="sometimes")
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_invalid_name(ecs_own):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_own.put_account_setting(name="noSuchSetting", value="enabled")
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_list_account_settings_paginator(ecs_own):
    pages = list(
        ecs_own.get_paginator("list_account_settings").paginate(
            effectiveSettings=True, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) >= 3
    assert all(len(p["settings"]) <= 2 for p in pages)
    names = [s["name"] for p in pages for s in p["settings"]]
    assert len(names) == len(set(names))
    assert set(DEFAULTS) <= set(names)
    assert set(names) == set(effective(ecs_own))


def test_list_account_settings_max_results_bounds(ecs_own):
    # "This value can be between 1 and 10."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_own.list_account_settings(maxResults=11)
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_account_settings_are_regional(own):
    east, west = own.client("ecs", region=REGION), own.client("ecs", region="eu-west-1")
    east.put_account_setting(name="containerInsights", value="enabled")
    assert effective(east)["containerInsights"]["value"] == "enabled"
    assert effective(west)["containerInsights"]["value"] == "disabled"


# ---------------------------------------------------------------- aws CLI


def test_cli_account_settings(own, tmp_path):
    aws = AwsCli(own, tmp_path / "home")
    put = aws("ecs", "put-account-setting", "--name", "containerInsights", "--value", "enabled")["setting"]
    assert put["value"] == "enabled"
    listed = aws("ecs", "list-account-settings", "--effective-settings")["settings"]
    by_name = {s["name"]: s["value"] for s in listed}
    assert by_name["containerInsights"] == "enabled"
    assert by_name["serviceLongArnFormat"] == "enabled"
    default = aws("ecs", "put-account-setting-default", "--name", "awsvpcTrunking", "--value", "enabled")["setting"]
    assert default["name"] == "awsvpcTrunking"
    deleted = aws("ecs", "delete-account-setting", "--name", "containerInsights")["setting"]
    assert deleted["name"] == "containerInsights"

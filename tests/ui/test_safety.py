"""Safe by default: loopback only unless a password is set, the login holds, and uploads are checked
for size and type before anything reads them. No engine is needed for any of it."""

import pytest

from tests.ui.helpers import serve_app
from workbench.errors import ConfigError
from workbench.ui.app import check_exposure, parse_auth


@pytest.mark.parametrize(
    "host, share",
    [("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("my-laptop.local", False), ("127.0.0.1", True)],
)
def test_serving_beyond_this_machine_needs_a_password(host, share):
    with pytest.raises(ConfigError, match="without a password.*--auth user:password.*WORKBENCH_AUTH"):
        check_exposure(host, share, None)
    check_exposure(host, share, ("ada", "lovelace-1843"))  # with one it is allowed


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_none(host):
    check_exposure(host, False, None)


@pytest.mark.parametrize("text", ["ada", "ada:", ":pw"])
def test_a_malformed_login_is_refused(text):
    with pytest.raises(ConfigError, match="user:password"):
        parse_auth(text)


def test_the_login_holds_for_the_http_api():
    from gradio_client import Client

    from workbench.ui.context import AppContext

    url, close = serve_app(AppContext(), auth=("ada", "lovelace-1843"))
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False).predict(
                "Qwen3-14B",
                "RTX 3090",
                "gptq-int4",
                128,
                32768,
                None,
                "auto",
                1,
                1,
                None,
                256,
                "0.32.0",
                None,
                None,
                "",
                None,
                api_name="/plan",
            )
        summary = Client(url, auth=("ada", "lovelace-1843"), verbose=False).predict(
            "Qwen3-14B",
            "RTX 3090",
            "gptq-int4",
            128,
            32768,
            None,
            "auto",
            1,
            1,
            None,
            256,
            "0.32.0",
            None,
            None,
            "",
            None,
            api_name="/plan",
        )[0]
        assert "fits" in summary
    finally:
        close()


def test_uploads_are_checked_for_type_and_size(idle_app_url, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    ui = Client(idle_app_url, verbose=False)
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ" + b"\0" * 1000)
    with pytest.raises(AppError, match=r"Invalid file type.*\.pdf.*\.docx"):
        ui.predict(handle_file(str(program)), api_name="/docqa_upload")
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(51 * 2**20)
    with pytest.raises(Exception, match="(?i)maximum|too large|exceeds"):
        ui.predict(handle_file(str(huge)), api_name="/docqa_upload")


def test_the_cli_refuses_an_open_host_without_a_password():
    import subprocess
    import sys

    for extra in (["--ui-host", "0.0.0.0"], ["--share"]):
        out = subprocess.run(
            [sys.executable, "-m", "workbench.cli", "ui", "--no-engine", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert "without a password" in out.stderr and "--auth" in out.stderr

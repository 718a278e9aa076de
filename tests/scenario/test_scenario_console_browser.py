"""The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium; `make browser` installs them, CI runs it) against `waguard serve`, found by accessible names (the
names a screen reader announces: headings, labelled fields, buttons), as the privacy officer and as a
sender. With WAGUARD_SCREENSHOT=PATH the requests page is saved there (`make console-screenshot`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.scenario.console_util import Console, start_console
from tests.scenario.util import unique_phone
from waguard.demo import Client, LocalStack, inbound_text, wait_for

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="browser tests skipped: Debian's chromium and chromium-driver are not installed (`make browser`)",
)


def make_driver(downloads: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,900")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


def replaced(element: Any) -> bool:
    """The element's page was replaced. Selenium's `staleness_of`, and also chromedriver's other answer when
    the node left the document between two of its own steps ("does not belong to the document")."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc.msg):
            return True
        raise
    return False


class Browser:
    """A page found by what a screen reader announces (Chromium computes the accessible names)."""

    def __init__(self, driver: Any, console: Console) -> None:
        self.driver, self.console = driver, console

    def open(self, path: str = "/") -> None:
        self.driver.get(self.console.base + path)

    def login(self) -> None:
        self.driver.get(self.console.url)

    def named(self, css: str, role: str, name: str, within: Any = None) -> Any:
        from selenium.webdriver.common.by import By

        scope = within or self.driver
        found = [e for e in scope.find_elements(By.CSS_SELECTOR, css) if e.accessible_name.strip() == name]
        assert found, f"no {role} named {name!r}"
        assert all(e.aria_role == role for e in found), [e.aria_role for e in found]
        return found[0]

    def press(self, name: str, within: Any = None) -> None:
        """Press a button that submits its form, and wait until the answer replaced the page (reading the
        page before that would find the old one, or elements gone stale under the reader)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.driver.find_element(By.TAG_NAME, "html")
        self.button(name, within).click()
        WebDriverWait(self.driver, 30).until(lambda _: replaced(page))
        WebDriverWait(self.driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    def heading(self, name: str) -> Any:
        return self.named("h1, h2", "heading", name)

    def button(self, name: str, within: Any = None) -> Any:
        return self.named("button", "button", name, within)

    def field(self, label: str) -> Any:
        return self.named("input, select", self.role_of_field(label), label)

    def role_of_field(self, label: str) -> str:
        from selenium.webdriver.common.by import By

        for e in self.driver.find_elements(By.CSS_SELECTOR, "input, select"):
            if e.accessible_name.strip() == label:
                return str(e.aria_role)
        raise AssertionError(f"no field labelled {label!r}")

    def row(self, text: str) -> Any:
        from selenium.webdriver.common.by import By

        rows = [r for r in self.driver.find_elements(By.CSS_SELECTOR, "tbody tr") if text in r.text]
        assert len(rows) == 1, f"{len(rows)} rows hold {text!r}"
        return rows[0]

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.TAG_NAME, "body").text)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads: Path) -> Iterator[Any]:
    driver = make_driver(downloads)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def officer(stack: LocalStack, driver: Any) -> Iterator[Browser]:
    console = start_console(stack, stack.roles["privacy-officer"])
    browser = Browser(driver, console)
    browser.login()
    yield browser
    assert console.stop() == 0


def contact_with_data(client: Client) -> tuple[str, str]:
    phone = unique_phone()
    assert client.deliver(inbound_text(phone, "hello")).status == 200
    wait_for(lambda: client.export(phone).status == 200)
    assert client.set_consent(phone, "marketing", "granted", "web-form").status == 200
    return phone, client.export(phone).json()["ref"]


def test_without_the_token_the_console_refuses(stack: LocalStack, driver: Any) -> None:
    console = start_console(stack, stack.roles["privacy-officer"])
    try:
        browser = Browser(driver, console)
        browser.open("/requests")
        assert browser.heading("Not signed in")
        assert "Privacy requests" not in browser.text()
    finally:
        assert console.stop() == 0


def test_the_queue_shows_a_request_with_its_due_date(officer: Browser, client: Client) -> None:
    phone = unique_phone()
    late = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    soon = client.open_request(
        {"contact": phone, "type": "erasure", "law": "gdpr", "received_at": late}
    ).json()
    later = client.open_request({"contact": unique_phone(), "type": "access", "law": "ccpa"}).json()
    officer.open("/requests")
    assert officer.heading("Privacy requests")
    row = officer.row(soon["id"])
    assert soon["due_at"][:10] in row.text and "Overdue" in row.text
    assert later["due_at"][:10] in officer.row(later["id"]).text
    ids = [r.text.split()[0] for r in officer.driver.find_elements("css selector", "tbody tr")]
    assert ids.index(soon["id"]) < ids.index(later["id"])  # soonest due first
    assert officer.button("Complete", row) and officer.button("Extend", row) and officer.button("Reject", row)
    assert officer.named("form", "form", "New request")
    if target := os.environ.get("WAGUARD_SCREENSHOT"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        officer.driver.save_screenshot(target)


def test_opening_and_completing_an_access_request(officer: Browser, client: Client) -> None:
    from selenium.webdriver.support.select import Select

    phone, _ = contact_with_data(client)
    officer.open("/requests")
    officer.field("Contact (number, user id or reference)").send_keys(phone)
    Select(officer.field("Type")).select_by_value("access")
    officer.field("Channel (optional)").send_keys("phone call")
    officer.press("Open request")
    assert "opened, due" in officer.text(), officer.text()
    notice = officer.driver.find_element("css selector", "p.notice")
    assert notice.aria_role == "status"
    request_id = notice.text.split()[1]
    assert notice.text.startswith(f"Request {request_id} opened, due ")
    opened = client.privacy_request(request_id).json()
    assert opened["type"] == "access" and opened["channel"] == "phone call" and opened["status"] == "open"

    officer.press("Complete", officer.row(request_id))
    assert f"Request {request_id} completed." in officer.text()
    assert client.privacy_request(request_id).json()["status"] == "completed"
    assert request_id not in " ".join(
        r.text for r in officer.driver.find_elements("css selector", "tbody tr")
    )
    assert client.privacy_request(request_id, "/export").status == 200


def test_extending_and_rejecting_from_the_row(officer: Browser, client: Client) -> None:
    first = client.open_request({"contact": unique_phone(), "type": "access", "law": "ccpa"}).json()
    second = client.open_request({"contact": unique_phone(), "type": "objection", "law": "gdpr"}).json()
    officer.open("/requests")
    officer.field(f"Reason to extend {first['id']}").send_keys("records held offsite")
    officer.press("Extend", officer.row(first["id"]))
    extended = client.privacy_request(first["id"]).json()
    assert extended["due_at"] > first["due_at"] and extended["extension_reason"] == "records held offsite"
    assert f"Request {first['id']} extended. Now due {extended['due_at'][:10]}." in officer.text()
    assert extended["due_at"][:10] in officer.row(first["id"]).text

    officer.field(f"Reason to reject {second['id']}").send_keys("identity not verified")
    officer.press("Reject", officer.row(second["id"]))
    assert client.privacy_request(second["id"]).json()["status"] == "rejected"
    assert f"Request {second['id']} rejected." in officer.text()

    officer.field(f"Reason to extend {first['id']}").send_keys("again")
    officer.press("Extend", officer.row(first["id"]))  # the law allows it once
    assert "The API answered 409: already_extended" in officer.text()


def test_looking_up_a_contact_by_number_export_and_erasure(
    officer: Browser, client: Client, downloads: Path
) -> None:
    phone, ref = contact_with_data(client)
    officer.open("/contact")
    assert officer.heading("Contact")
    officer.field("Contact").send_keys("+" + phone)
    officer.press("Look up")
    assert ref in officer.heading("Reference").find_element("xpath", "following-sibling::p").text
    text = officer.text()
    assert "marketing granted web-form" in text
    assert "Not restricted." in text
    assert "Your role may not do this" in text  # the officer may not read the conversation

    officer.button("Export").click()
    exported = downloads / f"{ref}-export.json"
    wait_for(exported.exists, timeout=20)
    doc = json.loads(exported.read_text())
    assert doc["ref"] == ref and doc["messages"][0]["text"] == "hello"

    officer.press("Erase")
    assert officer.heading("Erase contact")
    officer.field("Type the reference to confirm").send_keys(ref[:-1])
    officer.press("Confirm erasure")
    assert "does not match: nothing was erased" in officer.text()
    assert client.export(phone).status == 200
    officer.field("Type the reference to confirm").send_keys(ref)
    officer.press("Confirm erasure")
    assert officer.heading("Contact erased")
    assert f"Erased {ref}" in officer.text()
    receipt = officer.driver.find_element("css selector", "dd.receipt").text
    assert receipt.strip() and receipt != "None"
    assert client.export(phone).status == 404


def test_a_sender_console_may_not_use_the_privacy_pages(stack: LocalStack, driver: Any) -> None:
    console = start_console(stack, stack.roles["sender"])
    try:
        browser = Browser(driver, console)
        browser.login()
        for path, heading in (("/requests", "Privacy requests"), ("/audit", "Audit")):
            browser.open(path)
            assert browser.heading(heading)
            assert "Your role may not do this (403" in browser.text()
        browser.open("/contact")
        browser.field("Contact").send_keys(unique_phone())
        browser.press("Look up")
        assert "Your role may not do this (403" in browser.text()
        browser.open("/templates")
        assert browser.heading("Templates") and "Template registry" in browser.text()
    finally:
        assert console.stop() == 0

"""Selenium attaches to scry's running browser the only way it can, with
chromedriver's debuggerAddress (a bare host:port: no token), opens a page
and prints its title.

usage: selenium_title.py HOST:PORT URL
Run with Debian's /usr/bin/python3 (python3-selenium) and chromedriver
(chromium-driver).
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main() -> int:
    address, url = sys.argv[1], sys.argv[2]
    opts = webdriver.ChromeOptions()
    opts.debugger_address = address
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        # A tab of its own, so the person's tab is left alone.
        driver.switch_to.new_window("tab")
        driver.get(url)
        print(driver.title)
        driver.close()
    finally:
        # Attached with debuggerAddress, quit() leaves the browser running.
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

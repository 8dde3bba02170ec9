"""The first-value hold's clock: which series a scrape shows at zero, for
which scrapers it waits, and that no wait outlasts ``longest``. Times are
monotonic seconds; aerostat started at 0."""

from __future__ import annotations

import math

from aerostat.store import FirstValueHold

LONGEST = 60.0


def scraping(hold: FirstValueHold, scraper: str, every: float, start: float,
             until: float) -> None:
    """``scraper`` reads a whole scrape every ``every`` seconds from ``start``."""
    moment = start
    while moment <= until:
        hold.scraped(scraper, moment)
        moment += every


def test_off_shows_everything() -> None:
    hold = FirstValueHold(0.0, 0.0)
    assert not hold.enabled
    assert hold.horizon_at(5.0) == math.inf


def test_after_a_start_every_new_series_waits_the_longest_hold() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "prometheus", 1.0, 0.5, 30.0)
    # the scraper is known by now, but another may not have scraped yet
    assert hold.horizon_at(30.0) == -30.0  # nothing born since the start shows
    scraping(hold, "prometheus", 1.0, 31.0, 70.0)
    # the learning is over: a series shows once the one scraper has read it
    assert hold.horizon_at(70.2) == 70.0


def test_an_ha_pair_holds_a_series_until_the_slower_one_has_read_it() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "fast", 1.0, 0.0, 100.0)
    scraping(hold, "slow", 4.0, 0.0, 100.0)
    horizon = hold.horizon_at(100.5)
    assert horizon == 100.0  # both read a scrape that began at 100
    scraping(hold, "fast", 1.0, 101.0, 103.0)
    # a series born at 100.7: the fast one has read it at zero, not the slow one
    assert hold.horizon_at(103.5) == 100.0
    assert not hold.horizon_at(103.5) > 100.7
    hold.scraped("slow", 104.0)
    assert hold.horizon_at(104.2) > 100.7


def test_a_one_off_reader_holds_nothing_back() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "prometheus", 1.0, 0.0, 100.0)
    hold.scraped("curl", 80.0)  # read once: no interval, not a scraper
    assert hold.horizon_at(100.5) == 100.0


def test_a_scraper_that_stopped_no_longer_holds_series_back() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "gone", 4.0, 0.0, 100.0)
    scraping(hold, "fast", 1.0, 0.0, 200.0)
    # "gone" missed two of its intervals and the slack: taken as stopped
    assert hold.horizon_at(200.5) == 200.0
    assert [key for key, _, _ in hold.scrapers(200.5)] == ["fast"]  # forgotten after LONGEST


def test_no_series_waits_longer_than_the_longest_hold() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "slow", 50.0, 0.0, 300.0)  # every 50 s, last read at 300
    assert hold.horizon_at(330.0) == 300.0
    # a series born at 301 waits for the read at 350, or at most LONGEST
    assert hold.horizon_at(349.0) == 300.0
    hold_without_reads = FirstValueHold(LONGEST, 0.0)
    scraping(hold_without_reads, "slow", 50.0, 0.0, 300.0)
    assert hold_without_reads.horizon_at(362.0) >= 362.0 - LONGEST


def test_the_horizon_never_goes_back() -> None:
    hold = FirstValueHold(LONGEST, 0.0)
    scraping(hold, "a", 1.0, 0.0, 100.0)
    assert hold.horizon_at(100.5) == 100.0
    scraping(hold, "b", 5.0, 90.0, 100.0)  # a new scraper, last read at 100
    scraping(hold, "a", 1.0, 101.0, 110.0)
    first = hold.horizon_at(110.5)
    hold.scraped("c", 105.0)
    hold.scraped("c", 106.0)  # its last read is older than what was shown
    assert hold.horizon_at(106.5) >= first

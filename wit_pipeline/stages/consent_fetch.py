"""The image request itself: wit's User-Agent, the response's own opt-outs (never retried), and
consent for every redirect hop.

img2dataset's `download_image_with_retry` sends a browser User-Agent (with the token only in
a comment naming img2dataset's project), and retries an image whose `X-Robots-Tag` opted out,
since it reports the opt-out as a failure: a site that said `noai` is asked again. `ImageFetch`
stands in for it inside img2dataset's workers (`fetch.Guarded` installs it):

- one User-Agent naming wit and the operator's contact (`consent.user_agent`);
- `X-Robots-Tag` directives for all agents or for our token, and TDMRep's `tdm-reservation: 1`
  header; an opt-out is final: no retry, the body is never read, and the error message starts
  with its drop reason (`opted_out.x_robots_tag: noai`), which download counts;
- a redirect is followed only where consent allows the new URL: its origin's robots.txt and
  tdmrep.json, from the run's cache (`consent.CACHE_FILE`, written before img2dataset starts)
  or, for an origin only a redirect leads to, asked once per worker process, through the
  same egress guard. A refused hop is never requested (`opted_out.robots_txt: redirect to ...`).
  Redirects go to http(s) URLs only, as `fetch.HttpOnlyRedirects` rules;
- at most `max_bytes` of body (`web.fetch_limits.read_capped`) and `deadline` seconds in all.
"""

from __future__ import annotations

import io
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from wit_pipeline.stages import consent
from wit_pipeline.web.fetch_limits import (
    DEADLINE_MESSAGE,
    TOO_LARGE_MESSAGE,
    Deadline,
    SchemeCheckedRedirects,
    TooLarge,
    read_capped,
    watched_handlers,
)
from wit_pipeline.web.optout import IMAGE_DIRECTIVES, tdm_reserved, x_robots_opt_out
from wit_pipeline.web.urlsafety import ALLOWED_SCHEMES

OPT_OUT_PREFIXES = ("opted_out.", "consent_unavailable.")
X_ROBOTS_MESSAGE = "opted_out.x_robots_tag: {}"
TDM_MESSAGE = "opted_out.tdm_reservation: {}"
REDIRECT_MESSAGE = "{}: redirect to {}"


def opt_out_reason(error_message: str | None) -> str | None:
    """The drop reason of a consent error message from ImageFetch, else None."""
    if error_message and error_message.startswith(OPT_OUT_PREFIXES):
        return error_message.split(":", 1)[0]
    return None


class _Refused(Exception):
    def __init__(self, reason: str, url: str) -> None:
        super().__init__(REDIRECT_MESSAGE.format(reason, url[:300]))


class _ConsentRedirects(SchemeCheckedRedirects):
    """Follows a redirect to an http(s) URL that consent allows, else refuses the hop."""

    def __init__(self, fetcher: ImageFetch) -> None:
        self.fetcher = fetcher

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() in ALLOWED_SCHEMES and (reason := self.fetcher.refusal(newurl)):
            raise _Refused(reason, newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class ImageFetch:
    """img2dataset's `download_image_with_retry(row, timeout, retries, ...)`, consent-aware."""

    def __init__(self, user_agent: str, agent: str, directives: frozenset[str] = IMAGE_DIRECTIVES,
                 cache_url: str | None = None, settings: consent.Settings | None = None,
                 max_bytes: int = 32 * 1024 * 1024, deadline: float = 60.0) -> None:
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.agent = agent
        self.directives = frozenset(directives)
        self.cache_url = cache_url
        self.settings = settings or consent.Settings(agent=agent)
        self._policies: consent.OriginPolicies | None = None
        self._opener: urllib.request.OpenerDirector | None = None
        self._lock = threading.Lock()
        self._asking: dict[str, threading.Lock] = {}  # origin -> held while one thread asks it

    def __getstate__(self) -> dict[str, Any]:  # pickled into img2dataset's workers
        return {k: v for k, v in self.__dict__.items() if k not in ("_policies", "_opener", "_lock", "_asking")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _policies=None, _opener=None, _lock=threading.Lock(), _asking={})

    def __call__(self, row: tuple[Any, str], timeout: float, retries: int, *_: Any, **__: Any) -> tuple[Any, Any, str | None]:
        key, url = row
        error = None
        for _attempt in range(retries + 1):
            stream, error = self.fetch(url, timeout)
            if stream is not None or opt_out_reason(error):
                return key, stream, error
        return key, None, error

    def opener(self) -> urllib.request.OpenerDirector:
        """The environment's proxies (the egress guard) and consent-checked redirects."""
        if self._opener is None:
            self._opener = urllib.request.build_opener(_ConsentRedirects(self), *watched_handlers())
        return self._opener

    def refusal(self, url: str) -> str | None:
        """Why consent refuses `url` (a redirect target), or None."""
        origin = consent.origin_of(url)
        if origin is None:
            return consent.UNAVAILABLE_ROBOTS
        with self._lock:  # the policies are read and written under this lock, never asked under it
            if self._policies is None:
                self._policies = (consent.OriginPolicies.load(self.cache_url, self.agent) if self.cache_url
                                  else consent.OriginPolicies(agent=self.agent))
            policies = self._policies
            asking = self._asking.setdefault(origin, threading.Lock())
        with asking:  # threads of one worker ask an origin once; other origins' redirects go on meanwhile
            with self._lock:
                row = policies.rows.get(origin)
                ask_robots = row is None
                ask_tdm = row is not None and row["tdmrep_state"] is None and policies.robots(origin).allowed(url)
            if ask_robots or ask_tdm:
                opener = consent.policy_opener(None)  # the environment's proxy: the egress guard
                answer = (consent.ask_origin(origin, [url], opener, self.settings, time.time()) if ask_robots
                          else consent.ask_tdmrep(row, opener, self.settings))
                with self._lock:
                    policies.put(answer)
        with self._lock:
            if (policies.rows[origin]["robots_note"] or "").startswith("egress_refused."):
                return None  # an unsafe host: the egress guard refuses the hop itself, with its own reason
            return consent.decide(policies, origin, url)[0]

    def fetch(self, url: str, timeout: float) -> tuple[io.BytesIO | None, str | None]:
        """One request: (the body, None), or (None, why not)."""
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        deadline = Deadline(self.deadline)
        try:
            with deadline, self.opener().open(request, timeout=timeout) as response:
                robots_tags = response.headers.get_all("X-Robots-Tag") or []
                if x_robots_opt_out(robots_tags, self.agent, self.directives):
                    return None, X_ROBOTS_MESSAGE.format(", ".join(robots_tags)[:200])
                reservations = response.headers.get_all("tdm-reservation") or []
                if tdm_reserved(reservations):
                    return None, TDM_MESSAGE.format(", ".join(reservations)[:200])
                body = read_capped(response, self.max_bytes)
            if deadline.expired:  # a shutdown socket can look like the end of a body
                return None, DEADLINE_MESSAGE
            return io.BytesIO(body), None
        except TooLarge:
            return None, TOO_LARGE_MESSAGE
        except Exception as err:  # one image's failure, recorded as img2dataset records it
            return None, DEADLINE_MESSAGE if deadline.expired else str(err)


def install(fetcher: ImageFetch) -> None:
    """Make img2dataset's downloader (in this worker process) fetch through `fetcher`."""
    from img2dataset import downloader

    downloader.download_image_with_retry = fetcher

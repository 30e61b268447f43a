"""The image request itself: wit's User-Agent, and the response's own opt-outs, never retried.

img2dataset's `download_image_with_retry` sends a browser User-Agent (with the token only in
a comment naming img2dataset's project), and retries an image whose `X-Robots-Tag` opted out,
since it reports the opt-out as a failure: a site that said `noai` is asked again. `ImageFetch`
stands in for it inside img2dataset's workers (`fetch.Guarded` installs it): one User-Agent
naming wit and the operator's contact, `X-Robots-Tag` directives for all agents or for our
token, TDMRep's `tdm-reservation: 1` header, and an opt-out is final: no retry, and the error
message starts with its drop reason (`opted_out.x_robots_tag: noai`), which download counts.
The body of an opted-out response is never read.
"""

from __future__ import annotations

import io
import urllib.request
from typing import Any

from wit_pipeline.web.optout import IMAGE_DIRECTIVES, tdm_reserved, x_robots_opt_out

OPT_OUT_PREFIX = "opted_out."
X_ROBOTS_MESSAGE = "opted_out.x_robots_tag: {}"
TDM_MESSAGE = "opted_out.tdm_reservation: {}"


def opt_out_reason(error_message: str | None) -> str | None:
    """The drop reason of an opt-out error message from ImageFetch, else None."""
    if error_message and error_message.startswith(OPT_OUT_PREFIX):
        return error_message.split(":", 1)[0]
    return None


class ImageFetch:
    """img2dataset's `download_image_with_retry(row, timeout, retries, ...)`, consent-aware."""

    def __init__(self, user_agent: str, agent: str, directives: frozenset[str] = IMAGE_DIRECTIVES) -> None:
        self.user_agent = user_agent
        self.agent = agent
        self.directives = frozenset(directives)

    def __call__(self, row: tuple[Any, str], timeout: float, retries: int, *_: Any, **__: Any) -> tuple[Any, Any, str | None]:
        key, url = row
        error = None
        for _attempt in range(retries + 1):
            stream, error = self.fetch(url, timeout)
            if stream is not None or opt_out_reason(error):
                return key, stream, error
        return key, None, error

    def fetch(self, url: str, timeout: float) -> tuple[io.BytesIO | None, str | None]:
        """One request: (the body, None), or (None, why not)."""
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                robots_tags = response.headers.get_all("X-Robots-Tag") or []
                if x_robots_opt_out(robots_tags, self.agent, self.directives):
                    return None, X_ROBOTS_MESSAGE.format(", ".join(robots_tags)[:200])
                reservations = response.headers.get_all("tdm-reservation") or []
                if tdm_reserved(reservations):
                    return None, TDM_MESSAGE.format(", ".join(reservations)[:200])
                return io.BytesIO(response.read()), None
        except Exception as err:  # one image's failure, recorded as img2dataset records it
            return None, str(err)


def install(fetcher: ImageFetch) -> None:
    """Make img2dataset's downloader (in this worker process) fetch through `fetcher`."""
    from img2dataset import downloader

    downloader.download_image_with_retry = fetcher

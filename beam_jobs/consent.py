"""Consent for `wit download --engine beam`: each origin's robots.txt and tdmrep.json asked
once per job, by one worker, before any image is fetched.

Each worker of the download engine handles one selected-pairs file, and origins repeat across
files: if every worker asked for itself, a popular host would be asked once per file. So the
job first groups the URLs of all files by origin (`Top.SmallestPerKey` keeps a bounded sample
of each origin's URLs, so the shuffle is at most SAMPLE URLs per origin), spreads the origins
over the workers, and each origin is asked by exactly one of them (through that worker's own
egress guard; threads within a batch). The answers are written to `<output>/_consent/origins.parquet`,
which every file's download reads (its own origins only) as the cache it starts from, so the
downloads themselves ask nobody. The rare origin whose sample of URLs was all disallowed but
another URL is allowed has its tdmrep.json asked by the one download that needs it.
A resumed job reuses answers younger than 24 hours from the same file.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam

from wit_pipeline.core import fsio, parquet_io
from wit_pipeline.stages import consent
from wit_pipeline.stages import download as dl
from wit_pipeline.web.egress_proxy import EgressProxy

SAMPLE = 64  # URLs per origin kept to decide whether its tdmrep.json is needed


def origin_urls(path: str) -> Iterator[tuple[str, str]]:
    """(origin, url) of every http(s) URL of one selected-pairs file; none from a file that
    cannot be read (its download fails too, and is that file's dead letter)."""
    try:
        urls = parquet_io.read_parquet(path, columns=["url"]).column("url").to_pylist()
    except Exception as exc:  # noqa: BLE001 - any failure here is reported by the file's download
        logging.warning("consent: cannot read URLs of %s (%s)", path, exc)
        return
    for url in urls:
        if isinstance(url, str) and (origin := consent.origin_of(url)) is not None:
            yield origin, url


class AskBatch(beam.DoFn):
    """A batch of (origin, sample URLs) -> cache rows: a fresh cached answer, else a new one."""

    def __init__(self, cache_url: str, config: dl.DownloadConfig, now: float) -> None:
        self.cache_url, self.config, self.now = cache_url, config, now

    def setup(self) -> None:
        self.settings = consent.settings_of(self.config)
        self.proxy = None
        if self.config.egress_guard:
            self.proxy = EgressProxy(self.config.allow_loopback, socket.getaddrinfo, timeout=self.config.timeout).start()
        self.opener = consent.policy_opener(self.proxy.url if self.proxy else None)
        self.cached: dict[str, dict[str, Any]] | None = None

    def process(self, batch: list[tuple[str, list[str]]]) -> Iterator[dict[str, Any]]:
        if self.cached is None:  # the earlier run's answers, read once per worker
            self.cached = consent.OriginPolicies.load(self.cache_url, self.config.robots_agent).rows
        todo = []
        for origin, urls in batch:
            row = self.cached.get(origin)
            if row is not None and self.now - row["fetched_at"] <= self.settings.max_age:
                yield row
            else:
                todo.append((origin, urls))
        with ThreadPoolExecutor(max(1, min(self.settings.threads, len(todo) or 1))) as pool:
            yield from pool.map(lambda ou: consent.ask_origin(ou[0], ou[1], self.opener, self.settings, self.now), todo)

    def teardown(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()


def write_answers(rows: Iterable[dict[str, Any]], cache_url: str, agent: str) -> str:
    """The job's answers merged into the cache file (origins of other jobs kept); its URL."""
    policies = consent.OriginPolicies.load(cache_url, agent)
    for row in rows:
        policies.put(row)
    fsio.makedirs(cache_url.rsplit("/", 1)[0])
    policies.save(cache_url)
    return cache_url


class AskOrigins(beam.PTransform):
    """Selected-pairs file paths -> one element: the URL of the job's consent cache."""

    def __init__(self, output: str, config: dl.DownloadConfig, now: float | None = None) -> None:
        super().__init__()
        self.output, self.config = output, config
        self.now = time.time() if now is None else now

    def expand(self, files: beam.PCollection) -> beam.PCollection:
        cache_url = fsio.join(self.output, consent.CACHE_FILE)
        return (
            files
            | "OriginUrls" >> beam.FlatMap(origin_urls)
            | "SampleUrls" >> beam.combiners.Top.SmallestPerKey(SAMPLE)
            | "SpreadOrigins" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=64)
            | "Ask" >> beam.ParDo(AskBatch(cache_url, self.config, self.now))
            | "AllAnswers" >> beam.combiners.ToList()
            | "WriteAnswers" >> beam.Map(write_answers, cache_url, self.config.robots_agent)
        )


def summary(cache_url: str, config: dl.DownloadConfig, now: float) -> dict[str, Any]:
    """What the job's answers say, for stats.json: origins, and requests this job made."""
    rows = consent.OriginPolicies.load(cache_url, config.robots_agent).rows.values()
    fresh = [r for r in rows if r["fetched_at"] == now]
    return {"agent": config.robots_agent, "user_agent": consent.user_agent(config.robots_agent, config.contact),
            "origins": len(rows), "requests_this_run": {
                "robots.txt": len(fresh), "tdmrep.json": sum(r["tdmrep_state"] is not None for r in fresh)}}

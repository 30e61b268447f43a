"""`wit gen-crawl`: a seeded small web with everything a real crawl throws at a pipeline.

Writes, under `out_dir`:
  crawl/warc/CC-MAIN-*.warc.gz   real WARC files (warcinfo, request, response, metadata)
  crawl/wat/CC-MAIN-*.warc.wat.gz  their WAT files (Common Crawl's JSON metadata records)
  site-*/page-*.html             the pages themselves (also served)
  images/, noai/images/          the images the pages link to (serve with `wit serve out_dir`)
  robots.txt                     the product token `wit` may not fetch half of noai/images/
  truth.json                     every planted thing, with counts per category
  realweb/*.html                 with --real-web: pages in many encodings, lazy images and
                                 captions that need Unicode-aware normalisation (realweb.py)
  dumps/<code>wiki-*.xml.bz2     with --worldwide: a small Wikipedia-like dump per language
                                 (worldwide.py), for `wit build-queries --language CODE`

With --worldwide, the clean pairs are captioned in turn in English, Chinese and Japanese
(written without spaces), Arabic (right to left) and German (category "worldwide", `lang`).

Each `<img>` link has one *category* (what was planted: a clean pair, junk alt text, a
broken link, a decompression bomb, ...), one *url_form* (absolute, relative, protocol-relative,
data:, ...) and one *expect* (what fetching it should give: ok, http_404, noai, ...). Tests
assert exact counts against truth.json, so every draw is seeded and nothing depends on time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.core.keys import sample_key
from wit_pipeline.synthetic import corruptions, realweb
from wit_pipeline.synthetic import worldwide as world
from wit_pipeline.synthetic.concepts import Concept, all_concepts, caption_for
from wit_pipeline.synthetic.foreign import LANGS, foreign_caption
from wit_pipeline.synthetic.images import encode, render
from wit_pipeline.synthetic.warc_writer import CRAWL_START, CrawlFileWriter, Page

DEFAULT_PAGES = 40
DEFAULT_IMGS_PER_PAGE = 10
DEFAULT_FILES = 3

EVAL_SEED = 7919  # default seed of render_eval_set; crawl render seeds never reach it
EVAL_SIZE = (96, 96)
EVAL_N_PER_CONCEPT = 2
EVAL_JPEG_QUALITY = 95

JUNK_ALTS = (
    "image", "logo", "IMG_2031.JPG", "photo", "click here", "DSC00042.jpg", "banner", "spacer",
    "x", "ok",
)
# English alt text about other things: no demo allowlist query occurs in it, so the harvest
# drops it at matching (tests/test_synthetic.py holds these to the demo list and to LID).
OFF_TOPIC_ALTS = (
    "lighthouse overlooking rough seas", "golden retriever catching a frisbee",
    "crowded market selling ripe mangoes", "hikers crossing a rope bridge",
    "ducks paddling across a quiet pond", "snow covered village rooftops", "surfer riding a huge wave",
    "ice skaters gliding across frozen lake", "fishermen mending nets beside wooden boats",
    "autumn leaves floating across a puddle", "tractor ploughing muddy fields",
    "commuters waiting beside subway tracks", "lanterns glowing above narrow alleys", "cyclists racing uphill",
    "violinist performing inside grand cathedral", "lightning striking distant hills",
    "strawberries piled inside wicker baskets", "firefighters spraying burning barn",
)
PRIVATE_URLS = ("http://10.0.0.1/x.jpg", "http://192.168.1.20/images/cat.jpg", "http://169.254.169.254/latest/meta-data/photo.jpg")
UNRESOLVABLE_HOSTS = ("cdn.invalid", "img.nonexistent.invalid")

_SIZES = ((96, 96), (128, 128), (160, 120), (200, 150), (256, 256), (320, 240), (384, 288), (480, 360), (512, 512))
_BIG = (1024, 768)
_URL_FORMS = ("absolute", "relative_parent", "relative_root", "protocol_relative")
_URL_FORM_WEIGHTS = (5, 2, 2, 1)

# A 1x1 red PNG, for data: URLs.
_DATA_PNG = base64.b64encode(encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")).decode()


@dataclass
class ImgLink:
    category: str
    url_form: str
    src: str  # as written in the HTML
    url: str | None  # absolute URL it resolves to (None for data:/javascript:)
    alt: str | None  # None: no alt attribute
    title: str | None
    expect: str  # what fetching it gives: ok, http_404, noai, decode_error, ...
    image: str | None = None  # served file, relative to out_dir
    concept: str | None = None
    lang: str | None = None
    group: str | None = None  # dup / near-dup / repeated-pair group id
    page: str = ""


def slug(concept: Concept) -> str:
    return f"{concept.texture}-{concept.colour}-{concept.shape}"


def eval_image(concept: Concept, k: int, seed: int = EVAL_SEED, size: tuple[int, int] = EVAL_SIZE) -> bytes:
    """The k-th held-out image of a concept, as the JPEG bytes render_eval_set writes."""
    return encode(render(concept, size, 10**9 + seed * 1000 + k), "JPEG", EVAL_JPEG_QUALITY)


class _Crawl:
    """Builds the link plan, the files and the truth for one (base_url, seed)."""

    def __init__(self, base_url: str, seed: int, pages: int, imgs_per_page: int, files: int,
                 real_web: bool = False, languages: tuple[str, ...] = ("en",)) -> None:
        if pages < 1 or files < 1 or imgs_per_page < 1:
            raise ValueError("pages, files and imgs_per_page must be positive")
        parts = urlsplit(check_base_url(base_url))
        self.base_url = base_url.rstrip("/")
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.seed = seed
        self.real_web = real_web
        self.languages = languages  # the clean pairs' caption languages, in turn
        self.dumps: dict[str, str] = {}  # language -> its dump, relative to out_dir (--worldwide)
        self.pages = pages
        self.files = min(files, pages)
        self.target_links = pages * imgs_per_page
        self.rng = random.Random(f"wit-gen-crawl|{seed}")
        self.files_out: dict[str, bytes] = {}  # path relative to out_dir -> bytes
        self.images: dict[str, dict[str, Any]] = {}
        self.links: list[ImgLink] = []
        self._concepts = all_concepts()
        self._concept_cycle: list[Concept] = []
        self._n_images = 0

    # -- images --------------------------------------------------------------------------
    def _next_concept(self) -> Concept:
        if not self._concept_cycle:
            self._concept_cycle = list(self._concepts)
            self.rng.shuffle(self._concept_cycle)
        return self._concept_cycle.pop()

    def _add_file(self, path: str, data: bytes, **meta: Any) -> str:
        assert path not in self.files_out, path
        self.files_out[path] = data
        self.images[path] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **meta}
        return path

    def _good_image(self, concept: Concept, prefix: str = "images") -> tuple[str, Image.Image, str, int]:
        """Render a fresh image; returns (path, PIL image, format, quality)."""
        self._n_images += 1
        size = _BIG if self.rng.random() < 0.03 else self.rng.choice(_SIZES)
        fmt = "PNG" if self.rng.random() < 0.25 else "JPEG"
        quality = self.rng.choice((75, 85, 90, 95))
        img = render(concept, size, self.seed * 100_000 + self._n_images)
        ext = "png" if fmt == "PNG" else "jpg"
        path = f"{prefix}/{slug(concept)}-{self._n_images:05d}.{ext}"
        self._add_file(path, encode(img, fmt, quality), kind="ok", concept=concept.name, width=size[0],
                       height=size[1], format=fmt)
        return path, img, fmt, quality

    # -- URL forms -----------------------------------------------------------------------
    def _form(self) -> str:
        return self.rng.choices(_URL_FORMS, _URL_FORM_WEIGHTS)[0]

    def _src(self, path: str, form: str) -> str:
        if form == "absolute":
            return f"{self.base_url}/{path}"
        if form == "relative_parent":  # pages live one level down: /site-i/page-j.html
            return f"../{path}"
        if form == "relative_root":
            return f"{self.base_path}/{path}"
        if form == "protocol_relative":
            return f"//{self.netloc}{self.base_path}/{path}"
        raise ValueError(form)

    def _local(self, category: str, path: str, alt: str | None, expect: str = "ok", title: str | None = None,
               concept: Concept | None = None, form: str | None = None, **kw: Any) -> ImgLink:
        form = form or self._form()
        return ImgLink(category, form, self._src(path, form), f"{self.base_url}/{path}", alt, title, expect,
                       image=path if path in self.files_out else None,
                       concept=concept.name if concept else None, **kw)

    def _caption(self, concept: Concept, avoid: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        for _ in range(50):
            text = caption_for(concept, self.rng)
            if text not in avoid:
                return text
        raise RuntimeError("could not draw a distinct caption")

    def _good(self, category: str, alt_fn: Any = None, **kw: Any) -> ImgLink:
        concept = self._next_concept()
        path, *_ = self._good_image(concept)
        alt = self._caption(concept) if alt_fn is None else alt_fn(concept)
        return self._local(category, path, alt, concept=concept, **kw)

    # -- the plan ------------------------------------------------------------------------
    def plan(self) -> None:
        """Every link of the crawl, category by category (the order of the draws is the seed's)."""
        s = max(1, self.pages // 10)
        out: list[ImgLink] = []
        pinned: list[list[ImgLink]] = []  # groups that must land on distinct pages
        self._plan_text_cases(out, s)
        self._plan_duplicates(out, pinned, s)
        self._plan_fetch_failures(out, s)
        self._plan_eval_leaks(out, s)
        for k in range(s):  # English, but about nothing the allowlist names
            out.append(self._good("off_topic", alt_fn=lambda c, k=k: OFF_TOPIC_ALTS[k % len(OFF_TOPIC_ALTS)]))

        n_special = len(out) + sum(len(g) for g in pinned)
        languages = self.languages
        for i in range(max(self.pages, self.target_links - n_special)):
            lang = languages[i % len(languages)]
            if lang == "en":
                out.append(self._good("clean"))
            else:
                out.append(self._good("worldwide", alt_fn=lambda c, lang=lang: world.caption(c, lang, self.rng),
                                      lang=lang))
        self._assign(out, pinned)

    def _plan_text_cases(self, out: list[ImgLink], s: int) -> None:
        """Links the text rules and URL rules must drop or keep."""
        rng = self.rng
        out += [ImgLink("data_url", "data", f"data:image/png;base64,{_DATA_PNG}", None, self._caption(self._next_concept()),
                        None, "not_http") for _ in range(s)]
        out += [ImgLink("javascript_url", "javascript", "javascript:void(0)", None, self._caption(self._next_concept()),
                        None, "not_http") for _ in range(s)]
        out += [self._good("no_alt", alt_fn=lambda c: None) for _ in range(2 * s)]
        for _ in range(2 * s):
            link = self._good("empty_alt_title", alt_fn=lambda c: "")
            link.title = self._caption(_concept_of(link))
            out.append(link)
        for lang in LANGS:
            for _ in range(s):
                out.append(self._good("non_english", alt_fn=lambda c, lang=lang: foreign_caption(c, lang, rng), lang=lang))
        for junk in JUNK_ALTS:
            out.append(self._good("junk_alt", alt_fn=lambda c, junk=junk: junk))
        for _ in range(s):  # very long alt: a caption buried in boilerplate
            out.append(self._good("junk_alt", alt_fn=lambda c: (caption_for(c, rng) + " ") + " ".join(
                ["buy now free shipping best price"] * 40)))

    def _plan_duplicates(self, out: list[ImgLink], pinned: list[list[ImgLink]], s: int) -> None:
        """The same link on several pages; the same image under other URLs; near duplicates."""
        for g in range(s):
            link = self._good("repeated", group=f"repeated-{g}")
            pinned.append([ImgLink(**asdict(link)) for _ in range(3)])
        for g in range(s):  # exact duplicates: same bytes, 3 URLs, 3 captions
            concept = self._next_concept()
            path, *_ = self._good_image(concept)
            data = self.files_out[path]
            caps: set[str] = set()
            for copy in range(3):
                p = path if copy == 0 else self._add_file(
                    f"images/copy-{g:03d}-{copy}-{Path(path).name}", data, **{**self._meta(path), "kind": "ok", "dup_of": path})
                cap = self._caption(concept, caps)
                caps.add(cap)
                out.append(self._local("exact_dup", p, cap, concept=concept, group=f"exact-{g}"))
        for g in range(s):  # near duplicates: re-encoded, resized, cropped, each with its own caption
            concept = self._next_concept()
            path, img, fmt, quality = self._good_image(concept)
            caps = set()
            variants = {
                "base": path,
                "requality": self._variant(path, img.copy(), "q", lambda im: encode(im, "JPEG", 40)),
                "resized": self._variant(path, img, "r", lambda im: encode(
                    im.resize((max(8, im.width * 3 // 4), max(8, im.height * 3 // 4)), Image.Resampling.LANCZOS), "JPEG", 90)),
                "cropped": self._variant(path, img, "c", lambda im: encode(
                    im.crop((im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)), "JPEG", 90)),
            }
            for kind, p in variants.items():
                cap = self._caption(concept, caps)
                caps.add(cap)
                out.append(self._local("near_dup", p, cap, concept=concept, group=f"near-{g}"))
                self.images[p]["near_dup_kind"] = kind

    def _plan_fetch_failures(self, out: list[ImgLink], s: int) -> None:
        """Links whose fetch or decode must fail, each in its own way."""
        for k in range(2 * s):
            concept = self._next_concept()
            out.append(self._local("broken_404", f"images/missing-{k:03d}.jpg", self._caption(concept), "http_404", concept=concept))
        for _ in range(2 * s):
            concept = self._next_concept()
            path, *_ = self._good_image(concept, prefix="noai/images")
            out.append(self._local("noai", path, self._caption(concept), "noai", concept=concept))
        for k in range(s):
            concept = self._next_concept()
            path, *_ = self._good_image(concept)
            del self.images[path]
            data = self.files_out.pop(path)
            bad = f"images/truncated-{k:03d}.jpg"
            self._add_file(bad, corruptions.truncated(encode(Image.open(io.BytesIO(data)), "JPEG", 90)), kind="truncated_jpeg")
            out.append(self._local("corrupt_truncated", bad, self._caption(concept), "decode_error", concept=concept))
        for k in range(s):
            concept = self._next_concept()
            bad = self._add_file(f"images/random-{k:03d}.jpg", corruptions.random_bytes(3000 + 500 * k, self.seed * 1000 + k),
                                 kind="random_bytes")
            out.append(self._local("corrupt_random", bad, self._caption(concept), "decode_error", concept=concept))
        concept = self._next_concept()
        bomb = self._add_file("images/huge-poster.png", _bomb(), kind="decompression_bomb",
                              width=corruptions.BOMB_SIDE, height=corruptions.BOMB_SIDE, format="PNG")
        out.append(self._local("decompression_bomb", bomb, self._caption(concept), "decompression_bomb", concept=concept))
        for k in range(2 * s):
            concept = self._next_concept()
            url = f"http://{UNRESOLVABLE_HOSTS[k % len(UNRESOLVABLE_HOSTS)]}/images/{slug(concept)}-{k}.jpg"
            out.append(ImgLink("unresolvable_host", "absolute", url, url, self._caption(concept), None, "dns_error",
                               concept=concept.name))
        for url in PRIVATE_URLS:
            concept = self._next_concept()
            out.append(ImgLink("private_address", "absolute", url, url, self._caption(concept), None, "private_address",
                               concept=concept.name))

    def _plan_eval_leaks(self, out: list[ImgLink], s: int) -> None:
        """Held-out eval images leaked into the crawl: decontamination must catch them."""
        rng = self.rng
        self.eval_leak: list[dict[str, Any]] = []
        for k in range(s):  # held-out eval images leaked into the crawl: decontamination must catch them
            label = rng.randrange(len(self._concepts))
            concept, j = self._concepts[label], rng.randrange(EVAL_N_PER_CONCEPT)
            path = f"images/leak-{k:03d}.jpg"
            if path not in self.files_out:
                self._add_file(path, eval_image(concept, j), kind="ok", concept=concept.name, width=EVAL_SIZE[0],
                               height=EVAL_SIZE[1], format="JPEG", eval_id=_eval_id(label, j))
            link = self._local("eval_leak", path, self._caption(concept), concept=concept)
            self.eval_leak.append({"url": link.url, "eval_id": _eval_id(label, j)})
            out.append(link)

    def _meta(self, path: str) -> dict[str, Any]:
        return {k: v for k, v in self.images[path].items() if k in ("concept", "width", "height", "format")}

    def _variant(self, base: str, img: Image.Image, tag: str, make: Any) -> str:
        data = make(img)
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        path = base.rsplit(".", 1)[0] + f"-{tag}.jpg"
        return self._add_file(path, data, kind="ok", concept=self.images[base]["concept"], width=w, height=h,
                              format="JPEG", near_dup_of=base)

    def _assign(self, links: list[ImgLink], pinned: list[list[ImgLink]]) -> None:
        pages: list[list[ImgLink]] = [[] for _ in range(self.pages)]
        for group in pinned:
            for i, link in zip(self.rng.sample(range(self.pages), min(len(group), self.pages)), group):
                pages[i].append(link)
        self.rng.shuffle(links)
        order = list(range(self.pages))
        self.rng.shuffle(order)
        for n, link in enumerate(links):
            pages[order[n % self.pages]].append(link)
        self.page_links = pages
        for page in pages:
            self.rng.shuffle(page)

    # -- pages and files -----------------------------------------------------------------
    def page_path(self, i: int) -> str:
        sites = max(2, self.pages // 8)
        return f"site-{i % sites}/page-{i // sites:03d}.html"

    def build_page(self, i: int, links: list[ImgLink], title: str | None = None) -> Page:
        path = self.page_path(i) if title is None else "site-lost/page-000.html"
        url = f"{self.base_url}/{path}"
        title = title or f"Shapes and colours, part {i}"
        wat_links: list[dict[str, str]] = []
        body: list[str] = [f"<h1>{html.escape(title)}</h1>", "<p>Hand-made shapes in many colours and patterns.</p>"]
        nav = [(f"page-{(i // max(2, self.pages // 8) + 1) % 1000:03d}.html", "next page"),
               (f"{self.base_url}/{self.page_path((i + 7) % self.pages)}", "see also"),
               ("https://example.com/about", "about us")]
        for n, link in enumerate(links):
            link.page = url
            if n % 4 == 0 and nav:
                href, text = nav.pop(0)
                body.append(f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>')
                wat_links.append({"path": "A@/href", "url": href, "text": text})
            attrs = [f'src="{html.escape(link.src)}"']
            entry: dict[str, str] = {"path": "IMG@/src", "url": link.src}
            if link.alt is not None:
                attrs.append(f'alt="{html.escape(link.alt)}"')
                entry["alt"] = link.alt
            if link.title is not None:
                attrs.append(f'title="{html.escape(link.title)}"')
                entry["title"] = link.title
            body.append(f"<figure><img {' '.join(attrs)}></figure>")
            wat_links.append(entry)
        for href, text in nav:
            body.append(f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>')
            wat_links.append({"path": "A@/href", "url": href, "text": text})
        head_links = [{"path": "LINK@/href", "url": "/static/style.css", "rel": "stylesheet"}]
        metas = [{"name": "description", "content": "Shapes and colours"}]
        doc = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="UTF-8">\n'
            f"<title>{html.escape(title)}</title>\n"
            '<meta name="description" content="Shapes and colours">\n'
            '<link rel="stylesheet" href="/static/style.css">\n</head>\n<body>\n'
            + "\n".join(body) + "\n</body>\n</html>\n"
        )
        return Page(url=url, html=doc, title=title, links=wat_links, head_links=head_links, metas=metas)

    def write(self, out: Path) -> dict[str, Any]:
        # The page lost to a truncated gzip member: fresh images nobody else links to.
        lost_links = [self._good("lost_in_truncation") for _ in range(3)]
        writers: list[CrawlFileWriter] = []
        page_files: list[str] = []
        t = 0
        for f in range(self.files):
            stamp = (CRAWL_START + timedelta(hours=3 * f)).strftime("%Y%m%d%H%M%S")
            writers.append(CrawlFileWriter(f"CC-MAIN-{stamp}-{stamp}-{f:05d}.warc.gz", self.seed))
        a_links = 0
        for i, links in enumerate(self.page_links):
            page = self.build_page(i, links)
            a_links += sum(1 for x in page.links if x["path"] == "A@/href")
            self.files_out[self.page_path(i)] = page.html.encode("utf-8")
            writer = writers[i * self.files // self.pages]
            writer.add_page(page, CRAWL_START + timedelta(seconds=7 * t))
            page_files.append(writer.warc_name)
            t += 1
        real_pages, real_links = realweb.real_web_pages(self) if self.real_web else ([], [])
        for path, page in real_pages:  # drawn after every other page: the default crawl is unchanged
            self.files_out[path] = page.html.encode("utf-8") if page.body is None else page.body
            writers[0].add_page(page, CRAWL_START + timedelta(seconds=7 * t))
            t += 1
        lost = self.build_page(self.pages, lost_links, title="A page the crawler lost")
        last = writers[-1]
        last.add_request_and_response_only(lost, CRAWL_START + timedelta(seconds=7 * t))

        warc_files, wat_files = [], []
        for w in writers:
            warc, wat = w.finish()
            if w is last:
                warc = corruptions.truncate_tail(warc, w.warc_offsets[-1])
                wat = corruptions.truncate_tail(wat, w.wat_offsets[-1])
            self.files_out[f"crawl/warc/{w.warc_name}"] = warc
            self.files_out[f"crawl/wat/{w.wat_name}"] = wat
            warc_files.append(f"crawl/warc/{w.warc_name}")
            wat_files.append(f"crawl/wat/{w.wat_name}")

        self.files_out[ROBOTS_TXT] = robots_txt(self.base_url, [x for page in self.page_links for x in page])

        for path in sorted(self.files_out):
            dest = out / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(self.files_out[path])
        truth = self.truth(warc_files, wat_files, writers, lost, lost_links, a_links)
        if self.real_web:
            truth["real_web"] = {
                "pages": [{"path": path, "url": page.url, "content_type": page.content_type} for path, page in real_pages],
                "counts": {"pages": len(real_pages), "img_links": len(real_links),
                           "by_kind": dict(sorted(Counter(x["kind"] for x in real_links).items()))},
                "links": real_links,
            }
        (out / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                                        encoding="utf-8")
        return truth

    def truth(self, warc_files: list[str], wat_files: list[str], writers: list[CrawlFileWriter], lost: Page,
              lost_links: list[ImgLink], a_links: int) -> dict[str, Any]:
        links = [link for page in self.page_links for link in page]
        warc_types = Counter(t for w in writers for t in w.warc_types)
        warc_types["response"] -= 1  # the truncated last member
        wat_described = Counter(t for w in writers for t in w.wat_types)
        wat_described["response"] -= 1
        pairs = {(x.url, x.alt) for x in links if x.url and x.alt}
        groups: dict[str, list[str]] = {}
        for x in links:
            if x.group and x.category in ("exact_dup", "near_dup"):
                groups.setdefault(x.group, []).append(x.url)  # type: ignore[arg-type]
        return {
            "seed": self.seed,
            "base_url": self.base_url,
            "warc_files": warc_files,
            "wat_files": wat_files,
            "counts": {
                "pages": self.pages,
                "img_links": len(links),
                "a_links": a_links,
                "head_links": self.pages,
                "img_with_alt": sum(1 for x in links if x.alt),
                "img_without_alt_attr": sum(1 for x in links if x.alt is None),
                "unique_url_alt_pairs": len(pairs),
                "by_category": dict(sorted(Counter(x.category for x in links).items())),
                "by_url_form": dict(sorted(Counter(x.url_form for x in links).items())),
                "by_expect": dict(sorted(Counter(x.expect for x in links).items())),
                "by_lang": dict(sorted(Counter(x.lang for x in links if x.lang).items())),
                "image_files": len(self.images),
                "warc_records": dict(sorted(warc_types.items())),
                "wat_records": {"warcinfo": len(writers), "metadata": sum(wat_described.values())},
                "wat_metadata_by_warc_type": dict(sorted(wat_described.items())),
            },
            "truncated": {
                "warc": warc_files[-1],
                "wat": wat_files[-1],
                "page_url": lost.url,
                "lost_records": {"warc": ["response"], "wat": ["metadata (describing the response)"]},
                "img_links": [asdict(x) for x in lost_links],
            },
            "exact_dup_groups": [u for g, u in sorted(groups.items()) if g.startswith("exact-")],
            "near_dup_groups": [u for g, u in sorted(groups.items()) if g.startswith("near-")],
            "repeated_pairs": sorted({(x.url, x.alt) for x in links if x.category == "repeated"}),
            "eval_leak": self.eval_leak,
            "images": self.images,
            "pages": [self.page_path(i) for i in range(self.pages)],
            "links": [asdict(x) for x in links],
            **({"dumps": self.dumps} if self.dumps else {}),
        }


ROBOTS_TXT = "robots.txt"


def robots_txt(base_url: str, links: list[ImgLink]) -> bytes:
    """The generated web's robots.txt: every crawler may fetch everything, but the product
    token `wit` may not fetch every other opted-out (`noai`) image, so a demo download shows
    both kinds of opt-out: images never requested (robots.txt) and images whose response
    says `X-Robots-Tag: noai`. Drawn from the links, nothing random: the crawl is unchanged."""
    noai = sorted({x.url[len(base_url):] for x in links if x.expect == "noai" and x.url and x.url.startswith(base_url)})
    lines = ["# The generated web's robots.txt (RFC 9309).", "User-agent: *", "Allow: /", "", "User-agent: wit"]
    lines += [f"Disallow: {path}" for path in noai[::2]]
    return ("\n".join(lines) + "\n").encode()


def _concept_of(link: ImgLink) -> Concept:
    texture_colour_shape = link.concept.split()  # type: ignore[union-attr]
    texture, colour, shape = texture_colour_shape
    return Concept(colour, shape, texture)


def _eval_id(label: int, k: int) -> str:
    return f"{label:03d}-{k:02d}"


_BOMB_CACHE: list[bytes] = []


def _bomb() -> bytes:
    if not _BOMB_CACHE:  # ~0.1 s to compress; the bytes never change
        _BOMB_CACHE.append(corruptions.png_bomb())
    return _BOMB_CACHE[0]


def generate_crawl(out_dir: str | Path, base_url: str, seed: int = 0, pages: int = DEFAULT_PAGES,
                   imgs_per_page: int = DEFAULT_IMGS_PER_PAGE, files: int = DEFAULT_FILES,
                   real_web: bool = False, worldwide: bool = False,
                   languages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Generate the crawl under `out_dir` for a server at `base_url`; returns (and writes) truth.json.
    `real_web` adds the pages of realweb.py (truth["real_web"]); `worldwide` captions the clean
    pairs in turn in English and world.LANGUAGES and writes a dump per language (truth["dumps"]);
    `languages` sets that turn instead (e.g. ("en", "zh", "en", "ja") for half English)."""
    languages = tuple(languages or (("en", *world.LANGUAGES) if worldwide else ("en",)))
    if unknown := set(languages) - {"en", *world.LANGUAGES}:
        raise ValueError(f"languages: no captions for {sorted(unknown)}; choose from en, {', '.join(world.LANGUAGES)}")
    crawl = _Crawl(base_url, seed, pages, imgs_per_page, files, real_web, languages)
    crawl.plan()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if worldwide or languages != ("en",):
        for lang in sorted(set(languages) - {"en"}):
            name = f"dumps/{lang}wiki-{seed}-pages-articles.xml.bz2"
            world.write_dump(out / name, lang, seed=seed)
            crawl.dumps[lang] = name
    return crawl.write(out)


def render_eval_set(out_dir: str | Path, n_per_concept: int = EVAL_N_PER_CONCEPT, seed: int = EVAL_SEED,
                    size: tuple[int, int] = EVAL_SIZE) -> dict[str, Any]:
    """Held-out labelled concept images: `out_dir/images/{label:03d}-{k:02d}.jpg` + `out_dir/labels.json`.

    labels.json: {"classes": [concept names, label order], "prompts": [a caption per class],
    "items": [{"id", "path", "label", "concept"}]}. With the defaults, the crawl's `eval_leak`
    images are byte-identical to some of these.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    concepts = all_concepts()
    items = []
    for label, concept in enumerate(concepts):
        for k in range(n_per_concept):
            eid = _eval_id(label, k)
            rel = f"images/{eid}.jpg"
            (out / rel).write_bytes(eval_image(concept, k, seed, size))
            items.append({"id": eid, "path": rel, "label": label, "concept": concept.name})
    doc = {"classes": [c.name for c in concepts],
           "prompts": [f"a {c.texture} {c.colour} {c.shape}" for c in concepts],
           "items": items}
    (out / "labels.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def write_concept_shards(out_dir: str | Path, n_samples: int = 64, seed: int = 0, shard_size: int = 32,
                         size: tuple[int, int] = (64, 64)) -> list[str]:
    """A small WebDataset shard set for trainer tests: `{key}.jpg`, `{key}.txt`, `{key}.json` per sample.

    Reproducible tar bytes (mtime 0, fixed owner). Returns the shard paths in order.
    """
    import webdataset as wds

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"wit-concept-shards|{seed}")
    concepts = all_concepts()
    samples = []
    for i in range(n_samples):
        label = i % len(concepts) if n_samples >= len(concepts) else rng.randrange(len(concepts))
        concept = concepts[label]
        text = caption_for(concept, rng)
        url = f"synthetic://concept/{seed}/{i}"
        key = sample_key(url, text)
        jpg = encode(render(concept, size, 2 * 10**9 + seed * 100_000 + i), "JPEG", 90)
        meta = {"key": key, "url": url, "page_url": "", "text": text, "queries": [concept.colour, concept.shape],
                "phash": "", "width": size[0], "height": size[1], "language": "en", "lang_score": 1.0,
                "label": label, "concept": concept.name}
        samples.append((key, jpg, text, meta))
    paths = []
    for s in range(0, n_samples, shard_size):
        path = out / f"{s // shard_size:05d}.tar"
        with open(path, "wb") as f:
            sink = wds.TarWriter(f, mtime=0, user="wit", group="wit")
            for key, jpg, text, meta in samples[s : s + shard_size]:
                sink.write({"__key__": key, "jpg": jpg, "txt": text, "json": json.dumps(meta, sort_keys=True)})
            sink.close()
        paths.append(str(path))
    return paths


def check_base_url(base_url: str) -> str:
    """base_url itself if it is http(s)://host[:port][/prefix], else a ValueError saying so."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be http(s)://host[:port][/prefix], got {base_url!r}")
    return base_url


def _base_url_arg(text: str) -> str:
    try:
        return check_base_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wit gen-crawl", description=__doc__,
                                     formatter_class=HelpFormatter, allow_abbrev=False)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--base-url", required=True, type=_base_url_arg,
                        help="where the output will be served, e.g. http://127.0.0.1:8000")
    parser.add_argument("--seed", type=int, default=0, help="every draw of the generator comes from it")
    parser.add_argument("--pages", type=_positive, default=DEFAULT_PAGES, help="HTML pages")
    parser.add_argument("--imgs-per-page", type=_positive, default=DEFAULT_IMGS_PER_PAGE, help="<img> links per page")
    parser.add_argument("--files", type=_positive, default=DEFAULT_FILES, help="number of WARC (and WAT) files")
    parser.add_argument("--eval-dir", help="also write the held-out eval set here")
    parser.add_argument("--real-web", action="store_true",
                        help="also plant pages in many encodings, lazy-loaded images and captions that need "
                             "Unicode-aware normalisation (truth.json: real_web)")
    parser.add_argument("--worldwide", action="store_true",
                        help="caption the clean pairs in turn in English, Chinese, Japanese, Arabic and German, and "
                             "write a small Wikipedia-like dump per language under dumps/ (truth.json: dumps)")
    args = parser.parse_args(argv)
    for flag, folder in (("--out", args.out), ("--eval-dir", args.eval_dir)):
        existing = next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), None) if folder else None
        if existing is not None and not existing.is_dir():
            parser.error(f"{flag} {folder}: {existing} is a file, not a folder")
    truth = generate_crawl(args.out, args.base_url, args.seed, args.pages, args.imgs_per_page, args.files,
                           args.real_web, args.worldwide)
    if args.eval_dir:
        render_eval_set(args.eval_dir)
    c = truth["counts"]
    print(f"wrote {c['pages']} pages, {c['img_links']} <img> links, {c['image_files']} image files, "
          f"{len(truth['warc_files'])} WARC + WAT files under {args.out} (truth.json lists what was planted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run())

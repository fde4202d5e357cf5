"""What an uploaded file is, judged by its bytes alone (the client's type and name are not
trusted), and the form it is stored in.

- Images: PNG, JPEG, WebP and GIF, by their signatures (PNG spec §5.2, JFIF ``FF D8 FF``,
  RIFF/``WEBP``, ``GIF87a``/``GIF89a``), decoded whole by Pillow with only that format's decoder,
  refused past ``FILES_MAX_IMAGE_PIXELS``, and re-encoded without metadata (EXIF, GPS, XMP, ICC
  text chunks are not carried over; the EXIF orientation is applied first). A file that is both
  a JPEG and an HTML page comes out a JPEG only. A 320-pixel WebP thumbnail is made.
- PDFs (``%PDF-`` in the first 1,024 bytes, ISO 32000 §7.5.2 as readers accept it): kept as
  uploaded; their text is read with pypdf (at most ``FILES_PDF_MAX_PAGES`` pages and
  ``FILES_MAX_TEXT_CHARS`` characters; pypdf caps what a compressed stream may inflate to).
- Text and code: bytes that decode as UTF-8 (a BOM allowed) or BOM-marked UTF-16 and hold no NUL
  or stray control characters; stored as UTF-8, served as ``text/plain``.
- Anything else raises :class:`Refused`.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
THUMBNAIL_PIXELS = 320  # the longer side of a thumbnail
THUMBNAIL_TYPE = "image/webp"
_CONTROL = set(range(0, 32)) - {9, 10, 12, 13}


class Refused(ValueError):
    """The file is not one webchat takes; ``str()`` says why, for the person."""


@dataclass(frozen=True)
class Sniffed:
    """A file as it will be stored: ``kind`` (image, text or pdf), ``media_type``, the bytes
    to store (``data``), an image's ``thumbnail`` (WebP bytes) and size in pixels, and the text
    of a text file or PDF (characters, at most the configured cap)."""

    kind: str
    media_type: str
    data: bytes
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None
    text: str | None = None


def image_format(data: bytes) -> str | None:
    """The Pillow format name of ``data`` by its signature, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def is_pdf(data: bytes) -> bool:
    """True when ``data`` carries a PDF header in its first 1,024 bytes."""
    return b"%PDF-" in data[:1024]


def sniff(
    data: bytes, *, max_pixels: int, max_text_chars: int, pdf_max_pages: int, reencode: bool = True
) -> Sniffed:
    """Judge and prepare ``data`` (see the module). ``reencode`` False keeps an image's bytes
    as they are once they decode (an import of files webchat re-encoded before, so their
    hashes stay). Raises :class:`Refused`."""
    if not data:
        raise Refused("The file is empty.")
    fmt = image_format(data)
    if fmt is not None:
        return _image(data, fmt, max_pixels, reencode)
    if is_pdf(data):
        text = _pdf_text(data, max_text_chars, pdf_max_pages)
        return Sniffed("pdf", "application/pdf", data, text=text)
    decoded = _text(data)
    if decoded is not None:
        return Sniffed(
            "text",
            "text/plain; charset=utf-8",
            decoded.encode("utf-8"),
            text=decoded[:max_text_chars],
        )
    raise Refused(
        "This kind of file can't be attached: images (PNG, JPEG, WebP, GIF), PDFs and text or "
        "code files can."
    )


def _image(data: bytes, fmt: str, max_pixels: int, reencode: bool) -> Sniffed:
    broken = Refused(f"This {fmt} image is damaged or incomplete and can't be read.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            if width * height * max(frames, 1) > max_pixels:
                raise Refused(
                    f"This image is too large: {width}×{height} pixels"
                    f"{f' × {frames} frames' if frames > 1 else ''}; the limit is "
                    f"{max_pixels:,} pixels."
                )
            image.load()
            if frames > 1:
                for index in range(frames):
                    image.seek(index)
                    image.load()
                image.seek(0)
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(f"This image is too large; the limit is {max_pixels:,} pixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise broken from None
    thumbnail = _thumbnail(image)
    stored = _reencode(image, fmt) if reencode else data
    return Sniffed(
        "image", IMAGE_TYPES[fmt], stored, thumbnail=thumbnail, width=width, height=height
    )


# What an image keeps of Pillow's ``info`` when re-encoded: how to draw it, never metadata
# (comments, EXIF, XMP, ICC profiles, text chunks, application extensions).
_DRAWING = ("transparency", "duration", "loop", "background", "disposal")


def _reencode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "GIF":
        image.info = {k: v for k, v in image.info.items() if k in _DRAWING}
        frames = getattr(image, "n_frames", 1)
        options = {"save_all": frames > 1}
        if "duration" in image.info:
            options["duration"] = image.info["duration"]
        if "loop" in image.info:
            options["loop"] = image.info["loop"]
        image.save(out, format="GIF", **options)
        return out.getvalue()
    upright = ImageOps.exif_transpose(image) or image
    upright.info = {k: v for k, v in upright.info.items() if k in _DRAWING}
    if fmt == "JPEG":
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        upright.save(out, format="JPEG", quality=92, optimize=True)
    elif fmt == "PNG":
        upright.save(out, format="PNG", optimize=False)
    else:
        upright.save(out, format="WEBP", quality=92, method=4)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    small = (ImageOps.exif_transpose(image) or image).copy()
    small.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    if small.mode not in ("RGB", "RGBA"):
        alpha = "transparency" in small.info or "A" in small.mode
        small = small.convert("RGBA" if alpha else "RGB")
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=80)
    return out.getvalue()


def _text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    else:
        if b"\x00" in data:
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    sample = text[:65536]
    if any(ord(c) in _CONTROL for c in sample):
        return None
    return text


def _pdf_text(data: bytes, max_chars: int, max_pages: int) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Refused("This PDF is encrypted; webchat can't read it.")
        parts: list[str] = []
        total = 0
        for page in reader.pages[:max_pages]:
            text = page.extract_text() or ""
            parts.append(text)
            total += len(text)
            if total >= max_chars:
                break
    except Refused:
        raise
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        RecursionError,
        MemoryError,
    ) as exc:
        log.info("refused a PDF: %s", exc.__class__.__name__)
        raise Refused("This PDF is damaged or too large to read.") from None
    return "\n\n".join(parts)[:max_chars]

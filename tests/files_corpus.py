"""Small synthetic files for the file tests, made here rather than committed: images (with EXIF
GPS), a PDF with text, and the hostile corpus (an SVG with script, an HTML page, a JPEG that is
also an HTML page, a decompression bomb, a PDF bomb, a truncated PNG)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825


def png(size: tuple[int, int] = (64, 48), color=(200, 30, 60)) -> bytes:
    """A PNG with a text chunk (metadata that must not survive)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "secret-metadata")
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (80, 60)) -> bytes:
    """A JPEG whose EXIF carries a GPS position and a camera make."""
    image = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def gif(frames: int = 3) -> bytes:
    """An animated GIF."""
    images = [Image.new("P", (16, 16), i * 40) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def pdf(content: bytes, *, compress: bool = True) -> bytes:
    """A one-page PDF whose page content stream is ``content`` (FlateDecode-compressed)."""
    stream = zlib.compress(content, 9) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def text_pdf(text: str = "Quarterly ocelot report") -> bytes:
    """A PDF showing ``text`` in Helvetica."""
    return pdf(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1"))


SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="document.title=\'pwned-svg\'">'
    b"<script>document.title='pwned-svg'</script><circle r='5'/></svg>"
)
HTML_PAGE = b"<!doctype html><html><body><script>document.title='pwned-html'</script></body></html>"


def polyglot_jpeg_html() -> bytes:
    """A JPEG that is also an HTML page: a comment segment holding a script, and a script after
    the end of the image."""
    body = jpeg_with_gps()
    comment = b"<html><script>document.title='pwned-polyglot'</script>"
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return body[:2] + segment + body[2:] + HTML_PAGE


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(side: int = 100_000) -> bytes:
    """A tiny PNG that claims ``side``×``side`` pixels (10 billion by default)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def pdf_bomb(inflated: int = 90_000_000) -> bytes:
    """A PDF of ~90 KB whose content stream inflates to ``inflated`` bytes."""
    return pdf(b" " * inflated)


def truncated_png() -> bytes:
    """The first half of a real PNG."""
    data = png((256, 256), (1, 2, 3))
    noisy = Image.frombytes("RGB", (256, 256), bytes(range(256)) * 768)
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    data = out.getvalue()
    return data[: len(data) // 2]

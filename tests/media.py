"""Small, valid-headed images and PDFs for content-block tests, base64-encoded."""

import base64
import struct
import zlib


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int) -> str:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (1 + min(width, 64)))
    return _b64(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def gif(width: int, height: int) -> str:
    return _b64(b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;")


def jpeg(width: int, height: int) -> str:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return _b64(b"\xff\xd8" + app0 + sof + b"\xff\xd9")


def webp(width: int, height: int) -> str:
    payload = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    payload += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _b64(b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload)


def pdf(pages: int, *, text: str = "Hello") -> str:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Count {pages} >>".encode()]
    objects += [
        f"<< /Type /Page /Parent 2 0 R /Contents (BT ({text} {n}) Tj ET) >>".encode()
        for n in range(pages)
    ]
    body = b"%PDF-1.4\n" + b"".join(
        f"{n + 1} 0 obj\n".encode() + obj + b"\nendobj\n" for n, obj in enumerate(objects)
    )
    return _b64(body + b"%%EOF\n")


def image_block(data: str, media_type: str = "image/png", **extra) -> dict:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data},
        **extra,
    }


def pdf_block(data: str, **extra) -> dict:
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": data},
        **extra,
    }

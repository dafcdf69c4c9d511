"""QR codes drawn on the server as SVG, for the page to show as an image: no script, nothing from elsewhere."""

import base64

import qrcode
import qrcode.image.svg


def qr_svg_data_uri(text: str) -> str:
    """Return `text` as a QR code in a data: URI (SVG, white background), for an <img src>."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
